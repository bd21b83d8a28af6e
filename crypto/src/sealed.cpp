// Sealed values and key wrapping (crypto/sealed.h).
#include "crypto/sealed.h"

#include <sodium.h>

#include <cstring>

namespace tsunagu {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(Sealer::kOverhead == 1 + kNonceBytes + kTagBytes);

// Associated data: a domain label, then each part length-prefixed, so that ("ab", "c") and
// ("a", "bc") bind differently.
std::string associated_data(std::string_view domain, std::string_view a, std::string_view b) {
    std::string ad(domain);
    for (std::string_view part : {a, b}) {
        const auto n = static_cast<std::uint32_t>(part.size());
        for (int shift = 24; shift >= 0; shift -= 8) ad.push_back(static_cast<char>((n >> shift) & 0xff));
        ad.append(part);
    }
    return ad;
}

std::vector<std::uint8_t> seal_bytes(const std::uint8_t* key, std::span<const std::uint8_t> plain,
                                     const std::string& ad) {
    std::vector<std::uint8_t> out(1 + kNonceBytes + plain.size() + kTagBytes);
    out[0] = kVersion;
    std::uint8_t* nonce = out.data() + 1;
    randombytes_buf(nonce, kNonceBytes);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out.data() + 1 + kNonceBytes, nullptr, plain.data(), plain.size(),
        reinterpret_cast<const std::uint8_t*>(ad.data()), ad.size(), nullptr, nonce, key);
    return out;
}

// Opens into `out` (plain.size() bytes): false when the value does not authenticate.
bool open_bytes(const std::uint8_t* key, std::span<const std::uint8_t> sealed, const std::string& ad,
                std::uint8_t* out) {
    if (sealed.size() < Sealer::kOverhead || sealed[0] != kVersion) return false;
    const std::uint8_t* nonce = sealed.data() + 1;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(
               out, nullptr, nullptr, sealed.data() + 1 + kNonceBytes,
               sealed.size() - 1 - kNonceBytes, reinterpret_cast<const std::uint8_t*>(ad.data()),
               ad.size(), nonce, key) == 0;
}

}  // namespace

Result<Sealer> Sealer::with_key(Secret key) {
    ensure_sodium();
    if (key.size() != kKeyBytes) {
        return Status(ErrorCode::invalid_argument,
                      "a sealing key has 32 bytes, not " + std::to_string(key.size()));
    }
    return Sealer(std::move(key));
}

std::vector<std::uint8_t> Sealer::seal(std::string_view plaintext, std::string_view row_id,
                                       std::string_view column) const {
    return seal_bytes(key_.data(),
                      {reinterpret_cast<const std::uint8_t*>(plaintext.data()), plaintext.size()},
                      associated_data("tsunagu/sealed/v1", row_id, column));
}

Result<std::string> Sealer::open(std::span<const std::uint8_t> sealed, std::string_view row_id,
                                 std::string_view column) const {
    std::string plain(sealed.size() >= kOverhead ? sealed.size() - kOverhead : 0, '\0');
    if (!open_bytes(key_.data(), sealed, associated_data("tsunagu/sealed/v1", row_id, column),
                    reinterpret_cast<std::uint8_t*>(plain.data()))) {
        return Status(ErrorCode::corrupt, "a sealed value of column " + std::string(column) +
                                              " does not authenticate: altered, moved from "
                                              "another row, or sealed under another key");
    }
    return plain;
}

Result<std::vector<std::uint8_t>> wrap_key(const Secret& kek, const Secret& key, std::string_view context) {
    ensure_sodium();
    if (kek.size() != Sealer::kKeyBytes || key.size() != Sealer::kKeyBytes) {
        return Status(ErrorCode::invalid_argument, "key wrapping takes 32-byte keys");
    }
    return seal_bytes(kek.data(), key.bytes(), associated_data("tsunagu/wrapped-key/v1", context, ""));
}

Result<Secret> unwrap_key(const Secret& kek, std::span<const std::uint8_t> wrapped,
                          std::string_view context) {
    ensure_sodium();
    if (kek.size() != Sealer::kKeyBytes) {
        return Status(ErrorCode::invalid_argument, "a key-encryption key has 32 bytes");
    }
    Secret key(wrapped.size() >= Sealer::kOverhead ? wrapped.size() - Sealer::kOverhead : 0);
    if (key.empty() ||
        !open_bytes(kek.data(), wrapped, associated_data("tsunagu/wrapped-key/v1", context, ""), key.data())) {
        return Status(ErrorCode::wrong_key, "the key-encryption key does not open the wrapped key of " +
                                                std::string(context));
    }
    return key;
}

}  // namespace tsunagu
