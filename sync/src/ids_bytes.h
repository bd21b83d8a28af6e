// Ids travel as 32 hex characters and are stored as 16-byte blobs (half the index size).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tsunagu::sync::detail {

using IdBytes = std::array<std::uint8_t, 16>;

// Precondition: is_id(hex).
inline IdBytes id_to_bytes(std::string_view hex) {
    auto nibble = [](char c) -> std::uint8_t { return c <= '9' ? c - '0' : c - 'a' + 10; };
    IdBytes out{};
    for (std::size_t i = 0; i < out.size() && 2 * i + 1 < hex.size(); ++i) {
        out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    }
    return out;
}

inline std::string id_from_bytes(std::span<const std::uint8_t> bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 15]);
    }
    return out;
}

}  // namespace tsunagu::sync::detail
