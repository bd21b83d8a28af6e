// How the shim stores SQLite's WAL so that its checksums give nothing away.
//
// SQLite checksums each WAL frame over its plaintext page (wal_format.h) and writes the sums in the
// frame's header, beside the sealed page. Stored in clear, each would tell two linear sums of the
// page's words, and two versions of a page in one WAL would tell where they differ and by how much
// (a status flipped, a date moved). So the shim stores every frame checksum XORed with a mask: a
// keyed BLAKE2b of the nonce its page was sealed with, under a key derived from the store's data
// key. Nonces are random and fresh for every write of a page, and the shim writes a frame header
// only together with a fresh seal of its page, so no mask ever hides two values.
//
// A WAL written this way says so in its header: its magic number is stored XORed with a constant,
// so SQLite's own magic on disk means a WAL an earlier version wrote, whose checksums are in clear
// (read as they are, until its generation ends). The shim translates both on the way in and out:
// SQLite only ever sees its own format.
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/secret.h"

namespace tsunagu::crypto_detail {

constexpr std::size_t kWalChecksumKeyBytes = 32;

// The key of a store's checksum masks, derived from its data key (kDataKeyBytes).
Secret wal_checksum_key(const std::uint8_t* data_key);

// Whether the WAL header `header` (at least 4 bytes, as on disk) carries SQLite's own magic number:
// a WAL an earlier version wrote, checksums in clear. Any other value (ours, or a damaged one) is
// read as ours: every WAL this version writes is masked.
bool wal_stored_in_clear(const std::uint8_t* header);

// Turns the first 4 bytes of a WAL header between SQLite's magic and its stored form. Applying
// either to the other's output gives the input back; a magic of neither kind is left as it is.
void wal_magic_to_disk(std::uint8_t* header);
void wal_magic_from_disk(std::uint8_t* header);

// XORs the 8 checksum bytes `checksum` of a frame with the mask of `nonce` (kNonceBytes, from the
// reserved tail of the frame's sealed page): masks a checksum, or unmasks a masked one.
void toggle_checksum_mask(const std::uint8_t* checksum_key, const std::uint8_t* nonce, std::uint8_t* checksum);

}  // namespace tsunagu::crypto_detail
