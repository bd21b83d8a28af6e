// Compaction on a running server (sync::Upstream::compact_some): in slices, each a piece of work
// of the commit group, so that pushes and pulls go on between them; on a timer and when an
// administrator asks, one run at a time.
//
// Contract: run() returns once a whole compaction has run, or with the first slice's error (a
// later run starts over: every slice is correct alone). It runs on the caller's thread: the
// timer's, or the worker serving an administrator's request, which waits for the whole run. A slice whose group commit failed is lost
// with it, and only leaves its part to the next run.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>

#include "api/src/commit_group.h"
#include "api/src/observability.h"
#include "api/src/periodic.h"
#include "api/src/refused_changes.h"
#include "api/src/retention_clock.h"
#include "sync/engine.h"

namespace tsunagu::api {

class Compactor {
public:
    struct Run {
        sync::CompactionReport report;
        std::size_t dismissed_purged = 0;  // refused changes dismissed longer than kept
        std::size_t stale_devices = 0;     // devices it waited for that have not pulled for stale_after()
        std::size_t slices = 0;
        double seconds = 0;
    };

    // Slices of `records_per_slice` records (500: at most about 8 ms of a group's time in
    // sync_bench's store, so a push that shares a group with one waits little longer).
    Compactor(CommitGroup& group, Metrics& metrics, std::size_t records_per_slice = 500)
        : group_(group), metrics_(metrics), records_per_slice_(records_per_slice) {}
    ~Compactor() { stop(); }
    Compactor(const Compactor&) = delete;
    Compactor& operator=(const Compactor&) = delete;

    // Dismissed refused changes are purged once dismissed this long (RefusedChanges); zero or
    // less: kept for ever. Before start() and the first run.
    void keep_dismissed_for(std::chrono::seconds how_long) { keep_dismissed_ = how_long; }
    // A device that has not pulled for this long is stale: probably lost, and until an
    // administrator revokes it, compaction keeps all its user's records' history for it. Zero:
    // none is. Before start() and the first run.
    void stale_after(std::chrono::milliseconds how_long) { stale_after_ = how_long; }
    std::chrono::milliseconds stale_after() const { return stale_after_; }
    // Whether a device whose progress was last recorded at `last_pull_ms` is stale at `now_ms`.
    bool is_stale(std::int64_t last_pull_ms, std::int64_t now_ms) const {
        return stale_after_.count() > 0 && now_ms - last_pull_ms > stale_after_.count();
    }
    // Runs a whole compaction now (after the one in progress, if any), and logs and counts it.
    Result<Run> run();
    // From now on, runs one every `every` on a thread of its own, until stop(). Zero: never.
    // Once only.
    void start(std::chrono::seconds every);
    // At shutdown: stops the timer's thread, and any run, after the slice in progress (run()
    // then answers `unavailable`). Idempotent.
    void stop();

private:
    CommitGroup& group_;
    Metrics& metrics_;
    const std::size_t records_per_slice_;
    std::chrono::seconds keep_dismissed_{365 * 24 * 60 * 60};
    std::chrono::milliseconds stale_after_{30LL * 24 * 60 * 60 * 1000};
    std::mutex running_;  // one run at a time
    RetentionClock retention_clock_;  // read under running_
    std::atomic<bool> stopping_{false};
    Periodic timer_;
};

}  // namespace tsunagu::api
