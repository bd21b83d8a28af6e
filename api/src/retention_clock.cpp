// RetentionClock (api/src/retention_clock.h).
#include "api/src/retention_clock.h"

#include <algorithm>

namespace tsunagu::api {

Result<std::int64_t> RetentionClock::read(Store& store, std::int64_t wall_ms, std::int64_t steady_ms) {
    auto& kept = store.cached("SELECT value FROM server_meta WHERE key = 'retention_clock_ms'");
    std::optional<std::int64_t> before;
    TSUNAGU_TRY(each_row(kept, [&](const Statement& row) { before = row.column_int(0); }));
    // This process's time: the kept one at its first reading, then at most twice its own elapsed
    // time further; the kept time is the furthest any server reached, unless the wall clock is
    // behind it.
    std::int64_t own = wall_ms;
    if (before) {
        own = last_ ? std::min(wall_ms, last_->own_ms + 2 * std::max<std::int64_t>(0, steady_ms - last_->steady_ms))
                    : std::min(wall_ms, *before);
    }
    const std::int64_t now = before ? std::min(wall_ms, std::max(*before, own)) : own;
    auto& keep = store.cached(
        "INSERT INTO server_meta(key, value) VALUES ('retention_clock_ms', ?1) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    TSUNAGU_TRY(keep.bind(1, now).run());
    last_ = Reading{own, steady_ms};
    return now;
}

}  // namespace tsunagu::api
