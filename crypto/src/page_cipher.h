// Page sealing: XChaCha20-Poly1305 over the usable part of a page; nonce and tag in its reserved
// tail. Associated data binds where the page may live (file kind and page number).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tsunagu::crypto_detail {

constexpr std::size_t kPageSize = 4096;       // fixed for every encrypted store
constexpr std::size_t kNonceBytes = 24;       // XChaCha20 nonce, random per write
constexpr std::size_t kTagBytes = 16;         // Poly1305 tag
constexpr std::size_t kReservedBytes = kNonceBytes + kTagBytes;  // SQLite's per-page reserve
constexpr std::size_t kUsableBytes = kPageSize - kReservedBytes;
constexpr std::size_t kDataKeyBytes = 32;

// Associated data of one page: a domain byte and the page number. WAL frames do not bind their
// salts: after SQLite rewrites a frame in place within a transaction, it writes the following
// frames' headers with zeroed salts and fills them in at commit, without rewriting the bodies.
struct PageBinding {
    std::uint8_t bytes[5];
    std::size_t size;

    static PageBinding main_page(std::uint32_t page_number);
    static PageBinding journal_page(std::uint32_t page_number);
    static PageBinding wal_frame(std::uint32_t page_number);
};

// Encrypts the plaintext page `in` into `out` (kPageSize bytes each; may be the same buffer).
// The reserved tail of `in` is ignored; in `out` it holds the fresh nonce and the tag.
void seal_page(const std::uint8_t* key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding);

// Decrypts `in` into `out` (may alias) and zeroes the reserved tail, so SQLite sees exactly the
// page it wrote (its WAL checksums cover those bytes). Returns false when authentication fails;
// `out` is then zero-filled.
bool open_page(const std::uint8_t* key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding);

}  // namespace tsunagu::crypto_detail
