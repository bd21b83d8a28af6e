// An advisory lock on a lock file (flock), for a store that is replaced by renaming another file
// over it: the server's data folder and a device's replica guard themselves with it.
#pragma once

#include <string>
#include <utility>

#include "crypto/status.h"

namespace tsunagu {

// Whoever has a store open holds its lock shared; whatever replaces the store's file (a re-key
// renames a re-encrypted copy over it, a restore moves one into place, an erasure removes it)
// holds it exclusive. A process that kept the old file open would go on reading and writing a
// file that is no longer the store, and every commit it made from then on would be lost.
//
// The lock file holds nothing and must never be renamed or removed: a lock on a file renamed
// away guards nothing. Locks of two FileLocks conflict even in one process (each opens the file
// anew). The kernel lets the lock go when its file is closed: on destruction, and when the process
// dies, however it dies (kill -9 included), so a crash never leaves a store locked.
//
// Thread safety: a FileLock is used from one thread at a time.
class FileLock {
public:
    enum class Mode { shared, exclusive };

    // Opens the lock file at `path` (created with mode 0600 when missing; a symbolic link there is
    // refused) and takes the lock in `mode` without waiting: busy when another holder's mode
    // conflicts, io_error when the file cannot be opened or locked. The messages name `path` only;
    // callers say what a conflict means for their store and what to do.
    static Result<FileLock> take(const std::string& path, Mode mode);

    // Holds the lock in `mode` from now on, without waiting; busy when another holder conflicts,
    // and the lock is then still held as before. Not atomic (flock): the old mode is let go
    // before the new one is taken, and on Linux a conversion that fails has lost it; it is taken
    // again before this returns. That can fail only when another took the lock exclusive in
    // between: then this answers internal and holds nothing (held() is false). A caller that
    // converts to exclusive makes that impossible by holding, meanwhile, a second lock that
    // every taker of an exclusive one holds (clients/src/replica_lock.h does).
    Status convert(Mode mode);

    bool held() const noexcept { return fd_ >= 0 && held_; }
    Mode mode() const noexcept { return mode_; }
    const std::string& path() const noexcept { return path_; }

    FileLock(FileLock&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)),
          held_(std::exchange(other.held_, false)),
          mode_(other.mode_),
          path_(std::move(other.path_)) {}
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();

private:
    FileLock(int fd, Mode mode, std::string path)
        : fd_(fd), held_(true), mode_(mode), path_(std::move(path)) {}
    int fd_ = -1;
    bool held_ = false;
    Mode mode_ = Mode::shared;
    std::string path_;
};

}  // namespace tsunagu
