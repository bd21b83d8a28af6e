// Metrics in Prometheus text format and JSON-lines logs. Logs carry request ids, routes,
// statuses and durations; never a record's content, a password or a token.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sync/engine.h"

namespace tsunagu::api {

class Metrics {
public:
    // One finished request: its route pattern (not the raw path), status and duration.
    void observe_request(const std::string& route, int status, double seconds);
    void add_changes_pushed(std::uint64_t n) { changes_pushed_ += n; }
    void add_changes_pulled(std::uint64_t n) { changes_pulled_ += n; }
    void add_conflicts(std::uint64_t n) { conflicts_ += n; }
    // Refused change sets kept for supervisors, and those refused without being kept (a device
    // over its limit; see RefusedChanges).
    void add_refusals(std::uint64_t kept, std::uint64_t not_kept) {
        refusals_kept_ += kept;
        refusals_not_kept_ += not_kept;
    }
    // One whole compaction run: what it purged and how long it took.
    // `stale_devices`: how many of the devices it waited for had not pulled for long (a gauge).
    void add_compaction(const sync::CompactionReport& purged, std::uint64_t dismissed_purged,
                        std::uint64_t stale_devices, double seconds);
    // One backup (api/src/backups.h), taken or failed; `taken_at` (unix seconds) and `bytes` only
    // count when it was taken.
    void add_backup(bool taken, std::uint64_t bytes, double seconds, std::int64_t taken_at);
    // One scheduled backup not taken because nothing was written since the newest (unix seconds:
    // the moment the newest backup was found to hold the data as it is).
    void add_backup_unchanged(std::int64_t checked_at);
    // One backup handed to the copy command (--backup-copy-command): copied, or failed.
    void add_backup_copy(bool copied) { ++(copied ? backup_copies_ : backup_copies_failed_); }
    // Reports the free and total bytes of the file system holding `folder` with every render,
    // labelled `label` ("data", "backups"): a full disk stops pushes and backups, so alert before.
    // Before the server serves.
    void watch_disk(std::string label, std::string folder) { disks_.emplace_back(std::move(label), std::move(folder)); }
    // The exposition text for GET /metrics. `commits` and `committed_writes`: the group commit's
    // counters (api/src/commit_group.h), whose ratio is the mean group size.
    std::string render(std::size_t in_flight, std::size_t queue_depth, std::size_t commits = 0,
                       std::size_t committed_writes = 0) const;

private:
    static constexpr std::array<double, 10> kBuckets = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,  0.5,  1.0,   5.0};
    struct RouteStats {
        std::map<int, std::uint64_t> by_status;
        std::array<std::uint64_t, kBuckets.size() + 1> buckets{};
        double seconds = 0;
        std::uint64_t count = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::string, RouteStats> routes_;
    std::atomic<std::uint64_t> changes_pushed_{0}, changes_pulled_{0}, conflicts_{0};
    std::atomic<std::uint64_t> refusals_kept_{0}, refusals_not_kept_{0};
    std::uint64_t compactions_ = 0;  // with mutex_, as the two below
    sync::CompactionReport compacted_;
    std::uint64_t dismissed_purged_ = 0;
    double last_compaction_seconds_ = 0;
    std::uint64_t stale_devices_ = 0;
    std::vector<std::pair<std::string, std::string>> disks_;  // label, folder
    std::atomic<std::uint64_t> backup_copies_{0}, backup_copies_failed_{0};
    std::uint64_t backups_taken_ = 0, backups_failed_ = 0, backups_unchanged_ = 0;  // with mutex_, as below
    std::uint64_t last_backup_bytes_ = 0;
    std::int64_t last_backup_at_ = 0;
    std::int64_t backup_current_at_ = 0;  // taken, or found unchanged
    double last_backup_seconds_ = 0;
};

// Writes one JSON object per line to stderr (or where set_log_output says). Thread-safe.
void log_event(const std::string& level, const std::string& event,
               const std::map<std::string, std::string>& fields);

// Where log_event writes from now on; nullptr: stderr again. The caller keeps `out` open until it
// sets another. (The fuzz target `requests` keeps the log of a server it drives apart from its
// own report.)
void set_log_output(std::FILE* out);

}  // namespace tsunagu::api
