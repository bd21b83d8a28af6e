// Status and Result<T>: how every layer of Tsunagu reports expected failures.
// A failure carries a code a program can branch on and a message a person can act on.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tsunagu {

enum class ErrorCode {
    ok = 0,
    invalid_argument,  // the caller passed something malformed; the message names it
    not_found,         // the thing asked for does not exist
    already_exists,    // the thing to create is already there
    wrong_key,         // the key or passphrase does not open this store
    corrupt,           // stored data failed authentication or is structurally damaged
    not_a_store,       // the file is not an encrypted Tsunagu store
    io_error,          // the operating system refused a read, write or sync
    busy,              // another connection holds a lock; retry later
    constraint,        // a uniqueness or check constraint refused the write
    validation,        // a value does not satisfy the schema
    forbidden,         // the caller's role or scope does not allow this
    conflict,          // the write raced another and was not applied
    unavailable,       // a peer (server, network) could not be reached
    internal,          // a bug: an invariant did not hold
    storage_full,      // the disk (a phone's storage) is full: nothing was written; free space, retry
};
// The last code: new ones are only appended (the C API's tsunagu_code mirrors the values).
inline constexpr ErrorCode kLastErrorCode = ErrorCode::storage_full;

// Stable lower-case name of a code, as used in JSON errors and logs ("wrong_key").
const char* error_code_name(ErrorCode code) noexcept;
// The code whose error_code_name() is `name`, if any.
std::optional<ErrorCode> error_code_named(std::string_view name) noexcept;

// The outcome of an operation that returns no value. Cheap to copy when ok.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }

    bool is_ok() const noexcept { return code_ == ErrorCode::ok; }
    explicit operator bool() const noexcept { return is_ok(); }
    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    // "wrong_key: wrong key for store data/tsunagu.db"
    std::string to_string() const;

private:
    ErrorCode code_ = ErrorCode::ok;
    std::string message_;
};

// Either a value or a failed Status. Accessing value() of a failure is a programming error.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
        assert(!std::get<Status>(state_).is_ok() && "a Result built from a Status must be a failure");
    }
    Result(ErrorCode code, std::string message) : state_(Status(code, std::move(message))) {}

    bool is_ok() const noexcept { return std::holds_alternative<T>(state_); }
    explicit operator bool() const noexcept { return is_ok(); }

    // The failure, or an ok Status. On a temporary Result (`TSUNAGU_TRY(f().status())`) it is a
    // copy: a reference into the temporary would dangle once the full expression ends.
    const Status& status() const& {
        static const Status kOk;
        return is_ok() ? kOk : std::get<Status>(state_);
    }
    Status status() && { return is_ok() ? Status{} : std::get<Status>(std::move(state_)); }
    T& value() & { return std::get<T>(state_); }
    const T& value() const& { return std::get<T>(state_); }
    T&& value() && { return std::get<T>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

private:
    std::variant<T, Status> state_;
};

}  // namespace tsunagu

// Returns the failed Status of an expression (a Status or a Result) from the enclosing function.
#define TSUNAGU_TRY(expr) TSUNAGU_TRY_IMPL(expr, TSUNAGU_CONCAT(tsunagu_try_, __COUNTER__))
#define TSUNAGU_CONCAT(a, b) TSUNAGU_CONCAT_IMPL(a, b)
#define TSUNAGU_CONCAT_IMPL(a, b) a##b
#define TSUNAGU_TRY_IMPL(expr, name)                              \
    do {                                                          \
        auto&& name = (expr);                                     \
        if (!name.is_ok()) return ::tsunagu::detail::status_of(name); \
    } while (0)

namespace tsunagu::detail {
inline const Status& status_of(const Status& s) { return s; }
template <typename T>
const Status& status_of(const Result<T>& r) { return r.status(); }
}  // namespace tsunagu::detail
