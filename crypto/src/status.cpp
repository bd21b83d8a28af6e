// Names of error codes and the printable form of a Status.
#include "crypto/status.h"

namespace tsunagu {

std::optional<ErrorCode> error_code_named(std::string_view name) noexcept {
    for (int c = 0; c <= static_cast<int>(kLastErrorCode); ++c) {
        if (name == error_code_name(static_cast<ErrorCode>(c))) return static_cast<ErrorCode>(c);
    }
    return std::nullopt;
}

const char* error_code_name(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::ok: return "ok";
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::already_exists: return "already_exists";
        case ErrorCode::wrong_key: return "wrong_key";
        case ErrorCode::corrupt: return "corrupt";
        case ErrorCode::not_a_store: return "not_a_store";
        case ErrorCode::io_error: return "io_error";
        case ErrorCode::busy: return "busy";
        case ErrorCode::constraint: return "constraint";
        case ErrorCode::validation: return "validation";
        case ErrorCode::forbidden: return "forbidden";
        case ErrorCode::conflict: return "conflict";
        case ErrorCode::unavailable: return "unavailable";
        case ErrorCode::internal: return "internal";
        case ErrorCode::storage_full: return "storage_full";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (is_ok()) return "ok";
    return std::string(error_code_name(code_)) + ": " + message_;
}

}  // namespace tsunagu
