/*
 * annvil.h — the annvil variant ABI, major version 1.
 *
 * This header is the single source of truth for the contract between the
 * annvil host and a variant library. The Rust bindings in
 * abi/src/bindings.rs are generated from it (scripts/regen-abi).
 *
 * A variant library exports exactly one entry function per ABI major version
 * it speaks; for major 1 it is `annvil_entry_v1`. The entry returns a static
 * descriptor that points at up to three slot tables: construction, search and
 * refinement. A table pointer is NULL when the library does not fill that
 * slot.
 *
 * Versioning rules
 *   - Every struct that may grow carries `struct_size`, the size its writer
 *     was compiled with: the descriptor (in its fixed prefix), the slot
 *     tables, annvil_vectors, annvil_graph_view and annvil_param_info. They
 *     are append-only: a minor version may add fields at the end, never
 *     remove, reorder or retype one. A reader uses only the fields
 *     `struct_size` covers and treats the rest as absent (zero / NULL). The
 *     small plain structs without it (annvil_error, annvil_param,
 *     annvil_params, annvil_graph_level) are frozen for the whole major
 *     version.
 *   - A minor bump may add: fields at the end of a struct, new status codes,
 *     new flags, new metrics, new optional (nullable) functions at the end of
 *     a table. Anything else is a new major version with a new entry symbol.
 *
 * History
 *   1.0  the descriptor, the three slot tables and the plain data.
 *   1.1  annvil_param_info, and the optional `params` function at the end of
 *        each slot table (a slot declares the parameters it accepts).
 *   1.2  the optional `search_batch` function at the end of the search
 *        table (many queries in one call).
 *
 * Ownership rules
 *   - The host allocates every output buffer and the error buffer.
 *   - Every handle a library returns (graph, searcher, search context,
 *     refiner, refine context) is owned by the host until it passes it back
 *     to the matching `destroy` function of the same library; nothing is ever
 *     freed across the boundary in any other way.
 *   - Input arrays (base vectors, queries, candidates, parameters) are
 *     borrowed for the duration of the call only, except the base vectors and
 *     the graph view handed to a `prepare` function: those stay valid and
 *     unchanged until the handle prepared from them is destroyed, so a
 *     library may keep pointers into them instead of copying.
 *
 * Errors
 *   - Every fallible function returns an `annvil_status`; ANNVIL_OK is 0, any
 *     other value is an error. An unknown non-zero value is an error too.
 *   - On error the library writes a NUL-terminated UTF-8 message, truncated
 *     to fit, into the host-owned `annvil_error` buffer. Out-parameters are
 *     unspecified after an error.
 *   - No panic, C++ exception or longjmp ever crosses the boundary.
 *
 * Metrics and distances (smaller is always closer)
 *   - ANNVIL_METRIC_L2: squared Euclidean distance.
 *   - ANNVIL_METRIC_ANGULAR: the host passes unit-normalised base and query
 *     vectors; the distance is 1 - <x, q>.
 *   - ANNVIL_METRIC_INNER_PRODUCT: the distance is -<x, q>.
 *   Distances a library returns are only used for ordering inside the
 *   pipeline; the host recomputes every distance it scores.
 */
#ifndef ANNVIL_H
#define ANNVIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versioning                                                               */
/* ------------------------------------------------------------------------ */

/** Magic number at the start of every descriptor: the bytes "ANNV". */
#define ANNVIL_MAGIC 0x414E4E56u
/** ABI major version this header describes. */
#define ANNVIL_ABI_MAJOR 1u
/** ABI minor version this header describes. */
#define ANNVIL_ABI_MINOR 2u

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/** Result of every fallible call: ANNVIL_OK or one of the errors below. */
typedef int32_t annvil_status;

/** Success. */
#define ANNVIL_OK 0
/** A parameter value, size or pointer is invalid (e.g. malformed number). */
#define ANNVIL_ERR_INVALID_ARGUMENT 1
/** A key/value parameter names a key the slot does not know. */
#define ANNVIL_ERR_UNKNOWN_PARAMETER 2
/** A vector's dimension differs from the dimension of the base vectors. */
#define ANNVIL_ERR_DIMENSION_MISMATCH 3
/** The slot does not support this metric, input or combination of slots. */
#define ANNVIL_ERR_UNSUPPORTED 4
/** An allocation failed. */
#define ANNVIL_ERR_OUT_OF_MEMORY 5
/** A Rust panic or C++ exception was caught at the boundary. */
#define ANNVIL_ERR_PANIC 6
/** Any other failure inside the library. */
#define ANNVIL_ERR_INTERNAL 7

/* ------------------------------------------------------------------------ */
/* Descriptor flags                                                         */
/* ------------------------------------------------------------------------ */

/**
 * The search slot cannot work from the standard graph view alone: it needs
 * the private native handle of this library's own construction slot. The
 * host then refuses to combine this search slot with another library's
 * construction.
 */
#define ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH (1ull << 0)

/* ------------------------------------------------------------------------ */
/* Plain data                                                               */
/* ------------------------------------------------------------------------ */

/** Distance function; see the file comment for the exact definitions. */
typedef uint32_t annvil_metric;
/** Squared Euclidean distance. */
#define ANNVIL_METRIC_L2 1u
/** 1 - cosine similarity, on vectors the host has unit-normalised. */
#define ANNVIL_METRIC_ANGULAR 2u
/** Negative inner product. */
#define ANNVIL_METRIC_INNER_PRODUCT 3u

/**
 * Host-owned buffer for an error message. The library writes at most
 * `capacity` bytes including the terminating NUL. `message` may be NULL when
 * `capacity` is 0, in which case the library writes nothing.
 */
typedef struct annvil_error {
    char *message;
    size_t capacity;
} annvil_error;

/** One key/value parameter; both strings are NUL-terminated UTF-8. */
typedef struct annvil_param {
    const char *key;
    const char *value;
} annvil_param;

/**
 * A borrowed list of parameters, as written in variant.yaml. Keys are unique.
 * A slot must reject a key it does not know with
 * ANNVIL_ERR_UNKNOWN_PARAMETER and a value it cannot parse with
 * ANNVIL_ERR_INVALID_ARGUMENT.
 */
typedef struct annvil_params {
    const annvil_param *items;
    size_t count;
} annvil_params;

/**
 * Row-major float32 vectors: vector i occupies data[i * dim .. (i + 1) * dim].
 */
typedef struct annvil_vectors {
    size_t struct_size;
    const float *data;
    size_t count;
    size_t dim;
} annvil_vectors;

/**
 * One level of a graph in compressed sparse row form over all `num_nodes`
 * nodes: the neighbours of node v are
 * neighbors[offsets[v] .. offsets[v + 1]]. `offsets` has num_nodes + 1
 * entries; nodes absent from the level have an empty row.
 */
typedef struct annvil_graph_level {
    const uint64_t *offsets;
    const uint32_t *neighbors;
} annvil_graph_level;

/**
 * The standard view of a built graph, through which a search slot of any
 * library can use a graph built by any other library.
 *
 * `levels[0]` is the bottom level holding every node; higher levels are
 * sparser (HNSW). A flat graph has one level; a construction that builds no
 * graph (exact search, IVF) has zero levels and may pass everything through
 * `native`.
 *
 * `native` is the construction's private handle. The host sets it to NULL
 * when the search slot comes from a different library than the construction
 * slot, so a library only ever receives native handles it created itself.
 * `native_tag` names the native representation so a library with several
 * constructions can tell them apart; it may be NULL when `native` is NULL.
 */
typedef struct annvil_graph_view {
    size_t struct_size;
    size_t num_nodes;
    uint32_t num_levels;
    const annvil_graph_level *levels;
    uint32_t num_entry_points;
    const uint32_t *entry_points;
    void *native;
    const char *native_tag;
} annvil_graph_view;

/* ------------------------------------------------------------------------ */
/* Opaque handles                                                           */
/* ------------------------------------------------------------------------ */

/** A built index structure, owned by the construction slot's library. */
typedef struct annvil_graph annvil_graph;
/** Read-only search state; shared by all search contexts made from it. */
typedef struct annvil_searcher annvil_searcher;
/** Per-thread search scratch space. */
typedef struct annvil_search_context annvil_search_context;
/** Read-only refinement state; shared by all refine contexts. */
typedef struct annvil_refiner annvil_refiner;
/** Per-thread refinement scratch space. */
typedef struct annvil_refine_context annvil_refine_context;

/* ------------------------------------------------------------------------ */
/* Parameter declarations (ABI 1.1)                                         */
/* ------------------------------------------------------------------------ */

/** What values a declared parameter takes; see annvil_param_info. */
typedef uint32_t annvil_param_kind;
/** A whole number in [min, max]. */
#define ANNVIL_PARAM_INT 1u
/** A floating-point number in [min, max]. */
#define ANNVIL_PARAM_FLOAT 2u
/** One of the strings listed in `choices`. */
#define ANNVIL_PARAM_CHOICE 3u

/**
 * The parameter is a swept knob, set through the search slot's `configure`
 * once per sweep point. Without the flag it is a fixed parameter of `build`
 * or `prepare`.
 */
#define ANNVIL_PARAM_FLAG_KNOB (1u << 0)

/**
 * The declaration of one parameter a slot accepts: metadata for tools that
 * show or tune a slot's parameters (e.g. mutate them inside the declared
 * range). Declarations do not validate anything: the slot still parses and
 * checks every value it receives, and may accept values outside the declared
 * range, which is the range worth exploring.
 *
 * All strings are NUL-terminated UTF-8, static, and owned by the library.
 *   name           the key as written in variant.yaml; unique within a slot.
 *   kind           an ANNVIL_PARAM_* kind. A host ignores a declaration
 *                  whose kind it does not know (from a newer minor).
 *   flags          bitwise OR of ANNVIL_PARAM_FLAG_* values; unknown bits are
 *                  ignored.
 *   min, max       the inclusive range for ANNVIL_PARAM_INT (whole numbers)
 *                  and ANNVIL_PARAM_FLOAT: finite, min <= max; 0 for a
 *                  choice.
 *   choices        for ANNVIL_PARAM_CHOICE, the allowed values separated by
 *                  '|' (e.g. "f32|sq8|sq4"); NULL for the other kinds.
 *   default_value  the value the slot uses when the key is absent, written
 *                  as it would be in variant.yaml; within the range.
 *   doc            one line saying what the parameter does; may be empty.
 *   name, default_value and doc are never NULL.
 */
typedef struct annvil_param_info {
    /** sizeof(annvil_param_info) as compiled by the library. */
    size_t struct_size;
    const char *name;
    annvil_param_kind kind;
    uint32_t flags;
    double min;
    double max;
    const char *choices;
    const char *default_value;
    const char *doc;
} annvil_param_info;

/* ------------------------------------------------------------------------ */
/* Slot: construction                                                        */
/* ------------------------------------------------------------------------ */

/** The construction slot: builds the index structure once per build. */
typedef struct annvil_construction_v1 {
    /** sizeof(annvil_construction_v1) as compiled by the library. */
    size_t struct_size;

    /**
     * Build an index over `base` for `metric` with the build parameters
     * `params`, using at most `threads` threads (>= 1).
     * Ownership: `base` stays valid until the graph is destroyed; `params`
     * is borrowed for the call; on ANNVIL_OK `*out` is a new graph owned by
     * the host until passed to `graph_destroy`.
     * Thread-safety: may be called from any thread; concurrent builds on
     * different inputs must be safe.
     */
    annvil_status (*build)(const annvil_vectors *base, annvil_metric metric,
                           const annvil_params *params, uint32_t threads,
                           annvil_graph **out, annvil_error *error);

    /**
     * Fill `*out` with the standard view of `graph`. The host sets
     * out->struct_size before the call; the library writes only fields that
     * size covers. Every pointer in the view stays valid, and the data it
     * points at unchanged, until `graph_destroy`.
     * Thread-safety: safe to call concurrently on the same graph.
     */
    annvil_status (*graph_view)(const annvil_graph *graph,
                                annvil_graph_view *out, annvil_error *error);

    /**
     * Bytes of memory the graph owns (not counting the borrowed base).
     * Thread-safety: safe to call concurrently on the same graph.
     */
    size_t (*graph_memory_bytes)(const annvil_graph *graph);

    /**
     * Free the graph. Ownership: consumes `graph`; NULL is a no-op.
     * Thread-safety: no other call may use the graph, or a searcher prepared
     * from its view, at the same time or afterwards.
     */
    void (*graph_destroy)(annvil_graph *graph);

    /**
     * Optional (ABI 1.1; NULL when the slot declares nothing, and absent
     * when `struct_size` ends before this field). Declares the parameters
     * this slot accepts: returns an array of `*count` declarations, or NULL
     * with `*count` set to 0. These are the build parameters
     * (none is a knob).
     * Ownership: the array and every string it points at are static, owned
     * by the library, and stay valid and unchanged while the library is
     * loaded; every call returns the same array. `count` is a host
     * out-pointer, never NULL. Every element has the same `struct_size`,
     * which is the array's stride: a host steps through the array by the
     * first element's `struct_size`, not by its own sizeof.
     * Thread-safety: safe to call from any thread, concurrently, any number
     * of times, before or after any other call.
     */
    const annvil_param_info *(*params)(size_t *count);
} annvil_construction_v1;

/* ------------------------------------------------------------------------ */
/* Slot: search                                                              */
/* ------------------------------------------------------------------------ */

/** The search slot: finds candidate neighbours of a query in the graph. */
typedef struct annvil_search_v1 {
    /** sizeof(annvil_search_v1) as compiled by the library. */
    size_t struct_size;

    /**
     * Prepare a searcher over `base` and the graph `view` (possibly built by
     * another library) with the fixed search parameters `params`.
     * Ownership: `base`, `view` and everything they point at stay valid
     * until the searcher is destroyed; `params` is borrowed for the call; on
     * ANNVIL_OK `*out` is a new searcher owned by the host until passed to
     * `searcher_destroy`.
     * Thread-safety: may be called from any thread.
     */
    annvil_status (*prepare)(const annvil_vectors *base,
                             const annvil_graph_view *view,
                             annvil_metric metric, const annvil_params *params,
                             annvil_searcher **out, annvil_error *error);

    /**
     * Set the swept search knobs (ef, nprobe, ...) for the following
     * searches. Keys not given keep their previous value.
     * Ownership: `params` is borrowed for the call.
     * Thread-safety: must not run concurrently with any other call on this
     * searcher or on any of its contexts.
     */
    annvil_status (*configure)(annvil_searcher *searcher,
                               const annvil_params *params,
                               annvil_error *error);

    /**
     * Create per-thread scratch space for searching `searcher`.
     * Ownership: on ANNVIL_OK `*out` is owned by the host until passed to
     * `context_destroy`, which must happen before `searcher_destroy`.
     * Thread-safety: safe to call concurrently on the same searcher.
     */
    annvil_status (*context_new)(const annvil_searcher *searcher,
                                 annvil_search_context **out,
                                 annvil_error *error);

    /**
     * Search for the `n` nearest candidates of `query` (`dim` floats). Writes
     * up to `n` ids into `ids` and their approximate distances into
     * `distances`, sorted by increasing distance, ids unique and in range,
     * and the number written into `*found` (less than `n` only when the
     * index holds fewer points).
     * Must return ANNVIL_ERR_DIMENSION_MISMATCH when `dim` differs from the
     * base dimension.
     * Ownership: `query` is borrowed; `ids` and `distances` are host buffers
     * of `n` elements.
     * Thread-safety: a context is used by one thread at a time; different
     * contexts of the same searcher may search concurrently.
     */
    annvil_status (*search)(annvil_search_context *context, const float *query,
                            size_t dim, size_t n, uint32_t *ids,
                            float *distances, size_t *found,
                            annvil_error *error);

    /**
     * Bytes of memory the searcher owns (not counting borrowed inputs).
     * Thread-safety: safe to call concurrently.
     */
    size_t (*searcher_memory_bytes)(const annvil_searcher *searcher);

    /**
     * Bytes of memory the context owns (its scratch space).
     * Thread-safety: same as `search` on this context.
     */
    size_t (*context_memory_bytes)(const annvil_search_context *context);

    /**
     * Number of distance computations this context has made since it was
     * created. Optional: NULL when the library does not count them.
     * Thread-safety: same as `search` on this context.
     */
    uint64_t (*context_distance_count)(const annvil_search_context *context);

    /**
     * Free a context. Ownership: consumes `context`; NULL is a no-op.
     * Thread-safety: the context must not be in use.
     */
    void (*context_destroy)(annvil_search_context *context);

    /**
     * Free a searcher. Ownership: consumes `searcher`; NULL is a no-op. All
     * its contexts must have been destroyed first.
     * Thread-safety: the searcher must not be in use.
     */
    void (*searcher_destroy)(annvil_searcher *searcher);

    /**
     * Optional (ABI 1.1; NULL when the slot declares nothing, and absent
     * when `struct_size` ends before this field). Declares the parameters
     * this slot accepts: returns an array of `*count` declarations, or NULL
     * with `*count` set to 0. Fixed parameters go to `prepare`;
     * those flagged ANNVIL_PARAM_FLAG_KNOB go to `configure`.
     * Ownership: the array and every string it points at are static, owned
     * by the library, and stay valid and unchanged while the library is
     * loaded; every call returns the same array. `count` is a host
     * out-pointer, never NULL. Every element has the same `struct_size`,
     * which is the array's stride: a host steps through the array by the
     * first element's `struct_size`, not by its own sizeof.
     * Thread-safety: safe to call from any thread, concurrently, any number
     * of times, before or after any other call.
     */
    const annvil_param_info *(*params)(size_t *count);
    /**
     * Optional (ABI 1.2; NULL when absent, and absent when `struct_size`
     * ends before this field). Searches `count` queries in one call: query
     * i is queries[i * dim .. (i + 1) * dim]; its results go to
     * ids[i * n .. (i + 1) * n] and distances[i * n .. (i + 1) * n], with
     * the same rules as `search`, and the number written to found[i]. The
     * results must be those `search` would give for each query alone; a
     * library may interleave the queries' work (prefetching one while
     * scoring another) or call a batched kernel. A host without this entry
     * calls `search` once per query.
     * Must return ANNVIL_ERR_DIMENSION_MISMATCH when `dim` differs from the
     * base dimension.
     * Ownership: `queries` is borrowed; `ids` and `distances` are host
     * buffers of `count * n` elements, `found` of `count`.
     * Thread-safety: same as `search` on this context.
     */
    annvil_status (*search_batch)(annvil_search_context *context,
                                  const float *queries, size_t count,
                                  size_t dim, size_t n, uint32_t *ids,
                                  float *distances, size_t *found,
                                  annvil_error *error);
} annvil_search_v1;

/* ------------------------------------------------------------------------ */
/* Slot: refinement                                                          */
/* ------------------------------------------------------------------------ */

/** The refinement slot: turns search candidates into the final k results. */
typedef struct annvil_refinement_v1 {
    /** sizeof(annvil_refinement_v1) as compiled by the library. */
    size_t struct_size;

    /**
     * Prepare a refiner over `base` with parameters `params`.
     * Ownership: `base` stays valid until the refiner is destroyed; `params`
     * is borrowed; on ANNVIL_OK `*out` is owned by the host until passed to
     * `refiner_destroy`.
     * Thread-safety: may be called from any thread.
     */
    annvil_status (*prepare)(const annvil_vectors *base, annvil_metric metric,
                             const annvil_params *params,
                             annvil_refiner **out, annvil_error *error);

    /**
     * Create per-thread scratch space for `refiner`.
     * Ownership: on ANNVIL_OK `*out` is owned by the host until passed to
     * `context_destroy`, which must happen before `refiner_destroy`.
     * Thread-safety: safe to call concurrently on the same refiner.
     */
    annvil_status (*context_new)(const annvil_refiner *refiner,
                                 annvil_refine_context **out,
                                 annvil_error *error);

    /**
     * Choose the final `k` results for `query` (`dim` floats) among the
     * `num_candidates` candidates produced by the search slot:
     * `candidates` are their ids and `candidate_distances` the search's
     * (approximate) distances, in the search's order. Writes up to `k`
     * unique ids, sorted by increasing distance, into `ids`, their distances
     * into `distances`, and the count into `*found`.
     * Must return ANNVIL_ERR_DIMENSION_MISMATCH when `dim` differs from the
     * base dimension, and ANNVIL_ERR_INVALID_ARGUMENT for a candidate id out
     * of range.
     * Ownership: `query`, `candidates` and `candidate_distances` are
     * borrowed; `ids` and `distances` are host buffers of `k` elements.
     * Thread-safety: a context is used by one thread at a time; different
     * contexts of the same refiner may refine concurrently.
     */
    annvil_status (*refine)(annvil_refine_context *context, const float *query,
                            size_t dim, const uint32_t *candidates,
                            const float *candidate_distances,
                            size_t num_candidates, size_t k, uint32_t *ids,
                            float *distances, size_t *found,
                            annvil_error *error);

    /**
     * Bytes of memory the refiner owns (not counting borrowed inputs).
     * Thread-safety: safe to call concurrently.
     */
    size_t (*refiner_memory_bytes)(const annvil_refiner *refiner);

    /**
     * Bytes of memory the context owns (its scratch space).
     * Thread-safety: same as `refine` on this context.
     */
    size_t (*context_memory_bytes)(const annvil_refine_context *context);

    /**
     * Free a context. Ownership: consumes `context`; NULL is a no-op.
     * Thread-safety: the context must not be in use.
     */
    void (*context_destroy)(annvil_refine_context *context);

    /**
     * Free a refiner. Ownership: consumes `refiner`; NULL is a no-op. All
     * its contexts must have been destroyed first.
     * Thread-safety: the refiner must not be in use.
     */
    void (*refiner_destroy)(annvil_refiner *refiner);

    /**
     * Optional (ABI 1.1; NULL when the slot declares nothing, and absent
     * when `struct_size` ends before this field). Declares the parameters
     * this slot accepts: returns an array of `*count` declarations, or NULL
     * with `*count` set to 0. These are the `prepare` parameters
     * (none is a knob).
     * Ownership: the array and every string it points at are static, owned
     * by the library, and stay valid and unchanged while the library is
     * loaded; every call returns the same array. `count` is a host
     * out-pointer, never NULL. Every element has the same `struct_size`,
     * which is the array's stride: a host steps through the array by the
     * first element's `struct_size`, not by its own sizeof.
     * Thread-safety: safe to call from any thread, concurrently, any number
     * of times, before or after any other call.
     */
    const annvil_param_info *(*params)(size_t *count);
} annvil_refinement_v1;

/* ------------------------------------------------------------------------ */
/* Descriptor and entry point                                               */
/* ------------------------------------------------------------------------ */

/**
 * What a library is and which slots it fills. The first five fields
 * (magic through struct_size) are fixed for every major version, so a host
 * can always read the magic, the major version and the size before anything
 * else.
 */
typedef struct annvil_descriptor {
    /** Always ANNVIL_MAGIC. */
    uint32_t magic;
    /** ANNVIL_ABI_MAJOR the library was compiled against. */
    uint32_t abi_major;
    /** ANNVIL_ABI_MINOR the library was compiled against. */
    uint32_t abi_minor;
    /** Reserved, zero. */
    uint32_t reserved;
    /** sizeof(annvil_descriptor) as compiled by the library. */
    size_t struct_size;
    /** Library name, NUL-terminated UTF-8, static. */
    const char *name;
    /** Library version, NUL-terminated UTF-8, static. */
    const char *version;
    /** Bitwise OR of ANNVIL_FLAG_* values. */
    uint64_t flags;
    /** Construction slot table (static), or NULL. */
    const annvil_construction_v1 *construction;
    /** Search slot table (static), or NULL. */
    const annvil_search_v1 *search;
    /** Refinement slot table (static), or NULL. */
    const annvil_refinement_v1 *refinement;
} annvil_descriptor;

/** Name of the entry symbol for ABI major version 1. */
#define ANNVIL_ENTRY_V1_SYMBOL "annvil_entry_v1"

/**
 * The entry point of a library speaking ABI major 1. Returns a pointer to a
 * static descriptor that lives as long as the library stays loaded.
 * Thread-safety: safe to call from any thread, any number of times.
 */
typedef const annvil_descriptor *(*annvil_entry_v1_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* ANNVIL_H */
