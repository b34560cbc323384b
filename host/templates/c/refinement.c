/*
 * refinement.c — the refinement slot: exact rerank. Every distinct
 * candidate's exact float distance to the query is computed, and the k
 * nearest are kept, sorted by distance, then id. The search's own distances
 * are not used, so any search slot (quantized, approximate) can feed it.
 * No parameters.
 *
 * The refiner is read-only after prepare; each context owns its scratch.
 *
 * This file is self-contained: besides the table below it defines only
 * static functions, and it uses only the C library and the static inline
 * helpers of annvil_support.h (errors, parameters, distances).
 * src/variant.c refers to the table by its fixed name.
 */
#include <annvil_support.h>

/* The slot table src/variant.c puts into the descriptor. */
extern const annvil_refinement_v1 annvil_variant_refinement_table;

/* ------------------------------------------------------------------------ */
/* Slot: refinement                                                          */
/* ------------------------------------------------------------------------ */

struct annvil_refiner {
    const float *data; /* borrowed base vectors */
    size_t count, dim;
    annvil_metric metric;
};

struct annvil_refine_context {
    const annvil_refiner *refiner;
    annvil_candidate *scratch; /* each candidate's exact distance */
    size_t capacity;
};

static annvil_status prepare(const annvil_vectors *base, annvil_metric metric,
                             const annvil_params *params, annvil_refiner **out,
                             annvil_error *error) {
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    annvil_status status = annvil_check_base(base, metric, error);
    if (status == ANNVIL_OK) {
        status = annvil_params_check(params, NULL, 0, error);
    }
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_refiner *r = malloc(sizeof *r);
    if (r == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate the refiner");
    }
    *r = (annvil_refiner){base->data, base->count, base->dim, metric};
    *out = r;
    return ANNVIL_OK;
}

static annvil_status context_new(const annvil_refiner *r, annvil_refine_context **out,
                                 annvil_error *error) {
    if (r == NULL || out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL refiner or output pointer");
    }
    annvil_refine_context *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a refine context");
    }
    c->refiner = r;
    *out = c;
    return ANNVIL_OK;
}

static annvil_status refine(annvil_refine_context *c, const float *query, size_t dim,
                            const uint32_t *candidates, const float *candidate_distances,
                            size_t num_candidates, size_t k, uint32_t *ids, float *distances,
                            size_t *found, annvil_error *error) {
    (void)candidate_distances; /* every distance is recomputed exactly */
    if (c == NULL || query == NULL || found == NULL ||
        (num_candidates > 0 && candidates == NULL) ||
        (k > 0 && (ids == NULL || distances == NULL))) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
    }
    const annvil_refiner *r = c->refiner;
    if (dim != r->dim) {
        return annvil_fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                           "query has dimension %zu, the base vectors have %zu", dim, r->dim);
    }
    void *scratch = c->scratch; /* per-context scratch, grown on demand */
    annvil_status status =
        annvil_reserve(&scratch, &c->capacity, num_candidates, sizeof *c->scratch, error);
    c->scratch = scratch;
    if (status != ANNVIL_OK) {
        return status;
    }
    for (size_t i = 0; i < num_candidates; i++) {
        uint32_t id = candidates[i];
        if (id >= r->count) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "candidate %" PRIu32 " is out of range (%zu base vectors)", id,
                               r->count);
        }
        c->scratch[i] = (annvil_candidate){
            annvil_distance(r->metric, r->data + (size_t)id * r->dim, query, dim), id};
    }
    if (num_candidates > 1) {
        qsort(c->scratch, num_candidates, sizeof *c->scratch, annvil_candidate_compare);
    }
    /* A repeated id has the same distance each time, so its copies are
     * adjacent after the sort: keep the first of each run. */
    size_t n = 0;
    for (size_t i = 0; i < num_candidates && n < k; i++) {
        if (i > 0 && c->scratch[i].id == c->scratch[i - 1].id) {
            continue;
        }
        ids[n] = c->scratch[i].id;
        distances[n++] = c->scratch[i].distance;
    }
    *found = n;
    return ANNVIL_OK;
}

static size_t refiner_memory_bytes(const annvil_refiner *r) {
    return r != NULL ? sizeof *r : 0;
}

static size_t context_memory_bytes(const annvil_refine_context *c) {
    return c != NULL ? sizeof *c + c->capacity * sizeof *c->scratch : 0;
}

static void context_destroy(annvil_refine_context *c) {
    if (c != NULL) {
        free(c->scratch);
        free(c);
    }
}

static void refiner_destroy(annvil_refiner *r) {
    free(r);
}

const annvil_refinement_v1 annvil_variant_refinement_table = {
    .struct_size = sizeof(annvil_refinement_v1),
    .prepare = prepare,
    .context_new = context_new,
    .refine = refine,
    .refiner_memory_bytes = refiner_memory_bytes,
    .context_memory_bytes = context_memory_bytes,
    .context_destroy = context_destroy,
    .refiner_destroy = refiner_destroy,
};
