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
extern const annvil_search_v1 annvil_variant_search_table;

#define EF_DEFAULT 10u
#define EF_MIN 1u
#define EF_MAX 100000u

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

/* Rejects a parameter list holding a key not in `accepted` (`accepted_text`
 * lists them for the message). */
static annvil_status check_keys(const annvil_params *params, const char *const *accepted,
                                size_t num_accepted, const char *accepted_text,
                                annvil_error *error) {
    if (params == NULL || params->count == 0) {
        return ANNVIL_OK;
    }
    if (params->items == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter list pointer is NULL");
    }
    for (size_t i = 0; i < params->count; i++) {
        const char *key = params->items[i].key;
        if (key == NULL || params->items[i].value == NULL) {
            return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter %zu has a NULL key or value",
                        i);
        }
        bool known = false;
        for (size_t a = 0; a < num_accepted; a++) {
            known = known || strcmp(key, accepted[a]) == 0;
        }
        if (!known) {
            return fail(error, ANNVIL_ERR_UNKNOWN_PARAMETER, "unknown parameter `%s` (accepted: %s)",
                        key, accepted_text);
        }
    }
    return ANNVIL_OK;
}

/* Reads the unsigned integer `key` into `*out` (`fallback` when absent) and
 * checks it is in [min, max]. Accepts what Rust's usize parser accepts after
 * trimming whitespace: digits with an optional leading '+'. */
static annvil_status read_size(const annvil_params *params, const char *key, size_t fallback,
                               size_t min, size_t max, size_t *out, annvil_error *error) {
    *out = fallback;
    const char *value = NULL;
    for (size_t i = 0; params != NULL && i < params->count; i++) {
        if (strcmp(params->items[i].key, key) == 0) {
            value = params->items[i].value;
        }
    }
    if (value == NULL) {
        return ANNVIL_OK;
    }
    const char *p = value;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
        p++;
    }
    if (*p == '+') {
        p++;
    }
    size_t parsed = 0, digits = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        size_t d = (size_t)(*p - '0');
        overflow = overflow || parsed > (SIZE_MAX - d) / 10;
        parsed = parsed * 10 + d;
    }
    while (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
        p++;
    }
    if (digits == 0 || *p != '\0' || overflow) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                    "parameter `%s`: `%s` is not a valid unsigned integer", key, value);
    }
    if (parsed < min || parsed > max) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter `%s` must be in [%zu, %zu], got %zu",
                    key, min, max, parsed);
    }
    *out = parsed;
    return ANNVIL_OK;
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
/* Candidates and heaps                                                     */
/* ------------------------------------------------------------------------ */

/* A node and its distance to the query, ordered by (distance, id) so that
 * every search is deterministic. Distances are finite. */
typedef struct candidate {
    float distance;
    uint32_t id;
} candidate;

static inline bool closer(candidate a, candidate b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

/* A binary heap of candidates: with `farthest_on_top` a max-heap (the ef
 * nearest found, worst on top), else a min-heap (the frontier). */
typedef struct heap {
    candidate *items;
    size_t len, capacity;
} heap;

static inline bool above(candidate a, candidate b, bool farthest_on_top) {
    return farthest_on_top ? closer(b, a) : closer(a, b);
}

static bool heap_push(heap *h, candidate item, bool farthest_on_top) {
    if (h->len == h->capacity) {
        size_t capacity = h->capacity < 64 ? 64 : 2 * h->capacity;
        candidate *grown = realloc(h->items, capacity * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        h->items = grown;
        h->capacity = capacity;
    }
    size_t i = h->len++;
    while (i > 0 && above(item, h->items[(i - 1) / 2], farthest_on_top)) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = item;
    return true;
}

/* Removes and returns the top of a non-empty heap. */
static candidate heap_pop(heap *h, bool farthest_on_top) {
    candidate top = h->items[0];
    candidate last = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len) {
            break;
        }
        if (child + 1 < h->len && above(h->items[child + 1], h->items[child], farthest_on_top)) {
            child++;
        }
        if (!above(h->items[child], last, farthest_on_top)) {
            break;
        }
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->len > 0) {
        h->items[i] = last;
    }
    return top;
}

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
    heap frontier; /* nodes to expand, nearest on top */
    heap nearest;  /* the ef best found, farthest on top */
    uint64_t distance_count;
};

/* Checks that every level of `view` is a valid CSR over `n` nodes. */
static annvil_status check_view(const annvil_graph_view *view, size_t n, annvil_error *error) {
    if (view->num_nodes != n) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                    "graph view has %zu nodes, the base has %zu", view->num_nodes, n);
    }
    if (view->levels == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph view levels pointer is NULL");
    }
    for (uint32_t l = 0; l < view->num_levels; l++) {
        const annvil_graph_level *level = &view->levels[l];
        bool ok = level->offsets != NULL && level->offsets[0] == 0;
        for (size_t v = 0; ok && v < n; v++) {
            ok = level->offsets[v] <= level->offsets[v + 1];
        }
        uint64_t edges = ok ? level->offsets[n] : 0;
        ok = ok && (edges == 0 || level->neighbors != NULL);
        for (uint64_t e = 0; ok && e < edges; e++) {
            ok = level->neighbors[e] < n;
        }
        if (!ok) {
            return fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                        "graph level %" PRIu32 " is not a valid CSR over %zu nodes", l, n);
        }
    }
    if (view->num_entry_points > 0 && view->entry_points == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "entry points pointer is NULL");
    }
    for (uint32_t e = 0; e < view->num_entry_points; e++) {
        if (view->entry_points[e] >= n) {
            return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "entry point %" PRIu32 " is out of range",
                        view->entry_points[e]);
        }
    }
    return ANNVIL_OK;
}

static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                             annvil_metric metric, const annvil_params *params,
                             annvil_searcher **out, annvil_error *error) {
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
    annvil_status status = check_keys(params, NULL, 0, "none", error);
    if (status != ANNVIL_OK) {
        return status;
    }
    if (view == NULL || view->struct_size < offsetof(annvil_graph_view, native)) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph view is NULL or too small");
    }
    if (view->num_levels == 0) {
        return fail(error, ANNVIL_ERR_UNSUPPORTED,
                    "beam search needs a graph, and the construction slot built none");
    }
    status = check_view(view, base->count, error);
    if (status != ANNVIL_OK) {
        return status;
    }
    annvil_searcher *s = calloc(1, sizeof *s);
    uint32_t num_entry_points = view->num_entry_points > 0 ? view->num_entry_points : 1;
    uint32_t *entry_points = malloc(num_entry_points * sizeof *entry_points);
    if (s == NULL || entry_points == NULL) {
        free(s);
        free(entry_points);
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate the searcher");
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
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "searcher is NULL");
    }
    annvil_status status = check_keys(params, accepted, 1, "ef", error);
    size_t ef = s->ef;
    if (status == ANNVIL_OK) {
        status = read_size(params, "ef", s->ef, EF_MIN, EF_MAX, &ef, error);
    }
    if (status == ANNVIL_OK) {
        s->ef = ef; /* only a fully valid call changes the knob */
    }
    return status;
}

static annvil_status context_new(const annvil_searcher *s, annvil_search_context **out,
                                 annvil_error *error) {
    if (s == NULL || out == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL searcher or output pointer");
    }
    annvil_search_context *c = calloc(1, sizeof *c);
    uint32_t *visited = calloc(s->count > 0 ? s->count : 1, sizeof *visited);
    if (c == NULL || visited == NULL) {
        free(c);
        free(visited);
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate a search context");
    }
    c->searcher = s;
    c->visited = visited;
    *out = c;
    return ANNVIL_OK;
}

/* Moves from `at` to its nearest neighbour on `level` until no neighbour
 * is nearer to the query. */
static candidate greedy(annvil_search_context *c, const annvil_graph_level *level,
                        const float *query, candidate at) {
    const annvil_searcher *s = c->searcher;
    for (;;) {
        candidate best = at;
        for (uint64_t e = level->offsets[at.id]; e < level->offsets[at.id + 1]; e++) {
            uint32_t id = level->neighbors[e];
            candidate next = {distance(s->metric, s->data + (size_t)id * s->dim, query, s->dim), id};
            c->distance_count++;
            if (closer(next, best)) {
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
static bool beam(annvil_search_context *c, const float *query, candidate start, size_t ef) {
    const annvil_searcher *s = c->searcher;
    const annvil_graph_level *level0 = &s->levels[0];
    if (++c->epoch == 0) { /* wrapped: forget the marks of 2^32 searches ago */
        memset(c->visited, 0, s->count * sizeof *c->visited);
        c->epoch = 1;
    }
    c->frontier.len = 0;
    c->nearest.len = 0;
    c->visited[start.id] = c->epoch;
    if (!heap_push(&c->frontier, start, false) || !heap_push(&c->nearest, start, true)) {
        return false;
    }
    while (c->frontier.len > 0) {
        candidate current = heap_pop(&c->frontier, false);
        if (c->nearest.len >= ef && closer(c->nearest.items[0], current)) {
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
            candidate next = {distance(s->metric, s->data + (size_t)id * s->dim, query, s->dim), id};
            c->distance_count++;
            if (c->nearest.len < ef || closer(next, c->nearest.items[0])) {
                if (!heap_push(&c->frontier, next, false) || !heap_push(&c->nearest, next, true)) {
                    return false;
                }
                if (c->nearest.len > ef) {
                    heap_pop(&c->nearest, true);
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
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
    }
    const annvil_searcher *s = c->searcher;
    if (dim != s->dim) {
        return fail(error, ANNVIL_ERR_DIMENSION_MISMATCH,
                    "query has dimension %zu, the base vectors have %zu", dim, s->dim);
    }
    *found = 0;
    if (n == 0 || s->count == 0) {
        return ANNVIL_OK;
    }
    candidate at = {0.0f, UINT32_MAX};
    for (uint32_t e = 0; e < s->num_entry_points; e++) {
        uint32_t id = s->entry_points[e];
        candidate entry = {distance(s->metric, s->data + (size_t)id * s->dim, query, dim), id};
        if (e == 0 || closer(entry, at)) {
            at = entry;
        }
    }
    c->distance_count += s->num_entry_points;
    for (uint32_t l = s->num_levels - 1; l > 0; l--) {
        at = greedy(c, &s->levels[l], query, at);
    }
    if (!beam(c, query, at, s->ef > n ? s->ef : n)) {
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot grow the search heaps");
    }
    /* Pop the farthest first into the tail, so the kept prefix is sorted. */
    while (c->nearest.len > n) {
        heap_pop(&c->nearest, true);
    }
    size_t kept = c->nearest.len;
    for (size_t i = kept; i > 0; i--) {
        candidate worst = heap_pop(&c->nearest, true);
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
           (c->frontier.capacity + c->nearest.capacity) * sizeof(candidate);
}

static uint64_t context_distance_count(const annvil_search_context *c) {
    return c != NULL ? c->distance_count : 0;
}

static void context_destroy(annvil_search_context *c) {
    if (c != NULL) {
        free(c->visited);
        free(c->frontier.items);
        free(c->nearest.items);
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
