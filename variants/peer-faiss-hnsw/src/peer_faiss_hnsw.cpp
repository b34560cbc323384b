/*
 * peer_faiss_hnsw.cpp: faiss's HNSW (faiss::IndexHNSWFlat from Debian's
 * libfaiss-dev, a prebuilt static library) behind the annvil ABI, used the
 * way ann-benchmarks' faiss-hnsw wrapper uses it.
 *
 *   construction  IndexHNSWFlat(dim, M, metric), hnsw.efConstruction set,
 *                 then one add() of every base vector with `threads`
 *                 OpenMP threads (faiss parallelises the insertion itself).
 *                 Labels are the insertion order, so faiss ids are annvil
 *                 ids. The standard view is read from faiss's HNSW arrays
 *                 (levels, offsets, neighbors).
 *   search        one query per call: search(n = 1, k, params). efSearch
 *                 is set on the index in configure (faiss 1.7.3 sizes its
 *                 queue from hnsw.efSearch) and passed in a
 *                 SearchParametersHNSW (its stopping rule). OpenMP is held
 *                 to one thread on the searching thread, so a search is
 *                 single-threaded as annvil measures it. The beam is
 *                 max(efSearch, k), so k hits come back whenever the index
 *                 holds k points.
 *
 * Metrics: METRIC_L2 returns squared L2 (= annvil's L2). METRIC_INNER_PRODUCT
 * returns the similarity <x, q>, largest first: annvil's inner-product
 * distance is its negation and its angular distance (on the host's
 * normalised vectors) is 1 - <x, q>. Ids of -1 (fewer than k points) are
 * dropped.
 *
 * All ABI plumbing is shared: argument checks and the tables in
 * annvil_peer.hpp (modules/peer-support), the exception guard and parameter
 * parsing in annvil_support.hpp (abi/include).
 */
#include <annvil_peer.hpp>

#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/HNSW.h>
#include <omp.h>

#include <algorithm>
#include <climits>

#ifndef PEER_VERSION
#define PEER_VERSION "unknown"
#endif

extern "C" const annvil_descriptor *peer_faiss_hnsw_entry(void); /* the Rust shim forwards to it */

namespace {

using annvil::Base;
using annvil::Params;
using annvil_peer::Results;
using annvil_peer::StandardView;

/*
 * Sets the calling thread's OpenMP thread count (an ICV of that thread
 * only) for a scope, and restores it afterwards.
 */
class OmpThreads {
  public:
    explicit OmpThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
    ~OmpThreads() { omp_set_num_threads(saved_); }
    OmpThreads(const OmpThreads &) = delete;
    OmpThreads &operator=(const OmpThreads &) = delete;

  private:
    int saved_;
};

template <class T> size_t vector_bytes(const std::vector<T> &v) { return v.capacity() * sizeof(T); }

struct FaissPeer {
    static constexpr const char *kName = "peer-faiss-hnsw";
    static constexpr const char *kVersion = PEER_VERSION;
    static constexpr const char *kNativeTag = "peer-faiss-hnsw/faiss::IndexHNSWFlat";

    struct Graph {
        std::unique_ptr<faiss::IndexHNSWFlat> index;
        annvil_metric metric = ANNVIL_METRIC_L2;

        static std::unique_ptr<Graph> build(const Base &base, annvil_metric metric, Params &params,
                                            uint32_t threads) {
            /* faiss's defaults: M = 32, efConstruction = 40. */
            size_t m = params.get_size("M", 32, 2, 1u << 16);
            size_t ef_construction = params.get_size("efConstruction", 40, 1, 1u << 30);
            params.finish();

            auto graph = std::make_unique<Graph>();
            graph->metric = metric;
            graph->index = std::make_unique<faiss::IndexHNSWFlat>(
                static_cast<int>(base.dim), static_cast<int>(m),
                metric == ANNVIL_METRIC_L2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT);
            graph->index->hnsw.efConstruction = static_cast<int>(ef_construction);
            if (base.count > 0) {
                OmpThreads scope(static_cast<int>(threads));
                graph->index->add(static_cast<faiss::Index::idx_t>(base.count), base.data);
            }
            return graph;
        }

        /* Level l lists, for every node present on it, its neighbours
         * (faiss pads each fixed-size range with -1). */
        void export_view(StandardView &view) const {
            const faiss::HNSW &hnsw = index->hnsw;
            const size_t n = static_cast<size_t>(index->ntotal);
            if (n == 0) {
                return;
            }
            for (int level = 0; level <= hnsw.max_level; level++) {
                view.add_level(n, [&](uint32_t node, auto &&emit) {
                    if (hnsw.levels[node] <= level) { /* levels[] counts level 0 as 1 */
                        return;
                    }
                    size_t begin = 0, end = 0;
                    hnsw.neighbor_range(node, level, &begin, &end);
                    for (size_t j = begin; j < end && hnsw.neighbors[j] >= 0; j++) {
                        emit(static_cast<uint32_t>(hnsw.neighbors[j]));
                    }
                });
            }
        }

        std::vector<uint32_t> entry_points() const {
            if (index->ntotal == 0 || index->hnsw.entry_point < 0) {
                return {};
            }
            return {static_cast<uint32_t>(index->hnsw.entry_point)};
        }

        /* The index object, its flat vector storage and the HNSW arrays. */
        size_t memory_bytes() const {
            const faiss::HNSW &hnsw = index->hnsw;
            size_t bytes = sizeof *index + vector_bytes(hnsw.assign_probas) +
                           vector_bytes(hnsw.cum_nneighbor_per_level) + vector_bytes(hnsw.levels) +
                           vector_bytes(hnsw.offsets) + vector_bytes(hnsw.neighbors);
            if (auto *flat = dynamic_cast<const faiss::IndexFlatCodes *>(index->storage)) {
                bytes += sizeof *flat + vector_bytes(flat->codes);
            }
            return bytes;
        }
    };

    struct Searcher {
        /* Output buffers for one faiss call (faiss wants int64 labels). */
        struct Context {
            std::vector<float> similarities;
            std::vector<faiss::Index::idx_t> labels;
        };

        Graph *graph = nullptr;
        int ef_search = 16; /* faiss's default */

        static std::unique_ptr<Searcher> prepare(const Base &, Graph &graph, annvil_metric,
                                                 Params &params) {
            params.finish(); /* no fixed search parameters */
            auto searcher = std::make_unique<Searcher>();
            searcher->graph = &graph;
            searcher->ef_search = graph.index->hnsw.efSearch;
            return searcher;
        }

        /* faiss 1.7.3's HNSW::search sizes its candidate queue from the
         * index's hnsw.efSearch and reads SearchParametersHNSW only for its
         * stopping rule, so the knob must be set on the index too (later
         * faiss versions take both from the parameters). configure never
         * runs concurrently with searches, so writing the field is safe. */
        void configure(Params &params) {
            size_t ef = params.get_size("efSearch", static_cast<size_t>(ef_search), 1, 1u << 30);
            params.finish();
            ef_search = static_cast<int>(ef);
            graph->index->hnsw.efSearch = ef_search;
        }

        std::unique_ptr<Context> new_context() const { return std::make_unique<Context>(); }

        void search(Context &context, const float *query, Results &out) const {
            const faiss::IndexHNSWFlat &index = *graph->index;
            if (index.ntotal == 0) {
                return;
            }
            /* faiss returns exactly k slots; more than ntotal would only add -1s. */
            size_t k = std::min(out.capacity(), static_cast<size_t>(index.ntotal));
            context.similarities.resize(k);
            context.labels.resize(k);
            /* The queue holds max(hnsw.efSearch, k) candidates, but faiss
             * stops once params.efSearch of them beat the current one, so
             * with k > efSearch it could return fewer than k hits although
             * the index holds more; the ABI wants k whenever there are k
             * points. Widen the stopping rule to k too, as hnswlib and
             * USearch do themselves. */
            faiss::SearchParametersHNSW params;
            params.efSearch = std::max(ef_search, static_cast<int>(std::min<size_t>(k, INT_MAX)));
            {
                OmpThreads single(1);
                index.search(1, query, static_cast<faiss::Index::idx_t>(k),
                             context.similarities.data(), context.labels.data(), &params);
            }
            for (size_t i = 0; i < k; i++) {
                if (context.labels[i] < 0) {
                    continue;
                }
                float d = context.similarities[i];
                switch (graph->metric) {
                case ANNVIL_METRIC_L2:
                    break; /* squared L2 already */
                case ANNVIL_METRIC_ANGULAR:
                    d = 1.0f - d;
                    break;
                default: /* ANNVIL_METRIC_INNER_PRODUCT */
                    d = -d;
                    break;
                }
                out.push(static_cast<uint32_t>(context.labels[i]), d);
            }
        }

        size_t memory_bytes() const { return sizeof *this; }
    };
};

} // namespace

extern "C" const annvil_descriptor *peer_faiss_hnsw_entry(void) {
    return annvil_peer::descriptor<FaissPeer>();
}
