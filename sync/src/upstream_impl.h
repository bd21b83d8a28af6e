// The upstream's private state, shared by its source files (push, pull and scopes, compaction).
#pragma once

#include <atomic>
#include <memory>

#include <string>
#include <unordered_set>

#include "sync/engine.h"
#include "sync/src/authoring.h"
#include "sync/src/record_table.h"
#include "sync/src/tables.h"

namespace tsunagu::sync {

// The scope keys a user may see and write.
struct ScopeSet {
    bool everything = false;  // holds "*"
    std::unordered_set<std::string> keys;

    bool contains(const std::string& key) const { return everything || keys.contains(key); }
};

// What the upstream measured of a pushing device's clock: how far ahead of its own it runs (from
// PushBatch::sent_at_ms; 0 when unknown), and the last stamp it gave one of the batch's changes, so
// that corrected stamps keep the batch's order.
struct DeviceSkew {
    std::int64_t ahead_ms = 0;
    Hlc last;
};

struct Upstream::Impl {
    Store& store;
    Schema schema;
    UpstreamOptions options;
    HybridClock clock;
    std::string replica;
    // Which life of this upstream answers (Upstream::epoch): its replica id until a restore from
    // a backup gives it a new one (after_restore).
    std::string epoch;
    // Upstream::share_sequence_seen's: the highest sequence number the server saw committed.
    std::shared_ptr<std::atomic<std::int64_t>> sequence_seen;
    detail::RecordTable records;
    std::int64_t seq = 0;  // the last sequence number given out; valid inside a write
    std::int64_t clock_let_go_ms = 0;  // Upstream::take_clock_let_go_ms's
    // The scope keys this transaction has noted in sync_scope_keys (a push of ten visits to one
    // client notes its key once); emptied by read_counters(), which each transaction starts with.
    std::unordered_set<std::string> keys_noted;

    Impl(Store& s, Schema sc, UpstreamOptions o, detail::OpenedTables tables)
        : store(s),
          schema(std::move(sc)),
          options(std::move(o)),
          clock(options.wall),
          replica(std::move(tables.replica)),
          records(s, tables.record_key) {}

    // Inside a transaction, first: reads the sequence number and the clock, which another
    // connection may have moved since.
    // `writing`: inside a write transaction, whose snapshot is the newest commit; only then is the
    // store's sequence number checked against share_sequence_seen's (a read transaction's snapshot
    // may predate a commit already noted).
    Status read_counters(bool writing = true);
    // Observes the clock stored in the upstream's meta, unless it is further ahead of the wall
    // clock than options.max_stored_clock_ahead_ms: then the clock counts from the wall clock again.
    Status read_clock();
    // Inside a write transaction: stores them back, and files the log by key when a chunk of
    // lines is due (UpstreamOptions::file_log_every; sync_log_by_key).
    Status write_counters();
    Status file_log_by_key();
    // Files the log's lines in (after, through] as one chunk named `after` (sync_log_by_key).
    Status file_lines(std::int64_t after, std::int64_t through);
    Result<ScopeSet> scope_set(std::string_view user);
    // Applies one pushed (or server-made) change set: accepted, duplicate, or refused. Fails only
    // when storage fails; then the caller rolls the batch back.
    Result<PushOutcome> accept(const ChangeSet& change, const std::string& pusher_replica,
                               const std::string& pusher_user, const ScopeSet& scope,
                               DeviceSkew& skew, const PushGate& gate = {});
    // The stamp for a change whose reading is too far ahead: the reading with the device's
    // measured skew taken off (never later than now), or else the upstream's own next tick.
    Hlc corrected_stamp(Hlc stamped, DeviceSkew& skew);
    // A server-side user's edit, sequenced like a pushed change. Returns the record id.
    Result<std::string> edit(std::string_view user, const detail::Edit& edit);
};

}  // namespace tsunagu::sync
