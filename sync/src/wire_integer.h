// Integers on the wire. nlohmann's get<int>() takes any number or a boolean and casts it: 2.5
// reads as 2, true as 1, 2^64-1 as -1, and 1e300 is undefined behaviour. The protocol's integers
// are JSON integers within their type's range; anything else is malformed, whichever reader
// (a document's from_json, or a SAX reader of the fast forms) meets it.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "sync/change.h"

namespace tsunagu::sync::detail {

// `value` as a T, or nothing when it is not a JSON integer T can hold.
template <typename T>
std::optional<T> wire_integer(const Json& value) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    if (value.is_number_unsigned()) {  // nlohmann reads every non-negative integer as unsigned
        const auto v = value.get<std::uint64_t>();
        if (v > kMax) return std::nullopt;
        return static_cast<T>(v);
    }
    if (!value.is_number_integer()) return std::nullopt;
    const auto v = value.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) return std::nullopt;
    } else if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) || v > static_cast<std::int64_t>(kMax)) {
        return std::nullopt;
    }
    return static_cast<T>(v);
}

// The message a malformed integer member is refused with.
inline std::string not_an_integer(const std::string& member) {
    return "\"" + member + "\" must be an integer";
}

// The throwing form, for from_json: std::invalid_argument(not_an_integer(member)).
template <typename T>
T integer_from(const Json& value, const char* member) {
    if (auto v = wire_integer<T>(value)) return *v;
    throw std::invalid_argument(not_an_integer(member));
}

// Member `key` of the object `in`, required: at()'s refusal when absent, integer_from's otherwise.
template <typename T>
T integer_at(const Json& in, const char* key) {
    return integer_from<T>(in.at(key), key);
}

// Member `key` of the object `in`: `fallback` when absent, integer_from's refusal when malformed.
template <typename T>
T integer_or(const Json& in, const char* key, T fallback) {
    const auto it = in.find(key);
    return it == in.end() ? fallback : integer_from<T>(*it, key);
}

}  // namespace tsunagu::sync::detail
