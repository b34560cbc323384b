/*
 * construction.c — the construction slot: a flat navigable graph, built
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
extern const annvil_construction_v1 annvil_variant_construction_table;

#define M_DEFAULT 16u
#define M_MIN 2u
#define M_MAX 128u
#define EF_CONSTRUCTION_DEFAULT 100u
#define EF_CONSTRUCTION_MIN 1u
#define EF_CONSTRUCTION_MAX 10000u

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

/* ------------------------------------------------------------------------ */
/* Candidates and heaps                                                     */
/* ------------------------------------------------------------------------ */

/* A node and its distance to the node being inserted or compared with,
 * ordered by (distance, id) so that every build is deterministic. */
typedef struct candidate {
    float distance;
    uint32_t id;
} candidate;

static inline bool closer(candidate a, candidate b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

static int compare_candidates(const void *a, const void *b) {
    candidate x = *(const candidate *)a, y = *(const candidate *)b;
    return closer(x, y) ? -1 : closer(y, x) ? 1 : 0;
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
/* The builder                                                              */
/* ------------------------------------------------------------------------ */

/* The graph under construction and the scratch space of the insertions.
 * Node v's list is links[v * max_degree ..][.. degree[v]]. */
typedef struct builder {
    const float *data;
    size_t count, dim;
    annvil_metric metric;
    size_t m, max_degree, ef;
    uint32_t *links, *degree;
    uint32_t *visited; /* visited[v] == epoch: v was seen by the current search */
    uint32_t epoch;
    heap frontier, nearest;
    candidate *found; /* the last search's answer, nearest first (ef + 1 room) */
    size_t num_found;
    candidate *pool;    /* a full list being re-pruned (max_degree + 1 room) */
    uint32_t *selected; /* ids the heuristic keeps (max_degree room) */
} builder;

static float node_distance(const builder *b, uint32_t x, uint32_t y) {
    const float *a = b->data + (size_t)x * b->dim, *c = b->data + (size_t)y * b->dim;
    switch (b->metric) {
    case ANNVIL_METRIC_L2:
        return l2_squared(a, c, b->dim);
    case ANNVIL_METRIC_ANGULAR:
        return 1.0f - dot(a, c, b->dim);
    default: /* ANNVIL_METRIC_INNER_PRODUCT, checked in build */
        return -dot(a, c, b->dim);
    }
}

static void builder_free(builder *b) {
    free(b->links);
    free(b->degree);
    free(b->visited);
    free(b->frontier.items);
    free(b->nearest.items);
    free(b->found);
    free(b->pool);
    free(b->selected);
}

/* Beam search for the nodes nearest to node `target`, from node 0; leaves
 * the best `ef` in b->found, nearest first. False when out of memory. */
static bool search_from_entry(builder *b, uint32_t target) {
    if (++b->epoch == 0) { /* wrapped: forget the marks of 2^32 searches ago */
        memset(b->visited, 0, b->count * sizeof *b->visited);
        b->epoch = 1;
    }
    b->frontier.len = 0;
    b->nearest.len = 0;
    candidate start = {node_distance(b, target, 0), 0};
    b->visited[0] = b->epoch;
    if (!heap_push(&b->frontier, start, false) || !heap_push(&b->nearest, start, true)) {
        return false;
    }
    while (b->frontier.len > 0) {
        candidate current = heap_pop(&b->frontier, false);
        if (b->nearest.len >= b->ef && closer(b->nearest.items[0], current)) {
            break; /* every node left to expand is farther than the worst kept */
        }
        const uint32_t *list = b->links + (size_t)current.id * b->max_degree;
        for (uint32_t i = 0; i < b->degree[current.id]; i++) {
            uint32_t id = list[i];
            if (b->visited[id] == b->epoch) {
                continue;
            }
            b->visited[id] = b->epoch;
            candidate next = {node_distance(b, target, id), id};
            if (b->nearest.len < b->ef || closer(next, b->nearest.items[0])) {
                if (!heap_push(&b->frontier, next, false) || !heap_push(&b->nearest, next, true)) {
                    return false;
                }
                if (b->nearest.len > b->ef) {
                    heap_pop(&b->nearest, true);
                }
            }
        }
    }
    b->num_found = b->nearest.len;
    for (size_t i = b->num_found; i > 0; i--) {
        b->found[i - 1] = heap_pop(&b->nearest, true);
    }
    return true;
}

/* The occlusion heuristic: walks `candidates` (nearest first, by distance to
 * one node) and keeps a candidate only when it is closer to that node than
 * to every candidate kept so far. Writes at most `keep` ids into
 * b->selected and returns their number. */
static size_t select_neighbors(builder *b, const candidate *candidates, size_t num, size_t keep) {
    size_t kept = 0;
    for (size_t i = 0; i < num && kept < keep; i++) {
        bool occluded = false;
        for (size_t j = 0; j < kept && !occluded; j++) {
            occluded = node_distance(b, candidates[i].id, b->selected[j]) < candidates[i].distance;
        }
        if (!occluded) {
            b->selected[kept++] = candidates[i].id;
        }
    }
    return kept;
}

static void set_neighbors(builder *b, uint32_t node, const uint32_t *ids, size_t num) {
    memcpy(b->links + (size_t)node * b->max_degree, ids, num * sizeof *ids);
    b->degree[node] = (uint32_t)num;
}

/* Adds the link node -> added. A full list is re-pruned to the level-0
 * degree by the heuristic, with `added` among the candidates. */
static void link_back(builder *b, uint32_t node, uint32_t added) {
    uint32_t *list = b->links + (size_t)node * b->max_degree;
    size_t degree = b->degree[node];
    if (degree < b->max_degree) {
        list[degree] = added;
        b->degree[node]++;
        return;
    }
    for (size_t i = 0; i < degree; i++) {
        b->pool[i] = (candidate){node_distance(b, node, list[i]), list[i]};
    }
    b->pool[degree] = (candidate){node_distance(b, node, added), added};
    qsort(b->pool, degree + 1, sizeof *b->pool, compare_candidates);
    size_t kept = select_neighbors(b, b->pool, degree + 1, b->max_degree);
    set_neighbors(b, node, b->selected, kept);
}

/* Links node `id` into the graph of nodes 0..id-1. False when out of memory. */
static bool insert(builder *b, uint32_t id) {
    if (!search_from_entry(b, id)) {
        return false;
    }
    size_t kept = select_neighbors(b, b->found, b->num_found, b->m);
    set_neighbors(b, id, b->selected, kept);
    /* link_back reuses b->selected: walk the copy now in id's own list. */
    const uint32_t *chosen = b->links + (size_t)id * b->max_degree;
    for (size_t i = 0; i < kept; i++) {
        link_back(b, chosen[i], id);
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Slot: construction                                                        */
/* ------------------------------------------------------------------------ */

struct annvil_graph {
    uint64_t *offsets;   /* count + 1 entries */
    uint32_t *neighbors; /* offsets[count] entries */
    uint32_t entry_point;
    size_t num_edges;
    annvil_graph_level level;
    annvil_graph_view view;
};

static annvil_status build(const annvil_vectors *base, annvil_metric metric,
                           const annvil_params *params, uint32_t threads, annvil_graph **out,
                           annvil_error *error) {
    static const char *const accepted[] = {"M", "ef_construction"};
    (void)threads; /* single-threaded */
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
    size_t m = 0, ef_construction = 0;
    annvil_status status = check_keys(params, accepted, 2, "M, ef_construction", error);
    if (status == ANNVIL_OK) {
        status = read_size(params, "M", M_DEFAULT, M_MIN, M_MAX, &m, error);
    }
    if (status == ANNVIL_OK) {
        status = read_size(params, "ef_construction", EF_CONSTRUCTION_DEFAULT, EF_CONSTRUCTION_MIN,
                           EF_CONSTRUCTION_MAX, &ef_construction, error);
    }
    if (status != ANNVIL_OK) {
        return status;
    }

    size_t n = base->count;
    builder b = {
        .data = base->data,
        .count = n,
        .dim = base->dim,
        .metric = metric,
        .m = m,
        .max_degree = 2 * m,
        /* The search must find at least the M neighbours to choose from. */
        .ef = ef_construction > m ? ef_construction : m,
    };
    size_t rows = n > 0 ? n : 1;
    b.links = malloc(rows * b.max_degree * sizeof *b.links);
    b.degree = calloc(rows, sizeof *b.degree);
    b.visited = calloc(rows, sizeof *b.visited);
    b.found = malloc((b.ef + 1) * sizeof *b.found);
    b.pool = malloc((b.max_degree + 1) * sizeof *b.pool);
    b.selected = malloc(b.max_degree * sizeof *b.selected);
    annvil_graph *g = calloc(1, sizeof *g);
    bool ok = b.links != NULL && b.degree != NULL && b.visited != NULL && b.found != NULL &&
              b.pool != NULL && b.selected != NULL && g != NULL;
    for (size_t id = 1; ok && id < n; id++) {
        ok = insert(&b, (uint32_t)id);
    }
    size_t edges = 0;
    for (size_t v = 0; ok && v < n; v++) {
        edges += b.degree[v];
    }
    if (ok) {
        g->offsets = malloc((n + 1) * sizeof *g->offsets);
        g->neighbors = malloc((edges > 0 ? edges : 1) * sizeof *g->neighbors);
        ok = g->offsets != NULL && g->neighbors != NULL;
    }
    if (!ok) {
        builder_free(&b);
        if (g != NULL) {
            free(g->offsets);
            free(g->neighbors);
            free(g);
        }
        return fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "out of memory building a graph of %zu nodes",
                    n);
    }
    /* The CSR form of the lists: node v's neighbours are
     * neighbors[offsets[v] .. offsets[v + 1]]. */
    g->offsets[0] = 0;
    for (size_t v = 0; v < n; v++) {
        memcpy(g->neighbors + g->offsets[v], b.links + v * b.max_degree,
               b.degree[v] * sizeof *g->neighbors);
        g->offsets[v + 1] = g->offsets[v] + b.degree[v];
    }
    builder_free(&b);
    g->num_edges = edges;
    g->entry_point = 0;
    g->level = (annvil_graph_level){g->offsets, g->neighbors};
    g->view = (annvil_graph_view){
        .struct_size = sizeof(annvil_graph_view),
        .num_nodes = n,
        .num_levels = 1,
        .levels = &g->level,
        .num_entry_points = n > 0 ? 1 : 0,
        .entry_points = &g->entry_point,
        .native = NULL,
        .native_tag = NULL,
    };
    *out = g;
    return ANNVIL_OK;
}

static annvil_status graph_view(const annvil_graph *g, annvil_graph_view *out,
                                annvil_error *error) {
    if (g == NULL || out == NULL) {
        return fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "NULL graph or output view");
    }
    /* Copy only the fields the host's struct_size covers, keeping its size. */
    size_t covered = out->struct_size < sizeof g->view ? out->struct_size : sizeof g->view;
    if (covered > sizeof(size_t)) {
        memcpy((char *)out + sizeof(size_t), (const char *)&g->view + sizeof(size_t),
               covered - sizeof(size_t));
    }
    return ANNVIL_OK;
}

static size_t graph_memory_bytes(const annvil_graph *g) {
    if (g == NULL) {
        return 0;
    }
    return sizeof *g + (g->view.num_nodes + 1) * sizeof *g->offsets +
           g->num_edges * sizeof *g->neighbors;
}

static void graph_destroy(annvil_graph *g) {
    if (g != NULL) {
        free(g->offsets);
        free(g->neighbors);
        free(g);
    }
}

const annvil_construction_v1 annvil_variant_construction_table = {
    .struct_size = sizeof(annvil_construction_v1),
    .build = build,
    .graph_view = graph_view,
    .graph_memory_bytes = graph_memory_bytes,
    .graph_destroy = graph_destroy,
};
