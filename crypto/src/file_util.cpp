// POSIX helpers for the store's own file I/O.
#include "crypto/src/file_util.h"

#include "crypto/durable.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace tsunagu::crypto_detail {

Status errno_status(const std::string& what) {
    return Status(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

Status write_all_at(int fd, const void* data, std::size_t size, off_t offset, const std::string& path) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_status("cannot write " + path);
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
    return Status::ok();
}

Result<std::size_t> read_at(int fd, void* data, std::size_t size, off_t offset, const std::string& path) {
    auto* p = static_cast<std::uint8_t*>(data);
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, p + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_status("cannot read " + path);
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return done;
}

Status sync_fd(int fd, const std::string& path) {
    if (::fsync(fd) != 0) return errno_status("cannot sync " + path);
    return Status::ok();
}

Status sync_parent_dir(const std::string& path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_status(std::string("cannot open folder ").append(dir.string()));
    return sync_fd(fd.get(), dir.string());
}

Result<std::string> absolute_path(const std::string& path) {
    std::filesystem::path p(path);
    std::filesystem::path dir = p.parent_path();
    if (dir.empty()) dir = ".";
    char resolved[PATH_MAX];
    if (::realpath(dir.c_str(), resolved) == nullptr) {
        return Status(ErrorCode::not_found, "folder " + dir.string() + " does not exist: create it first");
    }
    return (std::filesystem::path(resolved) / p.filename()).string();
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

Status move_into_place(const std::string& from, const std::string& to, const std::string& what) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return Status::ok();
    if (errno == EEXIST) {
        return Status(ErrorCode::already_exists, to + " was created by something else while the " + what +
                                                     " was written; it was left as it is: choose a new name");
    }
    if (errno == EINVAL || errno == ENOSYS) {
        if (::rename(from.c_str(), to.c_str()) == 0) return Status::ok();
    }
    return errno_status("cannot move the finished " + what + " " + from + " to " + to);
}

}  // namespace tsunagu::crypto_detail

namespace tsunagu {

Status make_durable(const std::string& path) {
    crypto_detail::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return crypto_detail::errno_status("cannot open " + path + " to sync it");
    TSUNAGU_TRY(crypto_detail::sync_fd(fd.get(), path));
    return crypto_detail::sync_parent_dir(path);
}

Status make_removal_durable(const std::string& path) { return crypto_detail::sync_parent_dir(path); }

}  // namespace tsunagu
