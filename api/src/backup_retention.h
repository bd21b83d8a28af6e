// Which backups a rotation keeps: the newest few, and further back one per week and one per month,
// so that a mistake noticed weeks later can still be undone from a backup taken before it.
//
// The rule (as restic's --keep-last, --keep-weekly and --keep-monthly): the newest `newest`
// backups; then, for each of the `weekly` most recent weeks that hold a backup, the newest of that
// week; and for each of the `monthly` most recent months that hold one, the newest of that month.
// Weeks are ISO weeks (Monday to Sunday) and months calendar months, both in UTC, as the backups'
// names are. A backup kept for several reasons is kept once, and says each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tsunagu::api {

struct RetentionPolicy {
    std::size_t newest = 7;
    std::size_t weekly = 4;
    std::size_t monthly = 0;
};

// Why a backup is kept: any of "newest", "weekly", "monthly"; empty: it is to be removed.
struct Retained {
    std::string name;
    std::vector<std::string> kept_as;
};

// `taken_at_ms` of each backup, newest first (as Backups::list gives them), with their names:
// answers each with why it is kept, in the same order.
struct BackupTime {
    std::string name;
    std::int64_t taken_at_ms = 0;
};
std::vector<Retained> retain(const std::vector<BackupTime>& newest_first, const RetentionPolicy& policy);

}  // namespace tsunagu::api
