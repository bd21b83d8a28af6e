// The encrypting VFS shim and the registry that tells it which data key belongs to which file.
//
// SQLite never sees ciphertext and the disk never sees plaintext: the shim seals every page of
// the main database (after the 8 KiB key header), every WAL frame body and every rollback-journal
// page record on write, and opens them on read. It refuses to open any other kind of file (temp
// databases, sort spills, statement and super journals), so no plaintext can reach the disk.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "crypto/secret.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/checksum_masking.h"
#include "crypto/status.h"

namespace tsunagu::crypto_detail {

// Where an authentication failure was met, for "corrupt page N in <file>" messages.
enum class FileKind : int { none = 0, main = 1, wal = 2, journal = 3 };

// What of the file failed: a sealed page (it does not authenticate), a WAL frame's header (its
// salts or checksum no longer follow the frames before it), or the WAL's own header.
enum class CorruptPart : int { page = 0, frame_header = 1, wal_header = 2 };

// The keys and failure notes shared by one database's main, WAL and journal files.
struct FileKeys {
    FileKeys(Secret key, PageCipher page_cipher)
        : data_key(std::move(key)), cipher(page_cipher), checksum_key(checksum_mask_key(data_key.data())) {}
    Secret data_key;
    const PageCipher cipher;
    const Secret checksum_key;  // masks the WAL's frame checksums (checksum_masking.h)
    // Set once a WAL of this store is seen stored masked: every later one is (this version writes
    // no other), so the WAL's header need not be read again to tell.
    std::atomic<bool> wal_masked{false};
    std::atomic<std::uint32_t> corrupt_page{0};
    std::atomic<int> corrupt_kind{0};
    std::atomic<int> corrupt_part{0};
    std::atomic<bool> bad_layout{false};  // a page 1 without the fixed page size or reserve
};

// Registers (once per base) an encrypting VFS layered over the VFS named `base` ("" = default)
// and returns its name, to pass to sqlite3_open_v2.
Result<std::string> encrypting_vfs_over(const std::string& base);

// While alive, the VFS can open the database at `path` (absolute) and its WAL and journal.
// Registrations of one path share one FileKeys; the last one to go removes it.
class KeyRegistration {
public:
    KeyRegistration() = default;
    // Fails when `path` is already registered with a different key or cipher.
    static Result<KeyRegistration> add(const std::string& path, Secret data_key, PageCipher cipher);
    KeyRegistration(KeyRegistration&& other) noexcept;
    KeyRegistration& operator=(KeyRegistration&& other) noexcept;
    KeyRegistration(const KeyRegistration&) = delete;
    KeyRegistration& operator=(const KeyRegistration&) = delete;
    ~KeyRegistration();

    FileKeys* keys() const noexcept { return keys_.get(); }
    // How many registrations of `path` this process holds (its open Stores on that file).
    static int users(const std::string& path);
    void release() noexcept;

private:
    std::string path_;
    std::shared_ptr<FileKeys> keys_;
};

}  // namespace tsunagu::crypto_detail
