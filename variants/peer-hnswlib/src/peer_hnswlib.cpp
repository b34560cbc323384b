/*
 * peer_hnswlib.cpp: hnswlib (Debian's header-only libhnswlib-dev,
 * /usr/include/hnswlib) behind the annvil ABI, used the way hnswlib's own
 * Python binding uses it.
 *
 *   construction  hnswlib::HierarchicalNSW<float>: init_index(n, M,
 *                 ef_construction, random_seed), then addPoint(row i,
 *                 label i) for every base vector: the first point alone,
 *                 the rest from `threads` threads pulling the next row off a
 *                 shared counter (the binding's ParallelFor). The standard
 *                 view is read from hnswlib's link lists, translated from
 *                 internal ids to labels (= annvil ids).
 *   search        searchKnn(query, n) after setEf(ef); the max-heap it
 *                 returns is emptied back to front into increasing order.
 *
 * Metrics: L2Space returns squared L2 (= annvil's L2). InnerProductSpace
 * returns 1 - <x, q>, which is annvil's angular distance exactly (the host
 * normalises the vectors) and annvil's inner-product distance plus 1, so
 * the inner-product results are shifted by -1 (an order-preserving shift).
 *
 * All ABI plumbing is shared: argument checks and the tables in
 * annvil_peer.hpp (modules/peer-support), the exception guard and parameter
 * parsing in annvil_support.hpp (abi/include).
 */
#include <annvil_peer.hpp>

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#ifndef PEER_VERSION
#define PEER_VERSION "unknown"
#endif

extern "C" const annvil_descriptor *peer_hnswlib_entry(void); /* the Rust shim forwards to it */

namespace {

using annvil::Base;
using annvil::Params;
using annvil_peer::Results;
using annvil_peer::StandardView;
using Hnsw = hnswlib::HierarchicalNSW<float>;

/*
 * Calls fn(i) for i in [begin, end) from `threads` threads that take the
 * next i off a shared counter, like ParallelFor in hnswlib's Python binding.
 * The first exception stops the loop and is rethrown once all threads have
 * joined.
 */
template <class Fn> void parallel_for(size_t begin, size_t end, size_t threads, Fn fn) {
    if (threads <= 1) {
        for (size_t i = begin; i < end; i++) {
            fn(i);
        }
        return;
    }
    std::atomic<size_t> next(begin);
    std::exception_ptr first_error;
    std::mutex error_lock;
    auto worker = [&] {
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= end) {
                return;
            }
            try {
                fn(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_lock);
                if (!first_error) {
                    first_error = std::current_exception();
                }
                next.store(end);
                return;
            }
        }
    };
    std::vector<std::thread> pool;
    try {
        for (size_t t = 0; t < threads; t++) {
            pool.emplace_back(worker);
        }
    } catch (...) { /* could not start a thread: stop the others, then report */
        next.store(end);
        for (std::thread &thread : pool) {
            thread.join();
        }
        throw;
    }
    for (std::thread &thread : pool) {
        thread.join();
    }
    if (first_error) {
        std::rethrow_exception(first_error);
    }
}

struct HnswlibPeer {
    static constexpr const char *kName = "peer-hnswlib";
    static constexpr const char *kVersion = PEER_VERSION;
    static constexpr const char *kNativeTag = "peer-hnswlib/hnswlib::HierarchicalNSW<float>";

    struct Graph {
        std::unique_ptr<hnswlib::SpaceInterface<float>> space;
        std::unique_ptr<Hnsw> hnsw;
        float shift = 0.0f;     /* added to hnswlib's distance to get annvil's */
        size_t upper_bytes = 0; /* link lists of levels >= 1, allocated by addPoint */
        size_t build_threads = 1;

        static std::unique_ptr<Graph> build(const Base &base, annvil_metric metric, Params &params,
                                            uint32_t threads) {
            /* hnswlib's defaults: M = 16, ef_construction = 200, random_seed = 100.
             * M < 2 makes hnswlib's level multiplier 1/ln(M) infinite; it caps M
             * at 10000 itself. */
            size_t m = params.get_size("M", 16, 2, 10000);
            size_t ef_construction = params.get_size("ef_construction", 200, 1, 1u << 30);
            size_t seed = params.get_size("random_seed", 100, 0, std::numeric_limits<unsigned>::max());
            params.finish();

            auto graph = std::make_unique<Graph>();
            if (metric == ANNVIL_METRIC_L2) {
                graph->space = std::make_unique<hnswlib::L2Space>(base.dim);
            } else {
                graph->space = std::make_unique<hnswlib::InnerProductSpace>(base.dim);
                graph->shift = metric == ANNVIL_METRIC_INNER_PRODUCT ? -1.0f : 0.0f;
            }
            /* hnswlib mallocs max_elements rows up front; 0 would fail. */
            graph->hnsw = std::make_unique<Hnsw>(graph->space.get(), std::max<size_t>(base.count, 1),
                                                  m, ef_construction, seed);
            Hnsw &index = *graph->hnsw;
            if (base.count > 0) {
                /* The binding adds the first point alone (it becomes the entry
                 * point) and runs single-threaded for small batches. */
                index.addPoint(base.row(0), 0);
                size_t workers = base.count <= size_t{threads} * 4 ? 1 : threads;
                parallel_for(1, base.count, workers,
                             [&](size_t i) { index.addPoint(base.row(i), i); });
                graph->build_threads = workers;
            }
            for (size_t i = 0; i < index.cur_element_count; i++) {
                graph->upper_bytes += static_cast<size_t>(index.element_levels_[i]) *
                                      index.size_links_per_element_;
            }
            return graph;
        }

        /* Level l lists, for every label in order, its neighbours' labels. */
        void export_view(StandardView &view) const {
            const Hnsw &index = *hnsw;
            const size_t n = index.cur_element_count;
            if (n == 0) {
                return;
            }
            std::vector<uint32_t> label_of(n);
            std::vector<hnswlib::tableint> internal_of(n, n);
            for (hnswlib::tableint i = 0; i < n; i++) {
                hnswlib::labeltype label = index.getExternalLabel(i);
                if (label >= n || internal_of[label] != n) {
                    annvil::fail(ANNVIL_ERR_INTERNAL,
                                 annvil::format("hnswlib label %zu of internal id %u is "
                                                "out of range or repeated",
                                                label, i));
                }
                label_of[i] = static_cast<uint32_t>(label);
                internal_of[label] = i;
            }
            for (int level = 0; level <= index.maxlevel_; level++) {
                view.add_level(n, [&](uint32_t label, auto &&emit) {
                    hnswlib::tableint i = internal_of[label];
                    if (index.element_levels_[i] < level) {
                        return;
                    }
                    hnswlib::linklistsizeint *list = index.get_linklist_at_level(i, level);
                    const auto *neighbours = reinterpret_cast<const hnswlib::tableint *>(list + 1);
                    for (unsigned short j = 0, count = index.getListCount(list); j < count; j++) {
                        emit(label_of[neighbours[j]]);
                    }
                });
            }
        }

        std::vector<uint32_t> entry_points() const {
            if (hnsw->cur_element_count == 0) {
                return {};
            }
            return {static_cast<uint32_t>(hnsw->getExternalLabel(hnsw->enterpoint_node_))};
        }

        /* What hnswlib allocates, from its own size fields. */
        size_t memory_bytes() const {
            const Hnsw &index = *hnsw;
            size_t bytes = sizeof index + sizeof(hnswlib::InnerProductSpace);
            bytes += index.max_elements_ * index.size_data_per_element_; /* level 0 + vectors + labels */
            bytes += index.max_elements_ * sizeof(char *);               /* linkLists_ */
            bytes += upper_bytes;                                        /* levels >= 1 */
            bytes += index.element_levels_.capacity() * sizeof(int);
            bytes += (index.link_list_locks_.size() + index.link_list_update_locks_.size()) *
                     sizeof(std::mutex);
            /* unordered_map<labeltype, tableint>: a node (next pointer, key,
             * value, cached hash) per entry plus the bucket array. */
            bytes += index.label_lookup_.size() * (sizeof(void *) + 2 * sizeof(size_t) + sizeof(size_t));
            bytes += index.label_lookup_.bucket_count() * sizeof(void *);
            /* The visited-list pool holds one list of max_elements entries per
             * thread that has searched or inserted at once (at least the build
             * threads; searches may add more). */
            bytes += build_threads * index.max_elements_ * sizeof(hnswlib::vl_type);
            return bytes;
        }
    };

    struct Searcher {
        /* searchKnn keeps its own scratch (hnswlib's visited-list pool). */
        struct Context {
            std::vector<std::pair<float, hnswlib::labeltype>> hits;
        };

        Graph *graph = nullptr;

        static std::unique_ptr<Searcher> prepare(const Base &, Graph &graph, annvil_metric,
                                                 Params &params) {
            params.finish(); /* no fixed search parameters */
            auto searcher = std::make_unique<Searcher>();
            searcher->graph = &graph;
            return searcher;
        }

        /* hnswlib's ef is a field of the index, not of a search call: set it
         * here (configure never runs concurrently with searches). The default
         * is hnswlib's, 10. */
        void configure(Params &params) {
            size_t ef = params.get_size("ef", graph->hnsw->ef_, 1, 1u << 30);
            params.finish();
            graph->hnsw->setEf(ef);
        }

        std::unique_ptr<Context> new_context() const { return std::make_unique<Context>(); }

        void search(Context &context, const float *query, Results &out) const {
            auto heap = graph->hnsw->searchKnn(query, out.capacity());
            /* A max-heap: the farthest comes out first. */
            context.hits.resize(heap.size());
            for (size_t i = heap.size(); i-- > 0;) {
                context.hits[i] = heap.top();
                heap.pop();
            }
            for (const auto &hit : context.hits) {
                out.push(static_cast<uint32_t>(hit.second), hit.first + graph->shift);
            }
        }

        size_t memory_bytes() const { return sizeof *this; }
    };
};

} // namespace

extern "C" const annvil_descriptor *peer_hnswlib_entry(void) {
    return annvil_peer::descriptor<HnswlibPeer>();
}
