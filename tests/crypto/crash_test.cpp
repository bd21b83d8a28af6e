// Crash safety: a real writer process (crash_writer) is killed with SIGKILL at random moments;
// every time, the store it leaves opens, passes integrity_check, and holds every transaction the
// writer reported committed, each one whole. The kill times come from a seeded generator whose
// seed is printed (rerun one with TSUNAGU_TEST_SEED=<seed>).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "support/temp_dir.h"
#include "tests/crypto/store_files.h"

extern char** environ;

using namespace tsunagu;
using namespace tsunagu::testing;
namespace fs = std::filesystem;
using std::chrono::microseconds;

namespace {

constexpr int kRowsPerTransaction = 8;  // as crash_writer writes them
constexpr std::uint8_t kKeyFill = 7;
constexpr int kKillsPerMode = 50;

// test_key(kKeyFill) as crash_writer takes it: 32 bytes in hex.
std::string key_hex() {
    char byte[3];
    std::snprintf(byte, sizeof byte, "%02x", kKeyFill);
    std::string hex;
    for (int i = 0; i < 32; ++i) hex += byte;
    return hex;
}

std::mt19937_64 seeded_generator(const char* test) {
    std::uint64_t seed = std::random_device{}();
    if (const char* fixed = std::getenv("TSUNAGU_TEST_SEED")) seed = std::stoull(fixed);
    WARN(test << ": seed " << seed);
    return std::mt19937_64(seed);
}

// Random delay in [from_us, to_us] microseconds.
microseconds random_delay(std::mt19937_64& random, int from_us, int to_us) {
    return microseconds(std::uniform_int_distribution<int>(from_us, to_us)(random));
}

// How long one unit of the writer's work (a commit, a re-key) takes on this machine, learned from
// the runs so far. Kill delays scale with it, so that on a slow machine or in a sanitizer build
// kills still land inside the work rather than only around the start.
class Pace {
  public:
    explicit Pace(microseconds first_guess) : per_unit_(first_guess) {}
    int per_unit_us() const { return static_cast<int>(per_unit_.count()); }
    void learn(microseconds worked, std::size_t units) {
        if (units == 0) {
            per_unit_ = std::max(per_unit_, worked);  // one unit takes longer than that
        } else {
            per_unit_ = (per_unit_ + worked / static_cast<long>(units)) / 2;
        }
    }

  private:
    microseconds per_unit_;
};

// When a kill's delay starts: at the spawn (so it may strike while the writer opens and recovers
// the store), or once the writer reports "ready" (so it strikes the work itself).
enum class Clock { from_spawn, from_ready };

struct Killed {
    std::vector<std::string> lines;  // printed after "ready", each whole (one write per line)
    bool was_ready = false;          // it opened the store and printed "ready"
};

// Runs crash_writer with `command` on `path` for `delay`, then kills it with SIGKILL.
Killed run_and_kill(const std::string& command, const std::string& path, JournalMode mode,
                    microseconds delay, Clock clock) {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    const std::string writer = CRASH_WRITER_PATH;
    const std::string mode_arg = mode == JournalMode::wal ? "wal" : "rollback";
    const std::string key = key_hex();
    std::vector<char*> argv = {
        const_cast<char*>(writer.c_str()), const_cast<char*>(command.c_str()),
        const_cast<char*>(path.c_str()),   const_cast<char*>(mode_arg.c_str()),
        const_cast<char*>(key.c_str()),    nullptr};
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, writer.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    REQUIRE(spawned == 0);

    std::string output;
    char buffer[4096];
    auto deadline = std::chrono::steady_clock::now() + delay;
    if (clock == Clock::from_ready) {
        // Startup is slow and uneven on a busy machine; allow it 10 s to print "ready".
        for (int waited = 0; output.find("ready\n") == std::string::npos && waited < 10000;) {
            pollfd waiting{pipe_fds[0], POLLIN, 0};
            if (::poll(&waiting, 1, 10) == 0) waited += 10;
            const ssize_t n = waiting.revents ? ::read(pipe_fds[0], buffer, sizeof buffer) : 0;
            if (waiting.revents && n <= 0) break;  // the writer ended by itself: reported below
            if (n > 0) output.append(buffer, static_cast<std::size_t>(n));
        }
        deadline = std::chrono::steady_clock::now() + delay;
    }
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) break;
        pollfd waiting{pipe_fds[0], POLLIN, 0};
        if (::poll(&waiting, 1, static_cast<int>(left.count())) <= 0) break;
        const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
        if (n <= 0) break;  // the writer ended by itself: reported below
        output.append(buffer, static_cast<std::size_t>(n));
    }
    while (std::chrono::steady_clock::now() < deadline) {
        // poll's millisecond granularity: spin out the last fraction of the delay
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
        output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    INFO("crash_writer output: " << output);
    REQUIRE(WIFSIGNALED(status));  // it was still working: it did not fail or exit by itself
    REQUIRE(WTERMSIG(status) == SIGKILL);

    Killed killed;
    for (std::size_t start = 0, end; (end = output.find('\n', start)) != std::string::npos;
         start = end + 1) {
        if (output.compare(start, end - start, "ready") == 0) {
            killed.was_ready = true;
        } else {
            killed.lines.push_back(output.substr(start, end - start));
        }
    }
    return killed;
}

// Copies the store's files as the kill left them, so the check opens (and recovers) the copy and
// the next writer still meets the crashed state itself.
std::string copy_as_left(const std::string& path, const TempDir& dir) {
    const std::string copy = dir.file("check.db");
    for (const char* suffix : {"", "-wal", "-journal", "-shm"}) fs::remove(copy + suffix);
    for (const char* suffix : {"", "-wal", "-journal"}) {  // shared memory is rebuilt at open
        if (fs::exists(path + suffix)) fs::copy_file(path + suffix, copy + suffix);
    }
    return copy;
}

// The store at `path` opens, is intact, and holds transactions 1..M, each whole, where M is at
// least the highest reported and exceeds it by at most one transaction per kill (the one whose
// COMMIT returned but whose report the kill cut off). Returns M.
std::int64_t check_store(const std::string& path, JournalMode mode,
                         const std::set<std::int64_t>& reported, int kills) {
    Store store = open_ok(path, test_key(kKeyFill), options_for(mode));
    Status integrity = store.integrity_check();
    INFO(integrity.to_string());
    REQUIRE(integrity.is_ok());
    const auto rows = rows_per_transaction(store);
    std::int64_t expected = 1;
    for (const auto& [transaction, count] : rows) {
        INFO("transaction " << transaction);
        CHECK(transaction == expected++);     // no gap: a committed transaction never vanishes
        CHECK(count == kRowsPerTransaction);  // never a partial transaction
    }
    const std::int64_t highest = rows.empty() ? 0 : rows.rbegin()->first;
    const std::int64_t highest_reported = reported.empty() ? 0 : *reported.rbegin();
    CHECK(highest >= highest_reported);
    const auto unreported =
        static_cast<std::int64_t>(rows.size()) - static_cast<std::int64_t>(reported.size());
    CHECK(unreported <= kills);
    return highest;
}

void kill_writer_repeatedly(JournalMode mode) {
    auto random = seeded_generator(mode_name(mode));
    TempDir dir;
    const auto path = dir.file("s.db");
    std::set<std::int64_t> reported;
    int kills_after_a_commit = 0;
    Pace commit(microseconds(3000));
    for (int kill = 1; kill <= kKillsPerMode; ++kill) {
        // 1-30 ms, or up to ten commits where commits are slower than 3 ms.
        const microseconds delay =
            random_delay(random, 1000, std::max(30000, 10 * commit.per_unit_us()));
        // One kill in four may strike the writer's open, and so the recovery of the last crash.
        const Clock clock = kill % 4 == 0 ? Clock::from_spawn : Clock::from_ready;
        INFO(mode_name(mode) << ", kill " << kill << " after " << delay.count() << " us from "
                             << (clock == Clock::from_spawn ? "spawn" : "ready"));
        const Killed killed = run_and_kill("write", path, mode, delay, clock);
        const auto& lines = killed.lines;
        if (clock == Clock::from_ready) {
            REQUIRE(killed.was_ready);
            commit.learn(delay, lines.size());
        }
        for (const auto& line : lines) reported.insert(std::stoll(line));
        if (!lines.empty()) ++kills_after_a_commit;
        if (!fs::exists(path)) {
            CHECK(reported.empty());  // killed before the store was created
            continue;
        }
        check_store(copy_as_left(path, dir), mode, reported, kill);
    }
    // And the store itself, after the last crash.
    const std::int64_t highest = check_store(path, mode, reported, kKillsPerMode);
    CHECK(kills_after_a_commit >= kKillsPerMode / 2);  // most kills struck a writer at work
    WARN(mode_name(mode) << ": " << kKillsPerMode << " kills, " << reported.size()
                         << " commits reported, " << highest << " stored, " << kills_after_a_commit
                         << " kills after a commit");
}

}  // namespace

TEST_CASE("a writer killed at random moments in WAL mode loses no reported commit") {
    kill_writer_repeatedly(JournalMode::wal);
}

TEST_CASE("a writer killed at random moments in rollback-journal mode loses no reported commit") {
    kill_writer_repeatedly(JournalMode::rollback);
}

namespace {

constexpr int kRekeyRows = 300;

// A store of kRekeyRows rows under test_key(kKeyFill), row i's body the number i.
void make_rekey_store(const std::string& path, JournalMode mode) {
    Store store = open_ok(path, test_key(kKeyFill), options_for(mode));
    REQUIRE(store
                .exec("CREATE TABLE entry(txn INTEGER NOT NULL, seq INTEGER NOT NULL, "
                      "body TEXT NOT NULL, PRIMARY KEY(txn, seq))")
                .is_ok());
    REQUIRE(store
                .exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                      std::to_string(kRekeyRows) + ") INSERT INTO entry SELECT i, 0, printf('%0500d', i) FROM n")
                .is_ok());
}

// Every row of make_rekey_store, whole.
void check_rekey_store(Store& store) {
    Status integrity = store.integrity_check();
    INFO(integrity.to_string());
    REQUIRE(integrity.is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM entry") == kRekeyRows);
    CHECK(query_int(store, "SELECT sum(CAST(body AS INTEGER)) FROM entry") == kRekeyRows * (kRekeyRows + 1) / 2);
}

}  // namespace

TEST_CASE("a re-key killed at any moment leaves the old or the new store, complete") {
    constexpr int kKills = 25;
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        auto random = seeded_generator("re-key");
        TempDir dir;
        const auto path = dir.file("s.db");
        make_rekey_store(path, mode);
        int new_key_states = 0;
        int rekeys_reported = 0;
        int kills_made = 0;
        Pace rekey(microseconds(5000));
        // kKills kills, then (rarely: a machine whose pace changed under the test) up to kKills
        // more aimed at the side of the switch no kill struck yet, so that both are exercised.
        const auto covered = [&](int kills) { return new_key_states > 0 && new_key_states < kills; };
        for (int kill = 1; kill <= kKills || (kill <= 2 * kKills && !covered(kill - 1)); ++kill) {
            const std::string header_before = read_bytes(path).substr(0, kKeyHeaderBytes);
            // Up to three re-keys' time: a third of the kills strike the first re-key, before or
            // after its rename; the others let one or two complete first. Past kKills: within
            // the first half of a re-key when no kill struck before the switch, or after two
            // re-keys' time when none struck after it.
            const int unit = rekey.per_unit_us();
            const microseconds delay = kill <= kKills     ? random_delay(random, 100, 3 * unit)
                                       : new_key_states > 0 ? random_delay(random, 100, std::max(200, unit / 2))
                                                            : random_delay(random, 2 * unit, 4 * unit);
            INFO(mode_name(mode) << ", kill " << kill << " after " << delay.count() << " us");
            const Killed killed = run_and_kill("rekey", path, mode, delay, Clock::from_ready);
            REQUIRE(killed.was_ready);
            const auto& lines = killed.lines;
            const auto rekeyed = std::count(lines.begin(), lines.end(), "rekeyed");
            rekey.learn(delay, static_cast<std::size_t>(rekeyed));
            rekeys_reported += static_cast<int>(rekeyed);

            Store store = open_ok(path, test_key(kKeyFill), options_for(mode));
            check_rekey_store(store);
            CHECK_FALSE(fs::exists(path + ".rekey"));  // a partial copy is cleared at open
            const bool new_key = read_bytes(path).substr(0, kKeyHeaderBytes) != header_before;
            if (rekeyed > 0) CHECK(new_key);  // a re-key that reported done is never undone
            if (new_key) ++new_key_states;
            kills_made = kill;
        }
        // Kills struck on both sides of the switch to the new data key.
        CHECK(new_key_states > 0);
        CHECK(new_key_states < kills_made);
        WARN(mode_name(mode) << ": " << kills_made << " kills during re-key, " << rekeys_reported
                             << " re-keys reported, " << new_key_states
                             << " kills left a new data key");
    }
}

namespace {

// crash_writer's `command` (rekey-to or change-key-to) killed at moments in its swaps between a key
// and its inverse: exactly one of the two opens the store, and it is complete.
void kill_key_swaps(const std::string& command) {
    constexpr int kKills = 20;
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        auto random = seeded_generator(command.c_str());
        TempDir dir;
        const auto path = dir.file("s.db");
        make_rekey_store(path, mode);
        int inverse_key_states = 0;
        int kills_made = 0;
        Pace rekey(microseconds(5000));
        // As above: past kKills (rarely), more kills until the store was found under both keys.
        const auto covered = [&](int kills) { return inverse_key_states > 0 && inverse_key_states < kills; };
        for (int kill = 1; kill <= kKills || (kill <= 2 * kKills && !covered(kill - 1)); ++kill) {
            const microseconds delay = random_delay(random, 100, 3 * rekey.per_unit_us());
            INFO(mode_name(mode) << ", kill " << kill << " after " << delay.count() << " us");
            const Killed killed = run_and_kill(command, path, mode, delay, Clock::from_ready);
            REQUIRE(killed.was_ready);
            const auto rekeyed = std::count(killed.lines.begin(), killed.lines.end(), "rekeyed");
            rekey.learn(delay, static_cast<std::size_t>(rekeyed));

            // The key and its inverse, which crash_writer swaps between: exactly one opens it.
            auto under_key = Store::open(path, test_key(kKeyFill), options_for(mode));
            auto under_inverse =
                Store::open(path, test_key(static_cast<std::uint8_t>(~kKeyFill)), options_for(mode));
            REQUIRE(under_key.is_ok() != under_inverse.is_ok());
            Store& store = under_key.is_ok() ? *under_key : *under_inverse;
            check_rekey_store(store);
            CHECK_FALSE(fs::exists(path + ".rekey"));
            if (under_inverse.is_ok()) ++inverse_key_states;
            kills_made = kill;
        }
        // Kills left the store under each key: re-keys completed between them, and were struck.
        CHECK(inverse_key_states > 0);
        CHECK(inverse_key_states < kills_made);
        WARN(mode_name(mode) << ": " << kills_made << " kills during " << command << ", " << inverse_key_states
                             << " left the store under the other key");
    }
}

}  // namespace

TEST_CASE("a re-key to a new key killed at any moment leaves the store complete under the old key or the new") {
    kill_key_swaps("rekey-to");
}

TEST_CASE("a key change (the data key rewrapped) killed at any moment leaves the store under the old key or the new") {
    kill_key_swaps("change-key-to");
}

TEST_CASE("a store whose creation is killed is either absent or complete, and can be created") {
    auto random = seeded_generator("creation");
    // The kill delay's upper bound follows the outcomes, so that about half the kills strike
    // before the store is complete however slow the machine is today.
    int upper_us = 10000;
    int absent = 0;
    for (int kill = 1; kill <= 30; ++kill) {
        TempDir dir;
        const auto path = dir.file("s.db");
        const microseconds delay = random_delay(random, 200, upper_us);
        INFO("kill " << kill << " after " << delay.count() << " us");
        const auto lines =
            run_and_kill("write", path, JournalMode::wal, delay, Clock::from_spawn).lines;
        std::set<std::int64_t> reported;
        for (const auto& line : lines) reported.insert(std::stoll(line));

        StoreOptions existing_only = options_for(JournalMode::wal);
        existing_only.create_if_missing = false;
        auto store = Store::open(path, test_key(kKeyFill), existing_only);
        if (!store.is_ok()) {
            INFO(store.status().to_string());
            CHECK(store.status().code() == ErrorCode::not_found);
            CHECK(reported.empty());
            ++absent;
            upper_us = upper_us * 5 / 4;
            // Whatever the killed creation left behind does not stop a new one.
            Store created = open_ok(path, test_key(kKeyFill));
            CHECK(created.integrity_check().is_ok());
            continue;
        }
        store->close();
        check_store(path, JournalMode::wal, reported, 1);
        upper_us = std::max(1000, upper_us * 4 / 5);
    }
    CHECK(absent > 0);   // kills struck before the store was complete
    CHECK(absent < 30);  // and after
    WARN("creation: " << absent << " of 30 kills left no store");
}
