// The key header: the first 8 KiB of every encrypted store file, before SQLite's first page.
// Two 4 KiB slots each hold the data key wrapped under the key-encryption key (KEK), with the
// KDF parameters, a generation number and a checksum. The newest slot whose checksum holds is
// the one in force; the older slot only covers a torn write of the newer one. Changing the key
// writes the older slot with a higher generation, syncs, then mirrors it into the other slot,
// so the old key stops working the moment the first write is durable.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "crypto/secret.h"
#include "crypto/src/page_cipher.h"
#include "crypto/status.h"
#include "crypto/store.h"

namespace tsunagu::crypto_detail {

constexpr std::size_t kHeaderBytes = 8192;
constexpr std::size_t kSlotBytes = 4096;
constexpr std::size_t kSaltBytes = 16;

enum class KekKind : std::uint32_t { passphrase = 1, raw_key = 2 };

// How the KEK of a store is made: recorded in clear in each slot.
struct KekRecipe {
    KekKind kind = KekKind::raw_key;
    KdfParams kdf;  // zero for raw keys
    std::uint8_t salt[kSaltBytes] = {};

    // A fresh recipe (new random salt) for the given key source.
    static KekRecipe fresh_for(const KeySource& source);
};

// Derives the KEK from a key source following a recipe. Fails with wrong_key when the source is
// of another kind than the store expects (e.g. a key file for a passphrase-protected store).
Result<Secret> derive_kek(const KeySource& source, const KekRecipe& recipe, const std::string& path);

// The slot in force of a header, still wrapped.
struct KeySlot {
    KekRecipe recipe;
    PageCipher cipher = PageCipher::xchacha20_poly1305;  // seals the store's pages
    std::uint64_t generation = 0;
    std::uint8_t nonce[24] = {};
    std::uint8_t wrapped[32 + 16] = {};
};

// Parses an 8 KiB header. not_a_store when neither slot carries the magic, corrupt when slots
// carry it but neither checksum holds; not_a_store too when its format is unknown or its page
// cipher cannot run on this machine.
Result<KeySlot> read_newest_slot(std::span<const std::uint8_t> header, const std::string& path);

// Unwraps the data key; wrong_key when the KEK does not authenticate.
Result<Secret> unwrap_data_key(const KeySlot& slot, const Secret& kek, const std::string& path);

// Serialises one slot wrapping `data_key` (which seals pages with `cipher`) under `kek`.
std::vector<std::uint8_t> seal_slot(const KekRecipe& recipe, std::uint64_t generation,
                                    const Secret& kek, const Secret& data_key, PageCipher cipher);

// The key header of an existing store file, read from `fd` and unwrapped with `key`.
struct OpenedHeader {
    std::vector<std::uint8_t> bytes;  // the whole 8 KiB header, as on disk
    KeySlot slot;                     // the slot in force
    Secret kek;
    Secret data_key;
};

// Reads and unwraps the key header of the store file open as `fd`. Fails with corrupt for an empty
// file or one cut inside its header, not_a_store for a plain SQLite database or another file,
// wrong_key when `key` does not unwrap the data key. Nothing is written.
Result<OpenedHeader> open_key_header(int fd, const KeySource& key, const std::string& path);
// The same from the file's first kHeaderBytes bytes, as read (fewer when the file is shorter).
Result<OpenedHeader> open_key_header(std::vector<std::uint8_t> bytes, const KeySource& key, const std::string& path);

// Writes a complete new header (both slots) to an open file descriptor at offset 0 and syncs.
Status write_new_header(int fd, const KekRecipe& recipe, const Secret& kek, const Secret& data_key,
                        PageCipher cipher, const std::string& path);

// Writes `size` bytes at `offset` of the store file and syncs them.
using SlotWriter = std::function<Status(const std::uint8_t* bytes, std::size_t size, std::uint64_t offset)>;
// Rewraps the data key in an existing store file: the older slot first (synced), then the other,
// each through `write`. `written_generation`: the newest generation on disk when it returns, failed
// or not (once the first slot is written, the new key is in force) (a store open in this process writes through SQLite's own VFS: closing a
// descriptor of its own on the file would drop every POSIX lock the process holds on it).
Status rewrite_slots(const SlotWriter& write, const KekRecipe& recipe, const Secret& kek,
                     const Secret& data_key, PageCipher cipher, std::uint64_t current_generation,
                     std::uint64_t& written_generation);

}  // namespace tsunagu::crypto_detail
