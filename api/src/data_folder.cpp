// The data folder's lock.
#include "api/src/data_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tsunagu::api {

Result<DataFolderLock> DataFolderLock::take(const std::string& data_dir, Mode mode) {
    const std::string path = (std::filesystem::path(data_dir) / "tsunagu.lock").string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Status(ErrorCode::io_error, "cannot open the data folder's lock " + path + ": " + std::strerror(errno));
    }
    const bool exclusive = mode == Mode::exclusive;
    int taken = 0;
    do {
        taken = ::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    } while (taken != 0 && errno == EINTR);
    if (taken == 0) return DataFolderLock(fd);
    const int error = errno;
    ::close(fd);
    if (error != EWOULDBLOCK) {
        return Status(ErrorCode::io_error, "cannot lock the data folder (" + path + "): " + std::strerror(error));
    }
    if (exclusive) {
        return Status(ErrorCode::busy, "a server is running on " + data_dir + " (it holds " + path +
                                           "): stop it first, then run this again");
    }
    return Status(ErrorCode::busy, "the store in " + data_dir +
                                       " is being rewritten (tsunagu-server rotate-key holds " + path +
                                       "): start the server once that has finished");
}

DataFolderLock& DataFolderLock::operator=(DataFolderLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

DataFolderLock::~DataFolderLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace tsunagu::api
