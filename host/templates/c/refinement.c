/*
 * refinement.c — the refinement slot: exact rerank. Every distinct
 * candidate's exact float distance to the query is computed, and the k
 * nearest are kept, sorted by distance, then id. The search's own distances
 * are not used, so any search slot (quantized, approximate) can feed it.
 * No parameters.
 *
 * The refiner is read-only after prepare; each context owns its scratch.
 *
 * This file is self-contained: everything but the table below is static.
 * src/variant.c refers to the table by its fixed name.
 */
#include <annvil.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The slot table src/variant.c puts into the descriptor. */
extern const annvil_refinement_v1 annvil_variant_refinement_table;

/* ------------------------------------------------------------------------ */
/* Errors and parameters                                                    */
/* ------------------------------------------------------------------------ */

/* Writes the formatted message into the host's buffer (truncated at a UTF-8
 * character boundary) and returns `status`. */
__attribute__((format(printf, 3, 4)))
static annvil_status fail(annvil_error *error, annvil_status status, const char *fmt, ...) {
    if (error == NULL || error->message == NULL || error->capacity == 0) {
        return status;
    }
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(error->message, error->capacity, fmt, args);
    va_end(args);
    if (n >= 0 && (size_t)n >= error->capacity) {
        /* Truncated: drop a trailing incomplete multi-byte character. */
        size_t len = error->capacity - 1, start = len;
        while (start > 0 && ((unsigned char)error->message[start - 1] & 0xC0u) == 0x80u) {
            start--;
        }
        if (start > 0) {
            unsigned char lead = (unsigned char)error->message[start - 1];
            size_t need = lead >= 0xF0u ? 4 : lead >= 0xE0u ? 3 : lead >= 0xC0u ? 2 : 1;
            if (start - 1 + need > len) {
                error->message[start - 1] = '\0';
            }
        }
    }
    return status;
}

/* This slot accepts no parameter: any key is unknown. */
static annvil_status reject_params(const annvil_params *params, annvil_error *error) {
    if (params == NULL || params->count == 0) {
        return ANNVIL_OK;
    }
    if (params->items == NULL || params->items[0].key == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "malformed parameter list");
    }
    return fail(error, ANNVIL_ERR_UNKNOWN_PARAMETER, "unknown parameter `%s` (accepted: none)",
                params->items[0].key);
}

/* ------------------------------------------------------------------------ */
/* Distances (annvil.h: L2 squared, 1 - <x, q>, -<x, q>)                    */
/* ------------------------------------------------------------------------ */

/* Sixteen independent partial sums: the compiler vectorises them, and long
 * vectors of large values lose less precision than with one running sum.
 * On x86-64 each kernel is compiled for AVX-512, AVX2 and the baseline,
 * and the loader picks the best the CPU has (function multiversioning). */
#define LANES 16
#if defined(__x86_64__)
#define KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL
#endif

KERNEL static float l2_squared(const float *restrict a, const float *restrict b, size_t dim) {
    float acc[LANES] = {0};
    size_t body = dim - dim % LANES;
    for (size_t i = 0; i < body; i += LANES) {
        for (size_t l = 0; l < LANES; l++) {
            float d = a[i + l] - b[i + l];
            acc[l] += d * d;
        }
    }
    float sum = 0.0f;
    for (size_t i = body; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    for (size_t l = 0; l < LANES; l++) {
        sum += acc[l];
    }
    return sum;
}

KERNEL static float dot(const float *restrict a, const float *restrict b, size_t dim) {
    float acc[LANES] = {0};
    size_t body = dim - dim % LANES;
    for (size_t i = 0; i < body; i += LANES) {
        for (size_t l = 0; l < LANES; l++) {
            acc[l] += a[i + l] * b[i + l];
        }
    }
    float sum = 0.0f;
    for (size_t i = body; i < dim; i++) {
        sum += a[i] * b[i];
    }
    for (size_t l = 0; l < LANES; l++) {
        sum += acc[l];
    }
    return sum;
}

static inline float distance(annvil_metric metric, const float *x, const float *q, size_t dim) {
    switch (metric) {
    case ANNVIL_METRIC_L2:
        return l2_squared(x, q, dim);
    case ANNVIL_METRIC_ANGULAR:
        return 1.0f - dot(x, q, dim);
    default: /* ANNVIL_METRIC_INNER_PRODUCT, checked at prepare */
        return -dot(x, q, dim);
    }
}

/* ------------------------------------------------------------------------ */
/* Slot: refinement                                                          */
/* ------------------------------------------------------------------------ */

/* A candidate and its exact distance; sorted by (distance, id). */
typedef struct scored {
    float distance;
    uint32_t id;
} scored;

static int compare_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->distance != y->distance) {
        return x->distance < y->distance ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

struct annvil_refiner {
    const float *data; /* borrowed base vectors */
    size_t count, dim;
    annvil_metric metric;
};

struct annvil_refine_context {
    const annvil_refiner *refiner;
    scored *scratch;
    size_t capacity;
};

static annvil_status prepare(const annvil_vectors *base, annvil_metric metric,
                             const annvil_params *params, annvil_refiner **out,
                             annvil_error *error) {
    if (base == NULL || base->struct_size < sizeof *base || base->dim == 0 ||
        (base->count > 0 && base->data == NULL)) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "invalid base vectors");
    }
    if (base->count > UINT32_MAX) {
        return fail(error, ANNVIL_ERR_UNSUPPORTED, "%zu base vectors exceed the u32 ids of the ABI",
                    base->count);
    }
    if (metric != ANNVIL_METRIC_L2 && metric != ANNVIL_METRIC_ANGULAR &&
        metric != ANNVIL_METRIC_INNER_PRODUCT) {
        return fail(error, ANNVIL_ERR_UNSUPPORTED, "unknown metric code %" PRIu32, metric);
    }
    if (out == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    annvil_status status = reject_params(params, error);
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_refiner *r = malloc(sizeof *r);
    if (r == NULL) {
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate the refiner");
    }
    *r = (annvil_refiner){base->data, base->count, base->dim, metric};
    *out = r;
    return ANNVIL_OK;
}

static annvil_status context_new(const annvil_refiner *r, annvil_refine_context **out,
                                 annvil_error *error) {
    if (r == NULL || out == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL refiner or output pointer");
    }
    annvil_refine_context *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a refine context");
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
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
    }
    const annvil_refiner *r = c->refiner;
    if (dim != r->dim) {
        return fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                    "query has dimension %zu, the base vectors have %zu", dim, r->dim);
    }
    if (num_candidates > c->capacity) { /* per-context scratch, grown on demand */
        scored *grown = realloc(c->scratch, num_candidates * sizeof *grown);
        if (grown == NULL) {
            return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot hold %zu candidates",
                        num_candidates);
        }
        c->scratch = grown;
        c->capacity = num_candidates;
    }
    for (size_t i = 0; i < num_candidates; i++) {
        uint32_t id = candidates[i];
        if (id >= r->count) {
            return fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                        "candidate %" PRIu32 " is out of range (%zu base vectors)", id, r->count);
        }
        c->scratch[i] = (scored){distance(r->metric, r->data + (size_t)id * r->dim, query, dim), id};
    }
    if (num_candidates > 1) {
        qsort(c->scratch, num_candidates, sizeof *c->scratch, compare_scored);
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
