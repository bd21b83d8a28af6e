// SQLite's WAL checksums (walChecksumBytes in wal.c), recomputed to tell a damaged header from a
// torn one.
#include "crypto/src/wal_format.h"

#include <cstring>

namespace tsunagu::crypto_detail {
namespace {

constexpr std::uint32_t kWalMagic = 0x377f0682;  // the low bit: big-endian checksums
constexpr std::uint32_t kWalVersion = 3007000;

struct Checksum {
    std::uint32_t s1 = 0, s2 = 0;
};

std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) |
           (std::uint32_t(p[3]) << 24);
}

// Continues `sum` over `size` bytes (a multiple of 8), read as 32-bit words in the byte order the
// WAL's magic number names.
Checksum add(Checksum sum, const std::uint8_t* data, std::size_t size, bool big_endian) {
    for (std::size_t i = 0; i + 8 <= size; i += 8) {
        const std::uint32_t a = big_endian ? wal_be32(data + i) : le32(data + i);
        const std::uint32_t b = big_endian ? wal_be32(data + i + 4) : le32(data + i + 4);
        sum.s1 += a + sum.s2;
        sum.s2 += b + sum.s1;
    }
    return sum;
}

bool big_endian_checksums(const std::uint8_t* wal_header) { return (wal_be32(wal_header) & 1) != 0; }

bool stored_equals(const std::uint8_t* stored, Checksum sum) {
    return wal_be32(stored) == sum.s1 && wal_be32(stored + 4) == sum.s2;
}

}  // namespace

std::uint32_t wal_be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           std::uint32_t(p[3]);
}

bool wal_header_whole(const std::uint8_t* header, std::size_t page_size) {
    if ((wal_be32(header) & ~1u) != kWalMagic || wal_be32(header + 4) != kWalVersion ||
        wal_be32(header + 8) != page_size) {
        return false;
    }
    return stored_equals(header + 24, add({}, header, 24, big_endian_checksums(header)));
}

bool wal_frame_chains(const std::uint8_t* wal_header, const std::uint8_t* previous,
                      const std::uint8_t* frame_header, const std::uint8_t* page, std::size_t page_size) {
    const bool big_endian = big_endian_checksums(wal_header);
    Checksum sum{wal_be32(previous), wal_be32(previous + 4)};
    sum = add(sum, frame_header, 8, big_endian);
    sum = add(sum, page, page_size, big_endian);
    return stored_equals(frame_header + 16, sum);
}

}  // namespace tsunagu::crypto_detail
