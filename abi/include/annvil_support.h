/*
 * annvil_support.h — helpers for writing an annvil variant in C (C99 or
 * later; also valid C++, which annvil_support.hpp builds on).
 *
 * annvil.h is the contract; this header is not part of it. It holds the
 * plumbing every C slot needs, written once: the error buffer, parameter
 * checks that follow the contract's rules (unknown keys, malformed values),
 * input validation, the standard graph view, and distance kernels.
 *
 * Every function is `static inline`: each translation unit gets its own
 * copy, nothing is exported, and there is no global or static state, so any
 * number of slot files of one library may include it. Every function is
 * reentrant and may be called from any thread; one that writes through a
 * pointer needs exclusive use of what it writes (noted where it matters).
 *
 * Contents (the `host evolve` prompt shows this list):
 *   annvil_fail(error, status, fmt, ...)       write a printf-style message into
 *                                              the host's error buffer, return status
 *   annvil_message_begin/append                build a message piecewise
 *   annvil_check_base(base, metric, error)     validate the base vectors and metric
 *   annvil_params_check(params, accepted, n, error)
 *                                              reject unknown or malformed parameters
 *   annvil_params_size(params, key, fallback, min, max, &out, error)
 *   annvil_params_bool(params, key, fallback, &out, error)
 *                                              read and range-check one parameter
 *   annvil_graph_view_fill(view, out, error)   copy a view as far as out->struct_size
 *   annvil_graph_view_check(view, n, error)    check a view's CSR levels and entry points
 *   annvil_reserve(&buf, &capacity, need, size, error)
 *                                              grow a scratch buffer
 *   annvil_l2_squared, annvil_dot, annvil_distance(metric, x, q, dim)
 *                                              SIMD distance kernels (annvil.h metrics)
 *   annvil_candidate, annvil_candidate_closer, annvil_candidate_compare,
 *   annvil_heap_push/pop/free                  (distance, id) pairs and a binary heap
 */
#ifndef ANNVIL_SUPPORT_H
#define ANNVIL_SUPPORT_H

#include <annvil.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
#define ANNVIL_RESTRICT __restrict
#else
#define ANNVIL_RESTRICT restrict
#endif

#if defined(__GNUC__)
#define ANNVIL_PRINTF(format_index, first_arg) \
    __attribute__((format(printf, format_index, first_arg)))
#else
#define ANNVIL_PRINTF(format_index, first_arg)
#endif

/*
 * ANNVIL_KERNEL marks a hot function to be compiled several times: on x86-64
 * for AVX-512, AVX2 and the baseline, the loader picking the best the CPU
 * has (function multiversioning). Elsewhere it is empty.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define ANNVIL_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ANNVIL_KERNEL
#endif

/* ------------------------------------------------------------------------ */
/* Error messages                                                           */
/* ------------------------------------------------------------------------ */

/**
 * A message being written piecewise into the host's error buffer. It stays
 * NUL-terminated and valid UTF-8 after every append; what does not fit is
 * cut at a character boundary and later appends are dropped.
 * Ownership: points into the host's buffer, valid for the current call.
 * Thread-safety: used by one thread (the one serving the call).
 */
typedef struct annvil_message {
    char *buf; /* NULL when the host gave no room */
    size_t capacity;
    size_t len;
    bool truncated;
} annvil_message;

/* Drops a trailing incomplete UTF-8 sequence from s[0 .. len) by ending the
 * string before it (s[len] is already the NUL). */
static inline void annvil_trim_partial_utf8(char *s, size_t len) {
    size_t start = len;
    while (start > 0 && ((unsigned char)s[start - 1] & 0xC0u) == 0x80u) {
        start--;
    }
    if (start == 0) {
        return;
    }
    unsigned char lead = (unsigned char)s[start - 1];
    size_t need = lead >= 0xF0u ? 4 : lead >= 0xE0u ? 3 : lead >= 0xC0u ? 2 : 1;
    if (start - 1 + need > len) {
        s[start - 1] = '\0';
    }
}

/**
 * Starts an empty message in `error` (which may be NULL or have no room:
 * then every append is a no-op).
 * Ownership: `error` is the host's buffer of the current call.
 */
static inline annvil_message annvil_message_begin(annvil_error *error) {
    annvil_message m = {NULL, 0, 0, false};
    if (error != NULL && error->message != NULL && error->capacity > 0) {
        m.buf = error->message;
        m.capacity = error->capacity;
        m.buf[0] = '\0';
    }
    return m;
}

/** Appends vprintf-style text to `m` (see annvil_message). */
static inline void annvil_message_vappend(annvil_message *m, const char *fmt, va_list args) {
    if (m->buf == NULL || m->truncated) {
        return;
    }
    size_t room = m->capacity - m->len; /* >= 1: len <= capacity - 1 */
    int n = vsnprintf(m->buf + m->len, room, fmt, args);
    if (n < 0) {
        m->buf[m->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        m->len = m->capacity - 1;
        m->truncated = true;
        annvil_trim_partial_utf8(m->buf, m->len);
    } else {
        m->len += (size_t)n;
    }
}

/** Appends printf-style text to `m` (see annvil_message). */
ANNVIL_PRINTF(2, 3)
static inline void annvil_message_append(annvil_message *m, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    annvil_message_vappend(m, fmt, args);
    va_end(args);
}

/**
 * Writes the printf-style message into the host's error buffer (truncated
 * at a UTF-8 character boundary when it does not fit) and returns `status`,
 * so a slot function can `return annvil_fail(error, ANNVIL_ERR_..., ...)`.
 * Ownership: `error` is the host's buffer of the current call; may be NULL.
 */
ANNVIL_PRINTF(3, 4)
static inline annvil_status annvil_fail(annvil_error *error, annvil_status status,
                                        const char *fmt, ...) {
    annvil_message m = annvil_message_begin(error);
    va_list args;
    va_start(args, fmt);
    annvil_message_vappend(&m, fmt, args);
    va_end(args);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/** True when the NUL-terminated `s` is well-formed UTF-8. */
static inline bool annvil_is_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p++;
        if (c < 0x80u) {
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if ((c & 0xE0u) == 0xC0u) {
            more = 1, cp = c & 0x1Fu, min = 0x80u;
        } else if ((c & 0xF0u) == 0xE0u) {
            more = 2, cp = c & 0x0Fu, min = 0x800u;
        } else if ((c & 0xF8u) == 0xF0u) {
            more = 3, cp = c & 0x07u, min = 0x10000u;
        } else {
            return false;
        }
        for (size_t i = 0; i < more; i++, p++) {
            if ((*p & 0xC0u) != 0x80u) { /* also stops at the NUL */
                return false;
            }
            cp = (cp << 6) | (*p & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
            return false;
        }
    }
    return true;
}

/**
 * Checks the list itself: NULL or empty is fine; otherwise `items` and every
 * key and value must be non-NULL and UTF-8 (else ANNVIL_ERR_INVALID_ARGUMENT).
 * Ownership: `params` is borrowed for the call.
 */
static inline annvil_status annvil_params_validate(const annvil_params *params,
                                                   annvil_error *error) {
    if (params == NULL || params->count == 0) {
        return ANNVIL_OK;
    }
    if (params->items == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter list pointer is NULL");
    }
    for (size_t i = 0; i < params->count; i++) {
        const annvil_param *p = &params->items[i];
        if (p->key == NULL || p->value == NULL) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter %s is NULL",
                               p->key == NULL ? "key" : "value");
        }
        if (!annvil_is_utf8(p->key) || !annvil_is_utf8(p->value)) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "parameter %s is not UTF-8",
                               annvil_is_utf8(p->key) ? "value" : "key");
        }
    }
    return ANNVIL_OK;
}

/* True when `key` is one of accepted[0 .. num_accepted). */
static inline bool annvil_key_in(const char *key, const char *const *accepted,
                                 size_t num_accepted) {
    for (size_t a = 0; a < num_accepted; a++) {
        if (strcmp(key, accepted[a]) == 0) {
            return true;
        }
    }
    return false;
}

/**
 * Validates the list (annvil_params_validate), then rejects every key not in
 * accepted[0 .. num_accepted) with ANNVIL_ERR_UNKNOWN_PARAMETER, naming the
 * unknown keys and the accepted ones as the Rust SDK does:
 * "unknown parameters `a`, `b` (accepted: M, ef_construction)".
 * Call it before reading values, so an unknown key is reported first.
 * Ownership: `params` and `accepted` are borrowed for the call.
 */
static inline annvil_status annvil_params_check(const annvil_params *params,
                                                const char *const *accepted, size_t num_accepted,
                                                annvil_error *error) {
    annvil_status status = annvil_params_validate(params, error);
    if (status != ANNVIL_OK || params == NULL) {
        return status;
    }
    size_t unknown = 0;
    for (size_t i = 0; i < params->count; i++) {
        unknown += !annvil_key_in(params->items[i].key, accepted, num_accepted);
    }
    if (unknown == 0) {
        return ANNVIL_OK;
    }
    annvil_message m = annvil_message_begin(error);
    annvil_message_append(&m, "unknown parameter%s ", unknown > 1 ? "s" : "");
    const char *separator = "";
    for (size_t i = 0; i < params->count; i++) {
        if (!annvil_key_in(params->items[i].key, accepted, num_accepted)) {
            annvil_message_append(&m, "%s`%s`", separator, params->items[i].key);
            separator = ", ";
        }
    }
    annvil_message_append(&m, " (accepted: ");
    for (size_t a = 0; a < num_accepted; a++) {
        annvil_message_append(&m, "%s%s", a > 0 ? ", " : "", accepted[a]);
    }
    annvil_message_append(&m, "%s)", num_accepted == 0 ? "none" : "");
    return ANNVIL_ERR_UNKNOWN_PARAMETER;
}

/**
 * The value of `key`, or NULL when absent (the last one if repeated).
 * Ownership: the result points into `params`, borrowed for the call.
 */
static inline const char *annvil_params_find(const annvil_params *params, const char *key) {
    const char *value = NULL;
    for (size_t i = 0; params != NULL && params->items != NULL && i < params->count; i++) {
        if (params->items[i].key != NULL && strcmp(params->items[i].key, key) == 0) {
            value = params->items[i].value;
        }
    }
    return value;
}

/* True for the ASCII whitespace Rust's str::trim removes. */
static inline bool annvil_is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* `value` without surrounding whitespace: returns where it starts and sets
 * `*len` to its length. */
static inline const char *annvil_trim(const char *value, size_t *len) {
    while (annvil_is_space(*value)) {
        value++;
    }
    size_t n = strlen(value);
    while (n > 0 && annvil_is_space(value[n - 1])) {
        n--;
    }
    *len = n;
    return value;
}

/**
 * Reads the unsigned integer `key` into `*out`: `fallback` when absent, else
 * the value, which must parse as Rust's usize parser accepts after trimming
 * whitespace (digits with an optional leading '+') and lie in [min, max]
 * (else ANNVIL_ERR_INVALID_ARGUMENT, `*out` unchanged).
 * Ownership: `params` is borrowed; `out` is written only on ANNVIL_OK.
 */
static inline annvil_status annvil_params_size(const annvil_params *params, const char *key,
                                               size_t fallback, size_t min, size_t max,
                                               size_t *out, annvil_error *error) {
    const char *value = annvil_params_find(params, key);
    if (value == NULL) {
        *out = fallback;
        return ANNVIL_OK;
    }
    size_t len = 0;
    const char *digits = annvil_trim(value, &len);
    if (len > 0 && *digits == '+') {
        digits++;
        len--;
    }
    size_t parsed = 0;
    bool ok = len > 0;
    for (size_t i = 0; ok && i < len; i++) {
        size_t d = (size_t)(digits[i] - '0');
        ok = digits[i] >= '0' && digits[i] <= '9' && parsed <= (SIZE_MAX - d) / 10;
        parsed = parsed * 10 + d;
    }
    if (!ok) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "parameter `%s`: `%s` is not a valid unsigned integer", key, value);
    }
    if (parsed < min || parsed > max) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "parameter `%s` must be in %zu..=%zu, not %zu", key, min, max, parsed);
    }
    *out = parsed;
    return ANNVIL_OK;
}

/**
 * Reads the boolean `key` into `*out`: `fallback` when absent, else `true`
 * or `false` after trimming whitespace (else ANNVIL_ERR_INVALID_ARGUMENT,
 * `*out` unchanged).
 * Ownership: `params` is borrowed; `out` is written only on ANNVIL_OK.
 */
static inline annvil_status annvil_params_bool(const annvil_params *params, const char *key,
                                               bool fallback, bool *out, annvil_error *error) {
    const char *value = annvil_params_find(params, key);
    size_t len = 0;
    const char *word = value != NULL ? annvil_trim(value, &len) : NULL;
    if (word == NULL) {
        *out = fallback;
    } else if (len == 4 && strncmp(word, "true", 4) == 0) {
        *out = true;
    } else if (len == 5 && strncmp(word, "false", 5) == 0) {
        *out = false;
    } else {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "parameter `%s`: `%s` is not a valid bool (true or false)", key,
                           value);
    }
    return ANNVIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Checks the host's base vectors (non-NULL, struct_size, dimension > 0, a
 * size that fits the address space, data present when count > 0, ids that
 * fit in u32: else ANNVIL_ERR_UNSUPPORTED) and that `metric` is one annvil.h
 * defines (else ANNVIL_ERR_UNSUPPORTED).
 * Ownership: `base` is borrowed for the call.
 */
static inline annvil_status annvil_check_base(const annvil_vectors *base, annvil_metric metric,
                                              annvil_error *error) {
    if (base == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "base vectors are NULL");
    }
    if (base->struct_size < sizeof(annvil_vectors)) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "annvil_vectors.struct_size is %zu, expected at least %zu",
                           base->struct_size, sizeof(annvil_vectors));
    }
    if (base->dim == 0) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "base vectors have dimension 0");
    }
    if (base->count > SIZE_MAX / sizeof(float) / base->dim) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "%zu base vectors of dimension %zu overflow the address space",
                           base->count, base->dim);
    }
    if ((uint64_t)base->count > UINT32_MAX) {
        return annvil_fail(error, ANNVIL_ERR_UNSUPPORTED,
                           "%zu base vectors exceed the u32 ids of the ABI", base->count);
    }
    if (base->count > 0 && base->data == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "base vector data pointer is NULL");
    }
    if (metric != ANNVIL_METRIC_L2 && metric != ANNVIL_METRIC_ANGULAR &&
        metric != ANNVIL_METRIC_INNER_PRODUCT) {
        return annvil_fail(error, ANNVIL_ERR_UNSUPPORTED, "unknown metric code %" PRIu32, metric);
    }
    return ANNVIL_OK;
}

/* ------------------------------------------------------------------------ */
/* The standard graph view                                                  */
/* ------------------------------------------------------------------------ */

/**
 * A construction's `graph_view`: copies the fields of `view` that the host's
 * out->struct_size covers, leaving out->struct_size as the host set it.
 * Ownership: `view` is the library's; the pointers it holds are copied, not
 * the arrays. Thread-safety: `out` is the host's, used by this call only.
 */
static inline annvil_status annvil_graph_view_fill(const annvil_graph_view *view,
                                                   annvil_graph_view *out, annvil_error *error) {
    if (out == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "output view is NULL");
    }
    size_t covered =
        out->struct_size < sizeof(annvil_graph_view) ? out->struct_size : sizeof(annvil_graph_view);
    size_t skip = sizeof(size_t); /* struct_size */
    if (covered > skip) {
        memcpy((char *)out + skip, (const char *)view + skip, covered - skip);
    }
    return ANNVIL_OK;
}

/**
 * Checks that a graph view handed to a search slot fits `num_nodes` base
 * vectors: the node count matches, every level is a valid CSR (offsets
 * start at 0 and never decrease, neighbour ids < num_nodes) and every entry
 * point is in range; else ANNVIL_ERR_INVALID_ARGUMENT. The caller checks
 * `view` itself (non-NULL, struct_size). Reads every edge: O(edges).
 * Ownership: `view` and its arrays are borrowed for the call.
 */
static inline annvil_status annvil_graph_view_check(const annvil_graph_view *view,
                                                    size_t num_nodes, annvil_error *error) {
    if (view->num_nodes != num_nodes) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                           "graph view has %zu nodes, the base has %zu", view->num_nodes,
                           num_nodes);
    }
    if (view->num_levels > 0 && view->levels == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "graph view levels pointer is NULL");
    }
    for (uint32_t l = 0; l < view->num_levels; l++) {
        const annvil_graph_level *level = &view->levels[l];
        bool ok = level->offsets != NULL && level->offsets[0] == 0;
        for (size_t v = 0; ok && v < num_nodes; v++) {
            ok = level->offsets[v] <= level->offsets[v + 1];
        }
        uint64_t edges = ok ? level->offsets[num_nodes] : 0;
        ok = ok && (edges == 0 || level->neighbors != NULL);
        for (uint64_t e = 0; ok && e < edges; e++) {
            ok = level->neighbors[e] < num_nodes;
        }
        if (!ok) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "graph level %" PRIu32 " is not a valid CSR over %zu nodes", l,
                               num_nodes);
        }
    }
    if (view->num_entry_points > 0 && view->entry_points == NULL) {
        return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT, "entry points pointer is NULL");
    }
    for (uint32_t e = 0; e < view->num_entry_points; e++) {
        if (view->entry_points[e] >= num_nodes) {
            return annvil_fail(error, ANNVIL_ERR_INVALID_ARGUMENT,
                               "entry point %" PRIu32 " is out of range", view->entry_points[e]);
        }
    }
    return ANNVIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Scratch space                                                            */
/* ------------------------------------------------------------------------ */

/**
 * Grows the malloc'ed buffer `*buf` of `*capacity` elements of `size` bytes
 * to hold at least `need` (ANNVIL_ERR_OUT_OF_MEMORY when it cannot; the
 * buffer is then unchanged). Contents are kept, as realloc keeps them.
 * Ownership: `*buf` stays the caller's (free it with free()).
 * Thread-safety: the buffer must not be in use by another thread.
 */
static inline annvil_status annvil_reserve(void **buf, size_t *capacity, size_t need, size_t size,
                                           annvil_error *error) {
    if (need <= *capacity) {
        return ANNVIL_OK;
    }
    if (need > SIZE_MAX / size) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "scratch of %zu elements overflows",
                           need);
    }
    void *grown = realloc(*buf, need * size);
    if (grown == NULL) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch",
                           need * size);
    }
    *buf = grown;
    *capacity = need;
    return ANNVIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Distances (annvil.h: L2 squared, 1 - <x, q>, -<x, q>)                    */
/* ------------------------------------------------------------------------ */

/* Sixteen independent partial sums: the compiler vectorises them, and long
 * vectors of large values lose less precision than with one running sum.
 * Without FP contraction (the default of the ISO -std= modes) the result
 * does not depend on the instruction set the loader picks. */
#define ANNVIL_LANES 16

/** Squared Euclidean distance of two `dim`-float vectors. */
ANNVIL_KERNEL static inline float annvil_l2_squared(const float *ANNVIL_RESTRICT a,
                                                    const float *ANNVIL_RESTRICT b, size_t dim) {
    float acc[ANNVIL_LANES] = {0};
    size_t body = dim - dim % ANNVIL_LANES;
    for (size_t i = 0; i < body; i += ANNVIL_LANES) {
        for (size_t l = 0; l < ANNVIL_LANES; l++) {
            float d = a[i + l] - b[i + l];
            acc[l] += d * d;
        }
    }
    float sum = 0.0f;
    for (size_t l = 0; l < ANNVIL_LANES; l++) {
        sum += acc[l];
    }
    float tail = 0.0f;
    for (size_t i = body; i < dim; i++) {
        float d = a[i] - b[i];
        tail += d * d;
    }
    return sum + tail;
}

/** Inner product of two `dim`-float vectors. */
ANNVIL_KERNEL static inline float annvil_dot(const float *ANNVIL_RESTRICT a,
                                             const float *ANNVIL_RESTRICT b, size_t dim) {
    float acc[ANNVIL_LANES] = {0};
    size_t body = dim - dim % ANNVIL_LANES;
    for (size_t i = 0; i < body; i += ANNVIL_LANES) {
        for (size_t l = 0; l < ANNVIL_LANES; l++) {
            acc[l] += a[i + l] * b[i + l];
        }
    }
    float sum = 0.0f;
    for (size_t l = 0; l < ANNVIL_LANES; l++) {
        sum += acc[l];
    }
    float tail = 0.0f;
    for (size_t i = body; i < dim; i++) {
        tail += a[i] * b[i];
    }
    return sum + tail;
}

/**
 * The annvil.h distance of `x` to `q` under `metric` (smaller is closer).
 * An unknown metric counts as ANNVIL_METRIC_INNER_PRODUCT: validate it
 * first (annvil_check_base).
 */
static inline float annvil_distance(annvil_metric metric, const float *x, const float *q,
                                    size_t dim) {
    switch (metric) {
    case ANNVIL_METRIC_L2:
        return annvil_l2_squared(x, q, dim);
    case ANNVIL_METRIC_ANGULAR:
        return 1.0f - annvil_dot(x, q, dim);
    default: /* ANNVIL_METRIC_INNER_PRODUCT */
        return -annvil_dot(x, q, dim);
    }
}

/* ------------------------------------------------------------------------ */
/* Candidates and heaps                                                     */
/* ------------------------------------------------------------------------ */

/** A node and its distance to some point, ordered by (distance, id). */
typedef struct annvil_candidate {
    float distance;
    uint32_t id;
} annvil_candidate;

/** The (distance, id) order: true when `a` comes before `b`. */
static inline bool annvil_candidate_closer(annvil_candidate a, annvil_candidate b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

/** qsort comparator over annvil_candidate, nearest first. */
static inline int annvil_candidate_compare(const void *a, const void *b) {
    annvil_candidate x = *(const annvil_candidate *)a, y = *(const annvil_candidate *)b;
    return annvil_candidate_closer(x, y) ? -1 : annvil_candidate_closer(y, x) ? 1 : 0;
}

/**
 * A binary heap of candidates, growing on demand. Each call says its order:
 * with `farthest_on_top` a max-heap (the k nearest found, worst on top),
 * else a min-heap (a frontier, nearest on top). Zero-initialise it; reset
 * it with `len = 0`.
 * Ownership: `items` is malloc'ed and owned by the heap: annvil_heap_free.
 * Thread-safety: one thread at a time.
 */
typedef struct annvil_heap {
    annvil_candidate *items;
    size_t len, capacity;
} annvil_heap;

/* True when `a` belongs above `b` in the heap's order. */
static inline bool annvil_heap_above(annvil_candidate a, annvil_candidate b,
                                     bool farthest_on_top) {
    return farthest_on_top ? annvil_candidate_closer(b, a) : annvil_candidate_closer(a, b);
}

/** Adds `item`; false (heap unchanged) when it cannot grow. */
static inline bool annvil_heap_push(annvil_heap *h, annvil_candidate item, bool farthest_on_top) {
    if (h->len == h->capacity) {
        size_t capacity = h->capacity < 64 ? 64 : 2 * h->capacity;
        annvil_candidate *grown =
            (annvil_candidate *)realloc(h->items, capacity * sizeof(annvil_candidate));
        if (grown == NULL) {
            return false;
        }
        h->items = grown;
        h->capacity = capacity;
    }
    size_t i = h->len++;
    while (i > 0 && annvil_heap_above(item, h->items[(i - 1) / 2], farthest_on_top)) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = item;
    return true;
}

/** Removes and returns the top of a non-empty heap. */
static inline annvil_candidate annvil_heap_pop(annvil_heap *h, bool farthest_on_top) {
    annvil_candidate top = h->items[0];
    annvil_candidate last = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len) {
            break;
        }
        if (child + 1 < h->len &&
            annvil_heap_above(h->items[child + 1], h->items[child], farthest_on_top)) {
            child++;
        }
        if (!annvil_heap_above(h->items[child], last, farthest_on_top)) {
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

/** Frees the heap's items and leaves it empty (reusable). */
static inline void annvil_heap_free(annvil_heap *h) {
    free(h->items);
    h->items = NULL;
    h->len = 0;
    h->capacity = 0;
}

#endif /* ANNVIL_SUPPORT_H */
