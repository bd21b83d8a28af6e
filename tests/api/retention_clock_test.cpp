// The time compaction counts retention back from: the wall clock, which a clock set forward
// cannot rush (api/src/retention_clock.h), on a real encrypted store.
#include <catch2/catch.hpp>

#include "api/src/retention_clock.h"
#include "api/src/server_schema.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kDay = 24 * 60 * kMinute;
constexpr std::int64_t k2026_12_06 = 1'796'515'200'000;

struct Server {
    testing::TempDir dir{"tsunagu-retention-clock"};
    Store store = testing::open_test_store(dir.file("server.db"));
    Server() { REQUIRE(create_server_tables(store)); }
    std::int64_t read(RetentionClock& clock, std::int64_t wall_ms, std::int64_t steady_ms) {
        auto now = clock.read(store, wall_ms, steady_ms);
        REQUIRE(now.is_ok());
        return *now;
    }
};

}  // namespace

TEST_CASE("the retention time follows the wall clock while it runs at the monotonic clock's pace") {
    Server s;
    RetentionClock clock;
    CHECK(s.read(clock, k2026_12_06, 1'000) == k2026_12_06);  // the first reading ever
    CHECK(s.read(clock, k2026_12_06 + 60 * kMinute, 1'000 + 60 * kMinute) == k2026_12_06 + 60 * kMinute);
    CHECK(s.read(clock, k2026_12_06 + 61 * kMinute, 1'000 + 61 * kMinute) == k2026_12_06 + 61 * kMinute);
}

TEST_CASE("a clock set a year forward moves the retention time at most twice as far as time passed") {
    Server s;
    RetentionClock clock;
    REQUIRE(s.read(clock, k2026_12_06, 0) == k2026_12_06);
    // Ten minutes later the wall clock reads a year ahead.
    CHECK(s.read(clock, k2026_12_06 + 365 * kDay, 10 * kMinute) == k2026_12_06 + 20 * kMinute);
    CHECK(s.read(clock, k2026_12_06 + 365 * kDay + kDay, kDay) == k2026_12_06 + 2 * kDay);
    // Set right again, a day and a half after the start: followed at once, backwards.
    CHECK(s.read(clock, k2026_12_06 + kDay + kDay / 2, kDay + kDay / 2) == k2026_12_06 + kDay + kDay / 2);
}

TEST_CASE("a restarted server neither rewinds nor rushes the retention time and then catches up") {
    Server s;
    {
        RetentionClock before_restart;
        REQUIRE(s.read(before_restart, k2026_12_06, 5'000) == k2026_12_06);
    }
    RetentionClock after_restart;  // a new process: its monotonic clock starts anew
    // Down for a week, or the clock set a week forward: no telling which, so no step yet.
    CHECK(s.read(after_restart, k2026_12_06 + 7 * kDay, 100) == k2026_12_06);
    // Then twice the pace until it meets the wall clock.
    CHECK(s.read(after_restart, k2026_12_06 + 8 * kDay, 100 + kDay) == k2026_12_06 + 2 * kDay);
    CHECK(s.read(after_restart, k2026_12_06 + 14 * kDay, 100 + 7 * kDay) == k2026_12_06 + 14 * kDay);
    CHECK(s.read(after_restart, k2026_12_06 + 14 * kDay + kMinute, 100 + 7 * kDay + kMinute) ==
          k2026_12_06 + 14 * kDay + kMinute);
}

TEST_CASE("servers sharing a database move the retention time no faster than one does") {
    Server s;  // one database, read by two server processes, each with its own monotonic clock
    RetentionClock first, second;
    REQUIRE(s.read(first, k2026_12_06, 0) == k2026_12_06);
    REQUIRE(s.read(second, k2026_12_06, 50'000) == k2026_12_06);
    // Both clocks read a year ahead; they take turns, ten minutes apart each.
    const std::int64_t ahead = k2026_12_06 + 365 * kDay;
    for (int turn = 1; turn <= 6; ++turn) {
        const std::int64_t elapsed = turn * 10 * kMinute;
        RetentionClock& server = turn % 2 ? first : second;
        const std::int64_t steady = (turn % 2 ? 0 : 50'000) + elapsed;
        CHECK(s.read(server, ahead + elapsed, steady) <= k2026_12_06 + 2 * elapsed);
    }
    // An hour in: twice the hour, not twice the hour for each server.
    CHECK(s.read(first, ahead + 60 * kMinute, 60 * kMinute) == k2026_12_06 + 120 * kMinute);
    // A server whose own reading lags (restarted, say) still uses the time the others reached.
    RetentionClock restarted;
    CHECK(s.read(restarted, ahead + 61 * kMinute, 7) == k2026_12_06 + 120 * kMinute);
}
