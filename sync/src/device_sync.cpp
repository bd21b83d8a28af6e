// The device's side of sync: pushing the outbox, applying answers and pages, evicting, and
// correcting a skewed clock against the upstream's time.
#include <algorithm>
#include <cstdlib>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "sync/src/device_impl.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/json_scan.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"

namespace tsunagu::sync {
namespace {

using detail::OutboxState;

// Below this, the difference between the upstream's time and ours is network delay, not skew.
constexpr std::int64_t kOffsetSlackMs = 1'000;

struct OutboxEntry {
    std::int64_t pos = 0;
    OutboxState state = OutboxState::unsent;
    ChangeSet change;
    std::int64_t raw_wall_ms = 0;
};

}  // namespace

namespace {

// Inside a transaction: passes the stored text of each outbox entry due in the next batch to
// `take`, oldest first, after position `after` and at most max_changes, then marks them sent;
// notes the batch's last position, its records and the entries it marked in `batch`. A change
// refused or held for eviction holds back the later changes of its record, which may build on
// it. A batch beside flying ones starts after them (`after`): every record with an entry up to
// `after` not yet answered (sent in a batch still flying, or passed over by one) waits, and so
// does every later change naming it (its record, or a value such as a visit's client), and every
// later change naming theirs. So batches in flight share no record, none needs another's records
// first (a visit its new client), and they may be applied in any order; what waited goes in a
// batch prepared once nothing flies, which starts from the outbox's beginning. Reads only the
// entries it takes, those up to `after` still in the outbox, and the held records (through their
// partial index).
template <typename Take>
Status take_due(Store& store, std::size_t max_changes, std::int64_t after, PushBatchText& batch, Take&& take) {
    std::set<std::string> held;
    std::set<std::string> waiting;
    if (after > 0) {
        Statement& behind = store.cached("SELECT DISTINCT record_id FROM sync_outbox WHERE pos <= ?1 AND state <= 1");
        behind.bind(1, after);
        TSUNAGU_TRY(detail::each_row(behind, [&](const Statement& s) {
            waiting.insert(detail::id_from_bytes(s.column_blob(0)));
            return Status::ok();
        }));
    }
    TSUNAGU_TRY(detail::each_row(
        store.cached("SELECT DISTINCT record_id FROM sync_outbox WHERE state >= 2"),
        [&](const Statement& s) {
            held.insert(detail::id_from_bytes(s.column_blob(0)));
            return Status::ok();
        }));
    Statement& due = store.cached(
        "SELECT pos, state, record_id, change FROM sync_outbox WHERE state <= 1 AND pos > ?1"
        " ORDER BY pos");
    due.bind(1, after);
    std::size_t taken = 0;
    std::int64_t last = after;
    Status scanned;
    while (taken < max_changes) {
        auto row = due.step();
        if (!row) {
            scanned = row.status();
            break;
        }
        if (!*row) break;
        std::string record = detail::id_from_bytes(due.column_blob(2));
        if (!held.empty() && held.contains(record)) continue;
        if (!waiting.empty() && detail::names_any(due.column_text(3), waiting)) {
            waiting.insert(std::move(record));  // so do the changes that build on this one
            continue;
        }
        scanned = take(due.column_text(3));
        if (!scanned) break;
        ++taken;
        last = due.column_int(0);
        batch.records.insert(std::move(record));
        if (due.column_int(1) == static_cast<int>(OutboxState::unsent))
            batch.marked.push_back(last);
    }
    due.reset();
    TSUNAGU_TRY(scanned);
    batch.last_position = last;
    Statement& mark = store.cached("UPDATE sync_outbox SET state = 1 WHERE pos = ?1 AND state = 0");
    for (std::int64_t pos : batch.marked) TSUNAGU_TRY(mark.bind(1, pos).run());
    return Status::ok();
}

// Appends a stored change text to the batch's JSON array.
Status append_change(PushBatchText& batch, std::string_view text) {
    // Written by this engine as one JSON object (edit, re-stamp); the upstream validates it like
    // any change set. This only keeps a damaged entry from garbling the array.
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
        return Status(ErrorCode::corrupt, "outbox entry unreadable: not a JSON object");
    }
    batch.changes.push_back(batch.count == 0 ? '[' : ',');
    batch.changes.append(text);
    ++batch.count;
    return Status::ok();
}

}  // namespace

Result<PushBatch> Device::prepare_push(std::size_t max_changes) {
    Impl& im = *impl_;
    PushBatch batch;
    batch.replica = im.replica;
    batch.user = im.options.user;
    batch.sent_at_ms = im.clock.wall_now();
    batch.clock_offset_ms = clock_offset_ms();
    PushBatchText range;
    Status status = with_transaction(im.store, [&]() -> Status {
        return take_due(im.store, max_changes, 0, range, [&](std::string_view text) -> Status {
            auto change = detail::read_outbox_change(text);
            TSUNAGU_TRY(change);
            batch.changes.push_back(std::move(*change));
            return Status::ok();
        });
    });
    TSUNAGU_TRY(status);
    return batch;
}

Result<PushBatchText> Device::prepare_push_text(std::size_t max_changes) {
    return prepare_push_text(max_changes, std::vector<const PushBatchText*>{});
}

Result<PushBatchText> Device::prepare_push_text(std::size_t max_changes,
                                                const PushBatchText& in_flight) {
    return prepare_push_text(max_changes, std::vector<const PushBatchText*>{&in_flight});
}

Result<PushBatchText> Device::prepare_push_text(std::size_t max_changes,
                                                const std::vector<const PushBatchText*>& in_flight) {
    Impl& im = *impl_;
    PushBatchText batch;
    batch.replica = im.replica;
    batch.user = im.options.user;
    batch.sent_at_ms = im.clock.wall_now();
    batch.clock_offset_ms = clock_offset_ms();
    std::int64_t after = 0;
    for (const PushBatchText* flying : in_flight) after = std::max(after, flying->last_position);
    Status status = with_transaction(im.store, [&]() -> Status {
        return take_due(im.store, max_changes, after, batch,
                        [&](std::string_view text) { return append_change(batch, text); });
    });
    TSUNAGU_TRY(status);
    batch.changes.append(batch.count == 0 ? "[]" : "]");
    return batch;
}

Status Device::withdraw_push(const PushBatchText& batch) {
    Impl& im = *impl_;
    return with_transaction(im.store, [&]() -> Status {
        for (std::int64_t pos : batch.marked) {
            TSUNAGU_TRY(
                im.store.cached("UPDATE sync_outbox SET state = 0 WHERE pos = ?1 AND state = 1")
                    .bind(1, pos)
                    .run());
        }
        return Status::ok();
    });
}

Result<PushReport> Device::apply_push_result(const PushResult& result) {
    Impl& im = *impl_;
    PushReport report;
    ClockRestore restore(*this);  // what learn_time sets in memory goes with a rollback
    Status status = with_transaction(im.store, [&]() -> Status {
        TSUNAGU_TRY(im.catch_up_clock());
        auto heard = im.heard_epoch(result.epoch);
        TSUNAGU_TRY(heard);
        report.resent = heard->resent;
        report.restarted = heard->restored;
        for (const PushOutcome& outcome : result.outcomes) {
            auto settled = im.settle(outcome, im.acked_at(result.upstream_time));
            TSUNAGU_TRY(settled);
            report.acknowledged += settled->acknowledged;
            report.refused += settled->refused;
            report.restamped += settled->restamped;
        }
        // After the answers are settled: a change refused in this answer is re-stamped with the
        // unsent ones, should the clock prove ahead (it is sent again once due).
        auto restamped = im.learn_time(result.upstream_time, result.upstream_time_age_ms);
        TSUNAGU_TRY(restamped);
        report.restamped += *restamped;
        TSUNAGU_TRY(im.prune_journal());
        return im.save_clock();
    });
    TSUNAGU_TRY(status);
    restore.keep();
    return report;
}

Status Device::refuse_unjudged(const PushOutcome& refusal) {
    Impl& im = *impl_;
    PushOutcome refused = refusal;
    refused.status = PushStatus::refused;
    return with_transaction(im.store, [&]() -> Status { return im.settle(refused, im.clock.wall_now()).status(); });
}

Result<PullRequest> Device::prepare_pull(std::size_t limit) {
    Impl& im = *impl_;
    PullRequest request;
    request.replica = im.replica;
    request.user = im.options.user;
    request.limit = limit;
    auto cursor = detail::meta_int(im.store, detail::kMetaCursor, 0);
    TSUNAGU_TRY(cursor);
    request.after = *cursor;
    request.outbox_floor = *cursor;
    // Asked after: the changes sent without an answer (a lost response), and the refused ones,
    // which the upstream may have taken since on the worker's behalf (a supervisor applied it):
    // heard as taken, they leave the outbox before any page is applied, rather than being
    // replayed onto a snapshot that already holds them (as a conflict with whatever superseded
    // them there). Refused ones are few; at most kMaxRefusedAsked go in one pull, oldest first.
    constexpr std::size_t kMaxRefusedAsked = 200;
    std::size_t refused_asked = 0;
    TSUNAGU_TRY(detail::each_row(
        im.store.cached("SELECT record_id, change_id, state, cursor FROM sync_outbox ORDER BY pos"),
        [&](const Statement& s) {
            const auto state = static_cast<OutboxState>(s.column_int(2));
            const bool room = request.sent.size() < PullRequest::kMaxSent;
            if (room && (state == OutboxState::sent ||
                         (state == OutboxState::refused && refused_asked++ < kMaxRefusedAsked))) {
                request.sent.push_back({detail::id_from_bytes(s.column_blob(0)),
                                        detail::id_from_bytes(s.column_blob(1))});
            }
            request.outbox_floor = std::min(request.outbox_floor, s.column_int(3));
            return Status::ok();
        }));
    // The records pushed to since the cursor, under the keys they are filed under here (a page
    // names at most as many as it may hold; the others come back whole). An evicted one is not
    // named: it is not held.
    Statement& acked = im.store.cached(
        "SELECT record_id FROM sync_acked WHERE seq > ?1 GROUP BY record_id ORDER BY min(seq)"
        " LIMIT ?2");
    acked.bind(1, *cursor).bind(2, static_cast<std::int64_t>(std::max<std::size_t>(limit, 1)));
    std::vector<std::string> pushed;
    // None while pulling everything again: its pages must bring every record whole, or the
    // records left out would look gone at its end.
    auto resync = detail::meta_int(im.store, detail::kMetaResync, detail::kResyncNone);
    TSUNAGU_TRY(resync);
    if (!*resync) {
        TSUNAGU_TRY(detail::each_row(
            acked, [&](const Statement& s) { pushed.push_back(detail::id_from_bytes(s.column_blob(0))); }));
    }
    for (auto& record : pushed) {
        auto key = im.records.scope_key_of(record);
        TSUNAGU_TRY(key);
        if (*key) request.held.push_back({std::move(record), std::move(**key)});
    }
    Statement& refetch = im.store.cached("SELECT record_id FROM sync_refetch LIMIT ?1");
    refetch.bind(1, static_cast<std::int64_t>(PullRequest::kMaxRefetch));
    TSUNAGU_TRY(detail::each_row(refetch, [&](const Statement& s) {
        request.refetch.push_back(detail::id_from_bytes(s.column_blob(0)));
    }));
    // Once a pull from the start after a restore has ended: the records it kept though the
    // upstream may no longer let this user see them, with the versions their copies reference.
    // Not one with outbox changes: the upstream cannot hold those.
    if (!*resync) {
        Statement& asks = im.store.cached(
            "SELECT record_id FROM sync_release_asks WHERE asked_ms <= ?1"
            " AND record_id NOT IN (SELECT record_id FROM sync_outbox) ORDER BY asked_ms LIMIT ?2");
        asks.bind(1, im.clock.wall_now() - im.options.release_ask_again_ms)
            .bind(2, static_cast<std::int64_t>(PullRequest::kMaxRelease));
        std::vector<std::string> asked;
        TSUNAGU_TRY(detail::each_row(asks, [&](const Statement& s) { asked.push_back(detail::id_from_bytes(s.column_blob(0))); }));
        std::size_t versions = 0;
        for (std::string& record : asked) {
            auto loaded = im.records.load(record);
            TSUNAGU_TRY(loaded);
            if (!*loaded) continue;
            ReleaseAsk ask{std::move(record), {}};
            for (const StateVersion& v : (*loaded)->state.versions) ask.versions.push_back(v.version.change_id);
            if (versions + ask.versions.size() > PullRequest::kMaxReleaseVersions) continue;
            versions += ask.versions.size();
            request.release.push_back(std::move(ask));
        }
    }
    request.clock_offset_ms = clock_offset_ms();
    return request;
}

Result<Device::Impl::Settled> Device::Impl::settle(const PushOutcome& outcome, std::int64_t acked_ms) {
    Settled out;
    if (!is_id(outcome.change_id)) return out;
    if (outcome.status == PushStatus::refused) {
        // Sent ahead of changes to its record still to be sent, which it may build on: the
        // journal a restored upstream's answer just put back ahead of it (see heard_epoch), such
        // as the create of a record the upstream lost ("no_record"). Judged again after them.
        Statement& behind = store.cached(
            "UPDATE sync_outbox SET state = 0 WHERE change_id = ?1 AND EXISTS (SELECT 1 FROM sync_outbox o"
            " WHERE o.record_id = sync_outbox.record_id AND o.pos < sync_outbox.pos AND o.state <= 1)");
        TSUNAGU_TRY(behind.bind_blob(1, detail::id_to_bytes(outcome.change_id)).run());
        if (store.changes() > 0) return out;
        Statement& refuse = store.cached(
            "UPDATE sync_outbox SET state = 2, code = ?2, reason = ?3, cause = ?4 WHERE change_id = ?1");
        const detail::IdBytes id = detail::id_to_bytes(outcome.change_id);
        TSUNAGU_TRY(refuse.bind_blob(1, id)
                        .bind(2, error_code_name(outcome.code))
                        .bind(3, outcome.reason)
                        .bind(4, outcome.cause)
                        .run());
        out.refused = static_cast<std::size_t>(store.changes());
        return out;
    }
    auto acknowledged = acknowledge(outcome, acked_ms);
    TSUNAGU_TRY(acknowledged);
    out.acknowledged = acknowledged->removed;
    out.restamped = acknowledged->restamped;
    return out;
}

Result<Device::Impl::Acknowledged> Device::Impl::acknowledge(const PushOutcome& outcome, std::int64_t acked_ms) {
    Acknowledged out;
    const detail::IdBytes id = detail::id_to_bytes(outcome.change_id);
    Statement& remove = store.cached(
        "DELETE FROM sync_outbox WHERE change_id = ?1 RETURNING record_id, hlc, raw_wall_ms, cursor, change");
    remove.bind_blob(1, id);
    auto row = remove.step();
    if (!row) {
        remove.reset();
        return row.status();
    }
    if (!*row) {
        remove.reset();
        return out;  // answered before (a repeated answer)
    }
    const std::string record = detail::id_from_bytes(remove.column_blob(0));
    const Hlc stamped = Hlc::from_packed(remove.column_int(1));
    const bool upstream_stamped = outcome.hlc != Hlc{} && outcome.hlc != stamped;
    if (options.keep_acknowledged_ms > 0) {
        // Journaled as the outbox held it (the change as it was sent), should the upstream lose
        // it; with the stamp the upstream gave it, when it gave another (our clock was ahead),
        // so that a restored upstream orders it as everyone did before.
        std::string text(remove.column_text(4));
        if (upstream_stamped) {
            auto change = detail::read_outbox_change(text);
            TSUNAGU_TRY(change);
            change->hlc = outcome.hlc;
            text = Json(*change).dump();
        }
        TSUNAGU_TRY(store
                        .cached("INSERT INTO sync_journal(change_id, record_id, hlc, raw_wall_ms, cursor,"
                                " change, acked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                        .bind_blob(1, id)
                        .bind_blob(2, remove.column_blob(0))
                        .bind(3, upstream_stamped ? outcome.hlc.packed() : remove.column_int(1))
                        .bind(4, remove.column_int(2))
                        .bind(5, remove.column_int(3))
                        .bind(6, text)
                        .bind(7, acked_ms)
                        .run());
    }
    TSUNAGU_TRY(remove.run());  // steps the statement to its end, then resets it
    out.removed = true;
    if (outcome.seq > 0) {
        // Taken at a sequence number the pulls have passed: a page brought the record with this
        // change already applied, before this answer (a duplicate: a refused change a supervisor
        // applied, retried since, or a change whose answer was lost and that no pull asked after;
        // accepted: another process on this replica pushed it, and a page read meanwhile was
        // applied first), and the outbox replayed it onto the page's copy, as a conflict with
        // whatever superseded it there that the upstream does not have. The record is asked for
        // whole, to be held as the upstream holds it.
        auto cursor = detail::meta_int(store, detail::kMetaCursor, 0);
        TSUNAGU_TRY(cursor);
        if (outcome.seq <= *cursor) {
            TSUNAGU_TRY(ask_whole(record));
        }
    }
    if (outcome.seq > 0) {
        TSUNAGU_TRY(store.cached("INSERT INTO sync_acked(record_id, seq) VALUES (?1, ?2)")
                        .bind_blob(1, detail::id_to_bytes(record))
                        .bind(2, outcome.seq)
                        .run());
    }
    if (!upstream_stamped) return out;
    // The upstream re-stamped it (our clock was ahead): hold the same stamp as everyone.
    auto loaded = records.load(record);
    TSUNAGU_TRY(loaded);
    if (*loaded && restamp((*loaded)->state, outcome.change_id, outcome.hlc)) {
        TSUNAGU_TRY(records.save((*loaded)->stored, encode_state((*loaded)->state)));
        out.restamped = true;
    }
    return out;
}

Result<Device::Impl::EpochHeard> Device::Impl::heard_epoch(const std::string& epoch) {
    EpochHeard heard;
    if (epoch.empty()) return heard;  // an upstream that does not say
    auto last = detail::meta_text(store, detail::kMetaUpstreamEpoch);
    TSUNAGU_TRY(last);
    if (*last == epoch) return heard;
    TSUNAGU_TRY(detail::set_meta_text(store, detail::kMetaUpstreamEpoch, epoch));
    if (last->empty()) return heard;  // the first answer heard
    heard.restored = true;
    // Everything again, from the start: the restored upstream's caseloads are the backup's, and a
    // client taken from this worker after the backup is hers again there, below this device's
    // cursor. What the pages do not bring stays: the upstream may have lost it with the backup's
    // later changes, and this copy may be the last (a colleague's visit whose phone is gone).
    TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaResync, detail::kResyncRestored));
    TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaCursor, 0));
    // What the lost upstream's pages brought (a pull from the start it answered) says nothing of
    // what the restored one holds.
    TSUNAGU_TRY(store.exec("DELETE FROM sync_resync_seen"));
    // What the lost upstream acknowledged, by its numbers: the restored one's versions of those
    // records are applied as they come (under what the outbox sends again), not taken as older.
    TSUNAGU_TRY(store.exec("DELETE FROM sync_acked"));
    // Ahead of everything in the outbox, oldest first (a record's later unsent changes were made
    // on top of these), as sent: the restored upstream may hold them already, and another
    // author's change may have overwritten them there. Sent, the next pull asks whether it holds
    // them (PullRequest::sent), and its answers take them out of the outbox before any page's
    // record is rebased onto them: re-applied on the upstream's snapshot, a change it overwrote
    // would come back as a conflict (the snapshot keeps only the versions its values refer to).
    // The outbox moves up to make room (positions stay positive, as pushes count from 0), in two
    // steps so that no two rows ever share a position.
    Statement& first = store.cached("SELECT coalesce(min(pos), 1), (SELECT count(*) FROM sync_journal) FROM sync_outbox");
    auto row = first.step();
    TSUNAGU_TRY(row);
    const std::int64_t lowest = first.column_int(0), journaled = first.column_int(1);
    first.reset();
    if (journaled == 0) return heard;
    TSUNAGU_TRY(store.cached("UPDATE sync_outbox SET pos = -(pos + ?1)").bind(1, journaled).run());
    TSUNAGU_TRY(store.exec("UPDATE sync_outbox SET pos = -pos"));
    Statement& requeue = store.cached(
        "INSERT INTO sync_outbox(pos, change_id, record_id, state, hlc, raw_wall_ms, cursor, change)"
        " SELECT ?1 + row_number() OVER (ORDER BY pos), change_id, record_id, ?2, hlc, raw_wall_ms, cursor, change"
        " FROM sync_journal WHERE true ORDER BY pos"
        " ON CONFLICT(change_id) DO NOTHING");
    TSUNAGU_TRY(requeue.bind(1, lowest - 1).bind(2, static_cast<int>(detail::OutboxState::sent)).run());
    heard.resent = static_cast<std::size_t>(store.changes());
    TSUNAGU_TRY(store.exec("DELETE FROM sync_journal"));
    return heard;
}

Status Device::Impl::prune_journal() {
    const std::int64_t cutoff = clock.wall_now() - options.keep_acknowledged_ms;
    // Usually the oldest entry is young enough, and one row read says so.
    Statement& oldest = store.cached("SELECT acked_ms FROM sync_journal ORDER BY pos LIMIT 1");
    bool due = false;
    TSUNAGU_TRY(detail::each_row(oldest, [&](const Statement& s) { due = s.column_int(0) < cutoff; }));
    if (!due) return Status::ok();
    // From the oldest, a bounded slice at a time (a push adds at most a batch).
    Statement& prune = store.cached(
        "DELETE FROM sync_journal WHERE pos IN (SELECT pos FROM sync_journal ORDER BY pos LIMIT 1000)"
        " AND acked_ms < ?1");
    return prune.bind(1, cutoff).run();
}

Result<PullReport> Device::apply_pull(const PullPage& page) {
    Impl& im = *impl_;
    PullReport report;
    ClockRestore restore(*this);  // what learn_time sets in memory goes with a rollback
    Status status = with_transaction(im.store, [&]() -> Status {
        TSUNAGU_TRY(im.catch_up_clock());
        auto cursor = detail::meta_int(im.store, detail::kMetaCursor, 0);
        TSUNAGU_TRY(cursor);
        if (page.after != *cursor || page.next < page.after) {
            report.stale = true;
            return Status::ok();
        }
        auto heard = im.heard_epoch(page.epoch);
        TSUNAGU_TRY(heard);
        report.resent = heard->resent;
        auto restamped = im.learn_time(page.upstream_time, page.upstream_time_age_ms);
        TSUNAGU_TRY(restamped);
        report.restamped = *restamped;
        if (heard->restored) {
            // A restored upstream, heard first in this page: the journal went back to the outbox,
            // as sent, and the cursor to the start. The page was read before the upstream could
            // say which of those changes it holds, and for another cursor: nothing more of it is
            // applied. The next pull asks, from the start.
            report.restarted = true;
            return im.save_clock();
        }
        // Answers to pushes whose own answers were lost: the same as those answers, re-stamps
        // included (a kept record is not sent again to carry them), and a refusal kept as one:
        // a refusal here used to be taken for an acknowledgement, and the change left the outbox.
        for (const PushOutcome& ack : page.acks) {
            auto settled = im.settle(ack, im.acked_at(page.upstream_time));
            TSUNAGU_TRY(settled);
            report.acknowledged += settled->acknowledged;
            report.refused += settled->refused;
            report.restamped += settled->restamped;
        }
        // Pulling everything again after a restore: the log replays evictions this device passed
        // long ago (a client taken from the worker before the backup, given back since), and
        // its versions of records may be newer than the restored upstream's. Nothing is taken off
        // but what a refetch asked for, and no copy is replaced by an older version (see
        // PullReport::restarted).
        auto resync = detail::meta_int(im.store, detail::kMetaResync, detail::kResyncNone);
        TSUNAGU_TRY(resync);
        const bool after_restore = *resync == detail::kResyncRestored;
        std::unordered_set<std::string> refetched;
        if (after_restore) {
            TSUNAGU_TRY(detail::each_row(im.store.cached("SELECT record_id FROM sync_refetch"), [&](const Statement& s) {
                refetched.insert(detail::id_from_bytes(s.column_blob(0)));
            }));
        }
        // Kept through a pull from the start after a restore, and asked about: such a record goes
        // only when the upstream answers that it holds all of it (answered_release), whatever a
        // page's evictions say (a refetch's included): its copy may hold the last of a change. And
        // a page's version of it does not replace that copy unseen (keep_lost_heads, below).
        std::unordered_set<std::string> asked;
        TSUNAGU_TRY(detail::each_row(im.store.cached("SELECT record_id FROM sync_release_asks"), [&](const Statement& s) {
            asked.insert(detail::id_from_bytes(s.column_blob(0)));
        }));
        // (record, the scope key it goes with; empty when the record itself moved out)
        std::vector<std::pair<std::string, std::string>> evicted;
        // An eviction passed over is asked about once the pull ends: replayed, the upstream
        // answers that the record is in scope again; new (the worker lost the client during the
        // pull), that it may go, unless the copy holds what the upstream lacks.
        std::vector<std::string> passed_over;
        for (const auto& record : page.evicted_records) {
            if (asked.contains(record)) continue;
            if (!after_restore || refetched.contains(record)) {
                evicted.emplace_back(record, std::string());
            } else {
                passed_over.push_back(record);
            }
        }
        // A record this page carries is in scope as of the page, whatever key this device still
        // files it under (moved to another of the worker's clients as the old one left her
        // caseload): its snapshot replaces it below, and its journal and unsent work stay.
        std::unordered_set<std::string_view> carried;
        if (!page.evicted_scopes.empty()) {
            for (const RecordSnapshot& snapshot : page.records) carried.insert(snapshot.id);
        }
        for (const auto& key : page.evicted_scopes) {
            auto ids = im.records.ids_in_scope(key);
            TSUNAGU_TRY(ids);
            for (auto& id : *ids) {
                if (carried.contains(id) || asked.contains(id)) continue;
                if (after_restore) {
                    passed_over.push_back(std::move(id));
                } else {
                    evicted.emplace_back(std::move(id), key);
                }
            }
        }
        for (const std::string& record : passed_over) TSUNAGU_TRY(im.ask_release(record));
        for (const auto& [record, key] : evicted) {
            if (!is_id(record)) continue;
            auto held = im.evict(record, key);
            TSUNAGU_TRY(held);
            ++report.evicted;
            report.evicted_pending.insert(report.evicted_pending.end(), held->begin(), held->end());
        }
        auto released = im.answered_release(page);
        TSUNAGU_TRY(released);
        report.released = *released;
        report.evicted += *released;
        Statement& count = im.store.cached("SELECT count(*) FROM sync_outbox");
        auto counted = count.step();
        TSUNAGU_TRY(counted);
        const bool outbox_empty = count.column_int(0) == 0;
        count.reset();
        // Held as the upstream has them: what a pulled snapshot would change is their sequence
        // number (which makes the upstream's scope key govern them from now on).
        for (const KeptRecord& kept : page.kept) {
            if (is_id(kept.record)) TSUNAGU_TRY(im.records.set_seq(kept.record, kept.seq));
        }
        report.kept = page.kept.size();
        // A snapshot older than a change of ours the upstream acknowledged (a page read before it
        // took our push, applied after the answer) would put back what that change wrote over:
        // our copy stays, and the next pull names the record as held, which sends it whole unless
        // we hold it as the upstream has it.
        std::unordered_map<std::string, std::int64_t> acked;  // record -> latest acknowledged seq
        if (!page.records.empty()) {
            Statement& all = im.store.cached("SELECT record_id, seq FROM sync_acked");
            TSUNAGU_TRY(detail::each_row(all, [&](const Statement& row) {
                std::int64_t& seq = acked[detail::id_from_bytes(row.column_blob(0))];
                seq = std::max(seq, row.column_int(1));
            }));
        }
        for (const RecordSnapshot& snapshot : page.records) {
            if (!is_id(snapshot.id)) {
                return Status(ErrorCode::invalid_argument, "pull page holds a malformed record id");
            }
            if (const auto ours = acked.find(snapshot.id); ours != acked.end() && ours->second > snapshot.seq) {
                continue;
            }
            // A copy newer than the page's version (numbered by the lost upstream, during the pull
            // from the start after a restore), or kept and asked about, may hold the last of a
            // change: what only it holds is queued again on top of the page's version.
            const bool kept_copy = asked.contains(snapshot.id);
            if (after_restore || kept_copy) {
                auto held = im.records.find(snapshot.id);
                TSUNAGU_TRY(held);
                const bool newer_here = *held && (*held)->seq > snapshot.seq;
                if (newer_here || (*held && kept_copy)) {
                    auto recovered = im.keep_lost_heads(snapshot, newer_here);
                    TSUNAGU_TRY(recovered);
                    report.recovered += *recovered;
                    ++report.records;
                    continue;
                }
            }
            if (outbox_empty) {
                TSUNAGU_TRY(im.records.put(snapshot));
            } else {
                TSUNAGU_TRY(im.rebase(snapshot));
            }
            ++report.records;
        }
        if (!outbox_empty) TSUNAGU_TRY(im.scopes_returned(page));
        auto gone = im.resync_page(page, *resync);
        TSUNAGU_TRY(gone);
        report.evicted += *gone;
        if (after_restore && !page.more) {
            TSUNAGU_TRY(detail::each_row(im.store.cached("SELECT EXISTS(SELECT 1 FROM sync_release_asks)"),
                                         [&](const Statement& s) { report.release_due = s.column_int(0) != 0; }));
        }
        TSUNAGU_TRY(detail::set_meta_int(im.store, detail::kMetaCursor, page.next));
        TSUNAGU_TRY(im.store.cached("DELETE FROM sync_acked WHERE seq <= ?1").bind(1, page.next).run());
        TSUNAGU_TRY(im.answered_refetch(page));
        return im.save_clock();
    });
    TSUNAGU_TRY(status);
    restore.keep();
    return report;
}

Status Device::Impl::rebase(const RecordSnapshot& snapshot) {
    std::vector<std::pair<std::int64_t, std::string>> entries;  // (pos, change) of this record
    const detail::IdBytes id = detail::id_to_bytes(snapshot.id);
    Statement& s =
        store.cached("SELECT pos, change FROM sync_outbox WHERE record_id = ?1 ORDER BY pos");
    s.bind_blob(1, id);
    TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) {
        entries.emplace_back(row.column_int(0), std::string(row.column_text(1)));
        return Status::ok();
    }));
    if (entries.empty()) return records.put(snapshot);

    auto state = decode_state(snapshot.fields, snapshot.meta);
    TSUNAGU_TRY(state);
    for (const auto& [pos, text] : entries) {
        auto change = detail::read_outbox_change(text);
        TSUNAGU_TRY(change);
        apply_change(*state, *change);
    }
    // Held because the record had left the scope: it is back, so they are due again. Refused:
    // the record changed upstream since, so the reason may no longer hold (a supervisor returned
    // the approved record the change was refused for): due again, to be taken or refused anew.
    TSUNAGU_TRY(store.cached("UPDATE sync_outbox SET state = 0, code = NULL, reason = NULL, cause = NULL"
                             " WHERE record_id = ?1 AND state IN (2, 3)")
                    .bind_blob(1, id)
                    .run());
    if (store.changes() > 0) {
        TSUNAGU_TRY(store.cached("DELETE FROM sync_evicted WHERE record_id = ?1").bind_blob(1, id).run());
    }
    auto existing = records.find(snapshot.id);
    TSUNAGU_TRY(existing);
    detail::StoredRecord row;
    row.rid = *existing ? (*existing)->rid : 0;
    row.id = snapshot.id;
    row.collection = snapshot.collection;
    row.scope_key = snapshot.scope_key;
    row.seq = snapshot.seq;
    return records.save(row, encode_state(*state)).status();
}

Status Device::Impl::ask_whole(const std::string& record) {
    return store.cached("INSERT OR IGNORE INTO sync_refetch(record_id) VALUES (?1)").bind_blob(1, detail::id_to_bytes(record)).run();
}

Status Device::Impl::answered_refetch(const PullPage& page) {
    std::vector<std::string> asked;
    TSUNAGU_TRY(detail::each_row(store.cached("SELECT record_id FROM sync_refetch"), [&](const Statement& s) {
        asked.push_back(detail::id_from_bytes(s.column_blob(0)));
    }));
    if (asked.empty()) return Status::ok();
    std::unordered_set<std::string> answered(page.evicted_records.begin(), page.evicted_records.end());
    for (const RecordSnapshot& r : page.records) answered.insert(r.id);
    Statement& done = store.cached("DELETE FROM sync_refetch WHERE record_id = ?1");
    for (const std::string& id : asked) {
        if (answered.contains(id)) TSUNAGU_TRY(done.bind_blob(1, detail::id_to_bytes(id)).run());
    }
    return Status::ok();
}

Status Device::Impl::scopes_returned(const PullPage& page) {
    std::vector<std::pair<std::string, std::string>> held;  // (record, the key it left with)
    TSUNAGU_TRY(detail::each_row(store.cached("SELECT record_id, scope_key FROM sync_evicted"), [&](const Statement& s) {
        held.emplace_back(detail::id_from_bytes(s.column_blob(0)), std::string(s.column_text(1)));
    }));
    if (held.empty()) return Status::ok();
    std::unordered_set<std::string_view> back;
    for (const RecordSnapshot& r : page.records) back.insert(r.scope_key);
    for (const auto& [record, key] : held) {
        if (!back.contains(key)) continue;
        const detail::IdBytes id = detail::id_to_bytes(record);
        TSUNAGU_TRY(store.cached("UPDATE sync_outbox SET state = 0 WHERE record_id = ?1 AND state = 3").bind_blob(1, id).run());
        TSUNAGU_TRY(store.cached("DELETE FROM sync_evicted WHERE record_id = ?1").bind_blob(1, id).run());
        auto present = records.rid_of(record);
        TSUNAGU_TRY(present);
        if (*present != 0) continue;  // brought by the page too (rebased), or pulled meanwhile
        // Made here (its create is in the outbox, never acknowledged): put back as its changes
        // make it, so that the worker sees it again before it is pushed. A record the upstream
        // has comes whole in a page, if it is still under the key; if not, its changes are
        // refused as outside the scope when pushed, and kept.
        std::vector<ChangeSet> changes;
        Statement& s = store.cached("SELECT change FROM sync_outbox WHERE record_id = ?1 ORDER BY pos");
        s.bind_blob(1, id);
        TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) -> Status {
            auto change = detail::read_outbox_change(row.column_text(0));
            TSUNAGU_TRY(change);
            changes.push_back(std::move(*change));
            return Status::ok();
        }));
        if (changes.empty() || !changes.front().create) continue;
        RecordState state;
        for (const ChangeSet& change : changes) apply_change(state, change);
        detail::StoredRecord row;
        row.id = record;
        row.collection = changes.front().collection;
        row.scope_key = detail::scope_key_for(schema, row.collection, row.id, state);
        if (row.scope_key != key) continue;  // not where the key that came back puts it
        TSUNAGU_TRY(records.save(row, encode_state(state)));
    }
    return Status::ok();
}

Result<std::size_t> Device::Impl::resync_page(const PullPage& page, std::int64_t resync) {
    if (resync == detail::kResyncNone) return std::size_t{0};
    Statement& seen = store.cached("INSERT OR IGNORE INTO sync_resync_seen(record_id) VALUES (?1)");
    for (const RecordSnapshot& snapshot : page.records) {
        if (is_id(snapshot.id)) TSUNAGU_TRY(seen.bind_blob(1, detail::id_to_bytes(snapshot.id)).run());
    }
    for (const KeptRecord& kept : page.kept) {
        if (is_id(kept.record)) TSUNAGU_TRY(seen.bind_blob(1, detail::id_to_bytes(kept.record)).run());
    }
    if (page.more) return std::size_t{0};
    std::vector<std::string> unseen;
    TSUNAGU_TRY(detail::each_row(
        store.cached("SELECT id FROM sync_records WHERE id NOT IN (SELECT record_id FROM sync_resync_seen)"
                     " AND id NOT IN (SELECT record_id FROM sync_outbox)"
                     " AND id NOT IN (SELECT record_id FROM sync_release_asks)"),
        [&](const Statement& row) {
            unseen.push_back(detail::id_from_bytes(row.column_blob(0)));
        }));
    // After a restore, what the pages did not bring stays (see heard_epoch), until the upstream
    // answers that it holds all of it.
    const bool restored = resync == detail::kResyncRestored;
    for (const std::string& record : unseen) TSUNAGU_TRY(restored ? ask_release(record) : evict(record).status());
    TSUNAGU_TRY(store.exec("DELETE FROM sync_resync_seen"));
    TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaResync, detail::kResyncNone));
    return restored ? 0 : unseen.size();
}

Status Device::Impl::ask_release(const std::string& record) {
    if (!is_id(record)) return Status::ok();
    auto present = records.rid_of(record);
    TSUNAGU_TRY(present);
    if (*present == 0) return Status::ok();
    return store.cached("INSERT OR IGNORE INTO sync_release_asks(record_id, asked_ms) VALUES (?1, 0)")
        .bind_blob(1, detail::id_to_bytes(record))
        .run();
}

Result<std::size_t> Device::Impl::answered_release(const PullPage& page) {
    const ReleaseAnswers& answers = page.release;
    if (answers.empty()) return std::size_t{0};
    std::unordered_set<std::string_view> carried;
    for (const RecordSnapshot& snapshot : page.records) carried.insert(snapshot.id);
    Statement& asked = store.cached(
        "SELECT EXISTS(SELECT 1 FROM sync_release_asks WHERE record_id = ?1),"
        " EXISTS(SELECT 1 FROM sync_outbox WHERE record_id = ?1)");
    std::size_t gone = 0;
    for (const std::string& record : answers.released) {
        if (!is_id(record) || carried.contains(record)) continue;
        bool was_asked = false, has_changes = false;
        TSUNAGU_TRY(detail::each_row(asked.bind_blob(1, detail::id_to_bytes(record)), [&](const Statement& s) {
            was_asked = s.column_int(0) != 0;
            has_changes = s.column_int(1) != 0;
        }));
        // Changed here since it was asked about: the upstream holds none of that; asked again.
        if (!was_asked || has_changes) continue;
        TSUNAGU_TRY(evict(record));  // (which drops its ask)
        ++gone;
    }
    Statement& later = store.cached("UPDATE sync_release_asks SET asked_ms = ?2 WHERE record_id = ?1");
    for (const std::string& record : answers.not_held) {
        if (is_id(record)) TSUNAGU_TRY(later.bind_blob(1, detail::id_to_bytes(record)).bind(2, clock.wall_now()).run());
    }
    // In scope there: asked for whole, its ask kept (and not made again meanwhile) until a page
    // brings it, which then keeps what only the copy holds (keep_lost_heads) and closes the ask.
    // (Dropped at once, the copy's last values went with the next version a page brought.)
    for (const std::string& record : answers.in_scope) {
        if (!is_id(record) || carried.contains(record)) continue;
        TSUNAGU_TRY(ask_whole(record));
        TSUNAGU_TRY(later.bind_blob(1, detail::id_to_bytes(record)).bind(2, clock.wall_now()).run());
    }
    return gone;
}

Result<std::vector<std::string>> Device::Impl::evict(const std::string& record, const std::string& lost_key) {
    std::vector<std::string> held;
    const detail::IdBytes id = detail::id_to_bytes(record);
    Statement& s =
        store.cached("SELECT change_id FROM sync_outbox WHERE record_id = ?1 ORDER BY pos");
    s.bind_blob(1, id);
    TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) {
        held.push_back(detail::id_from_bytes(row.column_blob(0)));
        return Status::ok();
    }));
    TSUNAGU_TRY(store.cached("UPDATE sync_outbox SET state = 3 WHERE record_id = ?1 AND state <= 1")
                    .bind_blob(1, id)
                    .run());
    if (!held.empty() && !lost_key.empty()) {
        TSUNAGU_TRY(store.cached("INSERT OR REPLACE INTO sync_evicted(record_id, scope_key) VALUES (?1, ?2)")
                        .bind_blob(1, id)
                        .bind(2, lost_key)
                        .run());
    }
    // What the upstream acknowledged of it goes too: a device holds nothing of a record outside
    // its scope but unsent work (a restored upstream would refuse it from this user anyway).
    TSUNAGU_TRY(store.cached("DELETE FROM sync_journal WHERE record_id = ?1").bind_blob(1, id).run());
    TSUNAGU_TRY(store.cached("DELETE FROM sync_release_asks WHERE record_id = ?1").bind_blob(1, id).run());
    TSUNAGU_TRY(records.erase(record));
    return held;
}

Result<bool> Device::stamped_from_memory() {
    Impl& im = *impl_;
    // hlc is packed (wall_ms * kCounterLimit + counter): its wall time is the integer quotient.
    auto& q = im.store.cached(
        "SELECT EXISTS(SELECT 1 FROM sync_outbox WHERE state <> 1 AND hlc / ?1 > raw_wall_ms + ?2 + ?3)");
    q.bind(1, static_cast<std::int64_t>(Hlc::kCounterLimit))
        .bind(2, im.clock.offset_ms())
        .bind(3, im.options.max_clock_ahead_ms);
    bool found = false;
    TSUNAGU_TRY(detail::each_row(q, [&](const Statement& row) { found = row.column_int(0) != 0; }));
    return found;
}

Result<bool> Device::needs_time_first() {
    auto from_memory = stamped_from_memory();
    if (!from_memory || *from_memory || impl_->clock.anchored()) return from_memory;
    bool waiting = false;
    TSUNAGU_TRY(detail::each_row(impl_->store.cached("SELECT EXISTS(SELECT 1 FROM sync_outbox WHERE state = 0)"),
                                 [&](const Statement& row) { waiting = row.column_int(0) != 0; }));
    return waiting;
}

Result<std::size_t> Device::Impl::learn_time(Hlc upstream, std::int64_t age_ms) {
    const std::int64_t bound = options.max_clock_ahead_ms;
    // The offset the stamps made since the device last heard the upstream's time were made with
    // (none known before it first heard it).
    const std::int64_t believed = clock.offset_ms();
    const bool believed_known = knows_upstream_time;
    // The upstream's time now, at least: as it read it, plus the time measured since (an age
    // beyond a day is no measure of anything). The comparisons below keep the reading itself.
    const std::int64_t since_read = age_ms > 0 && age_ms < 24 * 3'600'000 ? age_ms : 0;
    const std::int64_t upstream_now = upstream.wall_ms + since_read;
    const std::int64_t offset = upstream_now - options.wall();
    if (std::llabs(offset - clock.offset_ms()) > kOffsetSlackMs) {
        clock.set_offset_ms(offset);
        TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaOffset, offset));
    }
    TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaUpstreamTime, upstream.packed()));
    knows_upstream_time = true;
    // From now on, until the machine restarts, time counts on from the upstream's by the boot
    // clock: stamps made after a sync keep their real time whatever the wall clock is set to.
    if (const BootReading at = clock.boot_now(); at.boot != 0) {
        clock.anchor(at, upstream_now);
        TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaAnchorBoot, static_cast<std::int64_t>(at.boot)));
        TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaAnchorBootMs, at.ms));
        TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaAnchorWall, upstream_now));
    }
    const bool ahead = clock.last().wall_ms > upstream.wall_ms + bound;
    const bool set_back = clock.offset_ms() > believed + bound;
    // Heard for the first time, from a clock found ahead: the changes made before were stamped by
    // that clock uncorrected, as it read then (the error found now is the best estimate of the
    // error then), even those no longer ahead of the upstream's time.
    const bool first_heard_ahead = !believed_known && clock.offset_ms() < -bound;
    if (!ahead && !set_back && !first_heard_ahead) {
        clock.observe(upstream);
        return std::size_t{0};
    }

    // Our clock ran ahead of the upstream's: its readings would win every later edit. Or it was
    // set back: a change made since is stamped with the clock's memory of a later time (the
    // upstream's, or its own before), and would lose to edits made before it. Re-stamp the unsent
    // changes from the first skewed one on, in outbox order, each at the time it was made as
    // corrected by the offset (never ahead of the upstream), after its predecessor and after the
    // versions it was based on. A change stamped with its clock's reading under the offset the
    // device believed then was made before the clock was set back, and keeps its stamp (unless
    // no offset was known then).
    auto made_behind = [&](const OutboxEntry& entry) {
        const std::int64_t stamped = entry.change.hlc.wall_ms;
        return set_back && entry.raw_wall_ms + clock.offset_ms() > stamped + bound &&
               (!believed_known || stamped > entry.raw_wall_ms + believed + bound);
    };
    auto made_ahead = [&](const OutboxEntry& entry) {
        return first_heard_ahead && entry.change.hlc.wall_ms > entry.raw_wall_ms + clock.offset_ms() + bound;
    };
    // Every change still to be sent: unsent, and refused or evicted ones, which are sent again
    // when due (once the record is returned to its worker, say). Not one sent and unanswered: the
    // upstream may hold it with its stamp, or (a restored upstream) holds what the journal sent
    // again, with the stamp everyone had.
    std::vector<OutboxEntry> entries;
    Status scanned = detail::each_row(
        store.cached("SELECT pos, change, raw_wall_ms, state FROM sync_outbox WHERE state <> 1 ORDER BY pos"),
        [&](const Statement& s) {
            auto change = detail::read_outbox_change(s.column_text(1));
            TSUNAGU_TRY(change);
            entries.push_back({s.column_int(0), static_cast<OutboxState>(s.column_int(3)), std::move(*change),
                               s.column_int(2)});
            return Status::ok();
        });
    TSUNAGU_TRY(scanned);
    std::size_t count = 0;
    Hlc previous;
    bool restamping = false;
    for (OutboxEntry& entry : entries) {
        ChangeSet& change = entry.change;
        const bool skewed = change.hlc.wall_ms > upstream.wall_ms + bound || made_behind(entry) || made_ahead(entry);
        restamping = restamping || skewed;
        if (!restamping || (!skewed && change.hlc > previous)) {
            previous = std::max(previous, change.hlc);
            continue;
        }
        auto loaded = records.load(change.record);
        TSUNAGU_TRY(loaded);
        Hlc stamp{std::min(entry.raw_wall_ms + clock.offset_ms(), upstream.wall_ms), 0};
        stamp = std::max(stamp, previous.next());
        if (*loaded) {
            const RecordState& state = (*loaded)->state;
            for (const auto& [field, ids] : change.base) {
                for (const auto& v : state.versions) {
                    // (A base stamped ahead too is one of ours, not yet answered: the base link
                    // orders the two, whatever their stamps.)
                    const bool is_base =
                        std::find(ids.begin(), ids.end(), v.version.change_id) != ids.end();
                    if (is_base && v.version.change_id != change.id &&
                        v.version.hlc.wall_ms <= upstream.wall_ms + bound) {
                        stamp = std::max(stamp, v.version.hlc.next());
                    }
                }
            }
        }
        change.hlc = stamp;
        Statement& update =
            store.cached("UPDATE sync_outbox SET hlc = ?2, change = ?3 WHERE pos = ?1");
        TSUNAGU_TRY(
            update.bind(1, entry.pos).bind(2, stamp.packed()).bind(3, Json(change).dump()).run());
        if (*loaded && restamp((*loaded)->state, change.id, stamp)) {
            TSUNAGU_TRY(records.save((*loaded)->stored, encode_state((*loaded)->state)));
        }
        previous = stamp;
        ++count;
    }
    if (ahead) {
        clock.rewind_to(std::max(upstream, previous));
    } else {
        clock.observe(std::max(upstream, previous));
    }
    return count;
}

}  // namespace tsunagu::sync
