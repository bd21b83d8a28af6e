// The upstream: opening, accepting pushed change sets, server-side edits, reads and history.
#include <algorithm>
#include <utility>

#include "sync/src/authoring.h"
#include "sync/src/change_list.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"
#include "sync/src/upstream_impl.h"

namespace tsunagu::sync {
namespace {

PushOutcome refused(const ChangeSet& change, const char* cause, ErrorCode code, std::string reason) {
    PushOutcome out;
    out.change_id = change.id;
    out.record = change.record;
    out.status = PushStatus::refused;
    out.code = code;
    out.reason = std::move(reason);
    out.cause = cause;
    return out;
}

ChangeKind kind_of(const ChangeSet& change) {
    if (change.create) return ChangeKind::create;
    if (change.deletes()) return ChangeKind::remove;
    if (change.restores()) return ChangeKind::restore;
    for (const auto& [field, ids] : change.base) {
        if (ids.size() > 1) return ChangeKind::resolve;
    }
    return ChangeKind::edit;
}

std::string field_list(const ChangeSet& change) {
    std::string out;
    for (const auto& item : change.set.items()) {
        if (item.key() == kDeletedField) continue;
        if (!out.empty()) out += ',';
        out += item.key();
    }
    return out;
}

// Appends the change set's line to the change log (its history entry, and what pulls walk).
// `rid` is the record's row; `scope_key` its key after the change: pulls filter the log on it.
Status append_log(Store& store, const ChangeSet& change, std::int64_t seq, std::int64_t rid,
                  const std::string& scope_key) {
    Statement& s = store.cached(
        "INSERT INTO sync_log(seq, rid, hlc, replica, user, kind, fields, scope_key)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    const detail::IdBytes replica = detail::id_to_bytes(change.replica);
    s.bind(1, seq).bind(2, rid).bind(3, change.hlc.packed());
    s.bind_blob(4, replica).bind(5, change.user).bind(6, static_cast<int>(kind_of(change)));
    s.bind(7, field_list(change)).bind(8, scope_key);
    return s.run();
}

Status check_well_formed(const ChangeSet& change) {
    if (!is_id(change.id) || !is_id(change.record) || !is_id(change.replica)) {
        return Status(ErrorCode::invalid_argument,
                      "change set " + change.id + ": ids must be 32 lower-case hex characters");
    }
    if (!change.set.is_object() || change.set.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "change set " + change.id + ": \"set\" must be a non-empty object");
    }
    for (const auto& [field, ids] : change.base) {
        for (const auto& id : ids) {
            if (!is_id(id)) {
                return Status(
                    ErrorCode::invalid_argument,
                    "change set " + change.id + ": base of \"" + field + "\" holds a malformed id");
            }
        }
    }
    for (const auto& id : change.seen) {
        if (!is_id(id)) {
            return Status(ErrorCode::invalid_argument,
                          "change set " + change.id + ": \"seen\" holds a malformed id");
        }
    }
    return Status::ok();
}

// What the connection of a server's store needs beyond SQLite's defaults (detail::tune_connection),
// set when an upstream opens it:
//  - a page cache of UpstreamOptions::cache_kib (32 MiB) rather than about 2 MB: pushes read and
//    rewrite records all over the table and insert into the id index at random, and the index
//    alone outgrows 2 MB at about 80,000 records;
//  - a checkpoint every 20,000 WAL pages (about 80 MB of a server's disk) rather than every
//    1,000: the index and record pages that batch after batch rewrite are copied into the
//    database (decrypted from the WAL, encrypted again) once per checkpoint, not once every
//    other batch. Halving the checkpoints from 10,000 pages took about 5% off sync_bench's
//    apply. (A phone keeps 10,000: its storage is smaller.)
constexpr std::int64_t kCheckpointPages = 20'000;

}  // namespace

Upstream::Upstream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Upstream::Upstream(Upstream&&) noexcept = default;
Upstream& Upstream::operator=(Upstream&&) noexcept = default;
Upstream::~Upstream() = default;

Result<Upstream> Upstream::open(Store& store, Schema schema, UpstreamOptions options) {
    TSUNAGU_TRY(schema.check());
    TSUNAGU_TRY(detail::tune_connection(store, options.cache_kib, kCheckpointPages));
    auto tables = detail::open_tables(store, detail::Role::upstream, "", options.ids);
    TSUNAGU_TRY(tables);
    auto impl =
        std::make_unique<Impl>(store, std::move(schema), std::move(options), std::move(*tables));
    TSUNAGU_TRY(impl->read_clock());
    auto epoch = detail::meta_text(store, detail::kMetaEpoch);
    TSUNAGU_TRY(epoch);
    impl->epoch = epoch->empty() ? impl->replica : *epoch;
    return Upstream(std::move(impl));
}

const std::string& Upstream::replica_id() const {
    return impl_->replica;
}
const Schema& Upstream::schema() const {
    return impl_->schema;
}

namespace {

// Raises `seen` to `seq` when it is below.
void note_sequence(std::atomic<std::int64_t>& seen, std::int64_t seq) {
    std::int64_t was = seen.load();
    while (was < seq && !seen.compare_exchange_weak(was, seq)) {
    }
}

}  // namespace

Result<std::int64_t> Upstream::sequence() {
    return detail::meta_int(impl_->store, detail::kMetaSequence, 0);
}

void Upstream::share_sequence_seen(std::shared_ptr<std::atomic<std::int64_t>> seen) {
    impl_->sequence_seen = std::move(seen);
}

Status Upstream::note_committed_sequence() {
    if (!impl_->sequence_seen) return Status::ok();
    auto committed = sequence();
    TSUNAGU_TRY(committed);
    note_sequence(*impl_->sequence_seen, *committed);
    return Status::ok();
}

Status Upstream::Impl::read_counters(bool writing) {
    keys_noted.clear();
    auto last = detail::meta_int(store, detail::kMetaSequence, 0);
    TSUNAGU_TRY(last);
    if (writing && sequence_seen) {
        const std::int64_t seen = sequence_seen->load();
        if (*last < seen) {
            return Status(ErrorCode::corrupt,
                          "the database's change log ends at " + std::to_string(*last) + ", before number " +
                              std::to_string(seen) + " this server has seen: it went back in time under the running "
                              "server (a backup loaded without `tsunagu-server restore`). Nothing was written. Stop "
                              "every server, run `tsunagu-server restore --postgres ...` on the database, then start "
                              "them: devices then send again what the backup lacks");
        }
    }
    seq = *last;
    return read_clock();
}

Status Upstream::Impl::read_clock() {
    auto stored_clock = detail::meta_int(store, detail::kMetaClock, 0);
    TSUNAGU_TRY(stored_clock);
    clock.observe(Hlc::from_packed(*stored_clock));
    if (const std::int64_t ahead = clock.let_go_if_ahead(options.max_stored_clock_ahead_ms); ahead > 0) {
        clock_let_go_ms = ahead;
    }
    return Status::ok();
}

std::int64_t Upstream::take_clock_let_go_ms() {
    return std::exchange(impl_->clock_let_go_ms, 0);
}

Status Upstream::Impl::write_counters() {
    TSUNAGU_TRY(file_log_by_key());
    TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaSequence, seq));
    return detail::set_meta_int(store, detail::kMetaClock, clock.last().packed());
}

Status Upstream::Impl::file_log_by_key() {
    const std::int64_t chunk = options.file_log_every;
    if (chunk <= 0 || !store.is_sqlite()) return Status::ok();
    auto filed = detail::meta_int(store, detail::kMetaLogFiled, 0);
    TSUNAGU_TRY(filed);
    if (seq - *filed < chunk) return Status::ok();
    // A store opened with a long log unfiled catches up a chunk per write, not all at once.
    const std::int64_t through = std::min(seq, *filed + chunk);
    TSUNAGU_TRY(file_lines(*filed, through));
    return detail::set_meta_int(store, detail::kMetaLogFiled, through);
}

Status Upstream::Impl::file_lines(std::int64_t after, std::int64_t through) {
    // One chunk, named by the sequence number it starts after, sorted by key: appended after the
    // chunks before it.
    Statement& file = store.cached(
        "INSERT OR REPLACE INTO sync_log_by_key(chunk, scope_key, seq, rid)"
        " SELECT ?1, scope_key, seq, rid FROM sync_log INDEXED BY sync_log_walk"
        " WHERE seq > ?1 AND seq <= ?2 ORDER BY scope_key, seq");
    return file.bind(1, after).bind(2, through).run();
}

std::int64_t Upstream::restored_sequence(std::int64_t backup_seq, std::int64_t wall_ms) {
    // The backup's own numbering alone is not enough: a backup restored for the second time (or
    // an older one after a newer) would hand out again the numbers the first restored server gave,
    // which its devices pulled past. The clock's floor lies above them: kRestoreSeqPerSecond a
    // second since 1970 is more than any server hands out, so a later restore starts above
    // everything an earlier one did. A clock too far ahead to be true is not believed (the
    // numbers must stay below 2^53 for JavaScript clients).
    const std::int64_t by_backup = backup_seq + kRestoreGap;
    const std::int64_t seconds = wall_ms / 1000;
    constexpr std::int64_t kLastBelievedSecond = (std::int64_t{1} << 53) / kRestoreSeqPerSecond - (std::int64_t{1} << 24);
    if (seconds <= 0 || seconds > kLastBelievedSecond) return by_backup;
    return std::max(by_backup, seconds * kRestoreSeqPerSecond);
}

Status Upstream::after_restore() {
    Impl& im = *impl_;
    return with_transaction(im.store, [&]() -> Status {
        // Not checked against what the server saw: this is what puts a store gone back right.
        TSUNAGU_TRY(im.read_counters(/*writing=*/false));
        const bool files_log = im.options.file_log_every > 0 && im.store.is_sqlite();
        if (files_log) {
            // Every line below the gap is filed (the last chunk may be short), so that the
            // lines after `log_filed` are exactly those after the gap.
            auto filed = detail::meta_int(im.store, detail::kMetaLogFiled, 0);
            TSUNAGU_TRY(filed);
            if (*filed < im.seq) TSUNAGU_TRY(im.file_lines(*filed, im.seq));
        }
        im.seq = restored_sequence(im.seq, im.clock.wall_now());
        if (files_log) TSUNAGU_TRY(detail::set_meta_int(im.store, detail::kMetaLogFiled, im.seq));
        const std::string epoch = im.options.ids();
        TSUNAGU_TRY(detail::set_meta_text(im.store, detail::kMetaEpoch, epoch));
        TSUNAGU_TRY(im.write_counters());
        im.epoch = epoch;
        return Status::ok();
    });
}

const std::string& Upstream::epoch() const {
    return impl_->epoch;
}

Result<ScopeSet> Upstream::Impl::scope_set(std::string_view user) {
    Statement& s = store.cached("SELECT scope_key FROM sync_scope_members WHERE user = ?1");
    s.bind(1, user);
    ScopeSet scope;
    TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) {
        std::string key(row.column_text(0));
        if (key == "*") scope.everything = true;
        scope.keys.insert(std::move(key));
    }));
    return scope;
}

Hlc Upstream::Impl::corrected_stamp(Hlc stamped, DeviceSkew& skew) {
    const std::int64_t now = clock.wall_now();
    Hlc out;
    if (skew.ahead_ms > options.max_clock_ahead_ms) {
        out =
            Hlc{std::clamp<std::int64_t>(stamped.wall_ms - skew.ahead_ms, 0, now), stamped.counter};
        if (out <= skew.last) out = skew.last.next();
        if (out.wall_ms > now) out = clock.tick();
    } else {
        out = clock.tick();
    }
    skew.last = out;
    return out;
}

Result<PushOutcome> Upstream::Impl::accept(const ChangeSet& change,
                                           const std::string& pusher_replica,
                                           const std::string& pusher_user, const ScopeSet& scope,
                                           DeviceSkew& skew, const PushGate& gate) {
    if (Status formed = check_well_formed(change); !formed) {
        return refused(change, "malformed", formed.code(), formed.message());
    }
    if (change.replica != pusher_replica || change.user != pusher_user) {
        return refused(change, "not_yours", ErrorCode::forbidden,
                       "change set " + change.id + " was made by another user or device");
    }
    auto current = records.load(change.record);
    TSUNAGU_TRY(current);
    // Applied before (a repeated push)? Or seen already by an applied change set (a late one)?
    std::set<std::string> superseded;
    if (*current && detail::ChangeList::may_mention((*current)->stored.log, change.id)) {
        auto applied = detail::ChangeList::parse((*current)->stored.log);
        TSUNAGU_TRY(applied);
        if (const detail::AppliedChange* known = applied->find(change.id)) {
            return detail::answer_again(*known, change.record);
        }
        superseded = applied->superseded(change.id);
    }
    if (Status valid = validate_change(schema, change); !valid) {
        return refused(change, "invalid_value", valid.code(), valid.message());
    }
    // Scope first: a refusal must not tell what a record outside it is (its collection).
    if (*current && !scope.contains((*current)->stored.scope_key)) {
        return refused(change, "outside_scope", ErrorCode::forbidden,
                       "record " + change.record + " is outside " + pusher_user + "'s scope");
    }
    if (*current && (*current)->stored.collection != change.collection) {
        return refused(change, "wrong_collection", ErrorCode::invalid_argument,
                       "record " + change.record + " is a " + (*current)->stored.collection +
                           ", not a " + change.collection);
    }
    // A change to a record this upstream does not hold makes no record: applied to nothing, it
    // would make one of its own fields alone (a visit without its date or client), and undo a
    // delete whose tombstone compaction purged. It comes from a phone that kept changes to a
    // record deleted and purged meanwhile (held while its client was away, made before the record
    // moved out of its user's caseload), one whose create was refused and then discarded, or
    // one replaying its journal to an upstream restored from a backup older than the create. A
    // device sends a record's changes after its create has been answered (see take_due), so none
    // is waiting here for a create on its way. Kept on the device, refused; the worker discards it.
    if (!*current && !change.create) {
        return refused(change, "no_record", ErrorCode::not_found,
                       "record " + change.record +
                           " is not on the server (deleted there and purged, or never created): the change "
                           "cannot make it again; discard it");
    }
    // The creator owns a record: a create by anyone else names a record it did not make (creates
    // take fresh random ids) and would take it from its author and, with it, from its scope.
    if (*current && change.create && (*current)->state.owner != change.user) {
        return refused(change, "already_exists", ErrorCode::already_exists,
                       "record " + change.record + " exists already: a create must name a new record");
    }
    // Rules between fields, on the record as the change leaves it; then event dates against this
    // server's clock, which is what counts (a device checks with its own, leniently).
    if (Status valid = validate_rules(schema, change,
                                      detail::rule_values(schema, change.collection,
                                                          *current ? &(*current)->state : nullptr));
        !valid) {
        return refused(change, "invalid_value", valid.code(), valid.message());
    }
    if (Status valid = validate_event_dates(
            schema, change, latest_event_date(schema, clock.wall_now(), kEventDateGraceDays));
        !valid) {
        return refused(change, "invalid_value", valid.code(), valid.message());
    }
    if (gate) {
        if (Status allowed = gate(change, *current ? &(*current)->state : nullptr); !allowed) {
            return refused(change, "rule", allowed.code(), allowed.message());
        }
    }

    // A reading too far ahead comes from a wrong clock: keep the change, but do not adopt the
    // reading; stamp it with the time it was made as far as we can tell. (Not every change of a
    // device whose clock is ahead now: the error when it sends says nothing of the error when
    // each change was stamped, which the device itself judges: see Device::needs_time_first.)
    const ChangeSet* effective = &change;
    ChangeSet restamped;
    if (clock.is_too_far_ahead(change.hlc, options.max_clock_ahead_ms)) {
        restamped = change;
        restamped.hlc = corrected_stamp(change.hlc, skew);
        effective = &restamped;
    }

    detail::StoredRecord row;
    RecordState state;
    // A create of a record not seen before (most of a push) is encoded straight from the change
    // set, without building the merge state.
    const bool whole = !*current && makes_whole_record(*effective);
    if (*current) {
        row = std::move((*current)->stored);
        state = std::move((*current)->state);
    } else {
        row.id = change.record;
        row.collection = change.collection;
    }
    const std::string old_key = row.scope_key;
    if (whole) {
        row.scope_key = scope_key_of(schema, *effective);  // a record only it wrote (makes_whole_record)
    } else {
        apply_change(state, *effective, superseded);
        row.scope_key = detail::scope_key_for(schema, row.collection, row.id, state);
    }
    if (!scope.contains(row.scope_key)) {
        return refused(change, "outside_scope", ErrorCode::forbidden,
                       "record " + change.record + " would belong to scope " + row.scope_key +
                           ", outside " + pusher_user + "'s scope");
    }

    row.seq = ++seq;
    // A base already applied here cannot arrive late: only unknown ones are worth remembering
    // (one named only in another entry's base is unknown too: it is remembered per field).
    std::map<std::string, std::vector<std::string>> unknown_base;
    for (const auto& [field, ids] : change.base) {
        for (const auto& id : ids) {
            if (!detail::ChangeList::holds(row.log, id)) unknown_base[field].push_back(id);
        }
    }
    detail::ChangeList::append(row.log,
                               {row.seq, change.id, effective->hlc, std::move(unknown_base)});
    auto rid = records.save(row, whole ? encode_created(*effective) : encode_state(state));
    TSUNAGU_TRY(rid);
    TSUNAGU_TRY(append_log(store, *effective, row.seq, *rid, row.scope_key));
    const bool moved = row.rid != 0 && old_key != row.scope_key;
    // A new record or a moved one: its key now has records (noted once per transaction).
    if ((row.rid == 0 || moved) && keys_noted.insert(row.scope_key).second) {
        TSUNAGU_TRY(detail::note_scope_key(store, row.scope_key));
    }
    if (moved) {
        Statement& move = store.cached(
            "INSERT INTO sync_scope_moves(seq, record_id, old_key) VALUES (?1, ?2, ?3)");
        const detail::IdBytes id = detail::id_to_bytes(row.id);
        TSUNAGU_TRY(move.bind(1, row.seq).bind_blob(2, id).bind(3, old_key).run());
    }
    if (effective == &change) clock.observe(change.hlc);

    PushOutcome out;
    out.change_id = change.id;
    out.record = change.record;
    out.status = PushStatus::accepted;
    out.seq = row.seq;
    out.hlc = effective->hlc;
    return out;
}

Result<PushResult> Upstream::push(const PushBatch& batch, const PushGate& gate) {
    PushResult result;
    result.outcomes.reserve(batch.changes.size());
    Status status = with_transaction(impl_->store, [&]() -> Status {
        TSUNAGU_TRY(impl_->read_counters());
        auto scope = impl_->scope_set(batch.user);
        TSUNAGU_TRY(scope);
        DeviceSkew skew;
        if (batch.sent_at_ms > 0) skew.ahead_ms = batch.sent_at_ms - impl_->clock.wall_now();
        // A refused change holds back the batch's later changes to its record: they may build on
        // it.
        std::set<std::string> held;
        for (const ChangeSet& change : batch.changes) {
            if (held.contains(change.record)) {
                result.outcomes.push_back(
                    refused(change, "held_behind", ErrorCode::conflict,
                            "record " + change.record +
                                ": held behind an earlier change to it that was refused"));
                continue;
            }
            auto outcome = impl_->accept(change, batch.replica, batch.user, *scope, skew, gate);
            TSUNAGU_TRY(outcome);
            if (outcome->status == PushStatus::refused) held.insert(change.record);
            result.outcomes.push_back(std::move(*outcome));
        }
        result.upstream_time = impl_->clock.tick();
        result.epoch = impl_->epoch;
        return impl_->write_counters();
    });
    TSUNAGU_TRY(status);
    return result;
}

Result<std::string> Upstream::Impl::edit(std::string_view user, const detail::Edit& edit) {
    std::string record_id;
    Status status = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(read_counters());
        std::optional<detail::LoadedRecord> current;
        if (edit.kind != detail::Edit::Kind::create && is_id(edit.record)) {
            auto loaded = records.load(edit.record);
            TSUNAGU_TRY(loaded);
            current = std::move(*loaded);
        }
        const detail::EditContext context{schema, options.ids, replica, std::string(user),
                                          clock.tick()};
        const detail::EditTarget target{current ? &current->stored.collection : nullptr,
                                        current ? &current->state : nullptr};
        auto change = detail::build_change(context, edit, target);
        TSUNAGU_TRY(change);
        record_id = *change ? (*change)->record : edit.record;
        if (!*change) return Status::ok();
        auto scope = scope_set(user);
        TSUNAGU_TRY(scope);
        DeviceSkew none;
        auto outcome = accept(**change, replica, context.user, *scope, none);
        TSUNAGU_TRY(outcome);
        if (outcome->status == PushStatus::refused) return Status(outcome->code, outcome->reason);
        return write_counters();
    });
    TSUNAGU_TRY(status);
    return record_id;
}

Result<std::string> Upstream::create(std::string_view user, std::string_view collection,
                                     const Json& fields) {
    return impl_->edit(user, detail::Edit::create(collection, fields));
}

Status Upstream::update(std::string_view user, std::string_view record, const Json& fields) {
    return impl_->edit(user, detail::Edit::update(record, fields)).status();
}

Status Upstream::remove(std::string_view user, std::string_view record) {
    return impl_->edit(user, detail::Edit::remove(record)).status();
}

Status Upstream::resolve(std::string_view user, std::string_view record, std::string_view field,
                         const Json& value) {
    return impl_->edit(user, detail::Edit::resolve(record, field, value)).status();
}

Status Upstream::resolve_deletion(std::string_view user, std::string_view record,
                                  DeletionResolution resolution) {
    return impl_->edit(user, detail::Edit::resolve_deletion(record, resolution)).status();
}

Result<std::optional<Record>> Upstream::get(std::string_view record) {
    if (!is_id(record)) return std::optional<Record>();
    return impl_->records.get(record);
}

Result<bool> Upstream::scope_key_ever_used(const std::string& scope_key) {
    return detail::scope_key_may_have_records(impl_->store, scope_key);
}

Result<std::vector<Record>> Upstream::list(std::string_view collection, bool include_deleted) {
    return impl_->records.list(collection, include_deleted);
}

Result<std::vector<Conflict>> Upstream::conflicts() {
    return impl_->records.conflicts();
}

Result<std::vector<HistoryEntry>> Upstream::history(std::string_view record) {
    std::vector<HistoryEntry> entries;
    if (!is_id(record)) return entries;
    auto row = impl_->records.find(record);
    TSUNAGU_TRY(row);
    if (!*row) return entries;
    auto applied = detail::ChangeList::parse((*row)->log);
    TSUNAGU_TRY(applied);
    // seq is read with `fields`: a store that seals the field list (PostgreSQL's, pg/pg_store.h)
    // binds it to the line's sequence number, and opens it only with that number beside it.
    Statement& s =
        impl_->store.cached("SELECT seq, hlc, replica, user, kind, fields FROM sync_log WHERE seq = ?1");
    for (const detail::AppliedChange& change : applied->entries) {
        s.bind(1, change.seq);
        auto found = s.step();
        if (!found) {
            s.reset();
            return found.status();
        }
        if (!*found) {  // purged by compaction
            s.reset();
            continue;
        }
        HistoryEntry entry;
        entry.seq = change.seq;
        entry.change_id = change.change_id;
        entry.hlc = Hlc::from_packed(s.column_int(1));
        entry.replica = detail::id_from_bytes(s.column_blob(2));
        entry.user = std::string(s.column_text(3));
        entry.kind = static_cast<ChangeKind>(s.column_int(4));
        const std::string_view fields = s.column_text(5);
        for (std::size_t start = 0; start < fields.size();) {
            std::size_t comma = fields.find(',', start);
            if (comma == std::string_view::npos) comma = fields.size();
            entry.fields.emplace_back(fields.substr(start, comma - start));
            start = comma + 1;
        }
        s.reset();
        entries.push_back(std::move(entry));
    }
    return entries;
}

}  // namespace tsunagu::sync
