// Reading an operator's secret file.
#include "api/src/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/unique_fd.h"

namespace tsunagu::api {

Result<Secret> read_secret_file(const std::string& path, const std::string& what, std::size_t min_chars,
                                const std::string& why_long) {
    const UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) {
        return errno == ENOENT ? Status(ErrorCode::not_found, "no " + what + " at " + path)
                               : Status(ErrorCode::io_error,
                                        "cannot read the " + what + " " + path + ": " + std::strerror(errno));
    }
    const int fd = file.get();
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status(ErrorCode::io_error, "cannot read the " + what + " " + path);
    if (st.st_uid != ::geteuid()) {
        return Status(ErrorCode::invalid_argument,
                      what + " " + path + " belongs to another user (uid " + std::to_string(st.st_uid) +
                          "); if it is the right one, run: chown $(id -u) " + path);
    }
    if (st.st_mode & 077) {
        return Status(ErrorCode::invalid_argument, what + " " + path + " is readable by others; run: chmod 600 " + path);
    }
    constexpr std::size_t kMaxBytes = 1024;
    if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > kMaxBytes) {
        return Status(ErrorCode::invalid_argument, what + " " + path + " must hold one line of 1 to 1024 bytes");
    }
    Secret text(static_cast<std::size_t>(st.st_size));
    const ssize_t got = ::read(fd, text.data(), text.size());
    if (got != st.st_size) return Status(ErrorCode::io_error, "cannot read the " + what + " " + path);
    const std::string_view whole = text.view();
    const std::size_t length = std::min(whole.size(), whole.find_first_of("\r\n"));
    if (length < min_chars) {
        return Status(ErrorCode::invalid_argument, "the " + what + " " + path + " holds fewer than " +
                                                       std::to_string(min_chars) + " characters: " + why_long);
    }
    return Secret::copy_of(whole.substr(0, length));
}

}  // namespace tsunagu::api
