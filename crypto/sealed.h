// Sealed values: single values encrypted by Tsunagu before a database it does not encrypt itself
// (PostgreSQL) stores them. XChaCha20-Poly1305-IETF under a 256-bit data key, a fresh random
// 192-bit nonce per value, and the row's id and the column's name bound as associated data: a
// sealed value copied into another row or column, or altered by one bit, does not open.
//
// Layout of a sealed value: version byte (1) | nonce (24) | ciphertext | tag (16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secret.h"
#include "crypto/status.h"

namespace tsunagu {

class Sealer {
public:
    static constexpr std::size_t kKeyBytes = 32;
    static constexpr std::size_t kOverhead = 1 + 24 + 16;

    // Takes ownership of a 32-byte data key (invalid_argument for another size).
    static Result<Sealer> with_key(Secret key);

    // The sealed form of `plaintext` for column `column` of the row `row_id`.
    std::vector<std::uint8_t> seal(std::string_view plaintext, std::string_view row_id,
                                   std::string_view column) const;
    // The plaintext; corrupt when the value was altered, belongs to another row or column, or
    // was sealed under another key (which a caller cannot tell apart, by design).
    Result<std::string> open(std::span<const std::uint8_t> sealed, std::string_view row_id,
                             std::string_view column) const;

private:
    explicit Sealer(Secret key) : key_(std::move(key)) {}
    Secret key_;
};

// Key wrapping: a data key sealed under a key-encryption key, `context` bound as associated data
// (e.g. which tenant's key it is). unwrap_key fails with wrong_key when `kek` is not the key the
// data key was wrapped with (or the wrapped bytes or context were altered).
// Both keys must be 32 bytes (invalid_argument otherwise).
Result<std::vector<std::uint8_t>> wrap_key(const Secret& kek, const Secret& key, std::string_view context);
Result<Secret> unwrap_key(const Secret& kek, std::span<const std::uint8_t> wrapped,
                          std::string_view context);

}  // namespace tsunagu
