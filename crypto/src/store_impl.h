// The state behind a Store handle, shared by store.cpp, statement.cpp and maintenance.cpp.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "crypto/src/encrypting_vfs.h"
#include "crypto/src/key_header.h"
#include "crypto/store.h"

namespace tsunagu {

struct StoreImpl {
    std::string path;  // absolute; the name SQLite and the key registry know the file by
    StoreOptions options;
    std::string vfs_name;
    crypto_detail::KekRecipe recipe;
    crypto_detail::PageCipher cipher = crypto_detail::PageCipher::xchacha20_poly1305;
    Secret kek;                     // kept so re-key and repair need no second Argon2 run
    std::uint64_t generation = 0;   // of the key slot in force
    crypto_detail::KeyRegistration registration;
    sqlite3* db = nullptr;
    // Looked up by the caller's string_view: no string is built per call (heterogeneous lookup).
    struct SqlHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
    };
    std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>> cache;
    std::unique_ptr<StoreBackend> backend;  // set instead of db for Store::over()

    ~StoreImpl() { close_connection(); }
    void close_connection() noexcept;

    // Maps an SQLite result code to a Status naming this store (corrupt page N, busy, ...).
    Status error(int rc) const;
    Status error(int rc, const std::string& doing) const;
};

// Opens the SQLite connection over the registered keys and applies every per-connection rule
// (defensive mode, trusted_schema off, temp_store memory, no mmap, fixed page layout, journal
// mode, synchronous FULL). `fresh` is true when the file has no pages yet.
Status open_connection(StoreImpl& store);

// A store file opened through the SQLite VFS named `vfs_name` ("" = the default) rather than a
// descriptor of our own: closing any descriptor of a file drops every POSIX lock the process
// holds on it, those of its open connections included, and another process could then take the
// database for its own last connection and delete the WAL under them (every later commit lost).
// SQLite's unix VFS defers the close of a descriptor while the process holds locks. Closed when
// dropped.
class BaseVfsFile {
public:
    // `flags`: SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE (the file is opened as a main database).
    static Result<BaseVfsFile> open(const std::string& path, const std::string& vfs_name, int flags);
    BaseVfsFile(BaseVfsFile&&) noexcept = default;
    BaseVfsFile& operator=(BaseVfsFile&&) = delete;
    ~BaseVfsFile();
    sqlite3_file* get() { return reinterpret_cast<sqlite3_file*>(memory_.data()); }

private:
    explicit BaseVfsFile(std::size_t size) : memory_(size) {}
    std::vector<unsigned char> memory_;  // the VFS's file object (moved, its buffer stays put)
};

// The first kHeaderBytes of the store file at `path` (fewer when it is shorter), read through a
// BaseVfsFile.
Result<std::vector<std::uint8_t>> read_key_header_bytes(const std::string& path, const std::string& vfs_name);

// Creates `path` (which must not exist, or be empty) holding only a key header that wraps
// `data_key` (sealing pages with `cipher`) under `kek`.
Status create_store_file(const std::string& path, const crypto_detail::KekRecipe& recipe,
                         const Secret& kek, const Secret& data_key,
                         crypto_detail::PageCipher cipher);

// The cipher a new store, or a re-keyed one, gets under these options.
crypto_detail::PageCipher cipher_for_new_pages(const StoreOptions& options);

// Creates the store at `store.path` (which must not exist) under `store.recipe`, `store.kek` and
// `store.cipher`,
// with page 1 already written: it is built under a temporary name and linked into place only when
// complete, so a store file always holds pages and a key header alone means truncation.
Status create_initialised_store(const StoreImpl& store, const Secret& data_key);
// Removes the files creations of the store at `path` built under and left behind (a crash before
// their link): only once the store exists, when none of them can still be building.
void remove_abandoned_builds(const std::string& path);
// Finishes a Store::destroy of the store at `path` that was killed after renaming it away:
// scrambles and removes `path`.erasing, if there is one, and, while no store stands at `path`,
// the WAL, shared-memory, journal and re-key files named after it.
Status finish_destroying(const std::string& path);

}  // namespace tsunagu
