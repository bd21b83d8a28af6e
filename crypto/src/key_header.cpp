// Key header slots: layout, wrapping with XChaCha20-Poly1305, BLAKE2b checksums.
//
// Slot layout (little-endian), 4096 bytes, the rest zero:
//   0  magic "TSUNAGU1"      8  format version (1)   12 page cipher (PageCipher: 1 =
//                                                        XChaCha20-Poly1305, 2 = AES-256-GCM)
//   16 generation            24 KEK kind             28 reserved
//   32 Argon2id ops limit    40 Argon2id mem limit   48 salt (16)
//   64 wrap nonce (24)       88 wrapped data key (32 + 16 tag)
//   136 BLAKE2b-256 of bytes [0, 136)
// The wrap authenticates bytes [0, 64) as associated data, so no parameter can be altered.
#include "crypto/src/key_header.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/src/file_util.h"
#include "crypto/src/page_cipher.h"

namespace tsunagu::crypto_detail {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'U', 'N', 'A', 'G', 'U', '1'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kAdBytes = 64;
constexpr std::size_t kNonceAt = 64;
constexpr std::size_t kWrappedAt = 88;
constexpr std::size_t kChecksumAt = 136;
constexpr std::size_t kChecksumBytes = 32;

void put_le(std::uint8_t* p, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_le(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

bool has_magic(const std::uint8_t* slot) { return std::memcmp(slot, kMagic, 8) == 0; }

// The Argon2id costs a store may be made or opened with: from libsodium's floor to libsodium's
// "sensitive" passes (4) over 256 MiB, about five times the work Tsunagu writes (3 passes over
// 64 MiB: 0.2 s on a 2-core server, 1 s at the most), room for a later build to raise it a step.
// The checksum beside them is not keyed: whoever can write a store file or a backup can put any
// cost there and make it consistent, and a cost is only authenticated once the key it derives
// unwraps the data key. Without a bound, a file could make opening it run for days, or ask for a
// terabyte, before it is found altered.
constexpr std::uint64_t kMinOpsLimit = crypto_pwhash_OPSLIMIT_MIN;
constexpr std::uint64_t kMaxOpsLimit = crypto_pwhash_OPSLIMIT_SENSITIVE;
constexpr std::uint64_t kMinMemLimit = crypto_pwhash_MEMLIMIT_MIN;
constexpr std::uint64_t kMaxMemLimit = std::uint64_t{256} << 20;

bool kdf_in_range(const KdfParams& kdf) {
    return kdf.ops_limit >= kMinOpsLimit && kdf.ops_limit <= kMaxOpsLimit && kdf.mem_limit >= kMinMemLimit &&
           kdf.mem_limit <= kMaxMemLimit;
}

std::string kdf_range_text() {
    return std::to_string(kMinOpsLimit) + " to " + std::to_string(kMaxOpsLimit) + " passes over " +
           std::to_string(kMinMemLimit >> 10) + " KiB to " + std::to_string(kMaxMemLimit >> 20) + " MiB";
}

std::string kdf_text(std::uint64_t ops_limit, std::uint64_t mem_limit) {
    return std::to_string(ops_limit) + " passes over " + std::to_string(mem_limit >> 10) + " KiB";
}

bool checksum_holds(const std::uint8_t* slot) {
    std::uint8_t sum[kChecksumBytes];
    crypto_generichash(sum, sizeof sum, slot, kChecksumAt, nullptr, 0);
    return sodium_memcmp(sum, slot + kChecksumAt, kChecksumBytes) == 0;
}

}  // namespace

KekRecipe KekRecipe::fresh_for(const KeySource& source) {
    ensure_sodium();
    KekRecipe r;
    if (source.kind() == KeySource::Kind::passphrase) {
        r.kind = KekKind::passphrase;
        r.kdf = source.kdf_params();
    } else {
        r.kind = KekKind::raw_key;
    }
    randombytes_buf(r.salt, sizeof r.salt);
    return r;
}

Result<Secret> derive_kek(const KeySource& source, const KekRecipe& recipe, const std::string& path) {
    const bool source_is_passphrase = source.kind() == KeySource::Kind::passphrase;
    const bool store_is_passphrase = recipe.kind == KekKind::passphrase;
    if (source_is_passphrase != store_is_passphrase) {
        return Status(ErrorCode::wrong_key,
                      "wrong key for store " + path + ": it is protected by " +
                          (store_is_passphrase ? "a passphrase" : "a key file or device key") +
                          ", and " + (source_is_passphrase ? "a passphrase" : "a raw key") +
                          " was given");
    }
    if (!store_is_passphrase) return Secret::copy_of(source.material().bytes());
    if (!kdf_in_range(recipe.kdf)) {  // a header's cost was checked when read: this is a caller's
        return Status(ErrorCode::invalid_argument,
                      "the passphrase's Argon2id cost for " + path + " (" +
                          kdf_text(recipe.kdf.ops_limit, recipe.kdf.mem_limit) + ") is outside " +
                          kdf_range_text() + "; use KdfParams::phone()");
    }

    Secret kek(kDataKeyBytes);
    const Secret& pass = source.material();
    if (crypto_pwhash(kek.data(), kek.size(), reinterpret_cast<const char*>(pass.data()),
                      pass.size(), recipe.salt, recipe.kdf.ops_limit, recipe.kdf.mem_limit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return Status(ErrorCode::io_error,
                      "cannot derive the key for " + path +
                          ": Argon2id ran out of memory (needs " +
                          std::to_string(recipe.kdf.mem_limit >> 20) + " MiB)");
    }
    return kek;
}

Result<KeySlot> read_newest_slot(std::span<const std::uint8_t> header, const std::string& path) {
    if (header.size() < kHeaderBytes) {
        return Status(ErrorCode::not_a_store, path + " is not an encrypted Tsunagu store (too short)");
    }
    const std::uint8_t* best = nullptr;
    std::uint64_t best_generation = 0;
    bool any_magic = false;
    for (std::size_t i = 0; i < 2; ++i) {
        const std::uint8_t* slot = header.data() + i * kSlotBytes;
        if (!has_magic(slot)) continue;
        any_magic = true;
        if (!checksum_holds(slot)) continue;
        const std::uint64_t generation = get_le(slot + 16, 8);
        if (best == nullptr || generation > best_generation) {
            best = slot;
            best_generation = generation;
        }
    }
    if (!any_magic) {
        return Status(ErrorCode::not_a_store,
                      path + " is not an encrypted Tsunagu store: its first 8 KiB hold no key header. If it "
                             "was one, its key header was destroyed and only a backup can bring its data back "
                             "(do not remove it before you have one that opens); a plain SQLite file must be "
                             "imported, not opened");
    }
    if (best == nullptr) {
        return Status(ErrorCode::corrupt, "corrupt key header in " + path +
                                              ": both key slots fail their checksum; restore the "
                                              "store from a backup");
    }
    const auto cipher = static_cast<PageCipher>(get_le(best + 12, 4));
    if (get_le(best + 8, 4) != kFormatVersion || (cipher != PageCipher::xchacha20_poly1305 &&
                                                  cipher != PageCipher::aes256gcm)) {
        return Status(ErrorCode::not_a_store, path + " uses a store format this build does not "
                                                     "know; upgrade Tsunagu to open it");
    }
    if (!page_cipher_runs_here(cipher)) {
        return Status(ErrorCode::not_a_store,
                      path + " is sealed with " + page_cipher_name(cipher) +
                          ", which this machine cannot run (it needs an x86-64 CPU with AES-NI); "
                          "open it where it was made, or restore a backup (backups are sealed "
                          "with XChaCha20-Poly1305, which runs everywhere)");
    }
    KeySlot slot;
    slot.cipher = cipher;
    slot.generation = best_generation;
    const auto kind = static_cast<std::uint32_t>(get_le(best + 24, 4));
    if (kind != static_cast<std::uint32_t>(KekKind::passphrase) &&
        kind != static_cast<std::uint32_t>(KekKind::raw_key)) {
        return Status(ErrorCode::corrupt, "corrupt key header in " + path + ": unknown key kind");
    }
    slot.recipe.kind = static_cast<KekKind>(kind);
    const std::uint64_t ops_limit = get_le(best + 32, 8), mem_limit = get_le(best + 40, 8);
    if (slot.recipe.kind == KekKind::passphrase) {
        slot.recipe.kdf.ops_limit = ops_limit;
        slot.recipe.kdf.mem_limit = static_cast<std::size_t>(mem_limit);
        if (mem_limit > kMaxMemLimit || !kdf_in_range(slot.recipe.kdf)) {
            return Status(ErrorCode::corrupt, "corrupt key header in " + path + ": its passphrase cost (" +
                                                  kdf_text(ops_limit, mem_limit) + ") is outside what Tsunagu writes (" +
                                                  kdf_range_text() +
                                                  "): the file was altered; restore it from a backup");
        }
    } else if (ops_limit != 0 || mem_limit != 0) {  // a raw key is not stretched: no cost is written
        return Status(ErrorCode::corrupt,
                      "corrupt key header in " + path + ": a passphrase cost beside a raw key: the file was altered");
    }
    std::memcpy(slot.recipe.salt, best + 48, kSaltBytes);
    std::memcpy(slot.nonce, best + kNonceAt, sizeof slot.nonce);
    std::memcpy(slot.wrapped, best + kWrappedAt, sizeof slot.wrapped);
    // Rebuild the associated data from the parsed fields: what was authenticated is what we use.
    return slot;
}

namespace {
void write_slot_ad(std::uint8_t* slot, const KekRecipe& recipe, std::uint64_t generation,
                   PageCipher cipher) {
    std::memcpy(slot, kMagic, 8);
    put_le(slot + 8, kFormatVersion, 4);
    put_le(slot + 12, static_cast<std::uint32_t>(cipher), 4);
    put_le(slot + 16, generation, 8);
    put_le(slot + 24, static_cast<std::uint32_t>(recipe.kind), 4);
    put_le(slot + 28, 0, 4);
    put_le(slot + 32, recipe.kdf.ops_limit, 8);
    put_le(slot + 40, recipe.kdf.mem_limit, 8);
    std::memcpy(slot + 48, recipe.salt, kSaltBytes);
}
}  // namespace

Result<Secret> unwrap_data_key(const KeySlot& slot, const Secret& kek, const std::string& path) {
    std::uint8_t ad[kAdBytes];
    write_slot_ad(ad, slot.recipe, slot.generation, slot.cipher);
    Secret data_key(kDataKeyBytes);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(data_key.data(), nullptr, nullptr, slot.wrapped,
                                                   sizeof slot.wrapped, ad, sizeof ad, slot.nonce,
                                                   kek.data()) != 0) {
        return Status(ErrorCode::wrong_key, "wrong key for store " + path);
    }
    return data_key;
}

std::vector<std::uint8_t> seal_slot(const KekRecipe& recipe, std::uint64_t generation,
                                    const Secret& kek, const Secret& data_key, PageCipher cipher) {
    std::vector<std::uint8_t> slot(kSlotBytes, 0);
    write_slot_ad(slot.data(), recipe, generation, cipher);
    randombytes_buf(slot.data() + kNonceAt, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(slot.data() + kWrappedAt, nullptr, data_key.data(),
                                               data_key.size(), slot.data(), kAdBytes, nullptr,
                                               slot.data() + kNonceAt, kek.data());
    crypto_generichash(slot.data() + kChecksumAt, kChecksumBytes, slot.data(), kChecksumAt,
                       nullptr, 0);
    return slot;
}

Result<OpenedHeader> open_key_header(int fd, const KeySource& key, const std::string& path) {
    std::vector<std::uint8_t> bytes(kHeaderBytes);
    auto got = read_at(fd, bytes.data(), bytes.size(), 0, path);
    if (!got) return got.status();
    bytes.resize(*got);
    return open_key_header(std::move(bytes), key, path);
}

Result<OpenedHeader> open_key_header(std::vector<std::uint8_t> bytes, const KeySource& key, const std::string& path) {
    OpenedHeader opened;
    const std::size_t got = bytes.size();
    bytes.resize(kHeaderBytes);
    opened.bytes = std::move(bytes);
    if (got == 0) {
        // Never a fresh store (those are made complete before they get this name): a loss.
        return Status(ErrorCode::corrupt, "corrupt store " + path +
                                              ": the file is empty (truncated); restore it "
                                              "from a backup, or remove it to start afresh");
    }
    if (got >= 16 && std::memcmp(opened.bytes.data(), "SQLite format 3", 15) == 0) {
        return Status(ErrorCode::not_a_store, path + " is a plain SQLite database, not an encrypted Tsunagu store");
    }
    if (got < kHeaderBytes) {
        return Status(ErrorCode::corrupt,
                      "corrupt store " + path + ": truncated inside its key header; restore from a backup");
    }
    auto slot = read_newest_slot(opened.bytes, path);
    if (!slot) return slot.status();
    opened.slot = *slot;
    auto kek = derive_kek(key, slot->recipe, path);
    if (!kek) return kek.status();
    auto data_key = unwrap_data_key(*slot, *kek, path);
    if (!data_key) return data_key.status();
    opened.kek = std::move(*kek);
    opened.data_key = std::move(*data_key);
    return opened;
}

Status write_new_header(int fd, const KekRecipe& recipe, const Secret& kek, const Secret& data_key,
                        PageCipher cipher, const std::string& path) {
    // Generation n lives in slot n % 2: generation 1 in slot 1, generation 2 in slot 0.
    std::vector<std::uint8_t> header(kHeaderBytes, 0);
    auto first = seal_slot(recipe, 1, kek, data_key, cipher);
    auto second = seal_slot(recipe, 2, kek, data_key, cipher);
    std::memcpy(header.data() + kSlotBytes, first.data(), kSlotBytes);
    std::memcpy(header.data(), second.data(), kSlotBytes);
    TSUNAGU_TRY(write_all_at(fd, header.data(), header.size(), 0, path));
    return sync_fd(fd, path);
}

Status rewrite_slots(const SlotWriter& write, const KekRecipe& recipe, const Secret& kek,
                     const Secret& data_key, PageCipher cipher, std::uint64_t current_generation,
                     std::uint64_t& written_generation) {
    written_generation = current_generation;
    for (std::uint64_t generation = current_generation + 1; generation <= current_generation + 2;
         ++generation) {
        auto slot = seal_slot(recipe, generation, kek, data_key, cipher);
        TSUNAGU_TRY(write(slot.data(), slot.size(), (generation % 2) * kSlotBytes));
        written_generation = generation;
    }
    return Status::ok();
}

}  // namespace tsunagu::crypto_detail
