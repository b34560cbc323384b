/*
 * construction.cpp — the construction slot: a flat navigable graph, built
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
#include <numeric>
#include <string>
#include <vector>

namespace {

constexpr size_t kMDefault = 16;
constexpr size_t kMMin = 2;
constexpr size_t kMMax = 128;
constexpr size_t kEfConstructionDefault = 100;
constexpr size_t kEfConstructionMin = 1;
constexpr size_t kEfConstructionMax = 10000;

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

/** A node and its distance to the node being inserted or compared with,
 * ordered by (distance, id) so that every build is deterministic. */
struct Candidate {
    float distance;
    uint32_t id;

    bool operator<(const Candidate &o) const {
        return distance < o.distance || (distance == o.distance && id < o.id);
    }
};

/** Heap order of the frontier: the nearest candidate on top. */
bool farther(const Candidate &a, const Candidate &b) { return b < a; }

/* ------------------------------------------------------------------------ */
/* The builder                                                              */
/* ------------------------------------------------------------------------ */

/** The graph under construction and the scratch space of the insertions.
 * Node v's list is links[v * max_degree ..][.. degree[v]]. */
class Builder {
  public:
    Builder(Base base, annvil_metric metric, size_t m, size_t ef_construction)
        : base_(base), metric_(metric), m_(m), max_degree_(2 * m),
          /* The search must find at least the M neighbours to choose from. */
          ef_(std::max(ef_construction, m)), links_(base.count * max_degree_),
          degree_(base.count), visited_(base.count) {}

    /** Links node `id` into the graph of nodes 0..id-1. */
    void insert(uint32_t id) {
        search(id);
        std::vector<uint32_t> chosen = select(found_, m_);
        set_neighbors(id, chosen);
        for (uint32_t neighbor : chosen) {
            link_back(neighbor, id);
        }
    }

    /** The finished lists in CSR form. */
    void export_csr(std::vector<uint64_t> &offsets, std::vector<uint32_t> &neighbors) const {
        offsets.assign(1, 0);
        offsets.reserve(base_.count + 1);
        neighbors.reserve(std::accumulate(degree_.begin(), degree_.end(), size_t{0}));
        for (size_t v = 0; v < base_.count; v++) {
            const uint32_t *list = &links_[v * max_degree_];
            neighbors.insert(neighbors.end(), list, list + degree_[v]);
            offsets.push_back(neighbors.size());
        }
    }

  private:
    float node_distance(uint32_t a, uint32_t b) const {
        return distance(metric_, base_.row(a), base_.row(b), base_.dim);
    }

    /** Beam search for the nodes nearest to node `target`, from node 0;
     * leaves the best `ef` in found_, nearest first. */
    void search(uint32_t target) {
        if (++epoch_ == 0) { /* wrapped: forget the marks of 2^32 searches ago */
            std::fill(visited_.begin(), visited_.end(), 0u);
            epoch_ = 1;
        }
        Candidate start{node_distance(target, 0), 0};
        frontier_.assign(1, start);
        found_.assign(1, start); /* a heap of the ef best, farthest on top */
        visited_[0] = epoch_;
        while (!frontier_.empty()) {
            std::pop_heap(frontier_.begin(), frontier_.end(), farther);
            Candidate current = frontier_.back();
            frontier_.pop_back();
            if (found_.size() >= ef_ && found_.front() < current) {
                break; /* every node left to expand is farther than the worst kept */
            }
            const uint32_t *list = &links_[current.id * max_degree_];
            for (uint32_t i = 0; i < degree_[current.id]; i++) {
                uint32_t id = list[i];
                if (visited_[id] == epoch_) {
                    continue;
                }
                visited_[id] = epoch_;
                Candidate next{node_distance(target, id), id};
                if (found_.size() < ef_ || next < found_.front()) {
                    frontier_.push_back(next);
                    std::push_heap(frontier_.begin(), frontier_.end(), farther);
                    found_.push_back(next);
                    std::push_heap(found_.begin(), found_.end());
                    if (found_.size() > ef_) {
                        std::pop_heap(found_.begin(), found_.end());
                        found_.pop_back();
                    }
                }
            }
        }
        std::sort_heap(found_.begin(), found_.end());
    }

    /** The occlusion heuristic: walks `candidates` (nearest first, by
     * distance to one node) and keeps a candidate only when it is closer to
     * that node than to every candidate kept so far; at most `keep`. */
    std::vector<uint32_t> select(const std::vector<Candidate> &candidates, size_t keep) const {
        std::vector<uint32_t> kept;
        kept.reserve(keep);
        for (const Candidate &c : candidates) {
            if (kept.size() == keep) {
                break;
            }
            bool occluded = std::any_of(kept.begin(), kept.end(), [&](uint32_t k) {
                return node_distance(c.id, k) < c.distance;
            });
            if (!occluded) {
                kept.push_back(c.id);
            }
        }
        return kept;
    }

    void set_neighbors(uint32_t node, const std::vector<uint32_t> &ids) {
        std::copy(ids.begin(), ids.end(), links_.begin() + node * max_degree_);
        degree_[node] = static_cast<uint32_t>(ids.size());
    }

    /** Adds the link node -> added. A full list is re-pruned to the level-0
     * degree by the heuristic, with `added` among the candidates. */
    void link_back(uint32_t node, uint32_t added) {
        uint32_t *list = &links_[node * max_degree_];
        size_t degree = degree_[node];
        if (degree < max_degree_) {
            list[degree] = added;
            degree_[node]++;
            return;
        }
        pool_.clear();
        for (size_t i = 0; i < degree; i++) {
            pool_.push_back(Candidate{node_distance(node, list[i]), list[i]});
        }
        pool_.push_back(Candidate{node_distance(node, added), added});
        std::sort(pool_.begin(), pool_.end());
        set_neighbors(node, select(pool_, max_degree_));
    }

    Base base_;
    annvil_metric metric_;
    size_t m_, max_degree_, ef_;
    std::vector<uint32_t> links_, degree_;
    std::vector<uint32_t> visited_; /* visited_[v] == epoch_: seen by this search */
    uint32_t epoch_ = 0;
    std::vector<Candidate> frontier_; /* heap, nearest on top */
    std::vector<Candidate> found_;    /* the last search's answer */
    std::vector<Candidate> pool_;     /* a full list being re-pruned */
};

} // namespace

/* ------------------------------------------------------------------------ */
/* Slot: construction                                                        */
/* ------------------------------------------------------------------------ */

struct annvil_graph {
    std::vector<uint64_t> offsets;   /* count + 1 entries */
    std::vector<uint32_t> neighbors; /* offsets[count] entries */
    uint32_t entry_point = 0;
    annvil_graph_level level{};
    annvil_graph_view view{};
};

extern "C" {

static annvil_status build(const annvil_vectors *base, annvil_metric metric,
                           const annvil_params *params, uint32_t threads, annvil_graph **out,
                           annvil_error *error) {
    (void)threads; /* single-threaded */
    return guard(error, [&] {
        Base b = read_base(base, metric);
        if (out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "output handle pointer is NULL");
        }
        Params p(params, {"M", "ef_construction"});
        size_t m = p.get_size("M", kMDefault, kMMin, kMMax);
        size_t ef_construction = p.get_size("ef_construction", kEfConstructionDefault,
                                            kEfConstructionMin, kEfConstructionMax);
        auto g = std::make_unique<annvil_graph>();
        {
            Builder builder(b, metric, m, ef_construction);
            for (size_t id = 1; id < b.count; id++) {
                builder.insert(static_cast<uint32_t>(id));
            }
            builder.export_csr(g->offsets, g->neighbors);
        }
        g->level = annvil_graph_level{g->offsets.data(), g->neighbors.data()};
        g->view.struct_size = sizeof g->view;
        g->view.num_nodes = b.count;
        g->view.num_levels = 1;
        g->view.levels = &g->level;
        g->view.num_entry_points = b.count > 0 ? 1 : 0;
        g->view.entry_points = &g->entry_point;
        *out = g.release();
    });
}

static annvil_status graph_view(const annvil_graph *g, annvil_graph_view *out,
                                annvil_error *error) {
    return guard(error, [&] {
        if (g == nullptr || out == nullptr) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT, "NULL graph or output view");
        }
        /* Copy only the fields the host's struct_size covers, keeping its size. */
        size_t covered = std::min(out->struct_size, sizeof g->view);
        if (covered > sizeof(size_t)) {
            std::memcpy(reinterpret_cast<char *>(out) + sizeof(size_t),
                        reinterpret_cast<const char *>(&g->view) + sizeof(size_t),
                        covered - sizeof(size_t));
        }
    });
}

static size_t graph_memory_bytes(const annvil_graph *g) {
    if (g == nullptr) {
        return 0;
    }
    return sizeof *g + g->offsets.capacity() * sizeof(uint64_t) +
           g->neighbors.capacity() * sizeof(uint32_t);
}

static void graph_destroy(annvil_graph *g) { delete g; }

extern const annvil_construction_v1 annvil_variant_construction_table;
const annvil_construction_v1 annvil_variant_construction_table = [] {
    annvil_construction_v1 table{};
    table.struct_size = sizeof table;
    table.build = build;
    table.graph_view = graph_view;
    table.graph_memory_bytes = graph_memory_bytes;
    table.graph_destroy = graph_destroy;
    return table;
}();

} // extern "C"
