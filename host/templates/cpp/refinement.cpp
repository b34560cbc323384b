/*
 * refinement.cpp — the refinement slot: exact rerank. Every distinct
 * candidate's exact float distance to the query is computed, and the k
 * nearest are kept, sorted by distance, then id. The search's own distances
 * are not used, so any search slot (quantized, approximate) can feed it.
 * No parameters.
 *
 * The refiner is read-only after prepare; each context owns its scratch.
 *
 * This file is self-contained: its own helpers live in an anonymous
 * namespace, the shared ones come from annvil_support.hpp, the slot
 * functions are static `extern "C"` functions whose bodies run inside
 * annvil::guard() (no exception crosses the boundary), and the table below
 * is the one symbol src/variant.c refers to.
 */
#include <annvil_support.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

using annvil::Base;
using Scored = annvil::Candidate; /* a candidate and its exact distance */

} // namespace

/* ------------------------------------------------------------------------ */
/* Slot: refinement                                                          */
/* ------------------------------------------------------------------------ */

struct annvil_refiner {
    Base base;
    annvil_metric metric = ANNVIL_METRIC_L2;
};

struct annvil_refine_context {
    const annvil_refiner *refiner = nullptr;
    std::vector<Scored> scored;
};

extern "C" {

static annvil_status prepare(const annvil_vectors *base, annvil_metric metric,
                             const annvil_params *params, annvil_refiner **out,
                             annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(out == nullptr, "output handle pointer is NULL");
        Base b = annvil::read_base(base, metric);
        annvil::Params(params).finish(); /* no parameters */
        *out = new annvil_refiner{b, metric};
    });
}

static annvil_status context_new(const annvil_refiner *r, annvil_refine_context **out,
                                 annvil_error *error) {
    return annvil::guard(error, [&] {
        annvil::invalid_if(r == nullptr || out == nullptr, "NULL refiner or output pointer");
        auto c = std::make_unique<annvil_refine_context>();
        c->refiner = r;
        *out = c.release();
    });
}

static annvil_status refine(annvil_refine_context *c, const float *query, size_t dim,
                            const uint32_t *candidates, const float *candidate_distances,
                            size_t num_candidates, size_t k, uint32_t *ids, float *distances,
                            size_t *found, annvil_error *error) {
    (void)candidate_distances; /* every distance is recomputed exactly */
    return annvil::guard(error, [&] {
        annvil::invalid_if(c == nullptr || query == nullptr || found == nullptr ||
                               (num_candidates > 0 && candidates == nullptr) ||
                               (k > 0 && (ids == nullptr || distances == nullptr)),
                           "NULL pointer argument");
        const annvil_refiner &r = *c->refiner;
        if (dim != r.base.dim) {
            annvil::fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                         annvil::format("query has dimension %zu, the base vectors have %zu", dim,
                                        r.base.dim));
        }
        c->scored.clear();
        for (size_t i = 0; i < num_candidates; i++) {
            uint32_t id = candidates[i];
            if (id >= r.base.count) {
                annvil::fail(ANNVIL_ERR_INVALID_ARGUMENT,
                             annvil::format("candidate %" PRIu32
                                            " is out of range (%zu base vectors)",
                                            id, r.base.count));
            }
            c->scored.push_back(Scored{annvil_distance(r.metric, r.base.row(id), query, dim), id});
        }
        /* A repeated id has the same distance each time, so its copies are
         * adjacent after the sort: unique() keeps the first of each run. */
        std::sort(c->scored.begin(), c->scored.end());
        auto end = std::unique(c->scored.begin(), c->scored.end(),
                               [](const Scored &a, const Scored &b) { return a.id == b.id; });
        size_t kept = std::min(k, static_cast<size_t>(end - c->scored.begin()));
        for (size_t i = 0; i < kept; i++) {
            ids[i] = c->scored[i].id;
            distances[i] = c->scored[i].distance;
        }
        *found = kept;
    });
}

static size_t refiner_memory_bytes(const annvil_refiner *r) { return r != nullptr ? sizeof *r : 0; }

static size_t context_memory_bytes(const annvil_refine_context *c) {
    return c != nullptr ? sizeof *c + c->scored.capacity() * sizeof(Scored) : 0;
}

static void context_destroy(annvil_refine_context *c) { delete c; }

static void refiner_destroy(annvil_refiner *r) { delete r; }

extern const annvil_refinement_v1 annvil_variant_refinement_table;
const annvil_refinement_v1 annvil_variant_refinement_table = [] {
    annvil_refinement_v1 table{};
    table.struct_size = sizeof table;
    table.prepare = prepare;
    table.context_new = context_new;
    table.refine = refine;
    table.refiner_memory_bytes = refiner_memory_bytes;
    table.context_memory_bytes = context_memory_bytes;
    table.context_destroy = context_destroy;
    table.refiner_destroy = refiner_destroy;
    return table;
}();

} // extern "C"
