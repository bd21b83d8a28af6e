// SQLite's WAL format, as far as the VFS and salvage need to check it: the 32-byte header, the
// 24-byte frame headers, and the checksums that chain them. The checksums are SQLite's (in clear,
// not keyed): they tell damage from a whole file, not tampering from a deliberate rewrite.
//
// Layout: header [magic, version, page size, checkpoint sequence, salt-1, salt-2, checksum-1,
// checksum-2], each a big-endian u32; then frames of [page number, database size after commit
// (0 if none), salt-1, salt-2, checksum-1, checksum-2][page]. A frame's checksum continues the one
// before it (the header's for the first) over its header's first 8 bytes and its page.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tsunagu::crypto_detail {

constexpr std::size_t kWalHeaderBytes = 32;
constexpr std::size_t kWalFrameHeaderBytes = 24;

// Whether `header` (kWalHeaderBytes) is one SQLite's recovery accepts for our stores: the magic
// number, the format version, a page size of `page_size`, and its own checksum.
bool wal_header_whole(const std::uint8_t* header, std::size_t page_size);

// The checksum (8 bytes, big-endian, as a frame header stores it at 16..24) of the frame whose header
// is `frame_header` and whose page is `page`, continuing `previous` (see wal_frame_chains).
std::array<std::uint8_t, 8> wal_frame_checksum(const std::uint8_t* wal_header, const std::uint8_t* previous,
                                               const std::uint8_t* frame_header, const std::uint8_t* page,
                                               std::size_t page_size);

// Whether the frame whose header is `frame_header` and whose page (as SQLite wrote it) is `page`
// carries the checksum that continues `previous`: the stored checksum bytes (8, big-endian) of the
// frame before it, or of the WAL header for the first frame. `wal_header` says the byte order.
bool wal_frame_chains(const std::uint8_t* wal_header, const std::uint8_t* previous,
                      const std::uint8_t* frame_header, const std::uint8_t* page, std::size_t page_size);

// The commit size (database size after commit, 0 for none) the frame was written with, when its
// checksum fails only because that field changed since; else its commit size as it stands. The
// checksum is a sum of 32-bit words, so a change in one word moves it by a multiple of the change
// that depends only on the word's place: the change can be solved for, and checked against the
// checksum's two halves (a change anywhere else fits both only by a 1 in 2^32 chance). Arguments
// as for wal_frame_chains.
std::uint32_t wal_frame_commit_size_written(const std::uint8_t* wal_header, const std::uint8_t* previous,
                                            const std::uint8_t* frame_header, const std::uint8_t* page,
                                            std::size_t page_size);

}  // namespace tsunagu::crypto_detail
