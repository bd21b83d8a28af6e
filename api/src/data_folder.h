// Where the server keeps its data in its folder (--data DIR): the encrypted store, by default the
// key file that seals it, and the folder's lock.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

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

// A lock on the data folder (flock on DIR/tsunagu.lock, a file that is never renamed): servers
// hold it shared while they run (several may serve one store), and what rewrites the store in
// place (tsunagu-server rotate-key) holds it exclusive, so that neither runs under the other.
// Released when destroyed, or when the process dies, however it dies.
class DataFolderLock {
public:
    enum class Mode { shared, exclusive };
    // Takes the lock without waiting; `busy` with what to do when the other kind is held.
    static Result<DataFolderLock> take(const std::string& data_dir, Mode mode);

    DataFolderLock(DataFolderLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    DataFolderLock& operator=(DataFolderLock&& other) noexcept;
    DataFolderLock(const DataFolderLock&) = delete;
    DataFolderLock& operator=(const DataFolderLock&) = delete;
    ~DataFolderLock();

private:
    explicit DataFolderLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace tsunagu::api
