/*
 * bruteforce.c — exact search written in C against abi/include/annvil.h,
 * with the helpers of abi/include/annvil_support.h (errors, parameter
 * checks, input validation, distance kernels).
 *
 * The same semantics as the Rust `bruteforce` variant:
 *   - construction builds nothing: a graph handle whose view has zero levels;
 *   - search ranks every base vector exactly and returns the n nearest;
 *   - refinement reranks the (deduplicated) candidate ids exactly.
 * Results are sorted by increasing distance, ties broken by lower id, with
 * distances ordered like Rust's f32::total_cmp so both variants agree bit for
 * bit. No slot accepts any parameter.
 *
 * Threading: there is no global mutable state. A searcher or refiner is
 * read-only after prepare/configure; each context owns its scratch buffers.
 * Nothing here can unwind (C), so no status other than the returned one
 * crosses the boundary.
 */
#include <annvil_support.h>

#ifndef BRUTEFORCE_C_VERSION
#define BRUTEFORCE_C_VERSION "0.1.0"
#endif

/* The only symbol the Rust shim links against (src/lib.rs). */
const annvil_descriptor *bruteforce_c_entry(void);

/* ------------------------------------------------------------------------ */
/* Inputs and distances                                                     */
/* ------------------------------------------------------------------------ */

/* The borrowed base vectors plus the metric: everything a scan needs. */
typedef struct scan {
    const float *data;
    size_t count;
    size_t dim;
    annvil_metric metric;
} scan;

/* Validates `base` and `metric` into `*out`. */
static annvil_status read_scan(const annvil_vectors *base, annvil_metric metric, scan *out,
                               annvil_error *error) {
    annvil_status status = annvil_check_base(base, metric, error);
    if (status == ANNVIL_OK) {
        *out = (scan){base->data, base->count, base->dim, metric};
    }
    return status;
}

/* Distance of base vector `id` to `query` under the scan's metric. */
static inline float scan_distance(const scan *s, size_t id, const float *query) {
    return annvil_distance(s->metric, s->data + id * s->dim, query, s->dim);
}

/* ------------------------------------------------------------------------ */
/* Top-k selection: a bounded max-heap on (distance, id)                    */
/* ------------------------------------------------------------------------ */

typedef struct scored {
    uint32_t key; /* distance mapped to an unsigned key, see order_key */
    uint32_t id;
    float distance;
} scored;

/*
 * Maps a float to a key whose unsigned order is the IEEE total order
 * (Rust's f32::total_cmp): -NaN < -inf < ... < -0 < +0 < ... < +inf < NaN.
 */
static inline uint32_t order_key(float d) {
    uint32_t bits;
    memcpy(&bits, &d, sizeof bits);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

/* Strict (distance, id) order. */
static inline bool scored_less(scored a, scored b) {
    return a.key < b.key || (a.key == b.key && a.id < b.id);
}

static void sift_down(scored *heap, size_t i, size_t size) {
    scored item = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= size) {
            break;
        }
        if (child + 1 < size && scored_less(heap[child], heap[child + 1])) {
            child++;
        }
        if (!scored_less(item, heap[child])) {
            break;
        }
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = item;
}

static void sift_up(scored *heap, size_t i) {
    scored item = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!scored_less(heap[parent], item)) {
            break;
        }
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = item;
}

/* Offers `item` to a max-heap holding the `k` best so far (k >= 1). */
static inline void heap_offer(scored *heap, size_t *size, size_t k, scored item) {
    if (*size < k) {
        heap[*size] = item;
        sift_up(heap, *size);
        (*size)++;
    } else if (scored_less(item, heap[0])) {
        heap[0] = item;
        sift_down(heap, 0, k);
    }
}

/* Sorts a max-heap in place into increasing order. */
static void heap_sort(scored *heap, size_t size) {
    for (size_t end = size; end > 1; end--) {
        scored top = heap[0];
        heap[0] = heap[end - 1];
        heap[end - 1] = top;
        sift_down(heap, 0, end - 1);
    }
}

static void write_results(const scored *heap, size_t size, uint32_t *ids, float *distances,
                          size_t *found) {
    for (size_t i = 0; i < size; i++) {
        ids[i] = heap[i].id;
        distances[i] = heap[i].distance;
    }
    *found = size;
}

/* ------------------------------------------------------------------------ */
/* Slot: construction                                                        */
/* ------------------------------------------------------------------------ */

struct annvil_graph {
    annvil_graph_view view;
};

static annvil_status graph_build(const annvil_vectors *base, annvil_metric metric,
                                 const annvil_params *params, uint32_t threads,
                                 annvil_graph **out, annvil_error *error) {
    (void)threads; /* nothing to build */
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    scan s = {NULL, 0, 0, 0};
    annvil_status status = read_scan(base, metric, &s, error);
    if (status == ANNVIL_OK) {
        status = annvil_params_check(params, NULL, 0, error);
    }
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_graph *graph = malloc(sizeof *graph);
    if (graph == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY,
                           "cannot allocate the graph (%zu bytes)", sizeof *graph);
    }
    graph->view = (annvil_graph_view){
        .struct_size = sizeof(annvil_graph_view),
        .num_nodes = s.count,
        .num_levels = 0,
        .levels = NULL,
        .num_entry_points = 0,
        .entry_points = NULL,
        .native = NULL,
        .native_tag = NULL,
    };
    *out = graph;
    return ANNVIL_OK;
}

static annvil_status graph_view(const annvil_graph *graph, annvil_graph_view *out,
                                annvil_error *error) {
    if (graph == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph is NULL");
    }
    return annvil_graph_view_fill(&graph->view, out, error);
}

static size_t graph_memory_bytes(const annvil_graph *graph) {
    return graph != NULL ? sizeof *graph : 0;
}

static void graph_destroy(annvil_graph *graph) {
    free(graph);
}

/* ------------------------------------------------------------------------ */
/* Slot: search                                                              */
/* ------------------------------------------------------------------------ */

struct annvil_searcher {
    scan scan;
};

struct annvil_search_context {
    const annvil_searcher *searcher;
    scored *heap;
    size_t heap_capacity;
    uint64_t distance_count;
};

static annvil_status search_prepare(const annvil_vectors *base, const annvil_graph_view *view,
                                    annvil_metric metric, const annvil_params *params,
                                    annvil_searcher **out, annvil_error *error) {
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    scan s = {NULL, 0, 0, 0};
    annvil_status status = read_scan(base, metric, &s, error);
    if (status != ANNVIL_OK) {
        return status;
    }
    /* The view is not used; a NULL view is accepted. A non-NULL one must at
     * least agree with the base. */
    if (view != NULL) {
        if (view->struct_size < offsetof(annvil_graph_view, levels)) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "annvil_graph_view.struct_size is %zu, expected at least %zu",
                               view->struct_size, offsetof(annvil_graph_view, levels));
        }
        if (view->num_levels > 0 && view->num_nodes != s.count) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "graph has %zu nodes but there are %zu base vectors",
                               view->num_nodes, s.count);
        }
    }
    status = annvil_params_check(params, NULL, 0, error);
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_searcher *searcher = malloc(sizeof *searcher);
    if (searcher == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY,
                           "cannot allocate the searcher (%zu bytes)", sizeof *searcher);
    }
    searcher->scan = s;
    *out = searcher;
    return ANNVIL_OK;
}

static annvil_status search_configure(annvil_searcher *searcher, const annvil_params *params,
                                      annvil_error *error) {
    if (searcher == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "searcher is NULL");
    }
    return annvil_params_check(params, NULL, 0, error); /* no knobs: nothing to set */
}

static annvil_status search_context_new(const annvil_searcher *searcher,
                                        annvil_search_context **out, annvil_error *error) {
    if (searcher == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "searcher is NULL");
    }
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    annvil_search_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a search context");
    }
    context->searcher = searcher;
    *out = context;
    return ANNVIL_OK;
}

static annvil_status search_search(annvil_search_context *context, const float *query,
                                   size_t dim, size_t n, uint32_t *ids, float *distances,
                                   size_t *found, annvil_error *error) {
    if (context == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "search context is NULL");
    }
    const scan *s = &context->searcher->scan;
    if (dim != s->dim) {
        return annvil_fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                           "query has dimension %zu, the base vectors have %zu", dim, s->dim);
    }
    if (query == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "query pointer is NULL");
    }
    if (n > 0 && (ids == NULL || distances == NULL)) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "%s pointer is NULL",
                           ids == NULL ? "ids" : "distances");
    }
    if (found == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "found pointer is NULL");
    }
    size_t k = n < s->count ? n : s->count;
    if (k == 0) {
        *found = 0;
        return ANNVIL_OK;
    }
    void *heap = context->heap;
    annvil_status status = annvil_reserve(&heap, &context->heap_capacity, k, sizeof(scored), error);
    context->heap = heap;
    if (status != ANNVIL_OK) {
        return status;
    }
    size_t size = 0;
    for (size_t i = 0; i < s->count; i++) {
        float d = scan_distance(s, i, query);
        heap_offer(context->heap, &size, k, (scored){order_key(d), (uint32_t)i, d});
    }
    context->distance_count += s->count;
    heap_sort(context->heap, size);
    write_results(context->heap, size, ids, distances, found);
    return ANNVIL_OK;
}

static size_t search_context_memory_bytes(const annvil_search_context *context) {
    if (context == NULL) {
        return 0;
    }
    return sizeof *context + context->heap_capacity * sizeof(scored);
}

static size_t searcher_memory_bytes(const annvil_searcher *searcher) {
    return searcher != NULL ? sizeof *searcher : 0;
}

static uint64_t search_distance_count(const annvil_search_context *context) {
    return context != NULL ? context->distance_count : 0;
}

static void search_context_destroy(annvil_search_context *context) {
    if (context != NULL) {
        free(context->heap);
        free(context);
    }
}

static void searcher_destroy(annvil_searcher *searcher) {
    free(searcher);
}

/* ------------------------------------------------------------------------ */
/* Slot: refinement                                                          */
/* ------------------------------------------------------------------------ */

struct annvil_refiner {
    scan scan;
};

struct annvil_refine_context {
    const annvil_refiner *refiner;
    scored *heap;
    size_t heap_capacity;
    uint32_t *unique;
    size_t unique_capacity;
};

static annvil_status refine_prepare(const annvil_vectors *base, annvil_metric metric,
                                    const annvil_params *params, annvil_refiner **out,
                                    annvil_error *error) {
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    scan s = {NULL, 0, 0, 0};
    annvil_status status = read_scan(base, metric, &s, error);
    if (status == ANNVIL_OK) {
        status = annvil_params_check(params, NULL, 0, error);
    }
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_refiner *refiner = malloc(sizeof *refiner);
    if (refiner == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY,
                           "cannot allocate the refiner (%zu bytes)", sizeof *refiner);
    }
    refiner->scan = s;
    *out = refiner;
    return ANNVIL_OK;
}

static annvil_status refine_context_new(const annvil_refiner *refiner,
                                        annvil_refine_context **out, annvil_error *error) {
    if (refiner == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "refiner is NULL");
    }
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    annvil_refine_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a refine context");
    }
    context->refiner = refiner;
    *out = context;
    return ANNVIL_OK;
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static annvil_status refine_refine(annvil_refine_context *context, const float *query,
                                   size_t dim, const uint32_t *candidates,
                                   const float *candidate_distances,
                                   size_t num_candidates, size_t k, uint32_t *ids,
                                   float *distances, size_t *found, annvil_error *error) {
    if (context == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "refine context is NULL");
    }
    const scan *s = &context->refiner->scan;
    if (dim != s->dim) {
        return annvil_fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                           "query has dimension %zu, the base vectors have %zu", dim, s->dim);
    }
    if (query == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "query pointer is NULL");
    }
    if (num_candidates > 0 && candidates == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "candidates pointer is NULL");
    }
    /* Exact rerank recomputes every distance: the search's are not needed. */
    (void)candidate_distances;
    if (k > 0 && (ids == NULL || distances == NULL)) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "%s pointer is NULL",
                           ids == NULL ? "ids" : "distances");
    }
    if (found == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "found pointer is NULL");
    }
    for (size_t i = 0; i < num_candidates; i++) {
        if (candidates[i] >= s->count) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "candidate id %" PRIu32
                               " is out of range (there are %zu base vectors)",
                               candidates[i], s->count);
        }
    }
    if (k == 0 || num_candidates == 0) {
        *found = 0;
        return ANNVIL_OK;
    }

    /* Deduplicate: sort a copy, keep the first of each run. */
    void *unique = context->unique;
    annvil_status status = annvil_reserve(&unique, &context->unique_capacity, num_candidates,
                                          sizeof(uint32_t), error);
    context->unique = unique;
    if (status != ANNVIL_OK) {
        return status;
    }
    memcpy(context->unique, candidates, num_candidates * sizeof(uint32_t));
    qsort(context->unique, num_candidates, sizeof(uint32_t), compare_u32);
    size_t num_unique = 1;
    for (size_t i = 1; i < num_candidates; i++) {
        if (context->unique[i] != context->unique[num_unique - 1]) {
            context->unique[num_unique++] = context->unique[i];
        }
    }

    size_t keep = k < num_unique ? k : num_unique;
    void *heap = context->heap;
    status = annvil_reserve(&heap, &context->heap_capacity, keep, sizeof(scored), error);
    context->heap = heap;
    if (status != ANNVIL_OK) {
        return status;
    }
    size_t size = 0;
    for (size_t i = 0; i < num_unique; i++) {
        uint32_t id = context->unique[i];
        float d = scan_distance(s, id, query);
        heap_offer(context->heap, &size, keep, (scored){order_key(d), id, d});
    }
    heap_sort(context->heap, size);
    write_results(context->heap, size, ids, distances, found);
    return ANNVIL_OK;
}

static size_t refine_context_memory_bytes(const annvil_refine_context *context) {
    if (context == NULL) {
        return 0;
    }
    return sizeof *context + context->heap_capacity * sizeof(scored) +
           context->unique_capacity * sizeof(uint32_t);
}

static size_t refiner_memory_bytes(const annvil_refiner *refiner) {
    return refiner != NULL ? sizeof *refiner : 0;
}

static void refine_context_destroy(annvil_refine_context *context) {
    if (context != NULL) {
        free(context->heap);
        free(context->unique);
        free(context);
    }
}

static void refiner_destroy(annvil_refiner *refiner) {
    free(refiner);
}

/* ------------------------------------------------------------------------ */
/* Tables and descriptor                                                    */
/* ------------------------------------------------------------------------ */

static const annvil_construction_v1 construction_table = {
    .struct_size = sizeof(annvil_construction_v1),
    .build = graph_build,
    .graph_view = graph_view,
    .graph_memory_bytes = graph_memory_bytes,
    .graph_destroy = graph_destroy,
};

static const annvil_search_v1 search_table = {
    .struct_size = sizeof(annvil_search_v1),
    .prepare = search_prepare,
    .configure = search_configure,
    .context_new = search_context_new,
    .search = search_search,
    .searcher_memory_bytes = searcher_memory_bytes,
    .context_memory_bytes = search_context_memory_bytes,
    .context_distance_count = search_distance_count,
    .context_destroy = search_context_destroy,
    .searcher_destroy = searcher_destroy,
};

static const annvil_refinement_v1 refinement_table = {
    .struct_size = sizeof(annvil_refinement_v1),
    .prepare = refine_prepare,
    .context_new = refine_context_new,
    .refine = refine_refine,
    .refiner_memory_bytes = refiner_memory_bytes,
    .context_memory_bytes = refine_context_memory_bytes,
    .context_destroy = refine_context_destroy,
    .refiner_destroy = refiner_destroy,
};

static const annvil_descriptor descriptor = {
    .magic = ANNVIL_MAGIC,
    .abi_major = ANNVIL_ABI_MAJOR,
    .abi_minor = ANNVIL_ABI_MINOR,
    .reserved = 0,
    .struct_size = sizeof(annvil_descriptor),
    .name = "bruteforce-c",
    .version = BRUTEFORCE_C_VERSION,
    .flags = 0,
    .construction = &construction_table,
    .search = &search_table,
    .refinement = &refinement_table,
};

const annvil_descriptor *bruteforce_c_entry(void) {
    return &descriptor;
}
