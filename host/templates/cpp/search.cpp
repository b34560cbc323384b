/*
 * search.cpp — the search slot: beam search over the standard graph view,
 * so it runs on the graph of any construction slot that exports one.
 *
 * A query starts at the nearest entry point, descends greedily through the
 * upper levels (when the graph has any, as HNSW does), then runs the
 * ef-bounded best-first search on level 0: expand the nearest unexpanded
 * node, keep the `ef` nearest nodes seen, stop when the nearest unexpanded
 * node is farther than all of them.
 *
 * Swept knob: `ef` (1..=100000, default 10), the beam width on level 0; a
 * search for n results uses max(ef, n). No prepare parameters.
 *
 * Each context marks visited nodes with the number of its current search
 * (an epoch), so nothing is cleared between queries. The searcher is
 * read-only after prepare/configure; all per-query state is in the context.
 *
 * This file is self-contained: its own helpers live in an anonymous
 * namespace, the shared ones come from annvil_support.hpp, the slot
 * functions are static `extern "C"` functions whose bodies run inside
 * annvil::guard() (no exception crosses the boundary), and the table below
 * is the one symbol src/variant.c refers to.
 */
#include <annvil_support.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

using annvil::Base;
using annvil::Candidate;

constexpr size_t kEfDefault = 10;
constexpr size_t kEfMin = 1;
constexpr size_t kEfMax = 100000;

} // namespace

/* ------------------------------------------------------------------------ */
/* Slot: search                                                              */
/* ------------------------------------------------------------------------ */

struct annvil_searcher {
    Base base;
    annvil_metric metric = ANNVIL_METRIC_L2;
    std::vector<annvil_graph_level> levels; /* [0] is level 0; arrays borrowed */
    std::vector<uint32_t> entry_points;     /* {0} when the view gives none */
    size_t ef = kEfDefault;

    Candidate to(const float *query, uint32_t id) const {
        return Candidate{annvil_distance(metric, base.row(id), query, base.dim), id};
    }
};

struct annvil_search_context {
    const annvil_searcher *searcher = nullptr;
    std::vector<uint32_t> visited; /* visited[v] == epoch: seen by this search */
    uint32_t epoch = 0;
    std::vector<Candidate> frontier; /* heap, nearest on top */
    std::vector<Candidate> nearest;  /* heap of the ef best, farthest on top */
    uint64_t distance_count = 0;

    /** Moves from `at` to its nearest neighbour on `level` until no
     * neighbour is nearer to the query. */
    Candidate greedy(const annvil_graph_level &level, const float *query, Candidate at) {
        for (;;) {
            Candidate best = at;
            for (uint64_t e = level.offsets[at.id]; e < level.offsets[at.id + 1]; e++) {
                best = std::min(best, searcher->to(query, level.neighbors[e]));
                distance_count++;
            }
            if (best.id == at.id) {
                return at;
            }
            at = best;
        }
    }

    /** The ef-bounded best-first search on level 0 from `start`; the answer
     * is left in `nearest` (a heap). */
    void beam(const float *query, Candidate start, size_t ef) {
        const annvil_graph_level &level0 = searcher->levels[0];
        if (++epoch == 0) { /* wrapped: forget the marks of 2^32 searches ago */
            std::fill(visited.begin(), visited.end(), 0u);
            epoch = 1;
        }
        frontier.assign(1, start);
        nearest.assign(1, start);
        visited[start.id] = epoch;
        while (!frontier.empty()) {
            std::pop_heap(frontier.begin(), frontier.end(), annvil::farther);
            Candidate current = frontier.back();
            frontier.pop_back();
            if (nearest.size() >= ef && nearest.front() < current) {
                break; /* every node left to expand is farther than the worst kept */
            }
            uint64_t begin = level0.offsets[current.id], end = level0.offsets[current.id + 1];
            for (uint64_t e = begin; e < end; e++) {
                uint32_t id = level0.neighbors[e];
                if (e + 1 < end) { /* load the next vector while this one is compared */
                    __builtin_prefetch(searcher->base.row(level0.neighbors[e + 1]));
                }
                if (visited[id] == epoch) {
                    continue;
                }
                visited[id] = epoch;
                Candidate next = searcher->to(query, id);
                distance_count++;
                if (nearest.size() < ef || next < nearest.front()) {
                    frontier.push_back(next);
                    std::push_heap(frontier.begin(), frontier.end(), annvil::farther);
                    nearest.push_back(next);
                    std::push_heap(nearest.begin(), nearest.end());
                    if (nearest.size() > ef) {
                        std::pop_heap(nearest.begin(), nearest.end());
                        nearest.pop_back();
                    }
                }
            }
        }
    }
};

extern "C" {

static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                             annvil_metric metric, const annvil_params *params,
                             annvil_searcher **out, annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(out == nullptr, "output handle pointer is NULL");
        Base b = annvil::read_base(base, metric);
        annvil::Params(params).finish(); /* no prepare parameters */
        annvil::invalid_if(view == nullptr ||
                               view->struct_size < offsetof(annvil_graph_view, native),
                           "graph view is NULL or too small");
        if (view->num_levels == 0) {
            annvil::fail(ANNVIL_ERR_UNSUPPORTED,
                         "beam search needs a graph, and the construction slot built none");
        }
        annvil::throw_if_failed(
            [&](annvil_error *e) { return annvil_graph_view_check(view, b.count, e); });
        auto s = std::make_unique<annvil_searcher>();
        s->base = b;
        s->metric = metric;
        s->levels.assign(view->levels, view->levels + view->num_levels);
        if (view->num_entry_points > 0) {
            s->entry_points.assign(view->entry_points, view->entry_points + view->num_entry_points);
        } else {
            s->entry_points.push_back(0); /* a view without entry points starts at node 0 */
        }
        *out = s.release();
    });
}

static annvil_status configure(annvil_searcher *s, const annvil_params *params,
                               annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(s == nullptr, "searcher is NULL");
        annvil::Params p(params);
        size_t ef = p.get_size("ef", s->ef, kEfMin, kEfMax);
        p.finish();
        s->ef = ef; /* only a fully valid call changes the knob */
    });
}

static annvil_status context_new(const annvil_searcher *s, annvil_search_context **out,
                                 annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(s == nullptr || out == nullptr, "NULL searcher or output pointer");
        auto c = std::make_unique<annvil_search_context>();
        c->searcher = s;
        c->visited.assign(s->base.count, 0u);
        *out = c.release();
    });
}

static annvil_status search(annvil_search_context *c, const float *query, size_t dim, size_t n,
                            uint32_t *ids, float *distances, size_t *found, annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(c == nullptr || query == nullptr || found == nullptr ||
                               (n > 0 && (ids == nullptr || distances == nullptr)),
                           "NULL pointer argument");
        const annvil_searcher &s = *c->searcher;
        if (dim != s.base.dim) {
            annvil::fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                         annvil::format("query has dimension %zu, the base vectors have %zu", dim,
                                        s.base.dim));
        }
        *found = 0;
        if (n == 0 || s.base.count == 0) {
            return;
        }
        Candidate at = s.to(query, s.entry_points[0]);
        for (size_t e = 1; e < s.entry_points.size(); e++) {
            at = std::min(at, s.to(query, s.entry_points[e]));
        }
        c->distance_count += s.entry_points.size();
        for (size_t l = s.levels.size() - 1; l > 0; l--) {
            at = c->greedy(s.levels[l], query, at);
        }
        c->beam(query, at, std::max(s.ef, n));
        std::sort_heap(c->nearest.begin(), c->nearest.end()); /* nearest first */
        size_t kept = std::min(n, c->nearest.size());
        for (size_t i = 0; i < kept; i++) {
            ids[i] = c->nearest[i].id;
            distances[i] = c->nearest[i].distance;
        }
        *found = kept;
    });
}

static size_t searcher_memory_bytes(const annvil_searcher *s) {
    if (s == nullptr) {
        return 0;
    }
    return sizeof *s + s->levels.capacity() * sizeof(annvil_graph_level) +
           s->entry_points.capacity() * sizeof(uint32_t);
}

static size_t context_memory_bytes(const annvil_search_context *c) {
    if (c == nullptr) {
        return 0;
    }
    return sizeof *c + c->visited.capacity() * sizeof(uint32_t) +
           (c->frontier.capacity() + c->nearest.capacity()) * sizeof(Candidate);
}

static uint64_t context_distance_count(const annvil_search_context *c) {
    return c != nullptr ? c->distance_count : 0;
}

static void context_destroy(annvil_search_context *c) { delete c; }

static void searcher_destroy(annvil_searcher *s) { delete s; }

extern const annvil_search_v1 annvil_variant_search_table;
const annvil_search_v1 annvil_variant_search_table = [] {
    annvil_search_v1 table{};
    table.struct_size = sizeof table;
    table.prepare = prepare;
    table.configure = configure;
    table.context_new = context_new;
    table.search = search;
    table.searcher_memory_bytes = searcher_memory_bytes;
    table.context_memory_bytes = context_memory_bytes;
    table.context_distance_count = context_distance_count;
    table.context_destroy = context_destroy;
    table.searcher_destroy = searcher_destroy;
    return table;
}();

} // extern "C"
