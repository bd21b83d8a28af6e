// The data folder's lock, its private files, and the mark of a key rotation under way.
#include "api/src/data_folder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "crypto/unique_fd.h"

namespace tsunagu::api {

namespace {

Status errno_error(const std::string& what) { return Status(ErrorCode::io_error, what + ": " + std::strerror(errno)); }

}  // namespace

Status sync_folder(const std::string& folder) {
    const UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("cannot open " + folder + " to make a change in it durable");
    if (::fsync(fd.get()) != 0) return errno_error("cannot sync " + folder);
    return Status::ok();
}

std::string rotation_marker_in(const std::string& data_dir) {
    return (std::filesystem::path(data_dir) / "tsunagu.rotating").string();
}

Status write_private_file(const std::string& path, const std::string& text, Durability durability) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return errno_error("cannot write " + path);
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("cannot write " + path);
        done += static_cast<std::size_t>(n);
    }
    ::fchmod(fd.get(), 0600);
    if (durability == Durability::durable && ::fsync(fd.get()) != 0) return errno_error("cannot sync " + path);
    if (fd.close() != 0) return errno_error("cannot write " + path);
    if (durability == Durability::cached) return Status::ok();
    const std::string folder = std::filesystem::path(path).parent_path().string();
    return sync_folder(folder.empty() ? "." : folder);
}

Status mark_rotation_started(const std::string& data_dir, const std::string& new_key_file) {
    return write_private_file(rotation_marker_in(data_dir), new_key_file + "\n", Durability::durable);
}

Status mark_rotation_finished(const std::string& data_dir) {
    const std::string path = rotation_marker_in(data_dir);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return errno_error("cannot remove " + path + " after the key rotation finished");
    }
    return sync_folder(data_dir);
}

Status rotation_unfinished(const std::string& data_dir) {
    const std::string path = rotation_marker_in(data_dir);
    std::ifstream marker(path);
    if (!marker) return Status::ok();
    std::string new_key_file;
    std::getline(marker, new_key_file);
    return Status(ErrorCode::conflict,
                  "a key rotation of " + data_dir + " was stopped part way: its pages are still sealed under the "
                  "old data key. Finish it first: tsunagu-server rotate-key --data " + data_dir +
                  " --new-key-file " + (new_key_file.empty() ? std::string("NEW-KEY-FILE") : new_key_file) +
                  " (with --key-file OLD if the old key file is not in the folder), then start with that key file");
}

Result<DataFolderLock> DataFolderLock::take(const std::string& data_dir, Mode mode) {
    const std::string path = (std::filesystem::path(data_dir) / "tsunagu.lock").string();
    auto taken = FileLock::take(path, mode);
    if (taken) return DataFolderLock(std::move(*taken));
    if (taken.status().code() != ErrorCode::busy) {
        return Status(taken.status().code(), "cannot lock the data folder: " + taken.status().message());
    }
    if (mode == Mode::exclusive) {
        return Status(ErrorCode::busy, "a server is running on " + data_dir + " (it holds " + path +
                                           "): stop it first, then run this again");
    }
    return Status(ErrorCode::busy, "the store in " + data_dir +
                                       " is being rewritten (tsunagu-server rotate-key holds " + path +
                                       "): start the server once that has finished");
}

}  // namespace tsunagu::api
