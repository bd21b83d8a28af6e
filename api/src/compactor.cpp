// Server-side compaction: slices through the commit group, on a timer and on request.
#include "api/src/compactor.h"

#include <algorithm>

namespace tsunagu::api {

Result<Compactor::Run> Compactor::run() {
    std::lock_guard one_at_a_time(running_);
    const auto start = std::chrono::steady_clock::now();
    sync::CompactionProgress progress;
    Run done;
    // Retention is counted back from a reading a clock set forward cannot rush.
    const std::int64_t wall_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::int64_t steady_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(start.time_since_epoch()).count();
    Status read = group_.write([&](ServerConnection& connection) -> Status {
        auto now = retention_clock_.read(connection.store, wall_ms, steady_ms);
        TSUNAGU_TRY(now);
        progress.retention_now_ms = *now;
        return Status::ok();
    });
    if (!read) {
        log_event("error", "compaction_failed", {{"slices", "0"}, {"reason", read.message()}});
        return read;
    }
    while (!progress.done()) {
        Status slice = group_.write([&](ServerConnection& connection) {
            return connection.upstream->compact_some(progress, records_per_slice_);
        });
        if (!slice) {
            log_event("error", "compaction_failed", {{"slices", std::to_string(done.slices)}, {"reason", slice.message()}});
            return slice;
        }
        ++done.slices;
        // Stop between slices when the server is stopping: the next start runs it again.
        if (stopping_) return Status(ErrorCode::unavailable, "compaction stopped: the server is shutting down");
    }
    // Then, in one piece of the group: refused changes dismissed long enough ago (by the same
    // retention time), and how many of the devices it waited for are stale (by the wall clock:
    // a flag for administrators, which purges nothing).
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    Status after = group_.write([&](ServerConnection& connection) -> Status {
        if (keep_dismissed_.count() > 0) {
            auto n = RefusedChanges::purge_dismissed(connection.store,
                                                     progress.retention_now_ms / 1000 - keep_dismissed_.count());
            TSUNAGU_TRY(n);
            done.dismissed_purged = *n;
        }
        auto replicas = connection.upstream->replicas();
        TSUNAGU_TRY(replicas);
        done.stale_devices = static_cast<std::size_t>(std::count_if(
            replicas->begin(), replicas->end(),
            [&](const sync::ReplicaProgress& r) { return is_stale(r.last_pull_ms, now_ms); }));
        return Status::ok();
    });
    if (!after) {
        log_event("error", "compaction_failed", {{"slices", std::to_string(done.slices)}, {"reason", after.message()}});
        return after;
    }
    done.report = progress.report;
    done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_.add_compaction(done.report, done.dismissed_purged, done.stale_devices, done.seconds);
    log_event("info", "compaction",
              {{"slices", std::to_string(done.slices)},
               {"history_purged", std::to_string(done.report.history_purged)},
               {"tombstones_purged", std::to_string(done.report.tombstones_purged)},
               {"scope_log_purged", std::to_string(done.report.log_purged)},
               {"filed_lines_purged", std::to_string(done.report.filed_purged)},
               {"dismissed_refusals_purged", std::to_string(done.dismissed_purged)},
               {"stale_devices", std::to_string(done.stale_devices)},
               {"ms", std::to_string(static_cast<long long>(done.seconds * 1000))}});
    if (done.stale_devices > 0) {
        log_event("warning", "stale_devices",
                  {{"count", std::to_string(done.stale_devices)},
                   {"hint", "devices that have not synced for long hold back compaction of their users' records: "
                            "an administrator revokes the lost ones (Devices, or POST /v1/admin/devices/{id}/revoke)"}});
    }
    return done;
}

void Compactor::start(std::chrono::seconds every) {
    if (every.count() <= 0) return;
    timer_.start(every, [this, every] {
        (void)run();  // logged by run(); the next tick tries again
        return std::chrono::milliseconds(every);
    });
}

void Compactor::stop() {
    stopping_ = true;
    timer_.stop();
}

}  // namespace tsunagu::api
