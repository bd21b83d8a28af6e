// Key sources: passphrases (Argon2id), key files and app-provided keys.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>

#include "crypto/src/file_util.h"
#include "crypto/src/page_cipher.h"
#include "crypto/store.h"

namespace tsunagu {

using crypto_detail::kDataKeyBytes;

KdfParams KdfParams::phone() {
    return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

KdfParams KdfParams::fast_for_tests() {
    return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
}

KeySource KeySource::passphrase(std::string_view passphrase, KdfParams params) {
    return KeySource(Kind::passphrase, Secret::copy_of(passphrase), params);
}

Result<KeySource> KeySource::raw_key(std::span<const std::uint8_t> key) {
    if (key.size() != kDataKeyBytes) {
        return Status(ErrorCode::invalid_argument,
                      "a device key must be exactly 32 bytes, got " + std::to_string(key.size()));
    }
    return KeySource(Kind::raw_key, Secret::copy_of(key), {});
}

Result<KeySource> KeySource::key_file(const std::string& path) {
    crypto_detail::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return Status(ErrorCode::not_found, "cannot open key file " + path +
                                                ": it must exist (make one with --key-file on "
                                                "first start)");
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return crypto_detail::errno_status("cannot stat " + path);
    // A key file someone else owns could be one they made, or can replace: a store sealed under it
    // is theirs to read.
    if (st.st_uid != ::geteuid()) {
        return Status(ErrorCode::invalid_argument,
                      "key file " + path + " belongs to another user (uid " + std::to_string(st.st_uid) +
                          "), not to the user this runs as (uid " + std::to_string(::geteuid()) +
                          "); if it is the right key, run: chown $(id -u) " + path);
    }
    if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
        return Status(ErrorCode::invalid_argument, "key file " + path + " is readable by others (mode " +
                                                       mode + "); run: chmod 600 " + path);
    }
    if (st.st_size != static_cast<off_t>(kDataKeyBytes)) {
        return Status(ErrorCode::invalid_argument,
                      "key file " + path + " must hold exactly 32 bytes, it holds " +
                          std::to_string(st.st_size));
    }
    Secret key(kDataKeyBytes);
    auto got = crypto_detail::read_at(fd.get(), key.data(), key.size(), 0, path);
    if (!got) return got.status();
    if (*got != kDataKeyBytes) return Status(ErrorCode::io_error, "short read of key file " + path);
    return KeySource(Kind::raw_key, std::move(key), {});
}

Status create_key_file(const std::string& path) {
    ensure_sodium();
    return write_key_file(path, Secret::random(kDataKeyBytes));
}

namespace {

// Gives the unnamed file `fd` (O_TMPFILE) the name `path`; like link(2), it never overwrites.
// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, the file's /proc/self/fd entry serves.
int link_unnamed(int fd, const std::string& path) {
    if (::linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return -1;
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    return ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
}

}  // namespace

Status write_key_file(const std::string& path, const Secret& key) {
    if (key.size() != kDataKeyBytes) {
        return Status(ErrorCode::invalid_argument,
                      "a key file holds exactly 32 bytes, not " + std::to_string(key.size()));
    }
    // Linked into place only once whole and durable (linking refuses to overwrite): running a
    // command killed half way again finishes the job instead of refusing a key file of 0 bytes.
    // The file is written unnamed (O_TMPFILE), so a kill leaves no copy of the key behind either;
    // where the filesystem cannot (EOPNOTSUPP), under a temporary name removed afterwards.
    const std::string folder = std::filesystem::path(path).parent_path().empty()
                                   ? std::string(".")
                                   : std::filesystem::path(path).parent_path().string();
    crypto_detail::UniqueFd fd(::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
    std::string temporary;  // the fallback's name, if it has one
    if (!fd && (errno == EOPNOTSUPP || errno == EISDIR)) {
        temporary = path + ".XXXXXX";
        fd = crypto_detail::UniqueFd(::mkostemp(temporary.data(), O_CLOEXEC));  // mode 0600
    }
    if (!fd) return crypto_detail::errno_status("cannot create a key file beside " + path);
    const std::string& named = temporary.empty() ? path : temporary;
    Status written = [&]() -> Status {
        TSUNAGU_TRY(crypto_detail::write_all_at(fd.get(), key.data(), key.size(), 0, named));
        TSUNAGU_TRY(crypto_detail::sync_fd(fd.get(), named));
        const int linked = temporary.empty() ? link_unnamed(fd.get(), path) : ::link(temporary.c_str(), path.c_str());
        if (linked != 0) {
            if (errno == EEXIST) {
                return Status(ErrorCode::already_exists,
                              "key file " + path + " already exists; refusing to overwrite a key");
            }
            return crypto_detail::errno_status("cannot create key file " + path);
        }
        return Status::ok();
    }();
    if (!temporary.empty()) ::unlink(temporary.c_str());
    TSUNAGU_TRY(written);
    return crypto_detail::sync_parent_dir(path);
}

}  // namespace tsunagu
