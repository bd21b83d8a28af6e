// FileLock: flock on a lock file that is never renamed (see crypto/file_lock.h).
#include "crypto/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tsunagu {
namespace {

// flock without waiting; 0 when taken, else the errno (EWOULDBLOCK: another holder conflicts).
int lock_without_waiting(int fd, FileLock::Mode mode) {
    const int operation = (mode == FileLock::Mode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    while (::flock(fd, operation) != 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

const char* mode_name(FileLock::Mode mode) {
    return mode == FileLock::Mode::exclusive ? "exclusive" : "shared";
}

Status lock_failed(const std::string& path, FileLock::Mode mode, int error) {
    if (error == EWOULDBLOCK) {
        return Status(ErrorCode::busy, "the lock " + path +
                                           " is held by another, so it cannot be taken " +
                                           mode_name(mode) + " now");
    }
    return Status(ErrorCode::io_error, "cannot lock " + path + ": " + std::strerror(error));
}

}  // namespace

Result<FileLock> FileLock::take(const std::string& path, Mode mode) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        const int error = errno;
        if (error == ELOOP) {
            return Status(
                ErrorCode::io_error,
                "the lock file " + path +
                    " is a symbolic link, which is refused: remove it (it holds no data)");
        }
        return Status(ErrorCode::io_error, "cannot open the lock file " + path + ": " +
                                               std::strerror(error) +
                                               "; check the folder's permissions");
    }
    if (const int error = lock_without_waiting(fd, mode); error != 0) {
        ::close(fd);
        return lock_failed(path, mode, error);
    }
    return FileLock(fd, mode, path);
}

Status FileLock::convert(Mode mode) {
    if (!held())
        return Status(ErrorCode::internal,
                      "the lock " + path_ + " is not held, so it cannot be converted");
    if (mode == mode_) return Status::ok();
    const int error = lock_without_waiting(fd_, mode);
    if (error == 0) {
        mode_ = mode;
        return Status::ok();
    }
    // Linux let the old mode go before it found the conflict; asking for it again is harmless
    // where it was kept.
    if (lock_without_waiting(fd_, mode_) != 0) {
        held_ = false;
        return Status(ErrorCode::internal, "the lock " + path_ +
                                               " was lost while converting it: another took it " +
                                               "exclusive meanwhile");
    }
    return lock_failed(path_, mode, error);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        held_ = std::exchange(other.held_, false);
        mode_ = other.mode_;
        path_ = std::move(other.path_);
    }
    return *this;
}

FileLock::~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the last descriptor of the open file lets the flock go
}

}  // namespace tsunagu
