// Ownership of a POSIX file descriptor.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace tsunagu {

// Owns a file descriptor (or none: -1) and closes it on destruction or reset(). A close that
// reports an error is not checked there: a caller whose writes must be known durable fsyncs, or
// calls close() and looks at its answer, before letting go.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.release();
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    // Gives the descriptor up to the caller, who closes it from then on.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the descriptor held (if any), keeping errno as it was, and holds `fd` instead.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            const int saved = errno;
            ::close(fd_);
            errno = saved;
        }
        fd_ = fd;
    }
    // Closes the descriptor held and answers close(2)'s result (0, or -1 with errno set); 0 when
    // none was held. Holds none afterwards, whatever the answer.
    int close() noexcept { return fd_ >= 0 ? ::close(std::exchange(fd_, -1)) : 0; }

private:
    int fd_ = -1;
};

}  // namespace tsunagu
