// Masked log checksums and the stored magic numbers. See checksum_masking.h.
#include "crypto/src/checksum_masking.h"

#include <sodium.h>

#include <cstring>

#include "crypto/src/big_endian.h"
#include "crypto/src/page_cipher.h"

namespace tsunagu::crypto_detail {
namespace {

constexpr std::uint32_t kSqliteMagic = 0x377f0682;  // the low bit names the checksums' byte order
// Keeps the low bit, so that the stored form tells the byte order too.
constexpr std::uint32_t kStoredMagicXor = 0x54530000;  // "TS"
constexpr std::uint8_t kSqliteJournalMagic[kJournalMagicBytes] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};
// Its first byte not zero: SQLite takes a journal whose first byte is zero for no hot journal.
constexpr std::uint8_t kStoredJournalMagic[kJournalMagicBytes] = {'t', 's', 'u', 'n', 'a', 'g', 'u', 'J'};
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "tsunagwc";
constexpr std::uint64_t kKdfChecksumMaskId = 1;

void put_be32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

}  // namespace

static_assert(kDataKeyBytes == crypto_kdf_KEYBYTES, "the data key is the KDF's master key");
static_assert(kChecksumKeyBytes >= crypto_generichash_KEYBYTES_MIN);

Secret checksum_mask_key(const std::uint8_t* data_key) {
    Secret key(kChecksumKeyBytes);
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

bool is_sqlite_journal_magic(const std::uint8_t* header) {
    return std::memcmp(header, kSqliteJournalMagic, kJournalMagicBytes) == 0;
}

bool journal_magic_to_disk(std::uint8_t* header) {
    if (!is_sqlite_journal_magic(header)) return false;
    std::memcpy(header, kStoredJournalMagic, kJournalMagicBytes);
    return true;
}

bool journal_magic_from_disk(std::uint8_t* header) {
    if (std::memcmp(header, kStoredJournalMagic, kJournalMagicBytes) != 0) return false;
    std::memcpy(header, kSqliteJournalMagic, kJournalMagicBytes);
    return true;
}

void toggle_checksum_mask(const std::uint8_t* checksum_key, const std::uint8_t* nonce, std::uint8_t* checksum,
                          std::size_t size) {
    std::uint8_t mask[crypto_generichash_BYTES_MIN];
    crypto_generichash(mask, sizeof mask, nonce, kNonceBytes, checksum_key, kChecksumKeyBytes);
    for (std::size_t i = 0; i < size && i < sizeof mask; ++i) checksum[i] ^= mask[i];
    sodium_memzero(mask, sizeof mask);
}

}  // namespace tsunagu::crypto_detail
