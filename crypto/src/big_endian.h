// SQLite's on-disk integers (WAL and rollback-journal headers), big-endian and in clear.
#pragma once

#include <cstdint>

namespace tsunagu::crypto_detail {

inline std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           std::uint32_t(p[3]);
}

}  // namespace tsunagu::crypto_detail
