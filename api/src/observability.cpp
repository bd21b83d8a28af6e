// Prometheus text exposition and JSON-lines logging.
#include "api/src/observability.h"

#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>

namespace tsunagu::api {

void Metrics::observe_request(const std::string& route, int status, double seconds) {
    std::lock_guard lock(mutex_);
    RouteStats& r = routes_[route];
    ++r.by_status[status];
    ++r.count;
    r.seconds += seconds;
    std::size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    ++r.buckets[i];
}

void Metrics::add_compaction(const sync::CompactionReport& purged, std::uint64_t dismissed_purged,
                             std::uint64_t stale_devices, double seconds) {
    std::lock_guard lock(mutex_);
    stale_devices_ = stale_devices;
    ++compactions_;
    compacted_ += purged;
    dismissed_purged_ += dismissed_purged;
    last_compaction_seconds_ = seconds;
}

void Metrics::add_backup(bool taken, std::uint64_t bytes, double seconds, std::int64_t taken_at) {
    std::lock_guard lock(mutex_);
    if (!taken) {
        ++backups_failed_;
        return;
    }
    ++backups_taken_;
    last_backup_bytes_ = bytes;
    last_backup_at_ = taken_at;
    backup_current_at_ = taken_at;
    last_backup_seconds_ = seconds;
}

void Metrics::add_backup_unchanged(std::int64_t checked_at) {
    std::lock_guard lock(mutex_);
    ++backups_unchanged_;
    backup_current_at_ = checked_at;
}

std::string Metrics::render(std::size_t in_flight, std::size_t queue_depth, std::size_t commits,
                            std::size_t committed_writes) const {
    std::ostringstream out;
    out << "# HELP tsunagu_requests_total Requests answered, by route and status.\n"
           "# TYPE tsunagu_requests_total counter\n";
    std::lock_guard lock(mutex_);
    for (const auto& [route, r] : routes_)
        for (const auto& [status, n] : r.by_status)
            out << "tsunagu_requests_total{route=\"" << route << "\",status=\"" << status << "\"} " << n << "\n";
    out << "# HELP tsunagu_request_seconds Request latency.\n"
           "# TYPE tsunagu_request_seconds histogram\n";
    for (const auto& [route, r] : routes_) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < kBuckets.size(); ++i) {
            cumulative += r.buckets[i];
            out << "tsunagu_request_seconds_bucket{route=\"" << route << "\",le=\"" << kBuckets[i]
                << "\"} " << cumulative << "\n";
        }
        cumulative += r.buckets[kBuckets.size()];
        out << "tsunagu_request_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} " << cumulative << "\n";
        out << "tsunagu_request_seconds_sum{route=\"" << route << "\"} " << r.seconds << "\n";
        out << "tsunagu_request_seconds_count{route=\"" << route << "\"} " << r.count << "\n";
    }
    out << "# TYPE tsunagu_sync_changes_pushed_total counter\n"
        << "tsunagu_sync_changes_pushed_total " << changes_pushed_.load() << "\n"
        << "# TYPE tsunagu_sync_changes_pulled_total counter\n"
        << "tsunagu_sync_changes_pulled_total " << changes_pulled_.load() << "\n"
        << "# TYPE tsunagu_sync_conflicts_total counter\n"
        << "tsunagu_sync_conflicts_total " << conflicts_.load() << "\n"
        << "# HELP tsunagu_sync_refusals_kept_total Refused change sets kept for supervisors (counted per refusal).\n"
        << "# TYPE tsunagu_sync_refusals_kept_total counter\n"
        << "tsunagu_sync_refusals_kept_total " << refusals_kept_.load() << "\n"
        << "# HELP tsunagu_sync_refusals_not_kept_total Refusals not kept: a device or its user over their limit, or a change set too large.\n"
        << "# TYPE tsunagu_sync_refusals_not_kept_total counter\n"
        << "tsunagu_sync_refusals_not_kept_total " << refusals_not_kept_.load() << "\n"
        << "# HELP tsunagu_compactions_total Whole compaction runs (timer and administrators').\n"
        << "# TYPE tsunagu_compactions_total counter\n"
        << "tsunagu_compactions_total " << compactions_ << "\n"
        << "# HELP tsunagu_compaction_purged_total What compaction purged, by kind.\n"
        << "# TYPE tsunagu_compaction_purged_total counter\n"
        << "tsunagu_compaction_purged_total{what=\"history\"} " << compacted_.history_purged << "\n"
        << "tsunagu_compaction_purged_total{what=\"tombstones\"} " << compacted_.tombstones_purged << "\n"
        << "tsunagu_compaction_purged_total{what=\"scope_log\"} " << compacted_.log_purged << "\n"
        << "tsunagu_compaction_purged_total{what=\"filed_lines\"} " << compacted_.filed_purged << "\n"
        << "tsunagu_compaction_purged_total{what=\"dismissed_refusals\"} " << dismissed_purged_ << "\n"
        << "# TYPE tsunagu_compaction_last_seconds gauge\n"
        << "tsunagu_compaction_last_seconds " << last_compaction_seconds_ << "\n"
        << "# HELP tsunagu_devices_stale Devices compaction waits for that have not synced for --stale-after days "
           "(as of the last compaction): revoke the lost ones.\n"
        << "# TYPE tsunagu_devices_stale gauge\n"
        << "tsunagu_devices_stale " << stale_devices_ << "\n"
        << "# HELP tsunagu_backups_total Backups the server took of its own store (--backup-dir), by result "
           "(unchanged: a scheduled one not taken, nothing having been written since the newest).\n"
        << "# TYPE tsunagu_backups_total counter\n"
        << "tsunagu_backups_total{result=\"taken\"} " << backups_taken_ << "\n"
        << "tsunagu_backups_total{result=\"failed\"} " << backups_failed_ << "\n"
        << "tsunagu_backups_total{result=\"unchanged\"} " << backups_unchanged_ << "\n"
        << "# HELP tsunagu_backup_copies_total Backups handed to the copy command (--backup-copy-command), by "
           "result.\n"
        << "# TYPE tsunagu_backup_copies_total counter\n"
        << "tsunagu_backup_copies_total{result=\"copied\"} " << backup_copies_.load() << "\n"
        << "tsunagu_backup_copies_total{result=\"failed\"} " << backup_copies_failed_.load() << "\n"
        << "# HELP tsunagu_backup_last_taken_timestamp_seconds When the newest backup this process took was "
           "taken (0: none yet).\n"
        << "# TYPE tsunagu_backup_last_taken_timestamp_seconds gauge\n"
        << "tsunagu_backup_last_taken_timestamp_seconds " << last_backup_at_ << "\n"
        << "# HELP tsunagu_backup_current_timestamp_seconds When the newest backup was last known to hold the data "
           "as it is: taken then, or found unchanged by the schedule (0: not yet); alert on this one when it grows "
           "old, as a quiet week takes no new backups.\n"
        << "# TYPE tsunagu_backup_current_timestamp_seconds gauge\n"
        << "tsunagu_backup_current_timestamp_seconds " << backup_current_at_ << "\n"
        << "# TYPE tsunagu_backup_last_bytes gauge\n"
        << "tsunagu_backup_last_bytes " << last_backup_bytes_ << "\n"
        << "# TYPE tsunagu_backup_last_seconds gauge\n"
        << "tsunagu_backup_last_seconds " << last_backup_seconds_ << "\n"
        << "# HELP tsunagu_disk_free_bytes Free bytes (for unprivileged writers) on the file system of each folder.\n";
    // Each family's samples together, as the text format wants them.
    std::string free_samples, total_samples;
    for (const auto& [label, folder] : disks_) {
        struct statvfs fs {};
        if (::statvfs(folder.c_str(), &fs) != 0) continue;
        const std::string labels = "{folder=\"" + label + "\"} ";
        const std::uint64_t unit = fs.f_frsize;
        free_samples += "tsunagu_disk_free_bytes" + labels + std::to_string(fs.f_bavail * unit) + "\n";
        total_samples += "tsunagu_disk_total_bytes" + labels + std::to_string(fs.f_blocks * unit) + "\n";
    }
    out << "# TYPE tsunagu_disk_free_bytes gauge\n" << free_samples
        << "# TYPE tsunagu_disk_total_bytes gauge\n" << total_samples
        << "# TYPE tsunagu_requests_in_flight gauge\n"
        << "tsunagu_requests_in_flight " << in_flight << "\n"
        << "# TYPE tsunagu_worker_queue_depth gauge\n"
        << "tsunagu_worker_queue_depth " << queue_depth << "\n"
        << "# HELP tsunagu_store_commits_total Write transactions committed (each a group of writing requests).\n"
        << "# TYPE tsunagu_store_commits_total counter\n"
        << "tsunagu_store_commits_total " << commits << "\n"
        << "# HELP tsunagu_store_committed_writes_total Writes committed in those groups (requests and bookkeeping).\n"
        << "# TYPE tsunagu_store_committed_writes_total counter\n"
        << "tsunagu_store_committed_writes_total " << committed_writes << "\n";
    return out.str();
}

namespace {
std::mutex log_mutex;
std::FILE* log_output = nullptr;  // with log_mutex; nullptr: stderr
}  // namespace

void set_log_output(std::FILE* out) {
    std::lock_guard lock(log_mutex);
    log_output = out;
}

void log_event(const std::string& level, const std::string& event,
               const std::map<std::string, std::string>& fields) {
    nlohmann::json line;
    const auto now = std::chrono::system_clock::now();
    line["ts"] = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    line["level"] = level;
    line["event"] = event;
    for (const auto& [k, v] : fields) line[k] = v;
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(log_mutex);
    std::fputs(text.c_str(), log_output ? log_output : stderr);
}

}  // namespace tsunagu::api
