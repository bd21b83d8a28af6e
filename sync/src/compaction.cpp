// Compaction on the upstream: purging what no device can still need.
//
// A device's horizon is the lower of its cursor and its outbox floor (the cursor it had when it
// made its oldest change still in the outbox): it has applied everything up to there, and nothing
// it may still push was based on anything older. A record's horizon is the lowest horizon among
// the devices whose user can see the record's scope key, or lost it after their horizon: such a
// device may still hold the key's records (it evicts them at its next pull, or not at all when
// the key came back meanwhile) and changes to them (held, to be sent should the key come back).
// Were the tombstone of such a record purged, the first device would keep the deleted record for
// good, and the second's change would make a new, partial record of it. At or below it, change-log entries of
// versions no longer current are purged (no device will repeat or build on them), and so are
// tombstones without open conflicts (every device that holds the record has the tombstone).
// A record's latest entry stays: a new device's first pull walks the log to it.
#include <algorithm>
#include <limits>
#include <map>
#include <span>

#include "sync/src/change_list.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"
#include "sync/src/upstream_impl.h"

namespace tsunagu::sync {
namespace {

struct Horizons {
    std::int64_t everything = std::numeric_limits<std::int64_t>::max();  // users holding "*"
    std::int64_t any = std::numeric_limits<std::int64_t>::max();         // every device
    std::map<std::string, std::int64_t> by_key;

    std::int64_t of(const std::string& key, std::int64_t last_seq) const {
        std::int64_t h = std::min(everything, last_seq);
        if (auto it = by_key.find(key); it != by_key.end()) h = std::min(h, it->second);
        return h;
    }
};

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
std::span<const std::uint8_t> as_bytes(const std::string& chars) {
    return {reinterpret_cast<const std::uint8_t*>(chars.data()), chars.size()};
}

// The change sets a record's state still refers to (see encode_state: the "v" list of its meta).
Result<std::vector<detail::IdBytes>> referenced_versions(const std::string& meta) {
    const Json parsed = Json::parse(meta, nullptr, false);
    std::vector<detail::IdBytes> ids;
    if (parsed.is_object() && parsed.contains("v") && parsed["v"].is_array()) {
        for (const Json& version : parsed["v"]) {
            if (version.is_array() && !version.empty() && version[0].is_string() &&
                is_id(version[0].get_ref<const std::string&>())) {
                ids.push_back(detail::id_to_bytes(version[0].get_ref<const std::string&>()));
                continue;
            }
            return Status(ErrorCode::corrupt, "malformed record state: a version without an id");
        }
        return ids;
    }
    return Status(ErrorCode::corrupt, "malformed record state: no version list");
}

Result<Horizons> horizons(Store& store) {
    Horizons out;
    std::map<std::string, std::int64_t> by_user;
    TSUNAGU_TRY(
        detail::each_row(store.cached("SELECT user, min(cursor, outbox_floor) FROM sync_replicas"),
                         [&](const Statement& s) {
                             std::string user(s.column_text(0));
                             const std::int64_t h = s.column_int(1);
                             auto [it, fresh] = by_user.emplace(user, h);
                             if (!fresh) it->second = std::min(it->second, h);
                             out.any = std::min(out.any, h);
                             return Status::ok();
                         }));
    // Keys lost after a device's horizon: the removal is kept until every device has passed it
    // (see compact_some), so it is still there to be read.
    Statement& keys = store.cached(
        "SELECT scope_key FROM sync_scope_members WHERE user = ?1 UNION "
        "SELECT scope_key FROM sync_scope_removals WHERE user = ?1 AND seq > ?2");
    for (const auto& entry : by_user) {
        const auto& h = entry.second;  // named, not a structured binding: lambdas capture it in C++17 too
        keys.bind(1, entry.first).bind(2, h);
        TSUNAGU_TRY(detail::each_row(keys, [&](const Statement& s) {
            std::string key(s.column_text(0));
            if (key == "*") {
                out.everything = std::min(out.everything, h);
            } else {
                auto [it, fresh] = out.by_key.emplace(key, h);
                if (!fresh) it->second = std::min(it->second, h);
            }
            return Status::ok();
        }));
    }
    return out;
}

// Which records a slice went through: how many, and the last one's row.
struct RecordsPassed {
    std::int64_t count = 0;
    std::int64_t last = 0;
};

// The highest sequence number the upstream had taken by `kept_after` (unix ms), by the marks
// compaction runs leave (sync_taken_marks); 0 when no run is that old. Retention ages a change by
// when the upstream took it: its stamp is its device's clock, and a phone four months slow would
// otherwise have its deletes and overwritten values purged at the first run after they arrived.
// (So a change is kept for the retention period after the first run that followed it: at most
// one run's interval longer.) A run's first slice (`first`) leaves its mark, at `now`, and drops
// the marks older than the newest one the bound uses.
Result<std::int64_t> taken_through(Upstream::Impl& im, bool first, std::int64_t now, std::int64_t kept_after) {
    if (first) {
        TSUNAGU_TRY(im.store.cached("INSERT OR IGNORE INTO sync_taken_marks(at_ms, seq) VALUES (?1, ?2)")
                        .bind(1, now)
                        .bind(2, im.seq)
                        .run());
        TSUNAGU_TRY(im.store
                        .cached("DELETE FROM sync_taken_marks WHERE at_ms < "
                                "(SELECT MAX(at_ms) FROM sync_taken_marks WHERE at_ms <= ?1)")
                        .bind(1, kept_after)
                        .run());
    }
    std::int64_t through = 0;
    TSUNAGU_TRY(detail::each_row(
        im.store.cached("SELECT MAX(seq) FROM sync_taken_marks WHERE at_ms <= ?1").bind(1, kept_after),
        [&](const Statement& s) {
            through = s.column_int(0);  // NULL (no mark): 0
            return Status::ok();
        }));
    return through;
}

// The records after `after` (by row), at most `limit` of them: their superseded history entries,
// and the tombstones every device in scope has.
Result<RecordsPassed> compact_records(Upstream::Impl& im, const Horizons& h, std::int64_t after,
                                                    std::int64_t limit, std::int64_t retention_now_ms,
                                                    CompactionReport& report) {
    struct Candidate {
        std::int64_t rid;
        std::int64_t seq;
        std::int64_t horizon;
        bool tombstone;
        std::string meta;
        std::string log;
    };
    std::vector<Candidate> candidates;
    TSUNAGU_TRY(detail::each_row(
        // (id: on PostgreSQL, meta is sealed bound to it, and opened with it.)
        im.store.cached("SELECT rid, scope_key, seq, deleted, conflicts, meta, log, id FROM sync_records"
                        " WHERE rid > ?1 ORDER BY rid LIMIT ?2")
            .bind(1, after)
            .bind(2, limit),
        [&](const Statement& s) {
            const std::int64_t seq = s.column_int(2);
            const std::int64_t horizon = h.of(std::string(s.column_text(1)), im.seq);
            const bool tombstone = s.column_int(3) != 0 && s.column_int(4) == 0 && seq <= horizon;
            candidates.push_back({s.column_int(0), seq, horizon, tombstone, std::string(s.column_text(5)),
                                  std::string(as_chars(s.column_blob(6)))});
            return Status::ok();
        }));
    if (candidates.empty()) return RecordsPassed{};

    Statement& drop_line = im.store.cached("DELETE FROM sync_log WHERE seq = ?1");
    // Nothing the upstream took after this time is purged (UpstreamOptions::keep_history_ms).
    const std::int64_t now = retention_now_ms > 0 ? retention_now_ms : im.clock.wall_now();
    const std::int64_t kept_after = now - std::max<std::int64_t>(0, im.options.keep_history_ms);
    auto through = taken_through(im, after == 0, now, kept_after);
    TSUNAGU_TRY(through);
    const std::int64_t taken_by_then = *through;
    for (const Candidate& c : candidates) {
        auto applied = detail::ChangeList::parse(c.log);
        TSUNAGU_TRY(applied);
        if (c.tombstone && std::all_of(applied->entries.begin(), applied->entries.end(), [&](const auto& entry) {
                return entry.seq <= taken_by_then;  // deleted, and written, before the retention
            })) {
            for (const auto& entry : applied->entries) TSUNAGU_TRY(drop_line.bind(1, entry.seq).run());
            report.history_purged += applied->entries.size();
            TSUNAGU_TRY(im.store.cached("DELETE FROM sync_records WHERE rid = ?1").bind(1, c.rid).run());
            ++report.tombstones_purged;
            continue;
        }
        // Keep the entries of the versions still current (or in conflict): they say who wrote
        // what the record holds; and the latest, which pulls walk to. (Most records have no other
        // entry at or below their horizon, and need no look at their state.)
        auto old = [&](const detail::AppliedChange& entry) {
            return entry.seq <= c.horizon && entry.seq != c.seq && entry.seq <= taken_by_then;
        };
        const bool any_old = std::any_of(applied->entries.begin(), applied->entries.end(), old);
        if (!any_old) continue;
        auto current = referenced_versions(c.meta);
        TSUNAGU_TRY(current);
        detail::ChangeList kept;
        for (auto& entry : applied->entries) {
            const detail::IdBytes id = detail::id_to_bytes(entry.change_id);
            const bool needed = !old(entry) || std::find(current->begin(), current->end(), id) != current->end();
            if (needed) {
                kept.entries.push_back(std::move(entry));
            } else {
                TSUNAGU_TRY(drop_line.bind(1, entry.seq).run());
                ++report.history_purged;
            }
        }
        if (kept.entries.size() != applied->entries.size()) {
            Statement& rewrite = im.store.cached("UPDATE sync_records SET log = ?2 WHERE rid = ?1");
            const std::string bytes = kept.encoded();
            TSUNAGU_TRY(rewrite.bind(1, c.rid).bind_blob(2, as_bytes(bytes)).run());
        }
    }
    return RecordsPassed{static_cast<std::int64_t>(candidates.size()), candidates.back().rid};
}

// The log's lines in (after, until] that no record needs: fresh-sequence lines that are no longer
// their record's latest (or whose record is gone).
Status compact_log(Upstream::Impl& im, std::int64_t after, std::int64_t until) {
    return im.store
        .cached("DELETE FROM sync_log WHERE seq > ?2 AND seq <= ?3 AND kind = ?1 AND NOT EXISTS"
                " (SELECT 1 FROM sync_records r WHERE r.rid = sync_log.rid AND r.seq = sync_log.seq)")
        .bind(1, detail::kTouchKind)
        .bind(2, after)
        .bind(3, until)
        .run();
}

// The lines filed by key in the chunks named in [after, until) (a chunk is named by the sequence
// number it starts after, the first 0) that are not their record's latest: lookups ignore them,
// but kept they would hold every line ever written.
Result<std::size_t> compact_filed(Upstream::Impl& im, std::int64_t after, std::int64_t until) {
    if (!im.store.is_sqlite()) return std::size_t{0};  // only SQLite stores file the log
    TSUNAGU_TRY(im.store
                    .cached("DELETE FROM sync_log_by_key WHERE chunk >= ?1 AND chunk < ?2 AND NOT EXISTS"
                            " (SELECT 1 FROM sync_records r"
                            " WHERE r.rid = sync_log_by_key.rid AND r.seq = sync_log_by_key.seq)")
                    .bind(1, after)
                    .bind(2, until)
                    .run());
    return static_cast<std::size_t>(im.store.changes());
}

constexpr std::int64_t kLinesPerRecord = 4;  // a log slice's lines, per record of a records slice

}  // namespace

Status Upstream::compact_some(CompactionProgress& progress, std::size_t records) {
    if (progress.done()) return Status::ok();
    Impl& im = *impl_;
    constexpr std::int64_t kAll = std::numeric_limits<std::int64_t>::max();
    const std::int64_t limit =
        records >= static_cast<std::size_t>(kAll / kLinesPerRecord) ? kAll : std::max<std::int64_t>(1, static_cast<std::int64_t>(records));
    CompactionProgress next;  // progress is only advanced by a slice that committed
    Status status = with_transaction(im.store, [&]() -> Status {
        next = progress;
        CompactionReport& report = next.report;
        TSUNAGU_TRY(im.read_counters());
        // The devices' progress (every replica and its user's keys): read by the slices that use it.
        if (next.phase == CompactionProgress::Phase::records) {
            auto h = horizons(im.store);
            TSUNAGU_TRY(h);
            auto passed = compact_records(im, *h, next.after, limit, next.retention_now_ms, report);
            TSUNAGU_TRY(passed);
            if (passed->count == limit) {
                next.after = passed->last;
            } else {  // the last records (new ones come with nothing to purge yet)
                next.phase = CompactionProgress::Phase::log;
                next.after = 0;
            }
            return im.write_counters();
        }
        const std::int64_t until = limit == kAll ? kAll : next.after + limit * kLinesPerRecord;
        TSUNAGU_TRY(compact_log(im, next.after, until));
        auto filed = compact_filed(im, next.after, until);
        TSUNAGU_TRY(filed);
        report.filed_purged += *filed;
        if (until < im.seq) {
            next.after = until;
            return im.write_counters();
        }
        // Scope moves and removals every device has passed.
        auto h = horizons(im.store);
        TSUNAGU_TRY(h);
        const std::int64_t everyone = std::min(h->any, im.seq);
        TSUNAGU_TRY(im.store.cached("DELETE FROM sync_scope_moves WHERE seq <= ?1").bind(1, everyone).run());
        report.log_purged += static_cast<std::size_t>(im.store.changes());
        TSUNAGU_TRY(im.store.cached("DELETE FROM sync_scope_removals WHERE seq <= ?1").bind(1, everyone).run());
        report.log_purged += static_cast<std::size_t>(im.store.changes());
        next.phase = CompactionProgress::Phase::done;
        return im.write_counters();
    });
    TSUNAGU_TRY(status);
    progress = std::move(next);
    return Status::ok();
}

Result<CompactionReport> Upstream::compact() {
    CompactionProgress progress;
    while (!progress.done()) TSUNAGU_TRY(compact_some(progress, std::numeric_limits<std::size_t>::max()));
    return progress.report;
}

}  // namespace tsunagu::sync
