// The time a server's compaction measures retention by: how long superseded history, tombstones
// (sync::UpstreamOptions::keep_history_ms) and dismissed refusals are kept.
//
// The wall clock, except that it may not run ahead faster than twice the time this process has
// measured on its monotonic clock since its last reading. A server clock set forward by a year
// would otherwise purge at once everything its retention was meant to keep; this way it purges
// at most as much early as twice the time the clock stayed wrong. A clock set back is followed at
// once (that keeps more, never less). The reading is kept in server_meta ("retention_clock_ms"),
// so a restart neither rewinds nor rushes it: a process's first reading does not advance it at
// all, later ones catch up with the wall clock at twice its pace. The first reading ever, with
// nothing kept yet, is the wall clock.
//
// Thread safety: one reader at a time (the Compactor's run holds its lock); each server process
// has its own. Servers sharing a database (PostgreSQL) share the kept reading, and each may move
// it by twice its own elapsed time: with n servers compacting, a clock set forward moves it at
// most 2n times as fast as time passes, still bounded by the time the clock stayed wrong.
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
    std::optional<std::int64_t> last_steady_ms_;
};

}  // namespace tsunagu::api
