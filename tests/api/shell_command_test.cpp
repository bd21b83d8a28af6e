// The operator's copy command (api/src/shell_command.h): its status and words come back, it sees
// none of the server's files, and nothing it starts outlives it, not even what leaves its process
// group (setsid, a daemon's double fork), whether it ends, times out or is stopped.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "api/src/shell_command.h"
#include "tests/support/temp_dir.h"

using tsunagu::api::run_shell_command;
using tsunagu::testing::TempDir;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The pid a command wrote to `path` (0 if it wrote none).
pid_t pid_in(const std::string& path) {
    const std::string text = slurp(path);
    return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
}

// True when `pid` is gone or only a zombie of someone else's: the process no longer runs.
bool gone(pid_t pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty()) return true;
    const std::size_t close = stat.rfind(')');
    return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] == 'Z';
}

// A shell snippet that starts `sleep 60` in a session of its own, which writes its pid to `file`,
// and waits until it has.
std::string escaped_sleeper(const std::string& file) {
    return "setsid sh -c 'echo $$ > \"" + file + "\"; exec sleep 60' & while [ ! -s '" + file +
           "' ]; do sleep 0.01; done; ";
}

const std::atomic<bool> kNeverCancelled{false};

}  // namespace

TEST_CASE("a copy command succeeds when it exits 0 and otherwise says why in its own last words") {
    CHECK(run_shell_command("exit 0", "/dev/null", 10s, kNeverCancelled).is_ok());
    auto failed = run_shell_command("echo 'first line' >&2; echo 'remote: quota exceeded' >&2; exit 3", "/dev/null",
                                    10s, kNeverCancelled);
    CHECK(failed.message() == "exit 3: remote: quota exceeded");
    auto signalled = run_shell_command("kill -9 $$", "/dev/null", 10s, kNeverCancelled);
    CHECK(signalled.message() == "killed by signal 9");
}

TEST_CASE("a copy command gets the file as its first argument and none of the server's descriptors") {
    TempDir dir("tsunagu-shell");
    const std::string file = dir.file("a backup with spaces; and $(symbols)");
    std::ofstream(file) << "x";
    const int inherited = ::open(file.c_str(), O_RDONLY);  // no O_CLOEXEC: it would leak through exec
    REQUIRE(inherited >= 0);
    auto run = run_shell_command(
        "test -f \"$1\" || { echo \"not given: $1\" >&2; exit 1; }; "
        "fd=3; while [ $fd -lt 64 ]; do [ -e /proc/$$/fd/$fd ] && { echo \"fd $fd open\" >&2; exit 2; }; "
        "fd=$((fd + 1)); done",
        file, 10s, kNeverCancelled);
    ::close(inherited);
    INFO(run.message());
    CHECK(run.is_ok());
}

TEST_CASE("what a copy command leaves running is killed when it ends even outside its process group") {
    TempDir dir("tsunagu-shell");
    SECTION("a process in a session of its own") {
        const std::string pid_file = dir.file("escaped.pid");
        CHECK(run_shell_command(escaped_sleeper(pid_file) + "exit 0", "/dev/null", 10s, kNeverCancelled).is_ok());
        const pid_t escaped = pid_in(pid_file);
        REQUIRE(escaped > 0);
        CHECK(gone(escaped));
        if (!gone(escaped)) ::kill(escaped, SIGKILL);
    }
    SECTION("a daemon whose parent has exited (a double fork)") {
        const std::string pid_file = dir.file("daemon.pid");
        CHECK(run_shell_command("sh -c '" + std::string("setsid sh -c \"echo \\$\\$ > ") + pid_file +
                                    "; exec sleep 60\" &'; while [ ! -s '" + pid_file + "' ]; do sleep 0.01; done",
                                "/dev/null", 10s, kNeverCancelled)
                  .is_ok());
        const pid_t daemon = pid_in(pid_file);
        REQUIRE(daemon > 0);
        CHECK(gone(daemon));
        if (!gone(daemon)) ::kill(daemon, SIGKILL);
    }
}

TEST_CASE("a copy command past its timeout is killed with everything it started") {
    TempDir dir("tsunagu-shell");
    const std::string pid_file = dir.file("escaped.pid");
    const auto started = std::chrono::steady_clock::now();
    auto run = run_shell_command(escaped_sleeper(pid_file) + "sleep 60", "/dev/null", 1s, kNeverCancelled);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(run.message().find("timed out after 1 s") == 0);
    const pid_t escaped = pid_in(pid_file);
    REQUIRE(escaped > 0);
    CHECK(gone(escaped));
    if (!gone(escaped)) ::kill(escaped, SIGKILL);
}

TEST_CASE("a copy command running when the server stops is killed at once with everything it started") {
    TempDir dir("tsunagu-shell");
    const std::string pid_file = dir.file("escaped.pid");
    std::atomic<bool> stopping{false};
    std::thread stopper([&] {
        for (int i = 0; i < 1000 && pid_in(pid_file) == 0; ++i) std::this_thread::sleep_for(10ms);
        stopping = true;
    });
    const auto started = std::chrono::steady_clock::now();
    auto run = run_shell_command(escaped_sleeper(pid_file) + "sleep 60", "/dev/null", 60s, stopping);
    stopper.join();
    CHECK(std::chrono::steady_clock::now() - started < 15s);
    CHECK(run.message() == "stopped with the server");
    const pid_t escaped = pid_in(pid_file);
    REQUIRE(escaped > 0);
    CHECK(gone(escaped));
    if (!gone(escaped)) ::kill(escaped, SIGKILL);
}
