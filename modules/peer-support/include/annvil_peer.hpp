/*
 * annvil_peer.hpp: the glue for wrapping a C++ ANN library as an annvil
 * variant (a "peer"), used by peer-hnswlib.
 *
 * It builds on annvil_support.hpp (abi/include), which holds what every C++
 * slot needs: annvil::guard() (no exception crosses the C boundary),
 * annvil::Error, annvil::Params (unknown keys rejected as the Rust SDK does),
 * annvil::read_base(). What is particular to peers is here:
 *   - StandardView: the standard graph view (CSR per level, entry points),
 *     built from the library's own structures.
 *   - Results: the host's output buffers for one search.
 *   - descriptor<Peer>(): generic construction and search tables over a
 *     Peer type (see "The Peer concept" below), with every argument check
 *     of the ABI done once here.
 *
 * The library runs only inside functions this header wraps, so a peer's
 * own source holds just the mapping from annvil to the library.
 */
#ifndef ANNVIL_PEER_HPP
#define ANNVIL_PEER_HPP

#include <annvil_support.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace annvil_peer {

/* The shared helpers the tables below use unqualified. */
using annvil::Base;
using annvil::fail;
using annvil::format;
using annvil::guard;
using annvil::guard_value;
using annvil::invalid_if;
using annvil::Params;

/* ------------------------------------------------------------------------ */
/* The standard graph view                                                  */
/* ------------------------------------------------------------------------ */

/**
 * The standard view of a built graph, owned by the graph handle: per level a
 * CSR over all nodes (node v's neighbours are neighbors[offsets[v] ..
 * offsets[v + 1]]), level 0 first, plus the entry points of the top level.
 */
class StandardView {
  public:
    /**
     * Appends the next level over `num_nodes` nodes. `each(node, emit)` is
     * called for node = 0 .. num_nodes - 1 in order and calls emit(id) for
     * every neighbour of `node` on this level (none when absent).
     */
    template <class Each> void add_level(size_t num_nodes, Each &&each) {
        num_nodes_ = num_nodes;
        Level level;
        level.offsets.reserve(num_nodes + 1);
        level.offsets.push_back(0);
        auto emit = [&level](uint32_t id) { level.neighbors.push_back(id); };
        for (size_t v = 0; v < num_nodes; v++) {
            each(static_cast<uint32_t>(v), emit);
            level.offsets.push_back(level.neighbors.size());
        }
        level.neighbors.shrink_to_fit();
        levels_.push_back(std::move(level));
    }

    /** Sets the entry points and the native handle; call after the levels. */
    void finish(std::vector<uint32_t> entry_points, void *native, const char *native_tag) {
        entry_points_ = std::move(entry_points);
        raw_levels_.clear();
        for (const Level &level : levels_) {
            raw_levels_.push_back({level.offsets.data(), level.neighbors.data()});
        }
        view_ = annvil_graph_view{};
        view_.struct_size = sizeof(annvil_graph_view);
        view_.num_nodes = num_nodes_;
        view_.num_levels = static_cast<uint32_t>(raw_levels_.size());
        view_.levels = raw_levels_.empty() ? nullptr : raw_levels_.data();
        view_.num_entry_points = static_cast<uint32_t>(entry_points_.size());
        view_.entry_points = entry_points_.empty() ? nullptr : entry_points_.data();
        view_.native = native;
        view_.native_tag = native_tag;
    }

    /** The view, as annvil_graph_view_fill() copies it out. */
    const annvil_graph_view &view() const { return view_; }

    size_t memory_bytes() const {
        size_t bytes = raw_levels_.capacity() * sizeof(annvil_graph_level) +
                       entry_points_.capacity() * sizeof(uint32_t);
        for (const Level &level : levels_) {
            bytes += level.offsets.capacity() * sizeof(uint64_t) +
                     level.neighbors.capacity() * sizeof(uint32_t);
        }
        return bytes;
    }

  private:
    struct Level {
        std::vector<uint64_t> offsets;
        std::vector<uint32_t> neighbors;
    };

    size_t num_nodes_ = 0;
    std::vector<Level> levels_;
    std::vector<annvil_graph_level> raw_levels_;
    std::vector<uint32_t> entry_points_;
    annvil_graph_view view_{};
};

/* ------------------------------------------------------------------------ */
/* Search output                                                            */
/* ------------------------------------------------------------------------ */

/** The host's buffers for one search: room for capacity() results. */
class Results {
  public:
    Results(uint32_t *ids, float *distances, size_t capacity)
        : ids_(ids), distances_(distances), capacity_(capacity) {}

    size_t capacity() const { return capacity_; }
    size_t size() const { return size_; }

    /** Appends a result (push in increasing distance); false when full. */
    bool push(uint32_t id, float distance) {
        if (size_ == capacity_) {
            return false;
        }
        ids_[size_] = id;
        distances_[size_++] = distance;
        return true;
    }

  private:
    uint32_t *ids_;
    float *distances_;
    size_t capacity_;
    size_t size_ = 0;
};

/* ------------------------------------------------------------------------ */
/* Generic slot tables                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The Peer concept. A peer is a type P with:
 *
 *   static constexpr const char *kName, *kVersion, *kNativeTag;
 *
 *   struct P::Graph {                    // the library's built index
 *     static std::unique_ptr<Graph> build(const Base &, annvil_metric,
 *                                         Params &, uint32_t threads);
 *     void export_view(StandardView &) const;  // add_level() per level
 *     std::vector<uint32_t> entry_points() const;
 *     size_t memory_bytes() const;             // the library's allocations
 *   };
 *   struct P::Searcher {
 *     struct Context;                      // per-thread scratch
 *     static std::unique_ptr<Searcher> prepare(const Base &, Graph &,
 *                                              annvil_metric, Params &);
 *     void configure(Params &);            // exclusive (ABI rule)
 *     std::unique_ptr<Context> new_context() const;
 *     void search(Context &, const float *query, Results &) const;
 *     size_t memory_bytes() const;
 *   };
 *
 * The search slot always needs P's own Graph (the descriptor sets
 * ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH); the construction also exports the
 * standard view unless its build parameter `graph_view` is false, so other
 * libraries' search slots can run on the peer's graph.
 */

template <class P> struct GraphBox {
    std::unique_ptr<typename P::Graph> graph;
    Base base;
    StandardView view;
};

template <class P> struct SearcherBox {
    std::unique_ptr<typename P::Searcher> searcher;
    size_t dim;
};

template <class P> struct ContextBox {
    const SearcherBox<P> *owner;
    std::unique_ptr<typename P::Searcher::Context> scratch;
};

template <class P> struct Slots {
    static GraphBox<P> *graph_of(const annvil_graph *g) {
        return reinterpret_cast<GraphBox<P> *>(const_cast<annvil_graph *>(g));
    }

    static annvil_status build(const annvil_vectors *base, annvil_metric metric,
                               const annvil_params *params, uint32_t threads, annvil_graph **out,
                               annvil_error *error) {
        return guard(error, [&] {
            invalid_if(out == nullptr, "output handle pointer is NULL");
            Base b = annvil::read_base(base, metric);
            Params p(params);
            bool export_view = p.get_bool("graph_view", true);
            auto box = std::make_unique<GraphBox<P>>();
            box->base = b;
            box->graph = P::Graph::build(b, metric, p, threads < 1 ? 1 : threads);
            p.finish();
            if (export_view) {
                box->graph->export_view(box->view);
            }
            box->view.finish(export_view ? box->graph->entry_points() : std::vector<uint32_t>{},
                             box->graph.get(), P::kNativeTag);
            *out = reinterpret_cast<annvil_graph *>(box.release());
        });
    }

    static annvil_status graph_view(const annvil_graph *graph, annvil_graph_view *out,
                                    annvil_error *error) {
        if (graph == nullptr) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph is NULL");
        }
        return annvil_graph_view_fill(&graph_of(graph)->view.view(), out, error);
    }

    static size_t graph_memory_bytes(const annvil_graph *graph) {
        return guard_value<size_t>(0, [&]() -> size_t {
            if (graph == nullptr) {
                return 0;
            }
            const GraphBox<P> *box = graph_of(graph);
            return sizeof *box + box->graph->memory_bytes() + box->view.memory_bytes();
        });
    }

    static void graph_destroy(annvil_graph *graph) {
        guard_value<int>(0, [&] {
            delete graph_of(graph);
            return 0;
        });
    }

    static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                                 annvil_metric metric, const annvil_params *params,
                                 annvil_searcher **out, annvil_error *error) {
        return guard(error, [&] {
            invalid_if(out == nullptr, "output handle pointer is NULL");
            Base b = annvil::read_base(base, metric);
            const size_t needed = offsetof(annvil_graph_view, native_tag) + sizeof(const char *);
            if (view == nullptr || view->struct_size < needed || view->native == nullptr ||
                view->native_tag == nullptr || std::strcmp(view->native_tag, P::kNativeTag) != 0) {
                fail(ANNVIL_ERR_UNSUPPORTED,
                     format("%s search needs the native graph of its own construction slot "
                            "(%s); it cannot search another library's graph view",
                            P::kName, P::kNativeTag));
            }
            /* The native handle points at the Graph object inside its box. */
            auto *graph = static_cast<typename P::Graph *>(view->native);
            if (view->num_levels > 0 && view->num_nodes != b.count) {
                fail(ANNVIL_ERR_INVALID_ARGUMENT,
                     format("graph has %zu nodes but there are %zu base vectors", view->num_nodes,
                            b.count));
            }
            Params p(params);
            auto box = std::make_unique<SearcherBox<P>>();
            box->dim = b.dim;
            box->searcher = P::Searcher::prepare(b, *graph, metric, p);
            p.finish();
            *out = reinterpret_cast<annvil_searcher *>(box.release());
        });
    }

    static annvil_status configure(annvil_searcher *searcher, const annvil_params *params,
                                   annvil_error *error) {
        return guard(error, [&] {
            invalid_if(searcher == nullptr, "searcher is NULL");
            Params p(params);
            reinterpret_cast<SearcherBox<P> *>(searcher)->searcher->configure(p);
            p.finish();
        });
    }

    static annvil_status context_new(const annvil_searcher *searcher,
                                     annvil_search_context **out, annvil_error *error) {
        return guard(error, [&] {
            invalid_if(searcher == nullptr, "searcher is NULL");
            invalid_if(out == nullptr, "output handle pointer is NULL");
            auto *owner = reinterpret_cast<const SearcherBox<P> *>(searcher);
            auto box = std::make_unique<ContextBox<P>>();
            box->owner = owner;
            box->scratch = owner->searcher->new_context();
            *out = reinterpret_cast<annvil_search_context *>(box.release());
        });
    }

    static annvil_status search(annvil_search_context *context, const float *query, size_t dim,
                                size_t n, uint32_t *ids, float *distances, size_t *found,
                                annvil_error *error) {
        return guard(error, [&] {
            invalid_if(context == nullptr, "search context is NULL");
            auto *box = reinterpret_cast<ContextBox<P> *>(context);
            if (dim != box->owner->dim) {
                fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                     format("query has dimension %zu, the base vectors have %zu", dim,
                            box->owner->dim));
            }
            invalid_if(query == nullptr, "query pointer is NULL");
            invalid_if(n > 0 && ids == nullptr, "ids pointer is NULL");
            invalid_if(n > 0 && distances == nullptr, "distances pointer is NULL");
            invalid_if(found == nullptr, "found pointer is NULL");
            Results results(ids, distances, n);
            if (n > 0) {
                box->owner->searcher->search(*box->scratch, query, results);
            }
            *found = results.size();
        });
    }

    static size_t searcher_memory_bytes(const annvil_searcher *searcher) {
        return guard_value<size_t>(0, [&]() -> size_t {
            if (searcher == nullptr) {
                return 0;
            }
            auto *box = reinterpret_cast<const SearcherBox<P> *>(searcher);
            return sizeof *box + box->searcher->memory_bytes();
        });
    }

    /* The wrapped libraries keep their per-search scratch themselves
     * (hnswlib's visited-list pool, faiss's per-call buffers), so a context
     * owns only its box. */
    static size_t context_memory_bytes(const annvil_search_context *context) {
        return context == nullptr ? 0 : sizeof(ContextBox<P>);
    }

    static void context_destroy(annvil_search_context *context) {
        guard_value<int>(0, [&] {
            delete reinterpret_cast<ContextBox<P> *>(context);
            return 0;
        });
    }

    static void searcher_destroy(annvil_searcher *searcher) {
        guard_value<int>(0, [&] {
            delete reinterpret_cast<SearcherBox<P> *>(searcher);
            return 0;
        });
    }
};

/**
 * The static descriptor of peer P: its construction and search slots, no
 * refinement (the host then keeps the search's first k), and the flag that
 * ties the search to P's own construction.
 */
template <class P> const annvil_descriptor *descriptor() {
    static const annvil_construction_v1 construction = [] {
        annvil_construction_v1 t{};
        t.struct_size = sizeof t;
        t.build = Slots<P>::build;
        t.graph_view = Slots<P>::graph_view;
        t.graph_memory_bytes = Slots<P>::graph_memory_bytes;
        t.graph_destroy = Slots<P>::graph_destroy;
        return t;
    }();
    static const annvil_search_v1 search = [] {
        annvil_search_v1 t{};
        t.struct_size = sizeof t;
        t.prepare = Slots<P>::prepare;
        t.configure = Slots<P>::configure;
        t.context_new = Slots<P>::context_new;
        t.search = Slots<P>::search;
        t.searcher_memory_bytes = Slots<P>::searcher_memory_bytes;
        t.context_memory_bytes = Slots<P>::context_memory_bytes;
        t.context_distance_count = nullptr; /* the libraries count globally, not per context */
        t.context_destroy = Slots<P>::context_destroy;
        t.searcher_destroy = Slots<P>::searcher_destroy;
        return t;
    }();
    static const annvil_descriptor d = [] {
        annvil_descriptor t{};
        t.magic = ANNVIL_MAGIC;
        t.abi_major = ANNVIL_ABI_MAJOR;
        t.abi_minor = ANNVIL_ABI_MINOR;
        t.struct_size = sizeof t;
        t.name = P::kName;
        t.version = P::kVersion;
        t.flags = ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH;
        t.construction = &construction;
        t.search = &search;
        t.refinement = nullptr;
        return t;
    }();
    return &d;
}

} // namespace annvil_peer

#endif /* ANNVIL_PEER_HPP */
