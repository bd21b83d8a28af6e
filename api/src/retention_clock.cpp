// RetentionClock (api/src/retention_clock.h).
#include "api/src/retention_clock.h"

#include <algorithm>

namespace tsunagu::api {

Result<std::int64_t> RetentionClock::read(Store& store, std::int64_t wall_ms, std::int64_t steady_ms) {
    auto& kept = store.cached("SELECT value FROM server_meta WHERE key = 'retention_clock_ms'");
    std::optional<std::int64_t> before;
    TSUNAGU_TRY(each_row(kept, [&](const Statement& row) { before = row.column_int(0); }));
    std::int64_t now = wall_ms;
    if (before) {
        const std::int64_t budget = last_steady_ms_ ? 2 * std::max<std::int64_t>(0, steady_ms - *last_steady_ms_) : 0;
        now = std::min(wall_ms, *before + budget);
    }
    auto& keep = store.cached(
        "INSERT INTO server_meta(key, value) VALUES ('retention_clock_ms', ?1) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    TSUNAGU_TRY(keep.bind(1, now).run());
    last_steady_ms_ = steady_ms;
    return now;
}

}  // namespace tsunagu::api
