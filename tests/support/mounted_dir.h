// A temporary folder with a file system mounted on it for one test (the suite runs as root, as the
// README's set-up does): a small tmpfs, to fill a disk, or another folder seen read-only. Lazily
// unmounted, then removed, when destroyed, and unmounted too when a later step of mounting fails.
#pragma once

#include <sys/mount.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <string>

#include "support/temp_dir.h"

namespace tsunagu::testing {

struct SmallTmpfs {
    std::size_t bytes;
};
struct ReadOnlyBind {
    std::string source;
};

class MountedDir {
public:
    explicit MountedDir(const SmallTmpfs& fs) : dir_("tsunagu-tmpfs") {
        const std::string options = "size=" + std::to_string(fs.bytes) + ",mode=0700";
        mount_or_fail("a tmpfs of " + std::to_string(fs.bytes) + " bytes",
                      ::mount("tmpfs", at(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()));
    }
    explicit MountedDir(const ReadOnlyBind& view) : dir_("tsunagu-read-only") {
        mount_or_fail(view.source + " here", ::mount(view.source.c_str(), at(), nullptr, MS_BIND, nullptr));
        mount_or_fail(view.source + " read-only",
                      ::mount(nullptr, at(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr));
    }
    MountedDir(const MountedDir&) = delete;
    MountedDir& operator=(const MountedDir&) = delete;

    std::string path() const { return dir_.path().string(); }
    std::string file(const std::string& name) const { return dir_.file(name); }

private:
    const char* at() const { return dir_.path().c_str(); }
    void mount_or_fail(const std::string& what, int result) {
        if (result != 0) FAIL("cannot mount " << what << " (" << std::strerror(errno) << "): run the tests as root");
        unmount_.at = at();
    }

    // Destroyed before the folder is removed: what was mounted there is let go first.
    struct Unmount {
        const char* at = nullptr;  // set once something is mounted
        ~Unmount() {
            if (at) ::umount2(at, MNT_DETACH);
        }
    };
    TempDir dir_;
    Unmount unmount_;
};

}  // namespace tsunagu::testing
