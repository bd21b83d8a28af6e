// Small POSIX helpers for the store's own file I/O (key header, key files, fsync of folders).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto/status.h"
#include "crypto/unique_fd.h"

namespace tsunagu::crypto_detail {

using tsunagu::UniqueFd;

// io_error carrying strerror(errno) after `what`.
Status errno_status(const std::string& what);
Status write_all_at(int fd, const void* data, std::size_t size, off_t offset, const std::string& path);
// Reads up to `size` bytes; returns how many were read (short only at end of file).
Result<std::size_t> read_at(int fd, void* data, std::size_t size, off_t offset, const std::string& path);
Status sync_fd(int fd, const std::string& path);
// fsync of the folder holding `path`, so a create, rename or unlink in it is durable.
Status sync_parent_dir(const std::string& path);
// The absolute, symlink-free form of `path` (its folder must exist; the file need not).
Result<std::string> absolute_path(const std::string& path);
bool file_exists(const std::string& path);
// Moves the finished file `from` to `to`, which was checked not to exist: refused with
// already_exists (naming `what`, and `from` removed by the caller) when a file appeared there
// meanwhile, rather than replacing it. Where the filesystem cannot refuse a rename by itself
// (exFAT, some network mounts: EINVAL), a plain rename follows the earlier check.
Status move_into_place(const std::string& from, const std::string& to, const std::string& what);

}  // namespace tsunagu::crypto_detail
