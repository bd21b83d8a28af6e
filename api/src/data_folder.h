// Where the server keeps its data in its folder (--data DIR): the encrypted store, by default the
// key file that seals it, and the folder's lock.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "crypto/file_lock.h"
#include "crypto/status.h"

namespace tsunagu::api {

// DIR/tsunagu.db: the embedded store (absent when the data is in PostgreSQL).
inline std::string store_path_in(const std::string& data_dir) {
    return (std::filesystem::path(data_dir) / "tsunagu.db").string();
}

// The key file: `key_file` when given (--key-file), else DIR/tsunagu.key.
inline std::string key_path_for(const std::string& data_dir, const std::string& key_file) {
    return key_file.empty() ? (std::filesystem::path(data_dir) / "tsunagu.key").string() : key_file;
}

// fsync of `folder`, so that a file created, renamed or removed in it stays so after a power cut.
Status sync_folder(const std::string& folder);

// Writes `text` to `path`, readable by its owner only (replacing an older file; a symbolic link
// there is refused). Durable: the file and its folder are fsynced before this returns.
enum class Durability { cached, durable };
Status write_private_file(const std::string& path, const std::string& text,
                          Durability durability = Durability::cached);

// DIR/tsunagu.rotating, present from the moment a key rotation wraps the store's data key under
// the new key file until every page is sealed under a new data key. While it is there, the new
// key file opens the store but the data key is still the one the old key file wrapped: whoever
// kept the old key file and a copy of the old key header could read all that is written. So no
// server starts on such a folder (rotation_unfinished), and rotate-key run again finishes the
// rotation. It holds the new key file's path, to say which to give.
std::string rotation_marker_in(const std::string& data_dir);
// Writes the marker durably (fsynced, its folder too) before the data key is wrapped anew.
Status mark_rotation_started(const std::string& data_dir, const std::string& new_key_file);
// Removes it durably once the pages are sealed under the new data key.
Status mark_rotation_finished(const std::string& data_dir);
// ok when no rotation of the folder was left part way; otherwise `conflict`, saying what to run.
Status rotation_unfinished(const std::string& data_dir);

// A lock on the data folder (a FileLock on DIR/tsunagu.lock, a file that is never renamed):
// servers hold it shared while they run (several may serve one store), and what rewrites the store
// in place (tsunagu-server rotate-key) or moves one into the folder (restore, salvage) holds it
// exclusive, so that neither runs under the other. Released when destroyed, or when the process
// dies, however it dies.
class DataFolderLock {
public:
    using Mode = FileLock::Mode;
    // Takes the lock without waiting; `busy` with what to do when the other kind is held.
    static Result<DataFolderLock> take(const std::string& data_dir, Mode mode);

private:
    explicit DataFolderLock(FileLock lock) : lock_(std::move(lock)) {}
    FileLock lock_;
};

}  // namespace tsunagu::api
