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
 * This file is self-contained: besides the table below it defines only
 * static functions, and it uses only the C library and the static inline
 * helpers of annvil_support.h (errors, parameters, distances, heaps).
 * src/variant.c refers to the table by its fixed name.
 */
#include <annvil_support.h>

/* The slot table src/variant.c puts into the descriptor. */
extern const annvil_construction_v1 annvil_variant_construction_table;

#define M_DEFAULT 16u
#define M_MIN 2u
#define M_MAX 128u
#define EF_CONSTRUCTION_DEFAULT 100u
#define EF_CONSTRUCTION_MIN 1u
#define EF_CONSTRUCTION_MAX 10000u

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
    annvil_heap frontier, nearest;
    annvil_candidate *found; /* the last search's answer, nearest first (ef + 1 room) */
    size_t num_found;
    annvil_candidate *pool; /* a full list being re-pruned (max_degree + 1 room) */
    uint32_t *selected; /* ids the heuristic keeps (max_degree room) */
} builder;

static float node_distance(const builder *b, uint32_t x, uint32_t y) {
    return annvil_distance(b->metric, b->data + (size_t)x * b->dim, b->data + (size_t)y * b->dim,
                           b->dim);
}

static void builder_free(builder *b) {
    free(b->links);
    free(b->degree);
    free(b->visited);
    annvil_heap_free(&b->frontier);
    annvil_heap_free(&b->nearest);
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
    annvil_candidate start = {node_distance(b, target, 0), 0};
    b->visited[0] = b->epoch;
    if (!annvil_heap_push(&b->frontier, start, false) ||
        !annvil_heap_push(&b->nearest, start, true)) {
        return false;
    }
    while (b->frontier.len > 0) {
        annvil_candidate current = annvil_heap_pop(&b->frontier, false);
        if (b->nearest.len >= b->ef && annvil_candidate_closer(b->nearest.items[0], current)) {
            break; /* every node left to expand is farther than the worst kept */
        }
        const uint32_t *list = b->links + (size_t)current.id * b->max_degree;
        for (uint32_t i = 0; i < b->degree[current.id]; i++) {
            uint32_t id = list[i];
            if (b->visited[id] == b->epoch) {
                continue;
            }
            b->visited[id] = b->epoch;
            annvil_candidate next = {node_distance(b, target, id), id};
            if (b->nearest.len < b->ef || annvil_candidate_closer(next, b->nearest.items[0])) {
                if (!annvil_heap_push(&b->frontier, next, false) ||
                    !annvil_heap_push(&b->nearest, next, true)) {
                    return false;
                }
                if (b->nearest.len > b->ef) {
                    annvil_heap_pop(&b->nearest, true);
                }
            }
        }
    }
    b->num_found = b->nearest.len;
    for (size_t i = b->num_found; i > 0; i--) {
        b->found[i - 1] = annvil_heap_pop(&b->nearest, true);
    }
    return true;
}

/* The occlusion heuristic: walks `candidates` (nearest first, by distance to
 * one node) and keeps a candidate only when it is closer to that node than
 * to every candidate kept so far. Writes at most `keep` ids into
 * b->selected and returns their number. */
static size_t select_neighbors(builder *b, const annvil_candidate *candidates, size_t num,
                               size_t keep) {
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
        b->pool[i] = (annvil_candidate){node_distance(b, node, list[i]), list[i]};
    }
    b->pool[degree] = (annvil_candidate){node_distance(b, node, added), added};
    qsort(b->pool, degree + 1, sizeof *b->pool, annvil_candidate_compare);
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
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
    }
    size_t m = 0, ef_construction = 0;
    annvil_status status = annvil_check_base(base, metric, error);
    if (status == ANNVIL_OK) {
        status = annvil_params_check(params, accepted, 2, error);
    }
    if (status == ANNVIL_OK) {
        status = annvil_params_size(params, "M", M_DEFAULT, M_MIN, M_MAX, &m, error);
    }
    if (status == ANNVIL_OK) {
        status = annvil_params_size(params, "ef_construction", EF_CONSTRUCTION_DEFAULT,
                                    EF_CONSTRUCTION_MIN, EF_CONSTRUCTION_MAX, &ef_construction,
                                    error);
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
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY,
                           "out of memory building a graph of %zu nodes", n);
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
    if (g == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph is NULL");
    }
    return annvil_graph_view_fill(&g->view, out, error);
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
