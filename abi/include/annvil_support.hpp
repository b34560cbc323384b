/*
 * annvil_support.hpp — helpers for writing an annvil variant in C++17, on
 * top of annvil_support.h (whose C functions stay available).
 *
 * A C++ slot function is `extern "C"` and must not let an exception
 * escape: its body runs inside annvil::guard(), and everything inside may
 * throw. The helpers here throw annvil::Error, which guard() turns into the
 * ABI status and message.
 *
 * Like annvil_support.h: header-only, nothing exported, no global state,
 * every function reentrant and callable from any thread.
 *
 * Contents (the `host evolve` prompt shows this list):
 *   annvil::guard(error, [&] { ... })        run a slot body; exceptions become
 *                                            the status and message
 *   annvil::fail(status, message)            throw annvil::Error
 *   annvil::invalid_if(bad, message)         throw ANNVIL_ERR_INVALID_ARGUMENT
 *   annvil::format(fmt, ...)                 printf-style std::string
 *   annvil::throw_if_failed([&](annvil_error *e) { return annvil_...(..., e); })
 *                                            call a C helper, throw its failure
 *   annvil::Params p(params);                p.get_size(key, fallback, min, max),
 *                                            p.get_bool(key, fallback), p.finish()
 *                                            (rejects every key never read)
 *   annvil::read_base(base, metric)          validated annvil::Base {data, count,
 *                                            dim, row(id)}
 *   annvil::Candidate                        annvil_candidate with operator<;
 *                                            annvil::farther orders a min-heap
 */
#ifndef ANNVIL_SUPPORT_HPP
#define ANNVIL_SUPPORT_HPP

#include <annvil_support.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

/** (distance, id) order of annvil_candidate, for std::sort, std::min, heaps. */
inline bool operator<(const annvil_candidate &a, const annvil_candidate &b) {
    return annvil_candidate_closer(a, b);
}

namespace annvil {

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * A failure with an ABI status; throw it anywhere inside a guard() body.
 * Ownership: holds its own copy of the message.
 */
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
ANNVIL_PRINTF(1, 2) inline std::string format(const char *fmt, ...) {
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

/** Throws Error(status, message). */
[[noreturn]] inline void fail(annvil_status status, std::string message) {
    throw Error(status, std::move(message));
}

/** Throws ANNVIL_ERR_INVALID_ARGUMENT with `message` when `bad`. */
inline void invalid_if(bool bad, const char *message) {
    if (bad) {
        fail(ANNVIL_ERR_INVALID_ARGUMENT, message);
    }
}

/**
 * Calls a function of annvil_support.h, `call(annvil_error *)`, and throws
 * its status and message when it is not ANNVIL_OK.
 */
template <class Call> void throw_if_failed(Call &&call) {
    char message[4096];
    annvil_error error{message, sizeof message};
    annvil_status status = call(&error);
    if (status != ANNVIL_OK) {
        throw Error(status, message);
    }
}

/**
 * Runs `body` (returning void) and maps every exception to a status, with
 * its message written into the host's buffer: annvil::Error to its own
 * status, std::bad_alloc to ANNVIL_ERR_OUT_OF_MEMORY, anything else to
 * ANNVIL_ERR_PANIC. The one place where exceptions stop: wrap the body of
 * every fallible `extern "C"` slot function in it.
 * Ownership: `error` is the host's buffer of the current call.
 */
template <class Body> annvil_status guard(annvil_error *error, Body &&body) noexcept {
    try {
        body();
        return ANNVIL_OK;
    } catch (const Error &e) {
        return annvil_fail(error, e.status(), "%s", e.what());
    } catch (const std::bad_alloc &e) {
        return annvil_fail(error, ANNVIL_ERR_OUT_OF_MEMORY, "out of memory: %s", e.what());
    } catch (const std::exception &e) {
        return annvil_fail(error, ANNVIL_ERR_PANIC, "C++ exception: %s", e.what());
    } catch (...) {
        return annvil_fail(error, ANNVIL_ERR_PANIC, "C++ exception of unknown type");
    }
}

/**
 * Runs an infallible accessor or destructor body (memory_bytes, destroy),
 * returning `fallback` if it throws anyway.
 */
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

/**
 * The key/value parameters of one call, read as the Rust SDK reads them:
 * the constructor checks the list (annvil_params_validate); every key read
 * with get_*() is accepted, present or not; finish() then rejects every key
 * never read with ANNVIL_ERR_UNKNOWN_PARAMETER, naming the accepted ones. A
 * value that does not parse or is out of range is
 * ANNVIL_ERR_INVALID_ARGUMENT. Call finish() after the last get_*() and
 * before any expensive work.
 * Ownership: borrows `params` and the key strings given to get_*() (use
 * string literals); lives within the slot call.
 * Thread-safety: one thread (the one serving the call).
 */
class Params {
  public:
    explicit Params(const annvil_params *params) : params_(params) {
        throw_if_failed([&](annvil_error *e) { return annvil_params_validate(params_, e); });
    }

    /** The unsigned integer `key` in [min, max], or `fallback` when absent
     * (annvil_params_size). */
    size_t get_size(const char *key, size_t fallback, size_t min, size_t max) {
        accept(key);
        size_t value = fallback;
        throw_if_failed([&](annvil_error *e) {
            return annvil_params_size(params_, key, fallback, min, max, &value, e);
        });
        return value;
    }

    /** `true` or `false`, or `fallback` when absent (annvil_params_bool). */
    bool get_bool(const char *key, bool fallback) {
        accept(key);
        bool value = fallback;
        throw_if_failed(
            [&](annvil_error *e) { return annvil_params_bool(params_, key, fallback, &value, e); });
        return value;
    }

    /** Throws ANNVIL_ERR_UNKNOWN_PARAMETER when a key was never read. */
    void finish() const {
        throw_if_failed([&](annvil_error *e) {
            return annvil_params_check(params_, accepted_.data(), accepted_.size(), e);
        });
    }

  private:
    void accept(const char *key) {
        if (!annvil_key_in(key, accepted_.data(), accepted_.size())) {
            accepted_.push_back(key);
        }
    }

    const annvil_params *params_;
    std::vector<const char *> accepted_;
};

/* ------------------------------------------------------------------------ */
/* Inputs and candidates                                                    */
/* ------------------------------------------------------------------------ */

/**
 * Borrowed row-major base vectors.
 * Ownership: the host's; valid until the handle prepared from them is
 * destroyed (annvil.h), so a handle may keep a Base.
 */
struct Base {
    const float *data = nullptr;
    size_t count = 0;
    size_t dim = 0;

    /** The vector of `id`. */
    const float *row(size_t id) const { return data + id * dim; }
};

/** The host's base vectors, validated with `metric` (annvil_check_base). */
inline Base read_base(const annvil_vectors *base, annvil_metric metric) {
    throw_if_failed([&](annvil_error *e) { return annvil_check_base(base, metric, e); });
    return Base{base->data, base->count, base->dim};
}

/** A node and its distance, ordered by (distance, id) (operator< above). */
using Candidate = annvil_candidate;

/** Heap order for a min-heap (nearest on top) with std::push_heap. */
inline bool farther(const Candidate &a, const Candidate &b) { return b < a; }

} // namespace annvil

#endif /* ANNVIL_SUPPORT_HPP */
