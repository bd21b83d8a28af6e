// The upstream's pulls and scopes: which records each user's devices receive, and which they
// must evict.
//
// A record's scope key is computed from its values (see ScopeRule); a user sees the records whose
// key is in their set (sync_scope_members). Pulls walk the change log (sync_log) by sequence
// number and send each record at its latest entry, filtered by the set. When a record moves to
// another key, the move is logged with its sequence number; when a user loses a key, the removal is
// logged. A pull reports, among those logged after the device's cursor, the records and keys the
// user cannot see now: the device evicts them. When a user gains a key, that key's records get
// fresh sequence numbers (a log entry each), so every device pulls them again.
//
// A device names the records it pushed to since its cursor (PullRequest::held); those it made
// alone, still under the key it files them under, are left out of its pages: it already holds
// them as they are, and a worker's phone on a weak signal does not download again the visits it
// has just uploaded. Anything it cannot be sure the device holds as is (another author's version,
// a key other than the device's, as after a move the upstream judged, a record the device does not
// name, as after an eviction) is sent in full.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "sync/src/change_list.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"
#include "sync/src/upstream_impl.h"

namespace tsunagu::sync {
namespace {

RecordSnapshot read_snapshot(const Statement& s) {
    RecordSnapshot out;
    out.id = detail::id_from_bytes(s.column_blob(0));
    out.collection = std::string(s.column_text(1));
    out.scope_key = std::string(s.column_text(2));
    out.seq = s.column_int(3);
    out.deleted = s.column_int(4) != 0;
    out.conflicts = static_cast<std::size_t>(s.column_int(5));
    out.fields = std::string(s.column_text(6));
    out.meta = std::string(s.column_text(7));
    return out;
}

// True when the device that named `held` holds record `id`, on row `s` of the page query, as the
// upstream has it: it named the record under the same scope key, and made every version of it.
bool holds_as_is(const std::unordered_map<std::string, std::string_view>& held, const std::string& id,
                 const Statement& s, std::string_view replica) {
    const auto named = held.find(id);
    return named != held.end() && named->second == s.column_text(2) &&
           made_only_by(s.column_text(7), replica);
}

// Whether a page looks up the lines filed by key (sync_log_by_key) up to `filed`, rather than
// walk the log from the cursor there (sync_log_walk); the lines after `filed` are walked either way.
// A walk reads every line anyone in the organisation wrote, at about a quarter of a microsecond
// each; a lookup reads only the user's own lines, at the cost of a query per chunk (about as much
// as walking 256 lines: fresh pages to read and decrypt, a sort) and a seek per key in it. So a
// device far behind (a first pull, a phone a week offline) looks its user's keys up, a device a
// few hundred lines behind walks, and so does a supervisor of thousands of keys, for whom a
// chunk's seeks cost more than its lines. Both read the same page.
bool reads_by_key(const UpstreamOptions& options, const ScopeSet& scope, std::int64_t after,
                  std::int64_t filed) {
    if (scope.everything || after >= filed) return false;
    switch (options.pull_lines) {
        case PullLines::walk_log: return false;
        case PullLines::by_key: return true;
        case PullLines::automatic: break;
    }
    // Costs in lines walked.
    constexpr std::int64_t kPerChunk = 256, kPerSeek = 4;
    const std::int64_t behind = filed - after;
    const std::int64_t chunks = 1 + behind / std::max<std::int64_t>(1, options.file_log_every);
    const auto keys = static_cast<std::int64_t>(scope.keys.size());
    return chunks * (kPerChunk + keys * kPerSeek) < behind;
}

// The first chunk of sync_log_by_key that starts after `chunk` (a chunk's name is the sequence
// number it starts after), or nothing after the last.
Result<std::optional<std::int64_t>> next_chunk(Store& store, std::int64_t chunk) {
    Statement& next = store.cached("SELECT chunk FROM sync_log_by_key WHERE chunk > ?1 ORDER BY chunk LIMIT 1");
    next.bind(1, chunk);
    std::optional<std::int64_t> found;
    TSUNAGU_TRY(detail::each_row(next, [&](const Statement& s) { found = s.column_int(0); }));
    return found;
}

// Reads, chunk by chunk, the user's filed lines in (after, filed] that are their records' latest
// (the lines a walk would find), in sequence order, calling row(s) with each line's record in the
// page query's columns, until `room` are read. Returns how many were.
template <typename Row>
Result<std::int64_t> read_filed_lines(Store& store, const std::string& user, std::int64_t after,
                                      std::int64_t room, Row&& row) {
    // The chunk holding the line after the cursor: the last to start at or before the cursor.
    Statement& first = store.cached("SELECT max(chunk) FROM sync_log_by_key WHERE chunk <= ?1");
    first.bind(1, after);
    std::optional<std::int64_t> chunk = 0;
    TSUNAGU_TRY(detail::each_row(first, [&](const Statement& s) { chunk = s.column_int(0); }));
    Statement& lines = store.cached(
        "SELECT r.id, r.collection, r.scope_key, r.seq, r.deleted, r.conflicts, r.fields, r.meta"
        " FROM sync_log_by_key l JOIN sync_records r ON r.rid = l.rid AND r.seq = l.seq"
        " WHERE l.chunk = ?1 AND l.scope_key IN (SELECT scope_key FROM sync_scope_members WHERE user = ?2)"
        " AND l.seq > ?3 ORDER BY l.seq LIMIT ?4");
    std::int64_t read = 0;
    while (chunk && read < room) {
        lines.bind(1, *chunk).bind(2, user).bind(3, after).bind(4, room - read);
        TSUNAGU_TRY(detail::each_row(lines, [&](const Statement& s) {
            ++read;
            row(s);
        }));
        auto next = next_chunk(store, *chunk);
        TSUNAGU_TRY(next);
        chunk = *next;
    }
    return read;
}

// The rows of the records whose scope key is `key` now. Records have no index by scope key, but
// a record's latest log line carries its key: where the log is filed by key, the key's lines in
// each chunk and the lines after the last chunk give them, a seek per chunk; otherwise (nothing
// filed, as on PostgreSQL) a scan of every record.
Result<std::vector<std::int64_t>> records_under(Store& store, const std::string& key) {
    std::vector<std::int64_t> rows;
    auto keep = [&](const Statement& s) { rows.push_back(s.column_int(0)); };
    auto filed = detail::meta_int(store, detail::kMetaLogFiled, 0);
    TSUNAGU_TRY(filed);
    if (*filed == 0) {
        Statement& scan = store.cached("SELECT rid FROM sync_records WHERE scope_key = ?1");
        scan.bind(1, key);
        TSUNAGU_TRY(detail::each_row(scan, keep));
        return rows;
    }
    Statement& in_chunk = store.cached(
        "SELECT l.rid FROM sync_log_by_key l JOIN sync_records r ON r.rid = l.rid AND r.seq = l.seq"
        " WHERE l.chunk = ?1 AND l.scope_key = ?2");
    auto chunk = next_chunk(store, -1);
    TSUNAGU_TRY(chunk);
    while (*chunk) {
        in_chunk.bind(1, **chunk).bind(2, key);
        TSUNAGU_TRY(detail::each_row(in_chunk, keep));
        chunk = next_chunk(store, **chunk);
        TSUNAGU_TRY(chunk);
    }
    Statement& after = store.cached(
        "SELECT l.rid FROM sync_log l JOIN sync_records r ON r.rid = l.rid AND r.seq = l.seq"
        " WHERE l.seq > ?1 AND l.scope_key = ?2");
    after.bind(1, *filed).bind(2, key);
    TSUNAGU_TRY(detail::each_row(after, keep));
    return rows;
}

// The records the device asked for whole again (PullRequest::refetch): in the page whole when in
// the user's scope, whatever the cursor (and whatever the device named as held); evicted otherwise.
Status add_refetched(Upstream::Impl& im, const PullRequest& request, const ScopeSet& scope, PullPage& page) {
    for (const std::string& id : request.refetch) {
        if (!is_id(id)) continue;
        const auto same = [&](const auto& r) { return r.id == id; };
        if (std::any_of(page.records.begin(), page.records.end(), same)) continue;
        auto row = im.records.find(id);
        TSUNAGU_TRY(row);
        if (*row && scope.contains((*row)->scope_key)) {
            const detail::StoredRecord& r = **row;
            page.records.push_back({r.id, r.collection, r.scope_key, r.seq, r.deleted, r.conflicts, r.fields, r.meta});
        } else if (std::find(page.evicted_records.begin(), page.evicted_records.end(), id) ==
                   page.evicted_records.end()) {
            page.evicted_records.push_back(id);
        }
    }
    return Status::ok();
}

// Answers each record the device asks to let go (PullRequest::release): in scope; out of scope
// with every version the device names applied here (the device lets it go); or out of scope
// without some of them, or without the record (the device keeps it). Compaction keeps the entries
// of a record's current versions; a version of the device's copy that the upstream superseded
// and compacted away answers "not held" too: in doubt, the copy stays.
Status answer_release(Upstream::Impl& im, const PullRequest& request, const ScopeSet& scope, PullPage& page) {
    for (const ReleaseAsk& ask : request.release) {
        if (!is_id(ask.record)) continue;
        auto row = im.records.find(ask.record);
        TSUNAGU_TRY(row);
        if (*row && scope.contains((*row)->scope_key)) {
            page.release.in_scope.push_back(ask.record);
            continue;
        }
        bool held = *row && !ask.versions.empty();
        if (held) {
            auto applied = detail::ChangeList::parse((*row)->log);
            TSUNAGU_TRY(applied);
            std::unordered_set<std::string_view> ids;
            for (const detail::AppliedChange& entry : applied->entries) ids.insert(entry.change_id);
            held = std::all_of(ask.versions.begin(), ask.versions.end(),
                               [&](const std::string& id) { return ids.contains(id); });
        }
        (held ? page.release.released : page.release.not_held).push_back(ask.record);
    }
    return Status::ok();
}

Status check_request(const PullRequest& request, std::int64_t last_seq) {
    if (!is_id(request.replica)) {
        return Status(ErrorCode::invalid_argument,
                      "pull: replica must be an id of 32 hex characters");
    }
    if (request.after < 0 || request.after > last_seq) {
        return Status(ErrorCode::invalid_argument, "pull: cursor " + std::to_string(request.after) +
                                                       " is not in this upstream's log (last " +
                                                       std::to_string(last_seq) +
                                                       "); the device must start again from 0");
    }
    return Status::ok();
}

}  // namespace

Result<PullPage> Upstream::read_page(const PullRequest& request) {
    Impl& im = *impl_;
    PullPage page;
    page.after = request.after;
    const auto limit =
        static_cast<std::int64_t>(std::clamp<std::size_t>(request.limit, 1, im.options.max_page));
    // A page is read in one read transaction: a consistent snapshot, no write lock, no sync to
    // disk. (Inside a caller's transaction, in that one.)
    const bool own_transaction = !im.store.in_transaction();
    if (own_transaction) TSUNAGU_TRY(im.store.begin_deferred());
    Status status = [&]() -> Status {
        TSUNAGU_TRY(im.read_counters(/*writing=*/false));
        TSUNAGU_TRY(check_request(request, im.seq));
        // The device's recorded progress. Nothing is read for a device compaction does not wait
        // for yet (see PullPage::unregistered).
        struct {
            std::int64_t cursor, outbox_floor, last_seen_ms;
        } recorded{};
        {
            Statement& stored = im.store.cached(
                "SELECT cursor, outbox_floor, last_seen_ms FROM sync_replicas WHERE replica = ?1");
            const detail::IdBytes replica = detail::id_to_bytes(request.replica);
            stored.bind_blob(1, replica);
            auto row = stored.step();
            TSUNAGU_TRY(row);
            if (*row) recorded = {stored.column_int(0), stored.column_int(1), stored.column_int(2)};
            stored.reset();
            if (!*row) {
                page.unregistered = true;
                page.next = request.after;
                page.epoch = im.epoch;
                return Status::ok();
            }
        }
        auto scope = im.scope_set(request.user);
        TSUNAGU_TRY(scope);

        // Each record once, at its latest log line; what the device holds as the upstream has it
        // is left out, but counts toward the page.
        std::unordered_map<std::string, std::string_view> held;
        for (const HeldRecord& h : request.held) held.emplace(h.record, h.scope_key);
        auto take = [&](const Statement& s) {
            if (!held.empty()) {
                std::string id = detail::id_from_bytes(s.column_blob(0));
                if (holds_as_is(held, id, s, request.replica)) {
                    page.kept.push_back({std::move(id), s.column_int(3)});
                    return;
                }
            }
            page.records.push_back(read_snapshot(s));
        };
        // The filed lines looked up by key, if that is cheaper; then the rest walked.
        std::int64_t from = request.after, room = limit, last_seq = 0;
        auto filed = detail::meta_int(im.store, detail::kMetaLogFiled, 0);
        TSUNAGU_TRY(filed);
        if (reads_by_key(im.options, *scope, request.after, *filed)) {
            auto read = read_filed_lines(im.store, request.user, request.after, limit,
                                         [&](const Statement& s) {
                                             last_seq = s.column_int(3);
                                             take(s);
                                         });
            TSUNAGU_TRY(read);
            room -= *read;
            from = *filed;
        }
        if (room > 0) {
            Statement& records =
                scope->everything ? im.store.cached(
                                        "SELECT r.id, r.collection, r.scope_key, r.seq, r.deleted, "
                                        "r.conflicts, r.fields, r.meta"
                                        " FROM sync_log l JOIN sync_records r ON r.rid = l.rid"
                                        " WHERE l.seq > ?1 AND r.seq = l.seq ORDER BY l.seq LIMIT ?2")
                                  : im.store.cached(
                                        "SELECT r.id, r.collection, r.scope_key, r.seq, r.deleted, "
                                        "r.conflicts, r.fields, r.meta"
                                        " FROM sync_log l JOIN sync_records r ON r.rid = l.rid"
                                        " WHERE l.seq > ?1 AND l.scope_key IN"
                                        " (SELECT scope_key FROM sync_scope_members WHERE user = ?3)"
                                        " AND r.seq = l.seq ORDER BY l.seq LIMIT ?2");
            records.bind(1, from).bind(2, room);
            if (!scope->everything) records.bind(3, request.user);
            TSUNAGU_TRY(detail::each_row(records, [&](const Statement& s) {
                --room;
                last_seq = s.column_int(3);
                take(s);
            }));
        }
        page.more = room == 0;
        page.next = page.more ? last_seq : im.seq;

        // Moves are rare: each record is looked up on its own.
        std::vector<std::pair<std::string, std::string>> moved;  // (record, old key)
        Statement& moves = im.store.cached(
            "SELECT record_id, old_key FROM sync_scope_moves WHERE seq > ?1 AND seq <= ?2");
        moves.bind(1, page.after).bind(2, page.next);
        TSUNAGU_TRY(detail::each_row(moves, [&](const Statement& s) {
            std::string old_key(s.column_text(1));
            if (scope->contains(old_key))
                moved.emplace_back(detail::id_from_bytes(s.column_blob(0)), std::move(old_key));
        }));
        for (const auto& [record, old_key] : moved) {
            auto row = im.records.find(record);
            TSUNAGU_TRY(row);
            if (!*row || !scope->contains((*row)->scope_key)) page.evicted_records.push_back(record);
        }
        Statement& removals = im.store.cached(
            "SELECT DISTINCT scope_key FROM sync_scope_removals WHERE user = ?1 AND seq > ?2 AND "
            "seq <= ?3");
        removals.bind(1, request.user).bind(2, page.after).bind(3, page.next);
        TSUNAGU_TRY(detail::each_row(removals, [&](const Statement& s) {
            std::string key(s.column_text(0));
            if (!scope->contains(key)) page.evicted_scopes.push_back(std::move(key));
        }));

        for (const SentChange& sent : request.sent) {
            if (!is_id(sent.record) || !is_id(sent.change_id)) continue;
            auto row = im.records.find(sent.record);
            TSUNAGU_TRY(row);
            if (!*row || !detail::ChangeList::may_mention((*row)->log, sent.change_id)) continue;
            auto applied = detail::ChangeList::parse((*row)->log);
            TSUNAGU_TRY(applied);
            if (const detail::AppliedChange* known = applied->find(sent.change_id)) {
                page.acks.push_back(detail::answer_again(*known, sent.record));
            }
        }
        TSUNAGU_TRY(add_refetched(im, request, *scope, page));
        TSUNAGU_TRY(answer_release(im, request, *scope, page));
        // Progress is written on a pull's last page when it changed, and at least every
        // kProgressRefreshMs so that the device's last contact stays current; a device polling
        // with nothing new costs the upstream no write.
        constexpr std::int64_t kProgressRefreshMs = 60'000;
        page.progress_due = !page.more && (recorded.cursor != request.after ||
                                           recorded.outbox_floor != std::min(request.outbox_floor, request.after) ||
                                           im.clock.wall_now() - recorded.last_seen_ms >= kProgressRefreshMs);
        page.upstream_time = im.clock.tick();
        page.epoch = im.epoch;
        return Status::ok();
    }();
    if (!status) {
        if (own_transaction) (void)im.store.rollback();
        return status;
    }
    if (own_transaction) TSUNAGU_TRY(im.store.commit());
    return page;
}

Status Upstream::record_progress(const PullRequest& request) {
    Impl& im = *impl_;
    return with_transaction(im.store, [&]() -> Status {
        Statement& seen = im.store.cached(
            "INSERT OR REPLACE INTO sync_replicas(replica, user, cursor, outbox_floor, last_seen_ms)"
            " VALUES (?1, ?2, ?3, ?4, ?5)");
        const detail::IdBytes replica = detail::id_to_bytes(request.replica);
        return seen.bind_blob(1, replica)
            .bind(2, request.user)
            .bind(3, request.after)
            .bind(4, std::min(request.outbox_floor, request.after))
            .bind(5, im.clock.wall_now())
            .run();
    });
}

Result<PullPage> Upstream::pull(const PullRequest& request) {
    auto page = read_page(request);
    if (page && page->unregistered) {
        TSUNAGU_TRY(record_progress(request));
        page = read_page(request);
        if (page && page->unregistered) {
            return Status(ErrorCode::busy, "the device was forgotten while its pull began: pull again");
        }
    }
    if (!page) return page.status();
    // The device's progress, which compaction waits for, is recorded once per pull (at its last
    // page; a device not known yet has it recorded above, before its first page): a progress
    // recorded late only makes compaction wait longer.
    if (page->progress_due) TSUNAGU_TRY(record_progress(request));
    return page;
}

Result<std::vector<std::string>> Upstream::scope_of(std::string_view user) {
    auto scope = impl_->scope_set(user);
    TSUNAGU_TRY(scope);
    std::vector<std::string> keys(scope->keys.begin(), scope->keys.end());
    std::sort(keys.begin(), keys.end());
    return keys;
}

Status Upstream::set_scope(std::string_view user, std::vector<std::string> scope_keys) {
    Impl& im = *impl_;
    return with_transaction(im.store, [&]() -> Status {
        TSUNAGU_TRY(im.read_counters());
        auto before = im.scope_set(user);
        TSUNAGU_TRY(before);
        ScopeSet after;
        for (const auto& key : scope_keys) {
            if (key == "*") after.everything = true;
            after.keys.insert(key);
        }
        // The keys whose visibility changes: those named on either side, and with "*" on either
        // side every key a record has had (a device may still file a record under a key no
        // record has any more, when it moved away after the device's last pull).
        std::set<std::string> candidates(before->keys.begin(), before->keys.end());
        candidates.insert(after.keys.begin(), after.keys.end());
        if (before->everything != after.everything) {
            TSUNAGU_TRY(detail::each_row(
                im.store.cached("SELECT scope_key FROM sync_scope_keys"),
                [&](const Statement& s) { candidates.emplace(s.column_text(0)); }));
        }
        for (const auto& key : candidates) {
            if (key == "*") continue;
            const bool was = before->contains(key);
            const bool is = after.contains(key);
            if (was && !is) {
                Statement& removal = im.store.cached(
                    "INSERT INTO sync_scope_removals(seq, user, scope_key) VALUES (?1, ?2, ?3)");
                TSUNAGU_TRY(removal.bind(1, ++im.seq).bind(2, user).bind(3, key).run());
            } else if (!was && is) {
                // Fresh sequence numbers, one per record, so pages stay well ordered. A key no
                // record has (a new client's) needs no search (see sync_scope_keys).
                auto has_records = detail::scope_key_may_have_records(im.store, key);
                TSUNAGU_TRY(has_records);
                if (!*has_records) continue;
                auto found = records_under(im.store, key);
                TSUNAGU_TRY(found);
                const std::vector<std::int64_t>& touched = *found;
                for (const std::int64_t rid : touched) {
                    ++im.seq;
                    Statement& touch =
                        im.store.cached("UPDATE sync_records SET seq = ?2 WHERE rid = ?1");
                    TSUNAGU_TRY(touch.bind(1, rid).bind(2, im.seq).run());
                    Statement& log = im.store.cached(
                        "INSERT INTO sync_log(seq, rid, kind, scope_key) VALUES (?1, ?2, ?3, ?4)");
                    TSUNAGU_TRY(log.bind(1, im.seq)
                                    .bind(2, rid)
                                    .bind(3, detail::kTouchKind)
                                    .bind(4, key)
                                    .run());
                }
            }
        }
        Statement& clear = im.store.cached("DELETE FROM sync_scope_members WHERE user = ?1");
        TSUNAGU_TRY(clear.bind(1, user).run());
        for (const auto& key : after.keys) {
            Statement& add =
                im.store.cached("INSERT INTO sync_scope_members(user, scope_key) VALUES (?1, ?2)");
            TSUNAGU_TRY(add.bind(1, user).bind(2, key).run());
        }
        return im.write_counters();
    });
}

Status Upstream::forget_replica(std::string_view replica) {
    if (!is_id(replica))
        return Status(ErrorCode::invalid_argument, "forget_replica: not a replica id");
    Statement& s = impl_->store.cached("DELETE FROM sync_replicas WHERE replica = ?1");
    const detail::IdBytes id = detail::id_to_bytes(replica);
    return s.bind_blob(1, id).run();
}

Result<std::vector<ReplicaProgress>> Upstream::replicas() {
    std::vector<ReplicaProgress> out;
    Statement& s = impl_->store.cached(
        "SELECT replica, user, cursor, min(cursor, outbox_floor), last_seen_ms FROM sync_replicas");
    TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) {
        out.push_back({detail::id_from_bytes(row.column_blob(0)), std::string(row.column_text(1)), row.column_int(2),
                       row.column_int(3), row.column_int(4)});
    }));
    return out;
}

}  // namespace tsunagu::sync
