// Page sealing: an AEAD over the usable part of a page; nonce and tag in its reserved tail.
// Associated data binds where the page may live (file kind and page number). A store's cipher is
// chosen when it is created and recorded in its key header (PageCipher).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tsunagu::crypto_detail {

constexpr std::size_t kPageSize = 4096;       // fixed for every encrypted store
constexpr std::size_t kNonceBytes = 24;       // random per write (192 bits, for either cipher)
constexpr std::size_t kTagBytes = 16;         // Poly1305 tag
constexpr std::size_t kReservedBytes = kNonceBytes + kTagBytes;  // SQLite's per-page reserve
constexpr std::size_t kUsableBytes = kPageSize - kReservedBytes;
constexpr std::size_t kDataKeyBytes = 32;

// The page ciphers, by the number a key header records. Both draw a 192-bit random nonce per
// write, so neither needs a counter that a crash could rewind.
//  - xchacha20_poly1305: XChaCha20-Poly1305-IETF. Runs everywhere (phones included).
//  - aes256gcm: AES-256-GCM under a per-write subkey, HChaCha20(data key, nonce[0..16)), with
//    nonce[16..24) || 0^32 as GCM's 96-bit nonce: nonces can no more repeat than XChaCha20's,
//    and with AES-NI and PCLMUL it seals a page in about half the time. libsodium runs it only
//    on x86-64 CPUs with those instructions (page_cipher_runs_here).
enum class PageCipher : std::uint32_t { xchacha20_poly1305 = 1, aes256gcm = 2 };

// Whether this machine can seal and open pages with `cipher`.
bool page_cipher_runs_here(PageCipher cipher);

// The cipher new stores get: AES-256-GCM where it runs, XChaCha20-Poly1305 elsewhere.
PageCipher fastest_page_cipher();

// For error messages: "AES-256-GCM".
const char* page_cipher_name(PageCipher cipher);

// A data key and the cipher it seals pages with. The key is kDataKeyBytes, owned elsewhere.
struct PageKey {
    const std::uint8_t* key;
    PageCipher cipher;
};

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
void seal_page(const PageKey& key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding);

// Decrypts `in` into `out` (may alias) and zeroes the reserved tail, so SQLite sees exactly the
// page it wrote (its WAL checksums cover those bytes). Returns false when authentication fails;
// `out` is then zero-filled. The cipher must run here (page_cipher_runs_here).
bool open_page(const PageKey& key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding);

}  // namespace tsunagu::crypto_detail
