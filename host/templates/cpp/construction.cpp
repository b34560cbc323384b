/*
 * construction.cpp — the construction slot: a flat navigable graph, built
 * like level 0 of HNSW.
 *
 * Points are inserted one at a time, in id order. Each new point runs a
 * beam search of width `ef_construction` from the entry point (node 0) over
 * the graph built so far, keeps at most `M` of the nodes it found (chosen by
 * the occlusion heuristic, which favours neighbours in different
 * directions), and links to them in both directions. A node whose list then
 * exceeds the level-0 degree 2*M is re-pruned with the same heuristic.
 *
 * The build is single-threaded (the `threads` argument is ignored), so it is
 * deterministic.
 *
 * Build parameters: `M` (2..=128, default 16) and `ef_construction`
 * (1..=10000, default 100). The result is the standard graph view: one level
 * in CSR form (u64 offsets, u32 neighbour ids) and entry point 0.
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
#include <numeric>
#include <vector>

namespace {

using annvil::Base;
using annvil::Candidate;
using annvil::farther;

constexpr size_t kMDefault = 16;
constexpr size_t kMMin = 2;
constexpr size_t kMMax = 128;
constexpr size_t kEfConstructionDefault = 100;
constexpr size_t kEfConstructionMin = 1;
constexpr size_t kEfConstructionMax = 10000;

/* ------------------------------------------------------------------------ */
/* The builder                                                              */
/* ------------------------------------------------------------------------ */

/** The graph under construction and the scratch space of the insertions.
 * Node v's list is links[v * max_degree ..][.. degree[v]]. */
class Builder {
  public:
    Builder(Base base, annvil_metric metric, size_t m, size_t ef_construction)
        : base_(base), metric_(metric), m_(m), max_degree_(2 * m),
          /* The search must find at least the M neighbours to choose from. */
          ef_(std::max(ef_construction, m)), links_(base.count * max_degree_),
          degree_(base.count), visited_(base.count) {}

    /** Links node `id` into the graph of nodes 0..id-1. */
    void insert(uint32_t id) {
        search(id);
        std::vector<uint32_t> chosen = select(found_, m_);
        set_neighbors(id, chosen);
        for (uint32_t neighbor : chosen) {
            link_back(neighbor, id);
        }
    }

    /** The finished lists in CSR form. */
    void export_csr(std::vector<uint64_t> &offsets, std::vector<uint32_t> &neighbors) const {
        offsets.assign(1, 0);
        offsets.reserve(base_.count + 1);
        neighbors.reserve(std::accumulate(degree_.begin(), degree_.end(), size_t{0}));
        for (size_t v = 0; v < base_.count; v++) {
            const uint32_t *list = &links_[v * max_degree_];
            neighbors.insert(neighbors.end(), list, list + degree_[v]);
            offsets.push_back(neighbors.size());
        }
    }

  private:
    float node_distance(uint32_t a, uint32_t b) const {
        return annvil_distance(metric_, base_.row(a), base_.row(b), base_.dim);
    }

    /** Beam search for the nodes nearest to node `target`, from node 0;
     * leaves the best `ef` in found_, nearest first. */
    void search(uint32_t target) {
        if (++epoch_ == 0) { /* wrapped: forget the marks of 2^32 searches ago */
            std::fill(visited_.begin(), visited_.end(), 0u);
            epoch_ = 1;
        }
        Candidate start{node_distance(target, 0), 0};
        frontier_.assign(1, start);
        found_.assign(1, start); /* a heap of the ef best, farthest on top */
        visited_[0] = epoch_;
        while (!frontier_.empty()) {
            std::pop_heap(frontier_.begin(), frontier_.end(), farther);
            Candidate current = frontier_.back();
            frontier_.pop_back();
            if (found_.size() >= ef_ && found_.front() < current) {
                break; /* every node left to expand is farther than the worst kept */
            }
            const uint32_t *list = &links_[current.id * max_degree_];
            for (uint32_t i = 0; i < degree_[current.id]; i++) {
                uint32_t id = list[i];
                if (visited_[id] == epoch_) {
                    continue;
                }
                visited_[id] = epoch_;
                Candidate next{node_distance(target, id), id};
                if (found_.size() < ef_ || next < found_.front()) {
                    frontier_.push_back(next);
                    std::push_heap(frontier_.begin(), frontier_.end(), farther);
                    found_.push_back(next);
                    std::push_heap(found_.begin(), found_.end());
                    if (found_.size() > ef_) {
                        std::pop_heap(found_.begin(), found_.end());
                        found_.pop_back();
                    }
                }
            }
        }
        std::sort_heap(found_.begin(), found_.end());
    }

    /** The occlusion heuristic: walks `candidates` (nearest first, by
     * distance to one node) and keeps a candidate only when it is closer to
     * that node than to every candidate kept so far; at most `keep`. */
    std::vector<uint32_t> select(const std::vector<Candidate> &candidates, size_t keep) const {
        std::vector<uint32_t> kept;
        kept.reserve(keep);
        for (const Candidate &c : candidates) {
            if (kept.size() == keep) {
                break;
            }
            bool occluded = std::any_of(kept.begin(), kept.end(), [&](uint32_t k) {
                return node_distance(c.id, k) < c.distance;
            });
            if (!occluded) {
                kept.push_back(c.id);
            }
        }
        return kept;
    }

    void set_neighbors(uint32_t node, const std::vector<uint32_t> &ids) {
        std::copy(ids.begin(), ids.end(), links_.begin() + node * max_degree_);
        degree_[node] = static_cast<uint32_t>(ids.size());
    }

    /** Adds the link node -> added. A full list is re-pruned to the level-0
     * degree by the heuristic, with `added` among the candidates. */
    void link_back(uint32_t node, uint32_t added) {
        uint32_t *list = &links_[node * max_degree_];
        size_t degree = degree_[node];
        if (degree < max_degree_) {
            list[degree] = added;
            degree_[node]++;
            return;
        }
        pool_.clear();
        for (size_t i = 0; i < degree; i++) {
            pool_.push_back(Candidate{node_distance(node, list[i]), list[i]});
        }
        pool_.push_back(Candidate{node_distance(node, added), added});
        std::sort(pool_.begin(), pool_.end());
        set_neighbors(node, select(pool_, max_degree_));
    }

    Base base_;
    annvil_metric metric_;
    size_t m_, max_degree_, ef_;
    std::vector<uint32_t> links_, degree_;
    std::vector<uint32_t> visited_; /* visited_[v] == epoch_: seen by this search */
    uint32_t epoch_ = 0;
    std::vector<Candidate> frontier_; /* heap, nearest on top */
    std::vector<Candidate> found_;    /* the last search's answer */
    std::vector<Candidate> pool_;     /* a full list being re-pruned */
};

} // namespace

/* ------------------------------------------------------------------------ */
/* Slot: construction                                                        */
/* ------------------------------------------------------------------------ */

struct annvil_graph {
    std::vector<uint64_t> offsets;   /* count + 1 entries */
    std::vector<uint32_t> neighbors; /* offsets[count] entries */
    uint32_t entry_point = 0;
    annvil_graph_level level{};
    annvil_graph_view view{};
};

extern "C" {

static annvil_status build(const annvil_vectors *base, annvil_metric metric,
                           const annvil_params *params, uint32_t threads, annvil_graph **out,
                           annvil_error *error) {
    (void)threads; /* single-threaded */
    return annvil::guard(error, [&] {
        annvil::invalid_if(out == nullptr, "output handle pointer is NULL");
        Base b = annvil::read_base(base, metric);
        annvil::Params p(params);
        size_t m = p.get_size("M", kMDefault, kMMin, kMMax);
        size_t ef_construction = p.get_size("ef_construction", kEfConstructionDefault,
                                            kEfConstructionMin, kEfConstructionMax);
        p.finish();
        auto g = std::make_unique<annvil_graph>();
        {
            Builder builder(b, metric, m, ef_construction);
            for (size_t id = 1; id < b.count; id++) {
                builder.insert(static_cast<uint32_t>(id));
            }
            builder.export_csr(g->offsets, g->neighbors);
        }
        g->level = annvil_graph_level{g->offsets.data(), g->neighbors.data()};
        g->view.struct_size = sizeof g->view;
        g->view.num_nodes = b.count;
        g->view.num_levels = 1;
        g->view.levels = &g->level;
        g->view.num_entry_points = b.count > 0 ? 1 : 0;
        g->view.entry_points = &g->entry_point;
        *out = g.release();
    });
}

static annvil_status graph_view(const annvil_graph *g, annvil_graph_view *out,
                                annvil_error *error) {
    if (g == nullptr) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph is NULL");
    }
    return annvil_graph_view_fill(&g->view, out, error);
}

static size_t graph_memory_bytes(const annvil_graph *g) {
    if (g == nullptr) {
        return 0;
    }
    return sizeof *g + g->offsets.capacity() * sizeof(uint64_t) +
           g->neighbors.capacity() * sizeof(uint32_t);
}

static void graph_destroy(annvil_graph *g) { delete g; }

extern const annvil_construction_v1 annvil_variant_construction_table;
const annvil_construction_v1 annvil_variant_construction_table = [] {
    annvil_construction_v1 table{};
    table.struct_size = sizeof table;
    table.build = build;
    table.graph_view = graph_view;
    table.graph_memory_bytes = graph_memory_bytes;
    table.graph_destroy = graph_destroy;
    return table;
}();

} // extern "C"
