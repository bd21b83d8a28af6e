// FileLock: shared with the store's other users, exclusive for whoever replaces the store, never
// waiting, and let go by a process however it ends.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>

#include "crypto/file_lock.h"
#include "support/temp_dir.h"

using namespace tsunagu;
using testing::TempDir;
using Mode = FileLock::Mode;

namespace {

bool can_take(const std::string& path, Mode mode) {
    return FileLock::take(path, mode).is_ok();
}

}  // namespace

TEST_CASE("a shared file lock admits other shared holders and refuses an exclusive one without waiting") {
    TempDir dir;
    const std::string path = dir.file("store.lock");
    auto first = FileLock::take(path, Mode::shared);
    REQUIRE(first.is_ok());
    CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    CHECK(can_take(path, Mode::shared));
    auto refused = FileLock::take(path, Mode::exclusive);
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::busy);
    CHECK_THAT(refused.status().message(), Catch::Contains(path));
    { FileLock gone = std::move(*first); }
    CHECK(can_take(path, Mode::exclusive));
}

TEST_CASE("a file lock refused a conversion to exclusive still holds its shared lock") {
    TempDir dir;
    const std::string path = dir.file("store.lock");
    auto mine = FileLock::take(path, Mode::shared);
    REQUIRE(mine.is_ok());
    {
        auto other = FileLock::take(path, Mode::shared);
        REQUIRE(other.is_ok());
        const Status refused = mine->convert(Mode::exclusive);
        CHECK(refused.code() == ErrorCode::busy);
        CHECK(mine->held());
        CHECK(mine->mode() == Mode::shared);
    }
    // Linux let the shared lock go when it found the conflict; it was taken again.
    CHECK_FALSE(can_take(path, Mode::exclusive));
    REQUIRE(mine->convert(Mode::exclusive).is_ok());
    CHECK_FALSE(can_take(path, Mode::shared));
    REQUIRE(mine->convert(Mode::shared).is_ok());
    CHECK(can_take(path, Mode::shared));
    CHECK_FALSE(can_take(path, Mode::exclusive));
}

TEST_CASE("a file lock refuses a symbolic link in place of its file") {
    TempDir dir;
    const std::string path = dir.file("store.lock");
    std::filesystem::create_symlink(dir.file("elsewhere"), path);
    auto refused = FileLock::take(path, Mode::shared);
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::io_error);
    CHECK_THAT(refused.status().message(), Catch::Contains("is a symbolic link"));
    CHECK_FALSE(std::filesystem::exists(dir.file("elsewhere")));
}

TEST_CASE("a file lock is let go when its process is killed with SIGKILL") {
    TempDir dir;
    const std::string path = dir.file("store.lock");
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    if (child == 0) {
        auto held = FileLock::take(path, Mode::exclusive);
        const char taken = held.is_ok() ? 'y' : 'n';
        (void)::write(ready[1], &taken, 1);
        for (;;) ::pause();  // until killed: no destructor runs
    }
    ::close(ready[1]);
    char taken = 0;
    REQUIRE(::read(ready[0], &taken, 1) == 1);
    ::close(ready[0]);
    CHECK(taken == 'y');
    CHECK_FALSE(can_take(path, Mode::shared));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(can_take(path, Mode::exclusive));
}
