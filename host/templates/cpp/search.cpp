/*
 * search.cpp — the search slot: beam search over the standard graph view,
 * so it runs on the graph of any construction slot that exports one.
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

constexpr size_t kEfDefault = 10;
constexpr size_t kEfMin = 1;
constexpr size_t kEfMax = 100000;

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

/* ------------------------------------------------------------------------ */
/* Candidates                                                               */
/* ------------------------------------------------------------------------ */

/** A node and its distance to the query, ordered by (distance, id) so that
 * every search is deterministic. Distances are finite. */
struct Candidate {
    float distance;
    uint32_t id;

    bool operator<(const Candidate &o) const {
        return distance < o.distance || (distance == o.distance && id < o.id);
    }
};

/** Heap order of the frontier: the nearest candidate on top. */
bool farther(const Candidate &a, const Candidate &b) { return b < a; }

} // namespace

/* ------------------------------------------------------------------------ */
/* Slot: search                                                              */
/* ------------------------------------------------------------------------ */

struct annvil_searcher {
    Base base;
    annvil_metric metric = ANNVIL_METRIC_L2;
    std::vector<annvil_graph_level> levels; /* [0] is level 0; arrays borrowed */
    std::vector<uint32_t> entry_points;     /* {0} when the view gives none */
    size_t ef = kEfDefault;

    Candidate to(const float *query, uint32_t id) const {
        return Candidate{distance(metric, base.row(id), query, base.dim), id};
    }
};

struct annvil_search_context {
    const annvil_searcher *searcher = nullptr;
    std::vector<uint32_t> visited; /* visited[v] == epoch: seen by this search */
    uint32_t epoch = 0;
    std::vector<Candidate> frontier; /* heap, nearest on top */
    std::vector<Candidate> nearest;  /* heap of the ef best, farthest on top */
    uint64_t distance_count = 0;

    /** Moves from `at` to its nearest neighbour on `level` until no
     * neighbour is nearer to the query. */
    Candidate greedy(const annvil_graph_level &level, const float *query, Candidate at) {
        for (;;) {
            Candidate best = at;
            for (uint64_t e = level.offsets[at.id]; e < level.offsets[at.id + 1]; e++) {
                best = std::min(best, searcher->to(query, level.neighbors[e]));
                distance_count++;
            }
            if (best.id == at.id) {
                return at;
            }
            at = best;
        }
    }

    /** The ef-bounded best-first search on level 0 from `start`; the answer
     * is left in `nearest` (a heap). */
    void beam(const float *query, Candidate start, size_t ef) {
        const annvil_graph_level &level0 = searcher->levels[0];
        if (++epoch == 0) { /* wrapped: forget the marks of 2^32 searches ago */
            std::fill(visited.begin(), visited.end(), 0u);
            epoch = 1;
        }
        frontier.assign(1, start);
        nearest.assign(1, start);
        visited[start.id] = epoch;
        while (!frontier.empty()) {
            std::pop_heap(frontier.begin(), frontier.end(), farther);
            Candidate current = frontier.back();
            frontier.pop_back();
            if (nearest.size() >= ef && nearest.front() < current) {
                break; /* every node left to expand is farther than the worst kept */
            }
            uint64_t begin = level0.offsets[current.id], end = level0.offsets[current.id + 1];
            for (uint64_t e = begin; e < end; e++) {
                uint32_t id = level0.neighbors[e];
                if (e + 1 < end) { /* load the next vector while this one is compared */
                    __builtin_prefetch(searcher->base.row(level0.neighbors[e + 1]));
                }
                if (visited[id] == epoch) {
                    continue;
                }
                visited[id] = epoch;
                Candidate next = searcher->to(query, id);
                distance_count++;
                if (nearest.size() < ef || next < nearest.front()) {
                    frontier.push_back(next);
                    std::push_heap(frontier.begin(), frontier.end(), farther);
                    nearest.push_back(next);
                    std::push_heap(nearest.begin(), nearest.end());
                    if (nearest.size() > ef) {
                        std::pop_heap(nearest.begin(), nearest.end());
                        nearest.pop_back();
                    }
                }
            }
        }
    }
};

namespace {

/** Checks that every level of `view` is a valid CSR over `n` nodes and the
 * entry points are in range. */
void check_view(const annvil_graph_view &view, size_t n) {
    if (view.num_nodes != n) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT,
             format("graph view has %zu nodes, the base has %zu", view.num_nodes, n));
    }
    if (view.levels == nullptr) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT, "graph view levels pointer is NULL");
    }
    for (uint32_t l = 0; l < view.num_levels; l++) {
        const annvil_graph_level &level = view.levels[l];
        bool ok = level.offsets != nullptr && level.offsets[0] == 0;
        for (size_t v = 0; ok && v < n; v++) {
            ok = level.offsets[v] <= level.offsets[v + 1];
        }
        uint64_t edges = ok ? level.offsets[n] : 0;
        ok = ok && (edges == 0 || level.neighbors != nullptr);
        for (uint64_t e = 0; ok && e < edges; e++) {
            ok = level.neighbors[e] < n;
        }
        if (!ok) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("graph level %" PRIu32 " is not a valid CSR over %zu nodes", l, n));
        }
    }
    if (view.num_entry_points > 0 && view.entry_points == nullptr) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT, "entry points pointer is NULL");
    }
    for (uint32_t e = 0; e < view.num_entry_points; e++) {
        if (view.entry_points[e] >= n) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("entry point %" PRIu32 " is out of range", view.entry_points[e]));
        }
    }
}

} // namespace

extern "C" {

static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                             annvil_metric metric, const annvil_params *params,
                             annvil_searcher **out, annvil_error *error) {
    return guard(error, [&] {
        Base b = read_base(base, metric);
        if (out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
        }
        Params p(params, {});
        if (view == nullptr || view->struct_size < offsetof(annvil_graph_view, native)) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "graph view is NULL or too small");
        }
        if (view->num_levels == 0) {
            fail(ANNVIL_ERR_UNSUPPORTED,
                 "beam search needs a graph, and the construction slot built none");
        }
        check_view(*view, b.count);
        auto s = std::make_unique<annvil_searcher>();
        s->base = b;
        s->metric = metric;
        s->levels.assign(view->levels, view->levels + view->num_levels);
        if (view->num_entry_points > 0) {
            s->entry_points.assign(view->entry_points, view->entry_points + view->num_entry_points);
        } else {
            s->entry_points.push_back(0); /* a view without entry points starts at node 0 */
        }
        *out = s.release();
    });
}

static annvil_status configure(annvil_searcher *s, const annvil_params *params,
                               annvil_error *error) {
    return guard(error, [&] {
        if (s == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "searcher is NULL");
        }
        Params p(params, {"ef"});
        s->ef = p.get_size("ef", s->ef, kEfMin, kEfMax); /* unchanged when it throws */
    });
}

static annvil_status context_new(const annvil_searcher *s, annvil_search_context **out,
                                 annvil_error *error) {
    return guard(error, [&] {
        if (s == nullptr || out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "NULL searcher or output pointer");
        }
        auto c = std::make_unique<annvil_search_context>();
        c->searcher = s;
        c->visited.assign(s->base.count, 0u);
        *out = c.release();
    });
}

static annvil_status search(annvil_search_context *c, const float *query, size_t dim, size_t n,
                            uint32_t *ids, float *distances, size_t *found, annvil_error *error) {
    return guard(error, [&] {
        if (c == nullptr || query == nullptr || found == nullptr ||
            (n > 0 && (ids == nullptr || distances == nullptr))) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "NULL pointer argument");
        }
        const annvil_searcher &s = *c->searcher;
        if (dim != s.base.dim) {
            fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                 format("query has dimension %zu, the base vectors have %zu", dim, s.base.dim));
        }
        *found = 0;
        if (n == 0 || s.base.count == 0) {
            return;
        }
        Candidate at = s.to(query, s.entry_points[0]);
        for (size_t e = 1; e < s.entry_points.size(); e++) {
            at = std::min(at, s.to(query, s.entry_points[e]));
        }
        c->distance_count += s.entry_points.size();
        for (size_t l = s.levels.size() - 1; l > 0; l--) {
            at = c->greedy(s.levels[l], query, at);
        }
        c->beam(query, at, std::max(s.ef, n));
        std::sort_heap(c->nearest.begin(), c->nearest.end()); /* nearest first */
        size_t kept = std::min(n, c->nearest.size());
        for (size_t i = 0; i < kept; i++) {
            ids[i] = c->nearest[i].id;
            distances[i] = c->nearest[i].distance;
        }
        *found = kept;
    });
}

static size_t searcher_memory_bytes(const annvil_searcher *s) {
    if (s == nullptr) {
        return 0;
    }
    return sizeof *s + s->levels.capacity() * sizeof(annvil_graph_level) +
           s->entry_points.capacity() * sizeof(uint32_t);
}

static size_t context_memory_bytes(const annvil_search_context *c) {
    if (c == nullptr) {
        return 0;
    }
    return sizeof *c + c->visited.capacity() * sizeof(uint32_t) +
           (c->frontier.capacity() + c->nearest.capacity()) * sizeof(Candidate);
}

static uint64_t context_distance_count(const annvil_search_context *c) {
    return c != nullptr ? c->distance_count : 0;
}

static void context_destroy(annvil_search_context *c) { delete c; }

static void searcher_destroy(annvil_searcher *s) { delete s; }

extern const annvil_search_v1 annvil_variant_search_table;
const annvil_search_v1 annvil_variant_search_table = [] {
    annvil_search_v1 table{};
    table.struct_size = sizeof table;
    table.prepare = prepare;
    table.configure = configure;
    table.context_new = context_new;
    table.search = search;
    table.searcher_memory_bytes = searcher_memory_bytes;
    table.context_memory_bytes = context_memory_bytes;
    table.context_distance_count = context_distance_count;
    table.context_destroy = context_destroy;
    table.searcher_destroy = searcher_destroy;
    return table;
}();

} // extern "C"
