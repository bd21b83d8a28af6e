// The time a server's compaction measures retention by: how long superseded history, tombstones
// (sync::UpstreamOptions::keep_history_ms) and dismissed refusals are kept.
//
// The wall clock, except that it may not run ahead faster than twice the time measured on a
// monotonic clock. A server clock set forward by a year would otherwise purge at once everything
// its retention was meant to keep; this way it purges at most as much early as twice the time the
// clock stayed wrong. A clock set back is followed at once (that keeps more, never less).
//
// The reading is kept in server_meta ("retention_clock_ms"), so a restart neither rewinds nor
// rushes it: a process's first reading does not advance it at all, later ones catch up with the
// wall clock at twice its pace. The first reading ever, with nothing kept yet, is the wall clock.
//
// Servers sharing a database (PostgreSQL) share the kept reading. Each bounds its own advance by
// its own trajectory (where it started plus twice its own elapsed time), never by the kept value
// another server moved, and the kept value is the furthest of them: so with any number of servers
// a clock set forward still moves it at most twice as fast as time passes.
//
// Thread safety: one reader at a time (the Compactor's run holds its lock); each server process
// has its own.
#pragma once

#include <cstdint>
#include <optional>

#include "crypto/store.h"

namespace tsunagu::api {

class RetentionClock {
public:
    // The retention time at the wall clock's `wall_ms` (unix ms) and the monotonic clock's
    // `steady_ms`, written to `store` (inside the caller's transaction, if one is open).
    Result<std::int64_t> read(Store& store, std::int64_t wall_ms, std::int64_t steady_ms);

private:
    struct Reading {
        std::int64_t own_ms;     // this process's bounded time, before other servers' advances
        std::int64_t steady_ms;  // the monotonic clock when it was read
    };
    std::optional<Reading> last_;
};

}  // namespace tsunagu::api
