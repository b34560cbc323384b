/*
 * annvil_peer.hpp: a small C++17 SDK for wrapping a C++ ANN library as an
 * annvil variant (a "peer"), shared by peer-hnswlib and peer-faiss-hnsw.
 *
 * It plays the part the Rust SDK (abi/src) plays for Rust variants:
 *   - annvil_peer::Error and guard(): every exported function body runs
 *     inside guard(), which turns annvil_peer::Error into its status,
 *     std::bad_alloc into ANNVIL_ERR_OUT_OF_MEMORY and any other C++
 *     exception into ANNVIL_ERR_PANIC, with the message written (truncated
 *     at a UTF-8 character boundary) into the host's error buffer. Nothing
 *     unwinds across the C boundary.
 *   - Params: key/value parameters with unknown-key detection, as in the
 *     Rust SDK: every key read is accepted; finish() rejects the rest with
 *     ANNVIL_ERR_UNKNOWN_PARAMETER; a value that does not parse is
 *     ANNVIL_ERR_INVALID_ARGUMENT.
 *   - Base: validated base vectors; check_metric().
 *   - StandardView: the standard graph view (CSR per level, entry points),
 *     built from the library's own structures.
 *   - Results: the host's output buffers for one search.
 *   - descriptor<Peer>(): generic construction and search tables over a
 *     Peer type (see "The Peer concept" below), with every argument check
 *     of the ABI done once here.
 *
 * The library runs only inside functions this header wraps, so a peer's
 * own source holds just the mapping from annvil to the library.
 */
#ifndef ANNVIL_PEER_HPP
#define ANNVIL_PEER_HPP

#include <annvil.h>

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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace annvil_peer {

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/** A failure with an ABI status; throw it anywhere inside a slot body. */
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
__attribute__((format(printf, 1, 2))) inline std::string format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list again;
    va_copy(again, args);
    int n = std::vsnprintf(nullptr, 0, fmt, args);
    va_end(args);
    std::string out;
    if (n > 0) {
        out.resize(static_cast<size_t>(n) + 1);
        std::vsnprintf(&out[0], out.size(), fmt, again);
        out.resize(static_cast<size_t>(n));
    }
    va_end(again);
    return out;
}

[[noreturn]] inline void fail(annvil_status status, std::string message) {
    throw Error(status, std::move(message));
}

/** Throws ANNVIL_ERR_INVALID_ARGUMENT when `bad`. */
inline void invalid_if(bool bad, const char *message) {
    if (bad) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT, message);
    }
}

/*
 * Writes prefix + message into the host's error buffer, truncated to fit and
 * never inside a multi-byte UTF-8 character. Allocates nothing, so it is
 * safe inside a catch handler.
 */
inline void write_error(annvil_error *error, const char *prefix, const char *message) noexcept {
    if (error == nullptr || error->message == nullptr || error->capacity == 0) {
        return;
    }
    size_t len = 0;
    const size_t room = error->capacity - 1;
    for (const char *part : {prefix, message}) {
        for (const char *p = part; p != nullptr && *p != '\0' && len < room; p++) {
            error->message[len++] = *p;
        }
    }
    /* Cut a trailing incomplete sequence: step back over continuation bytes
     * to the lead byte and drop the character if it does not fit whole. */
    size_t start = len;
    while (start > 0 && (static_cast<unsigned char>(error->message[start - 1]) & 0xC0u) == 0x80u) {
        start--;
    }
    if (start > 0) {
        unsigned lead = static_cast<unsigned char>(error->message[start - 1]);
        size_t need = lead >= 0xF0u ? 4 : lead >= 0xE0u ? 3 : lead >= 0xC0u ? 2 : 1;
        if (start - 1 + need > len) {
            len = start - 1;
        }
    }
    error->message[len] = '\0';
}

/**
 * Runs `body` (returning void) and maps every exception to a status; the
 * one place where exceptions stop. Use for every fallible exported function.
 */
template <class Body> annvil_status guard(annvil_error *error, Body &&body) noexcept {
    try {
        body();
        return ANNVIL_OK;
    } catch (const Error &e) {
        write_error(error, "", e.what());
        return e.status();
    } catch (const std::bad_alloc &e) {
        write_error(error, "out of memory: ", e.what());
        return ANNVIL_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        write_error(error, "C++ exception: ", e.what());
        return ANNVIL_ERR_PANIC;
    } catch (...) {
        write_error(error, "", "C++ exception of unknown type");
        return ANNVIL_ERR_PANIC;
    }
}

/** Runs an infallible accessor or destructor; an exception yields `fallback`. */
template <class T, class Body> T guard_value(T fallback, Body &&body) noexcept {
    try {
        return body();
    } catch (...) {
        return fallback;
    }
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/** True when the NUL-terminated `s` is well-formed UTF-8. */
inline bool is_utf8(const char *s) {
    const unsigned char *p = reinterpret_cast<const unsigned char *>(s);
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
 * The key/value parameters of one call. Reading a key (get_*) marks it
 * known, present or not; finish() then rejects every key never read, naming
 * the accepted ones. Call finish() once everything is read and before any
 * expensive work; the generic tables call it again afterwards.
 */
class Params {
  public:
    explicit Params(const annvil_params *params) {
        if (params == nullptr || params->count == 0) {
            return;
        }
        invalid_if(params->items == nullptr, "parameter list pointer is NULL");
        for (size_t i = 0; i < params->count; i++) {
            const annvil_param &p = params->items[i];
            invalid_if(p.key == nullptr, "parameter key is NULL");
            invalid_if(p.value == nullptr, "parameter value is NULL");
            invalid_if(!is_utf8(p.key), "parameter key is not UTF-8");
            invalid_if(!is_utf8(p.value), "parameter value is not UTF-8");
            items_.push_back({p.key, p.value, false});
        }
    }

    /** The raw value of `key`, or nothing when absent. */
    std::optional<std::string_view> raw(const char *key) {
        bool seen = false;
        for (const std::string &k : accepted_) {
            seen = seen || k == key;
        }
        if (!seen) {
            accepted_.emplace_back(key);
        }
        for (Item &item : items_) {
            if (item.key == key) {
                item.read = true;
                return trim(item.value);
            }
        }
        return std::nullopt;
    }

    /**
     * An unsigned integer in [min, max], or `fallback` when absent. Accepts
     * what Rust's usize parser accepts (digits, an optional leading '+',
     * surrounding whitespace trimmed).
     */
    size_t get_size(const char *key, size_t fallback, size_t min, size_t max) {
        std::optional<std::string_view> value = raw(key);
        if (!value) {
            return fallback;
        }
        std::string_view digits = *value;
        if (!digits.empty() && digits.front() == '+') {
            digits.remove_prefix(1);
        }
        bool ok = !digits.empty();
        size_t parsed = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') {
                ok = false;
                break;
            }
            size_t d = static_cast<size_t>(c - '0');
            if (parsed > (std::numeric_limits<size_t>::max() - d) / 10) {
                ok = false;
                break;
            }
            parsed = parsed * 10 + d;
        }
        if (!ok) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("parameter `%s`: `%.*s` is not a valid unsigned integer", key,
                        static_cast<int>(value->size()), value->data()));
        }
        if (parsed < min || parsed > max) {
            fail(ANNVIL_ERR_INVALID_ARGUMENT,
                 format("parameter `%s`: %zu is out of range [%zu, %zu]", key, parsed, min, max));
        }
        return parsed;
    }

    /** `true` or `false`, or `fallback` when absent. */
    bool get_bool(const char *key, bool fallback) {
        std::optional<std::string_view> value = raw(key);
        if (!value) {
            return fallback;
        }
        if (*value == "true") {
            return true;
        }
        if (*value == "false") {
            return false;
        }
        fail(ANNVIL_ERR_INVALID_ARGUMENT,
             format("parameter `%s`: `%.*s` is not a valid bool (true or false)", key,
                    static_cast<int>(value->size()), value->data()));
    }

    /** Throws ANNVIL_ERR_UNKNOWN_PARAMETER when a key was never read. */
    void finish() const {
        std::string unknown;
        size_t count = 0;
        for (const Item &item : items_) {
            if (!item.read) {
                unknown += (count++ > 0 ? "`, `" : "") + item.key;
            }
        }
        if (count == 0) {
            return;
        }
        std::string accepted;
        for (const std::string &k : accepted_) {
            accepted += (accepted.empty() ? "" : ", ") + k;
        }
        fail(ANNVIL_ERR_UNKNOWN_PARAMETER,
             format("unknown parameter%s `%s` (accepted: %s)", count > 1 ? "s" : "",
                    unknown.c_str(), accepted.empty() ? "none" : accepted.c_str()));
    }

  private:
    struct Item {
        std::string key;
        std::string value;
        bool read;
    };

    static std::string_view trim(std::string_view s) {
        const char *space = " \t\n\r\f\v";
        size_t begin = s.find_first_not_of(space);
        if (begin == std::string_view::npos) {
            return {};
        }
        return s.substr(begin, s.find_last_not_of(space) - begin + 1);
    }

    std::vector<Item> items_;
    std::vector<std::string> accepted_;
};

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */
/* ------------------------------------------------------------------------ */

/** Borrowed row-major base vectors, valid until the handle made from them dies. */
struct Base {
    const float *data = nullptr;
    size_t count = 0;
    size_t dim = 0;

    const float *row(size_t i) const { return data + i * dim; }
};

/** Validates the host's base vectors (ids must fit in u32). */
inline Base read_base(const annvil_vectors *base) {
    invalid_if(base == nullptr, "base vectors are NULL");
    if (base->struct_size < sizeof(annvil_vectors)) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT,
             format("annvil_vectors.struct_size is %zu, expected at least %zu", base->struct_size,
                    sizeof(annvil_vectors)));
    }
    invalid_if(base->dim == 0, "base vectors have dimension 0");
    if (base->count > std::numeric_limits<size_t>::max() / sizeof(float) / base->dim) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT,
             format("%zu base vectors of dimension %zu overflow the address space", base->count,
                    base->dim));
    }
    if (static_cast<uint64_t>(base->count) > std::numeric_limits<uint32_t>::max()) {
        fail(ANNVIL_ERR_UNSUPPORTED,
             format("%zu base vectors exceed the u32 ids of the ABI", base->count));
    }
    invalid_if(base->count > 0 && base->data == nullptr, "base vector data pointer is NULL");
    return Base{base->data, base->count, base->dim};
}

/** Throws ANNVIL_ERR_UNSUPPORTED for a metric this ABI version does not define. */
inline void check_metric(annvil_metric metric) {
    if (metric != ANNVIL_METRIC_L2 && metric != ANNVIL_METRIC_ANGULAR &&
        metric != ANNVIL_METRIC_INNER_PRODUCT) {
        fail(ANNVIL_ERR_UNSUPPORTED, format("unknown metric code %u", static_cast<unsigned>(metric)));
    }
}

/* ------------------------------------------------------------------------ */
/* The standard graph view                                                  */
/* ------------------------------------------------------------------------ */

/**
 * The standard view of a built graph, owned by the graph handle: per level a
 * CSR over all nodes (node v's neighbours are neighbors[offsets[v] ..
 * offsets[v + 1]]), level 0 first, plus the entry points of the top level.
 */
class StandardView {
  public:
    /**
     * Appends the next level over `num_nodes` nodes. `each(node, emit)` is
     * called for node = 0 .. num_nodes - 1 in order and calls emit(id) for
     * every neighbour of `node` on this level (none when absent).
     */
    template <class Each> void add_level(size_t num_nodes, Each &&each) {
        num_nodes_ = num_nodes;
        Level level;
        level.offsets.reserve(num_nodes + 1);
        level.offsets.push_back(0);
        auto emit = [&level](uint32_t id) { level.neighbors.push_back(id); };
        for (size_t v = 0; v < num_nodes; v++) {
            each(static_cast<uint32_t>(v), emit);
            level.offsets.push_back(level.neighbors.size());
        }
        level.neighbors.shrink_to_fit();
        levels_.push_back(std::move(level));
    }

    /** Sets the entry points and the native handle; call after the levels. */
    void finish(std::vector<uint32_t> entry_points, void *native, const char *native_tag) {
        entry_points_ = std::move(entry_points);
        raw_levels_.clear();
        for (const Level &level : levels_) {
            raw_levels_.push_back({level.offsets.data(), level.neighbors.data()});
        }
        view_ = annvil_graph_view{};
        view_.struct_size = sizeof(annvil_graph_view);
        view_.num_nodes = num_nodes_;
        view_.num_levels = static_cast<uint32_t>(raw_levels_.size());
        view_.levels = raw_levels_.empty() ? nullptr : raw_levels_.data();
        view_.num_entry_points = static_cast<uint32_t>(entry_points_.size());
        view_.entry_points = entry_points_.empty() ? nullptr : entry_points_.data();
        view_.native = native;
        view_.native_tag = native_tag;
    }

    /** Writes the fields the host's out->struct_size covers. */
    void fill(annvil_graph_view *out) const {
        invalid_if(out == nullptr, "output view is NULL");
        size_t covered = out->struct_size < sizeof view_ ? out->struct_size : sizeof view_;
        size_t skip = sizeof(size_t); /* struct_size stays as the host set it */
        if (covered > skip) {
            std::memcpy(reinterpret_cast<char *>(out) + skip,
                        reinterpret_cast<const char *>(&view_) + skip, covered - skip);
        }
    }

    size_t memory_bytes() const {
        size_t bytes = raw_levels_.capacity() * sizeof(annvil_graph_level) +
                       entry_points_.capacity() * sizeof(uint32_t);
        for (const Level &level : levels_) {
            bytes += level.offsets.capacity() * sizeof(uint64_t) +
                     level.neighbors.capacity() * sizeof(uint32_t);
        }
        return bytes;
    }

  private:
    struct Level {
        std::vector<uint64_t> offsets;
        std::vector<uint32_t> neighbors;
    };

    size_t num_nodes_ = 0;
    std::vector<Level> levels_;
    std::vector<annvil_graph_level> raw_levels_;
    std::vector<uint32_t> entry_points_;
    annvil_graph_view view_{};
};

/* ------------------------------------------------------------------------ */
/* Search output                                                            */
/* ------------------------------------------------------------------------ */

/** The host's buffers for one search: room for capacity() results. */
class Results {
  public:
    Results(uint32_t *ids, float *distances, size_t capacity)
        : ids_(ids), distances_(distances), capacity_(capacity) {}

    size_t capacity() const { return capacity_; }
    size_t size() const { return size_; }

    /** Appends a result (push in increasing distance); false when full. */
    bool push(uint32_t id, float distance) {
        if (size_ == capacity_) {
            return false;
        }
        ids_[size_] = id;
        distances_[size_++] = distance;
        return true;
    }

  private:
    uint32_t *ids_;
    float *distances_;
    size_t capacity_;
    size_t size_ = 0;
};

/* ------------------------------------------------------------------------ */
/* Generic slot tables                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The Peer concept. A peer is a type P with:
 *
 *   static constexpr const char *kName, *kVersion, *kNativeTag;
 *
 *   struct P::Graph {                    // the library's built index
 *     static std::unique_ptr<Graph> build(const Base &, annvil_metric,
 *                                         Params &, uint32_t threads);
 *     void export_view(StandardView &) const;  // add_level() per level
 *     std::vector<uint32_t> entry_points() const;
 *     size_t memory_bytes() const;             // the library's allocations
 *   };
 *   struct P::Searcher {
 *     struct Context;                      // per-thread scratch
 *     static std::unique_ptr<Searcher> prepare(const Base &, Graph &,
 *                                              annvil_metric, Params &);
 *     void configure(Params &);            // exclusive (ABI rule)
 *     std::unique_ptr<Context> new_context() const;
 *     void search(Context &, const float *query, Results &) const;
 *     size_t memory_bytes() const;
 *   };
 *
 * The search slot always needs P's own Graph (the descriptor sets
 * ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH); the construction also exports the
 * standard view unless its build parameter `graph_view` is false, so other
 * libraries' search slots can run on the peer's graph.
 */

template <class P> struct GraphBox {
    std::unique_ptr<typename P::Graph> graph;
    Base base;
    StandardView view;
};

template <class P> struct SearcherBox {
    std::unique_ptr<typename P::Searcher> searcher;
    size_t dim;
};

template <class P> struct ContextBox {
    const SearcherBox<P> *owner;
    std::unique_ptr<typename P::Searcher::Context> scratch;
};

template <class P> struct Slots {
    static GraphBox<P> *graph_of(const annvil_graph *g) {
        return reinterpret_cast<GraphBox<P> *>(const_cast<annvil_graph *>(g));
    }

    static annvil_status build(const annvil_vectors *base, annvil_metric metric,
                               const annvil_params *params, uint32_t threads, annvil_graph **out,
                               annvil_error *error) {
        return guard(error, [&] {
            invalid_if(out == nullptr, "output handle pointer is NULL");
            Base b = read_base(base);
            check_metric(metric);
            Params p(params);
            bool export_view = p.get_bool("graph_view", true);
            auto box = std::make_unique<GraphBox<P>>();
            box->base = b;
            box->graph = P::Graph::build(b, metric, p, threads < 1 ? 1 : threads);
            p.finish();
            if (export_view) {
                box->graph->export_view(box->view);
            }
            box->view.finish(export_view ? box->graph->entry_points() : std::vector<uint32_t>{},
                             box->graph.get(), P::kNativeTag);
            *out = reinterpret_cast<annvil_graph *>(box.release());
        });
    }

    static annvil_status graph_view(const annvil_graph *graph, annvil_graph_view *out,
                                    annvil_error *error) {
        return guard(error, [&] {
            invalid_if(graph == nullptr, "graph is NULL");
            graph_of(graph)->view.fill(out);
        });
    }

    static size_t graph_memory_bytes(const annvil_graph *graph) {
        return guard_value<size_t>(0, [&]() -> size_t {
            if (graph == nullptr) {
                return 0;
            }
            const GraphBox<P> *box = graph_of(graph);
            return sizeof *box + box->graph->memory_bytes() + box->view.memory_bytes();
        });
    }

    static void graph_destroy(annvil_graph *graph) {
        guard_value<int>(0, [&] {
            delete graph_of(graph);
            return 0;
        });
    }

    static annvil_status prepare(const annvil_vectors *base, const annvil_graph_view *view,
                                 annvil_metric metric, const annvil_params *params,
                                 annvil_searcher **out, annvil_error *error) {
        return guard(error, [&] {
            invalid_if(out == nullptr, "output handle pointer is NULL");
            Base b = read_base(base);
            check_metric(metric);
            const size_t needed = offsetof(annvil_graph_view, native_tag) + sizeof(const char *);
            if (view == nullptr || view->struct_size < needed || view->native == nullptr ||
                view->native_tag == nullptr || std::strcmp(view->native_tag, P::kNativeTag) != 0) {
                fail(ANNVIL_ERR_UNSUPPORTED,
                     format("%s search needs the native graph of its own construction slot "
                            "(%s); it cannot search another library's graph view",
                            P::kName, P::kNativeTag));
            }
            /* The native handle points at the Graph object inside its box. */
            auto *graph = static_cast<typename P::Graph *>(view->native);
            if (view->num_levels > 0 && view->num_nodes != b.count) {
                fail(ANNVIL_ERR_INVALID_ARGUMENT,
                     format("graph has %zu nodes but there are %zu base vectors", view->num_nodes,
                            b.count));
            }
            Params p(params);
            auto box = std::make_unique<SearcherBox<P>>();
            box->dim = b.dim;
            box->searcher = P::Searcher::prepare(b, *graph, metric, p);
            p.finish();
            *out = reinterpret_cast<annvil_searcher *>(box.release());
        });
    }

    static annvil_status configure(annvil_searcher *searcher, const annvil_params *params,
                                   annvil_error *error) {
        return guard(error, [&] {
            invalid_if(searcher == nullptr, "searcher is NULL");
            Params p(params);
            reinterpret_cast<SearcherBox<P> *>(searcher)->searcher->configure(p);
            p.finish();
        });
    }

    static annvil_status context_new(const annvil_searcher *searcher,
                                     annvil_search_context **out, annvil_error *error) {
        return guard(error, [&] {
            invalid_if(searcher == nullptr, "searcher is NULL");
            invalid_if(out == nullptr, "output handle pointer is NULL");
            auto *owner = reinterpret_cast<const SearcherBox<P> *>(searcher);
            auto box = std::make_unique<ContextBox<P>>();
            box->owner = owner;
            box->scratch = owner->searcher->new_context();
            *out = reinterpret_cast<annvil_search_context *>(box.release());
        });
    }

    static annvil_status search(annvil_search_context *context, const float *query, size_t dim,
                                size_t n, uint32_t *ids, float *distances, size_t *found,
                                annvil_error *error) {
        return guard(error, [&] {
            invalid_if(context == nullptr, "search context is NULL");
            auto *box = reinterpret_cast<ContextBox<P> *>(context);
            if (dim != box->owner->dim) {
                fail(ANNVIL_ERR_DIMENSION_MISMATCH,
                     format("query has dimension %zu, the base vectors have %zu", dim,
                            box->owner->dim));
            }
            invalid_if(query == nullptr, "query pointer is NULL");
            invalid_if(n > 0 && ids == nullptr, "ids pointer is NULL");
            invalid_if(n > 0 && distances == nullptr, "distances pointer is NULL");
            invalid_if(found == nullptr, "found pointer is NULL");
            Results results(ids, distances, n);
            if (n > 0) {
                box->owner->searcher->search(*box->scratch, query, results);
            }
            *found = results.size();
        });
    }

    static size_t searcher_memory_bytes(const annvil_searcher *searcher) {
        return guard_value<size_t>(0, [&]() -> size_t {
            if (searcher == nullptr) {
                return 0;
            }
            auto *box = reinterpret_cast<const SearcherBox<P> *>(searcher);
            return sizeof *box + box->searcher->memory_bytes();
        });
    }

    /* The wrapped libraries keep their per-search scratch themselves
     * (hnswlib's visited-list pool, faiss's per-call buffers), so a context
     * owns only its box. */
    static size_t context_memory_bytes(const annvil_search_context *context) {
        return context == nullptr ? 0 : sizeof(ContextBox<P>);
    }

    static void context_destroy(annvil_search_context *context) {
        guard_value<int>(0, [&] {
            delete reinterpret_cast<ContextBox<P> *>(context);
            return 0;
        });
    }

    static void searcher_destroy(annvil_searcher *searcher) {
        guard_value<int>(0, [&] {
            delete reinterpret_cast<SearcherBox<P> *>(searcher);
            return 0;
        });
    }
};

/**
 * The static descriptor of peer P: its construction and search slots, no
 * refinement (the host then keeps the search's first k), and the flag that
 * ties the search to P's own construction.
 */
template <class P> const annvil_descriptor *descriptor() {
    static const annvil_construction_v1 construction = [] {
        annvil_construction_v1 t{};
        t.struct_size = sizeof t;
        t.build = Slots<P>::build;
        t.graph_view = Slots<P>::graph_view;
        t.graph_memory_bytes = Slots<P>::graph_memory_bytes;
        t.graph_destroy = Slots<P>::graph_destroy;
        return t;
    }();
    static const annvil_search_v1 search = [] {
        annvil_search_v1 t{};
        t.struct_size = sizeof t;
        t.prepare = Slots<P>::prepare;
        t.configure = Slots<P>::configure;
        t.context_new = Slots<P>::context_new;
        t.search = Slots<P>::search;
        t.searcher_memory_bytes = Slots<P>::searcher_memory_bytes;
        t.context_memory_bytes = Slots<P>::context_memory_bytes;
        t.context_distance_count = nullptr; /* the libraries count globally, not per context */
        t.context_destroy = Slots<P>::context_destroy;
        t.searcher_destroy = Slots<P>::searcher_destroy;
        return t;
    }();
    static const annvil_descriptor d = [] {
        annvil_descriptor t{};
        t.magic = ANNVIL_MAGIC;
        t.abi_major = ANNVIL_ABI_MAJOR;
        t.abi_minor = ANNVIL_ABI_MINOR;
        t.struct_size = sizeof t;
        t.name = P::kName;
        t.version = P::kVersion;
        t.flags = ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH;
        t.construction = &construction;
        t.search = &search;
        t.refinement = nullptr;
        return t;
    }();
    return &d;
}

} // namespace annvil_peer

#endif /* ANNVIL_PEER_HPP */
