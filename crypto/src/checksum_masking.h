// How the shim stores SQLite's WAL and rollback journal so that their checksums give nothing away.
//
// SQLite checksums what it logs over plaintext pages and stores the sums beside the sealed page:
// each WAL frame's header holds two running sums of its page's 32-bit words (wal_format.h), each
// journal record ends with the sum of every 200th byte of its page (20 bytes) from a random seed in
// the journal's header. Stored in clear, they would tell sums of the pages, and two versions of a
// page would tell where they differ and by how much (a status flipped, a date moved). So the shim
// stores each checksum XORed with a mask: a keyed BLAKE2b of the nonce its page was sealed with,
// under a key derived from the store's data key. Nonces are random and fresh for every write of a
// page, and the shim writes a checksum only together with a fresh seal of its page, so no mask
// ever hides two values.
//
// A log written this way says so in its header: its magic number is stored altered, so SQLite's
// own magic on disk means a log an earlier version wrote, checksums in clear (read as they are; a
// WAL is appended to so until its generation ends). The shim translates both on the way in and
// out: SQLite only ever sees its own format.
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/secret.h"

namespace tsunagu::crypto_detail {

constexpr std::size_t kChecksumKeyBytes = 32;
constexpr std::size_t kJournalMagicBytes = 8;

// The key of a store's checksum masks, derived from its data key (kDataKeyBytes).
Secret checksum_mask_key(const std::uint8_t* data_key);

// Whether the WAL header `header` (at least 4 bytes, as on disk) carries SQLite's own magic number:
// a WAL an earlier version wrote, checksums in clear. Any other value (ours, or a damaged one) is
// read as ours: every WAL this version writes is masked.
bool wal_stored_in_clear(const std::uint8_t* header);

// Turns the first 4 bytes of a WAL header between SQLite's magic and its stored form. Applying
// either to the other's output gives the input back; a magic of neither kind is left as it is.
void wal_magic_to_disk(std::uint8_t* header);
void wal_magic_from_disk(std::uint8_t* header);

// The same for a rollback journal's header (its first kJournalMagicBytes). Each returns whether it
// changed `header`: the journal_magic_from_disk of a journal this version wrote, masked.
bool journal_magic_to_disk(std::uint8_t* header);
bool journal_magic_from_disk(std::uint8_t* header);
// Whether `header` (kJournalMagicBytes) carries SQLite's own journal magic: as on disk, a journal an
// earlier version wrote, checksums in clear; once through journal_magic_from_disk, any journal.
bool is_sqlite_journal_magic(const std::uint8_t* header);

// XORs the `size` (at most 16) checksum bytes at `checksum` with the mask of `nonce` (kNonceBytes,
// from the reserved tail of the sealed page they belong to): masks a checksum, or unmasks a masked
// one. A WAL frame's checksum is 8 bytes, a journal record's 4.
void toggle_checksum_mask(const std::uint8_t* checksum_key, const std::uint8_t* nonce, std::uint8_t* checksum,
                          std::size_t size = 8);

}  // namespace tsunagu::crypto_detail
