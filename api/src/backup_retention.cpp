// Which backups a rotation keeps (see backup_retention.h).
#include "api/src/backup_retention.h"

#include <ctime>
#include <optional>

namespace tsunagu::api {
namespace {

std::tm utc_of(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    return utc;
}

// The ISO week holding the moment, as year * 100 + week: weeks start on Monday, and the first
// week of a year is the one holding its first Thursday ("%G%V").
std::int64_t iso_week_of(std::int64_t ms) {
    const std::tm utc = utc_of(ms);
    char text[16];
    std::strftime(text, sizeof text, "%G%V", &utc);
    return std::stoll(text);
}

std::int64_t month_of(std::int64_t ms) {
    const std::tm utc = utc_of(ms);
    return static_cast<std::int64_t>(utc.tm_year + 1900) * 100 + utc.tm_mon + 1;
}

// Marks the newest backup of each of the `periods` most recent periods (`period_of`) as kept `as`.
template <typename PeriodOf>
void keep_one_per_period(const std::vector<BackupTime>& newest_first, std::size_t periods, PeriodOf period_of,
                         const char* as, std::vector<Retained>& out) {
    // Newest first, so each period's backups come together, its newest first.
    std::optional<std::int64_t> last;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < newest_first.size() && kept < periods; ++i) {
        const std::int64_t period = period_of(newest_first[i].taken_at_ms);
        if (last == period) continue;
        last = period;
        ++kept;
        out[i].kept_as.push_back(as);
    }
}

}  // namespace

std::vector<Retained> retain(const std::vector<BackupTime>& newest_first, const RetentionPolicy& policy) {
    std::vector<Retained> out;
    out.reserve(newest_first.size());
    for (std::size_t i = 0; i < newest_first.size(); ++i) {
        out.push_back({newest_first[i].name, {}});
        if (i < policy.newest) out.back().kept_as.push_back("newest");
    }
    keep_one_per_period(newest_first, policy.weekly, iso_week_of, "weekly", out);
    keep_one_per_period(newest_first, policy.monthly, month_of, "monthly", out);
    return out;
}

}  // namespace tsunagu::api
