/*
 * refinement.cpp — the refinement slot: exact rerank. Every distinct
 * candidate's exact float distance to the query is computed, and the k
 * nearest are kept, sorted by distance, then id. The search's own distances
 * are not used, so any search slot (quantized, approximate) can feed it.
 * No parameters.
 *
 * The refiner is read-only after prepare; each context owns its scratch.
 *
 * This file is self-contained: its helpers live in an anonymous namespace,
 * the slot functions are static `extern "C"` functions whose bodies run
 * inside guard() (no exception crosses the boundary), and the table below
 * is the one symbol src/variant.c refers to.
 */
#include <annvil.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/** A failure with an ABI status; thrown anywhere inside a slot body. */
class Error : public std::exception {
  public:
    Error(annvil_status status, std::string message)
        : status_(status), message_(std::move(message)) {}
    annvil_status status() const noexcept { return status_; }
    const char *what() const noexcept override { return message_.c_str(); }

  private:
    annvil_status status_;
    std::string message_;
};

/** printf-style formatting into a std::string. */
__attribute__((format(printf, 1, 2))) std::string format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list again;
    va_copy(again, args);
    int n = std::vsnprintf(nullptr, 0, fmt, args);
    va_end(args);
    std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    if (n > 0) {
        std::vsnprintf(&out[0], out.size() + 1, fmt, again);
    }
    va_end(again);
    return out;
}

[[noreturn]] void fail(annvil_status status, std::string message) {
    throw Error(status, std::move(message));
}

/** Copies `message` into the host's buffer, cut at a UTF-8 character
 * boundary when it does not fit. Allocates nothing. */
void write_error(annvil_error *error, const char *message) noexcept {
    if (error == nullptr || error->message == nullptr || error->capacity == 0) {
        return;
    }
    size_t len = std::strlen(message);
    if (len >= error->capacity) {
        len = error->capacity - 1;
        while (len > 0 && (static_cast<unsigned char>(message[len]) & 0xC0u) == 0x80u) {
            len--; /* message[len] continues a character: cut before it */
        }
    }
    std::memcpy(error->message, message, len);
    error->message[len] = '\0';
}

/** Runs `body` and maps every exception to a status: the one place where
 * exceptions stop. */
template <class Body> annvil_status guard(annvil_error *error, Body &&body) noexcept {
    try {
        body();
        return ANNVIL_OK;
    } catch (const Error &e) {
        write_error(error, e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        write_error(error, "out of memory");
        return ANNVIL_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        write_error(error, e.what());
        return ANNVIL_ERR_PANIC;
    } catch (...) {
        write_error(error, "C++ exception of unknown type");
        return ANNVIL_ERR_PANIC;
    }
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/** The key/value parameters of one call. The constructor rejects a key not
 * in `accepted`; get_size() parses and range-checks one value. */
class Params {
  public:
    Params(const annvil_params *params, std::initializer_list<const char *> accepted) {
        if (params == nullptr || params->count == 0) {
            return;
        }
        if (params->items == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "parameter list pointer is NULL");
        }
        std::string names;
        for (const char *name : accepted) {
            names += (names.empty() ? "" : ", ") + std::string(name);
        }
        for (size_t i = 0; i < params->count; i++) {
            const annvil_param &p = params->items[i];
            if (p.key == nullptr || p.value == nullptr) {
                fail(ANNVIL_ERR_INVALID_ARGUMENT,
                     format("parameter %zu has a NULL key or value", i));
            }
            bool known = std::any_of(accepted.begin(), accepted.end(),
                                     [&](const char *name) { return std::strcmp(name, p.key) == 0; });
            if (!known) {
                fail(ANNVIL_ERR_UNKNOWN_PARAMETER,
                     format("unknown parameter `%s` (accepted: %s)", p.key,
                            names.empty() ? "none" : names.c_str()));
            }
            items_.push_back(p);
        }
    }

    /** The unsigned integer `key` in [min, max], or `fallback` when absent.
     * Accepts what Rust's usize parser accepts after trimming whitespace:
     * digits with an optional leading '+'. */
    size_t get_size(const char *key, size_t fallback, size_t min, size_t max) const {
        const char *value = nullptr;
        for (const annvil_param &p : items_) {
            if (std::strcmp(p.key, key) == 0) {
                value = p.value;
            }
        }
        if (value == nullptr) {
            return fallback;
        }
        std::string text(value);
        const char *space = " \t\n\v\f\r";
        size_t begin = text.find_first_not_of(space);
        size_t end = text.find_last_not_of(space);
        text = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
        size_t start = !text.empty() && text[0] == '+' ? 1 : 0;
        bool ok = text.size() > start;
        size_t parsed = 0;
        for (size_t i = start; ok && i < text.size(); i++) {
            size_t digit = static_cast<size_t>(text[i] - '0');
            ok = text[i] >= '0' && text[i] <= '9' &&
                 parsed <= (std::numeric_limits<size_t>::max() - digit) / 10;
            parsed = parsed * 10 + digit;
        }
        if (!ok) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("parameter `%s`: `%s` is not a valid unsigned integer", key, value));
        }
        if (parsed < min || parsed > max) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("parameter `%s` must be in [%zu, %zu], got %zu", key, min, max, parsed));
        }
        return parsed;
    }

  private:
    std::vector<annvil_param> items_;
};

/* ------------------------------------------------------------------------ */
/* Base vectors and distances (annvil.h: L2 squared, 1 - <x, q>, -<x, q>)   */
/* ------------------------------------------------------------------------ */

/** Borrowed row-major base vectors, valid until the handle made from them
 * is destroyed. */
struct Base {
    const float *data = nullptr;
    size_t count = 0;
    size_t dim = 0;

    const float *row(uint32_t id) const { return data + static_cast<size_t>(id) * dim; }
};

Base read_base(const annvil_vectors *base, annvil_metric metric) {
    if (base == nullptr || base->struct_size < sizeof *base || base->dim == 0 ||
        (base->count > 0 && base->data == nullptr)) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT, "invalid base vectors");
    }
    if (base->count > std::numeric_limits<uint32_t>::max()) {
        fail(ANNVIL_ERR_UNSUPPORTED,
             format("%zu base vectors exceed the u32 ids of the ABI", base->count));
    }
    if (metric != ANNVIL_METRIC_L2 && metric != ANNVIL_METRIC_ANGULAR &&
        metric != ANNVIL_METRIC_INNER_PRODUCT) {
        fail(ANNVIL_ERR_UNSUPPORTED, format("unknown metric code %" PRIu32, metric));
    }
    return Base{base->data, base->count, base->dim};
}

/* Sixteen independent partial sums: the compiler vectorises them, and long
 * vectors of large values lose less precision than with one running sum.
 * On x86-64 each kernel is compiled for AVX-512, AVX2 and the baseline,
 * and the loader picks the best the CPU has (function multiversioning). */
constexpr size_t kLanes = 16;
#if defined(__x86_64__)
#define KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL
#endif

KERNEL float l2_squared(const float *__restrict a, const float *__restrict b, size_t dim) {
    float acc[kLanes] = {};
    size_t body = dim - dim % kLanes;
    for (size_t i = 0; i < body; i += kLanes) {
        for (size_t l = 0; l < kLanes; l++) {
            float d = a[i + l] - b[i + l];
            acc[l] += d * d;
        }
    }
    float sum = 0.0f;
    for (size_t i = body; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    for (float partial : acc) {
        sum += partial;
    }
    return sum;
}

KERNEL float dot(const float *__restrict a, const float *__restrict b, size_t dim) {
    float acc[kLanes] = {};
    size_t body = dim - dim % kLanes;
    for (size_t i = 0; i < body; i += kLanes) {
        for (size_t l = 0; l < kLanes; l++) {
            acc[l] += a[i + l] * b[i + l];
        }
    }
    float sum = 0.0f;
    for (size_t i = body; i < dim; i++) {
        sum += a[i] * b[i];
    }
    for (float partial : acc) {
        sum += partial;
    }
    return sum;
}

inline float distance(annvil_metric metric, const float *x, const float *q, size_t dim) {
    switch (metric) {
    case ANNVIL_METRIC_L2:
        return l2_squared(x, q, dim);
    case ANNVIL_METRIC_ANGULAR:
        return 1.0f - dot(x, q, dim);
    default: /* ANNVIL_METRIC_INNER_PRODUCT, checked at prepare */
        return -dot(x, q, dim);
    }
}

/** A candidate and its exact distance, ordered by (distance, id). */
struct Scored {
    float distance;
    uint32_t id;

    bool operator<(const Scored &o) const {
        return distance < o.distance || (distance == o.distance && id < o.id);
    }
};

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
    return guard(error, [&] {
        Base b = read_base(base, metric);
        if (out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
        }
        Params p(params, {});
        *out = new annvil_refiner{b, metric};
    });
}

static annvil_status context_new(const annvil_refiner *r, annvil_refine_context **out,
                                 annvil_error *error) {
    return guard(error, [&] {
        if (r == nullptr || out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "NULL refiner or output pointer");
        }
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
    return guard(error, [&] {
        if (c == nullptr || query == nullptr || found == nullptr ||
            (num_candidates > 0 && candidates == nullptr) ||
            (k > 0 && (ids == nullptr || distances == nullptr))) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
        }
        const annvil_refiner &r = *c->refiner;
        if (dim != r.base.dim) {
            fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                 format("query has dimension %zu, the base vectors have %zu", dim, r.base.dim));
        }
        c->scored.clear();
        for (size_t i = 0; i < num_candidates; i++) {
            uint32_t id = candidates[i];
            if (id >= r.base.count) {
                fail(ANNVIL_ERR_INVALID_ARGUMENT,
                     format("candidate %" PRIu32 " is out of range (%zu base vectors)", id,
                            r.base.count));
            }
            c->scored.push_back(Scored{distance(r.metric, r.base.row(id), query, dim), id});
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
