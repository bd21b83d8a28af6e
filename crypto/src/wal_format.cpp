// SQLite's WAL checksums (walChecksumBytes in wal.c), recomputed to tell a damaged header from a
// torn one.
#include "crypto/src/wal_format.h"

#include <cstring>

#include "crypto/src/big_endian.h"

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
        const std::uint32_t a = big_endian ? be32(data + i) : le32(data + i);
        const std::uint32_t b = big_endian ? be32(data + i + 4) : le32(data + i + 4);
        sum.s1 += a + sum.s2;
        sum.s2 += b + sum.s1;
    }
    return sum;
}

bool big_endian_checksums(const std::uint8_t* wal_header) { return (be32(wal_header) & 1) != 0; }

// The frame's checksum over its header's first 8 bytes and its page, continuing `previous`.
Checksum frame_checksum(const std::uint8_t* wal_header, const std::uint8_t* previous,
                        const std::uint8_t* frame_header, const std::uint8_t* page, std::size_t page_size) {
    const bool big_endian = big_endian_checksums(wal_header);
    Checksum sum{be32(previous), be32(previous + 4)};
    sum = add(sum, frame_header, 8, big_endian);
    return add(sum, page, page_size, big_endian);
}

// How the checksum moves per unit of change in the second word of its first pair (the commit
// size): that word adds to s2, and each later pair adds s2 to s1 and the new s1 to s2.
Checksum commit_size_weights(std::size_t page_size) {
    Checksum weight{0, 1};
    for (std::size_t i = 0; i < page_size / 8; ++i) {
        weight.s1 += weight.s2;
        weight.s2 += weight.s1;
    }
    return weight;
}

// The inverse of an odd number modulo 2^32 (Newton's iteration: each step doubles the good bits).
std::uint32_t inverse(std::uint32_t odd) {
    std::uint32_t x = odd;
    for (int i = 0; i < 5; ++i) x *= 2 - odd * x;
    return x;
}

bool stored_equals(const std::uint8_t* stored, Checksum sum) {
    return be32(stored) == sum.s1 && be32(stored + 4) == sum.s2;
}

}  // namespace

bool wal_header_whole(const std::uint8_t* header, std::size_t page_size) {
    if ((be32(header) & ~1u) != kWalMagic || be32(header + 4) != kWalVersion ||
        be32(header + 8) != page_size) {
        return false;
    }
    return stored_equals(header + 24, add({}, header, 24, big_endian_checksums(header)));
}

std::array<std::uint8_t, 8> wal_frame_checksum(const std::uint8_t* wal_header, const std::uint8_t* previous,
                                               const std::uint8_t* frame_header, const std::uint8_t* page,
                                               std::size_t page_size) {
    const Checksum sum = frame_checksum(wal_header, previous, frame_header, page, page_size);
    std::array<std::uint8_t, 8> out{};
    for (int i = 0; i < 4; ++i) {
        out[i] = static_cast<std::uint8_t>(sum.s1 >> (24 - 8 * i));
        out[4 + i] = static_cast<std::uint8_t>(sum.s2 >> (24 - 8 * i));
    }
    return out;
}

bool wal_frame_chains(const std::uint8_t* wal_header, const std::uint8_t* previous,
                      const std::uint8_t* frame_header, const std::uint8_t* page, std::size_t page_size) {
    return stored_equals(frame_header + 16, frame_checksum(wal_header, previous, frame_header, page, page_size));
}

std::uint32_t wal_frame_commit_size_written(const std::uint8_t* wal_header, const std::uint8_t* previous,
                                            const std::uint8_t* frame_header, const std::uint8_t* page,
                                            std::size_t page_size) {
    const std::uint32_t as_stands = be32(frame_header + 4);
    const Checksum got = frame_checksum(wal_header, previous, frame_header, page, page_size);
    const std::uint32_t d1 = be32(frame_header + 16) - got.s1, d2 = be32(frame_header + 20) - got.s2;
    const Checksum weight = commit_size_weights(page_size);
    if ((weight.s1 & 1) == 0) return as_stands;  // not solvable this way (never for 4096-byte pages)
    const std::uint32_t change = d1 * inverse(weight.s1);
    if (change == 0 || weight.s2 * change != d2) return as_stands;
    // The word as the checksum read it, changed back, and written again in the header's order.
    const bool big_endian = big_endian_checksums(wal_header);
    const std::uint32_t word = (big_endian ? be32(frame_header + 4) : le32(frame_header + 4)) + change;
    std::uint8_t bytes[4];
    for (int i = 0; i < 4; ++i) {
        bytes[i] = static_cast<std::uint8_t>(big_endian ? word >> (24 - 8 * i) : word >> (8 * i));
    }
    return be32(bytes);
}

}  // namespace tsunagu::crypto_detail
