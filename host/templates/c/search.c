/*
 * search.c — the search slot: beam search over the standard graph view, so
 * it runs on the graph of any construction slot that exports one.
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
 * This file is self-contained: besides the table below it defines only
 * static functions, and it uses only the C library and the static inline
 * helpers of annvil_support.h (errors, parameters, distances, heaps).
 * src/variant.c refers to the table by its fixed name.
 */
#include <annvil_support.h>

/* The slot table src/variant.c puts into the descriptor. */
extern const annvil_search_v1 annvil_variant_search_table;

#define EF_DEFAULT 10u
#define EF_MIN 1u
#define EF_MAX 100000u

/* ------------------------------------------------------------------------ */
/* Slot: search                                                              */
/* ------------------------------------------------------------------------ */

struct annvil_searcher {
    const float *data; /* borrowed base vectors */
    size_t count, dim;
    annvil_metric metric;
    const annvil_graph_level *levels; /* borrowed from the view; [0] is level 0 */
    uint32_t num_levels;
    uint32_t *entry_points; /* owned copy; {0} when the view gives none */
    uint32_t num_entry_points;
    size_t ef;
};

struct annvil_search_context {
    const annvil_searcher *searcher;
    uint32_t *visited; /* visited[v] == epoch: v was seen by the current search */
    uint32_t epoch;
    annvil_heap frontier; /* nodes to expand, nearest on top */
    annvil_heap nearest;  /* the ef best found, farthest on top */
    uint64_t distance_count;
};

static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                             annvil_metric metric, const annvil_params *params,
                             annvil_searcher **out, annvil_error *error) {
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
    if (view == NULL || view->struct_size < offsetof(annvil_graph_view, native)) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph view is NULL or too small");
    }
    if (view->num_levels == 0) {
        return annvil_fail(error, ANNVIL_ERR_UNSUPPORTED,
                           "beam search needs a graph, and the construction slot built none");
    }
    status = annvil_graph_view_check(view, base->count, error);
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_searcher *s = calloc(1, sizeof *s);
    uint32_t num_entry_points = view->num_entry_points > 0 ? view->num_entry_points : 1;
    uint32_t *entry_points = malloc(num_entry_points * sizeof *entry_points);
    if (s == NULL || entry_points == NULL) {
        free(s);
        free(entry_points);
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate the searcher");
    }
    if (view->num_entry_points > 0) {
        memcpy(entry_points, view->entry_points, num_entry_points * sizeof *entry_points);
    } else {
        entry_points[0] = 0; /* a view without entry points starts at node 0 */
    }
    *s = (annvil_searcher){
        .data = base->data,
        .count = base->count,
        .dim = base->dim,
        .metric = metric,
        .levels = view->levels,
        .num_levels = view->num_levels,
        .entry_points = entry_points,
        .num_entry_points = num_entry_points,
        .ef = EF_DEFAULT,
    };
    *out = s;
    return ANNVIL_OK;
}

static annvil_status configure(annvil_searcher *s, const annvil_params *params,
                               annvil_error *error) {
    static const char *const accepted[] = {"ef"};
    if (s == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "searcher is NULL");
    }
    annvil_status status = annvil_params_check(params, accepted, 1, error);
    size_t ef = s->ef;
    if (status == ANNVIL_OK) {
        status = annvil_params_size(params, "ef", s->ef, EF_MIN, EF_MAX, &ef, error);
    }
    if (status == ANNVIL_OK) {
        s->ef = ef; /* only a fully valid call changes the knob */
    }
    return status;
}

static annvil_status context_new(const annvil_searcher *s, annvil_search_context **out,
                                 annvil_error *error) {
    if (s == NULL || out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL searcher or output pointer");
    }
    annvil_search_context *c = calloc(1, sizeof *c);
    uint32_t *visited = calloc(s->count > 0 ? s->count : 1, sizeof *visited);
    if (c == NULL || visited == NULL) {
        free(c);
        free(visited);
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a search context");
    }
    c->searcher = s;
    c->visited = visited;
    *out = c;
    return ANNVIL_OK;
}

/* Moves from `at` to its nearest neighbour on `level` until no neighbour
 * is nearer to the query. */
static annvil_candidate greedy(annvil_search_context *c, const annvil_graph_level *level,
                               const float *query, annvil_candidate at) {
    const annvil_searcher *s = c->searcher;
    for (;;) {
        annvil_candidate best = at;
        for (uint64_t e = level->offsets[at.id]; e < level->offsets[at.id + 1]; e++) {
            uint32_t id = level->neighbors[e];
            annvil_candidate next = {
                annvil_distance(s->metric, s->data + (size_t)id * s->dim, query, s->dim), id};
            c->distance_count++;
            if (annvil_candidate_closer(next, best)) {
                best = next;
            }
        }
        if (best.id == at.id) {
            return at;
        }
        at = best;
    }
}

/* The ef-bounded best-first search on level 0 from `start`; the answer is
 * left in c->nearest. False when out of memory. */
static bool beam(annvil_search_context *c, const float *query, annvil_candidate start,
                 size_t ef) {
    const annvil_searcher *s = c->searcher;
    const annvil_graph_level *level0 = &s->levels[0];
    if (++c->epoch == 0) { /* wrapped: forget the marks of 2^32 searches ago */
        memset(c->visited, 0, s->count * sizeof *c->visited);
        c->epoch = 1;
    }
    c->frontier.len = 0;
    c->nearest.len = 0;
    c->visited[start.id] = c->epoch;
    if (!annvil_heap_push(&c->frontier, start, false) ||
        !annvil_heap_push(&c->nearest, start, true)) {
        return false;
    }
    while (c->frontier.len > 0) {
        annvil_candidate current = annvil_heap_pop(&c->frontier, false);
        if (c->nearest.len >= ef && annvil_candidate_closer(c->nearest.items[0], current)) {
            break; /* every node left to expand is farther than the worst kept */
        }
        uint64_t begin = level0->offsets[current.id], end = level0->offsets[current.id + 1];
        for (uint64_t e = begin; e < end; e++) {
            uint32_t id = level0->neighbors[e];
            if (e + 1 < end) { /* load the next vector while this one is compared */
                __builtin_prefetch(s->data + (size_t)level0->neighbors[e + 1] * s->dim);
            }
            if (c->visited[id] == c->epoch) {
                continue;
            }
            c->visited[id] = c->epoch;
            annvil_candidate next = {
                annvil_distance(s->metric, s->data + (size_t)id * s->dim, query, s->dim), id};
            c->distance_count++;
            if (c->nearest.len < ef || annvil_candidate_closer(next, c->nearest.items[0])) {
                if (!annvil_heap_push(&c->frontier, next, false) ||
                    !annvil_heap_push(&c->nearest, next, true)) {
                    return false;
                }
                if (c->nearest.len > ef) {
                    annvil_heap_pop(&c->nearest, true);
                }
            }
        }
    }
    return true;
}

static annvil_status search(annvil_search_context *c, const float *query, size_t dim, size_t n,
                            uint32_t *ids, float *distances, size_t *found, annvil_error *error) {
    if (c == NULL || query == NULL || found == NULL ||
        (n > 0 && (ids == NULL || distances == NULL))) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
    }
    const annvil_searcher *s = c->searcher;
    if (dim != s->dim) {
        return annvil_fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                           "query has dimension %zu, the base vectors have %zu", dim, s->dim);
    }
    *found = 0;
    if (n == 0 || s->count == 0) {
        return ANNVIL_OK;
    }
    annvil_candidate at = {0.0f, UINT32_MAX};
    for (uint32_t e = 0; e < s->num_entry_points; e++) {
        uint32_t id = s->entry_points[e];
        annvil_candidate entry = {
            annvil_distance(s->metric, s->data + (size_t)id * s->dim, query, dim), id};
        if (e == 0 || annvil_candidate_closer(entry, at)) {
            at = entry;
        }
    }
    c->distance_count += s->num_entry_points;
    for (uint32_t l = s->num_levels - 1; l > 0; l--) {
        at = greedy(c, &s->levels[l], query, at);
    }
    if (!beam(c, query, at, s->ef > n ? s->ef : n)) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot grow the search heaps");
    }
    /* Pop the farthest first into the tail, so the kept prefix is sorted. */
    while (c->nearest.len > n) {
        annvil_heap_pop(&c->nearest, true);
    }
    size_t kept = c->nearest.len;
    for (size_t i = kept; i > 0; i--) {
        annvil_candidate worst = annvil_heap_pop(&c->nearest, true);
        ids[i - 1] = worst.id;
        distances[i - 1] = worst.distance;
    }
    *found = kept;
    return ANNVIL_OK;
}

static size_t searcher_memory_bytes(const annvil_searcher *s) {
    return s != NULL ? sizeof *s + s->num_entry_points * sizeof *s->entry_points : 0;
}

static size_t context_memory_bytes(const annvil_search_context *c) {
    if (c == NULL) {
        return 0;
    }
    return sizeof *c + c->searcher->count * sizeof *c->visited +
           (c->frontier.capacity + c->nearest.capacity) * sizeof(annvil_candidate);
}

static uint64_t context_distance_count(const annvil_search_context *c) {
    return c != NULL ? c->distance_count : 0;
}

static void context_destroy(annvil_search_context *c) {
    if (c != NULL) {
        free(c->visited);
        annvil_heap_free(&c->frontier);
        annvil_heap_free(&c->nearest);
        free(c);
    }
}

static void searcher_destroy(annvil_searcher *s) {
    if (s != NULL) {
        free(s->entry_points);
        free(s);
    }
}

const annvil_search_v1 annvil_variant_search_table = {
    .struct_size = sizeof(annvil_search_v1),
    .prepare = prepare,
    .configure = configure,
    .context_new = context_new,
    .search = search,
    .searcher_memory_bytes = searcher_memory_bytes,
    .context_memory_bytes = context_memory_bytes,
    .context_distance_count = context_distance_count,
    .context_destroy = context_destroy,
    .searcher_destroy = searcher_destroy,
};
