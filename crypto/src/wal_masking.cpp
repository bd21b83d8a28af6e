// Masked WAL checksums and the stored magic number. See wal_masking.h.
#include "crypto/src/wal_masking.h"

#include <sodium.h>

#include <cstring>

#include "crypto/src/big_endian.h"
#include "crypto/src/page_cipher.h"

namespace tsunagu::crypto_detail {
namespace {

constexpr std::uint32_t kSqliteMagic = 0x377f0682;  // the low bit names the checksums' byte order
// Keeps the low bit, so that the stored form tells the byte order too.
constexpr std::uint32_t kStoredMagicXor = 0x54530000;  // "TS"
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "tsunagwc";
constexpr std::uint64_t kKdfChecksumMaskId = 1;

void put_be32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

}  // namespace

static_assert(kDataKeyBytes == crypto_kdf_KEYBYTES, "the data key is the KDF's master key");
static_assert(kWalChecksumKeyBytes >= crypto_generichash_KEYBYTES_MIN);

Secret wal_checksum_key(const std::uint8_t* data_key) {
    Secret key(kWalChecksumKeyBytes);
    crypto_kdf_derive_from_key(key.data(), key.size(), kKdfChecksumMaskId, kKdfContext, data_key);
    return key;
}

bool wal_stored_in_clear(const std::uint8_t* header) { return (be32(header) & ~1u) == kSqliteMagic; }

void wal_magic_to_disk(std::uint8_t* header) {
    if (wal_stored_in_clear(header)) put_be32(header, be32(header) ^ kStoredMagicXor);
}

void wal_magic_from_disk(std::uint8_t* header) {
    if (((be32(header) ^ kStoredMagicXor) & ~1u) == kSqliteMagic) put_be32(header, be32(header) ^ kStoredMagicXor);
}

void toggle_checksum_mask(const std::uint8_t* checksum_key, const std::uint8_t* nonce, std::uint8_t* checksum) {
    std::uint8_t mask[crypto_generichash_BYTES_MIN];
    crypto_generichash(mask, sizeof mask, nonce, kNonceBytes, checksum_key, kWalChecksumKeyBytes);
    for (int i = 0; i < 8; ++i) checksum[i] ^= mask[i];
    sodium_memzero(mask, sizeof mask);
}

}  // namespace tsunagu::crypto_detail
