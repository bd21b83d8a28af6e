// The device: opening, local edits (applied and queued in the outbox), reads, outbox views.
#include "sync/src/device_impl.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/names.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"

namespace tsunagu::sync {

const char* pending_state_name(PendingState state) noexcept {
    switch (state) {
        case PendingState::unsent:
            return "unsent";
        case PendingState::sent:
            return "sent";
        case PendingState::refused:
            return "refused";
        case PendingState::evicted:
            return "evicted";
    }
    return "unknown";
}

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::Device(Device&&) noexcept = default;
Device& Device::operator=(Device&&) noexcept = default;
Device::~Device() = default;

namespace detail {

Result<ChangeSet> read_outbox_change(std::string_view text) {
    auto change = parse_change_set(Json::parse(text, nullptr, false));
    if (!change) {
        return Status(ErrorCode::corrupt, "outbox entry unreadable: " + change.status().message());
    }
    return change;
}

}  // namespace detail

namespace {

// What a device's connection needs beyond SQLite's defaults (detail::tune_connection), set when
// the device opens it:
//  - a page cache of 8 MiB rather than about 2 MB: a push batch of 1000 change sets marks and
//    then deletes about 250 outbox pages plus their index pages, which otherwise fall out of the
//    cache between the two and are read and decrypted again;
//  - a checkpoint every 10,000 WAL pages (about 40 MB) rather than every 1,000: pages rewritten
//    by successive batches are copied into the database once per checkpoint, not once every
//    other batch.
constexpr std::int64_t kCacheKiB = 8 * 1024;
constexpr std::int64_t kCheckpointPages = 10'000;

}  // namespace

Result<Device> Device::open(Store& store, Schema schema, DeviceOptions options) {
    TSUNAGU_TRY(schema.check());
    if (options.user.empty()) {
        return Status(ErrorCode::invalid_argument, "a device replica needs the signed-in user");
    }
    IdSource replica_ids = options.ids;
    if (!options.replica_id.empty()) {
        if (!is_id(options.replica_id)) {
            return Status(
                ErrorCode::invalid_argument,
                "replica id \"" + options.replica_id + "\" is not 32 lower-case hex characters");
        }
        replica_ids = [id = options.replica_id] { return id; };
    }
    auto tables = detail::open_tables(store, detail::Role::device, options.user, replica_ids);
    TSUNAGU_TRY(tables);
    if (!options.replica_id.empty() && tables->replica != options.replica_id) {
        return Status(ErrorCode::invalid_argument, "store " + store.path() + " holds replica " +
                                                       tables->replica + ", not " +
                                                       options.replica_id +
                                                       "; start a new replica for this device");
    }
    TSUNAGU_TRY(detail::tune_connection(store, kCacheKiB, kCheckpointPages));
    auto impl = std::make_unique<Impl>(store, std::move(schema), std::move(options),
                                       std::move(*tables));
    TSUNAGU_TRY(impl->reload_clock());
    return Device(std::move(impl));
}

Status Device::Impl::catch_up_clock() {
    auto version = store.data_version();
    TSUNAGU_TRY(version);
    if (*version == clock_data_version) return Status::ok();
    const Hlc own = clock.last();
    TSUNAGU_TRY(reload_clock());  // what the store holds (its reading may be behind this one's)
    clock.observe(own);
    return Status::ok();
}

Status Device::Impl::reload_clock() {
    auto version = store.data_version();
    TSUNAGU_TRY(version);
    clock_data_version = *version;
    std::int64_t saved = 0, offset = 0, upstream_time = 0, boot = 0, boot_ms = 0, anchor_wall = 0;
    for (auto [key, out] : {std::pair{detail::kMetaClock, &saved}, std::pair{detail::kMetaOffset, &offset},
                            std::pair{detail::kMetaUpstreamTime, &upstream_time},
                            std::pair{detail::kMetaAnchorBoot, &boot}, std::pair{detail::kMetaAnchorBootMs, &boot_ms},
                            std::pair{detail::kMetaAnchorWall, &anchor_wall}}) {
        auto value = detail::meta_int(store, key, 0);
        TSUNAGU_TRY(value);
        *out = *value;
    }
    clock.rewind_to(Hlc::from_packed(saved));
    clock.set_offset_ms(offset);
    knows_upstream_time = upstream_time != 0;
    clock.anchor({static_cast<std::uint64_t>(boot), boot_ms}, anchor_wall);
    return Status::ok();
}

Status Device::reload_clock() { return impl_->reload_clock(); }

std::optional<std::int64_t> Device::clock_offset_ms() const {
    if (!impl_->knows_upstream_time) return std::nullopt;
    return impl_->clock.offset_ms();
}

const std::string& Device::replica_id() const {
    return impl_->replica;
}
const Schema& Device::schema() const {
    return impl_->schema;
}

Result<std::int64_t> Device::cursor() {
    return detail::meta_int(impl_->store, detail::kMetaCursor, 0);
}

Status Device::pull_everything_again() {
    Store& store = impl_->store;
    return with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(store.exec("DELETE FROM sync_acked"));  // named as held, they would be left out
        // Until its last page, the pull notes what it brings; then what it did not bring goes.
        TSUNAGU_TRY(store.exec("DELETE FROM sync_resync_seen"));
        // One begun after a restore stays one: what it keeps (perhaps what the restored upstream
        // lost) must not go at the end of this one.
        auto resync = detail::meta_int(store, detail::kMetaResync, detail::kResyncNone);
        TSUNAGU_TRY(resync);
        TSUNAGU_TRY(detail::set_meta_int(store, detail::kMetaResync,
                                         *resync == detail::kResyncRestored ? detail::kResyncRestored
                                                                            : detail::kResyncEverything));
        return detail::set_meta_int(store, detail::kMetaCursor, 0);
    });
}

Status Device::Impl::save_clock() {
    return detail::set_meta_int(store, detail::kMetaClock, clock.last().packed());
}

Result<std::string> Device::Impl::edit(const detail::Edit& edit) {
    std::string record_id;
    Status status = with_transaction(store, [&]() -> Status {
        std::optional<detail::LoadedRecord> current;
        if (edit.kind != detail::Edit::Kind::create && is_id(edit.record)) {
            auto loaded = records.load(edit.record);
            TSUNAGU_TRY(loaded);
            current = std::move(*loaded);
        }
        TSUNAGU_TRY(catch_up_clock());
        const Hlc now = clock.tick();
        const detail::EditContext context{schema, options.ids, replica, options.user, now,
                                          latest_event_date(schema, now.wall_ms, kDeviceEventDateGraceDays)};
        const detail::EditTarget target{current ? &current->stored.collection : nullptr,
                                        current ? &current->state : nullptr};
        auto change = detail::build_change(context, edit, target);
        TSUNAGU_TRY(change);
        record_id = *change ? (*change)->record : edit.record;
        if (!*change) return Status::ok();
        const ChangeSet& made = **change;

        detail::StoredRecord row;
        RecordState state;
        if (current) {
            row = std::move(current->stored);
            state = std::move(current->state);
        } else {
            // Ids are unique (the records' index does not enforce it): a new id must be new.
            auto taken = records.rid_of(made.record);
            TSUNAGU_TRY(taken);
            if (*taken != 0) {
                return Status(ErrorCode::internal, "record id " + made.record +
                                                       " is already in use: the id source repeated"
                                                       " an id; nothing was saved");
            }
            row.id = made.record;
            row.collection = made.collection;
        }
        apply_change(state, made);
        // A record from the upstream keeps the upstream's scope key until the upstream has judged
        // the change (it decides evictions); a record made here has only its own.
        if (row.seq == 0)
            row.scope_key = detail::scope_key_for(schema, row.collection, row.id, state);
        TSUNAGU_TRY(records.save(row, encode_state(state)));

        TSUNAGU_TRY(queue(made));
        return save_clock();
    });
    TSUNAGU_TRY(status);
    return record_id;
}

Status Device::Impl::queue(const ChangeSet& change) {
    auto cursor = detail::meta_int(store, detail::kMetaCursor, 0);
    TSUNAGU_TRY(cursor);
    Statement& insert = store.cached(
        "INSERT INTO sync_outbox(change_id, record_id, state, hlc, raw_wall_ms, cursor, change)"
        " VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)");
    const detail::IdBytes id = detail::id_to_bytes(change.id);
    const detail::IdBytes record = detail::id_to_bytes(change.record);
    insert.bind_blob(1, id).bind_blob(2, record).bind(3, change.hlc.packed());
    insert.bind(4, options.wall()).bind(5, *cursor).bind(6, Json(change).dump());
    return insert.run();
}

Result<std::string> Device::create(std::string_view collection, const Json& fields) {
    return impl_->edit(detail::Edit::create(collection, fields));
}

Status Device::update(std::string_view record, const Json& fields) {
    return impl_->edit(detail::Edit::update(record, fields)).status();
}

Status Device::remove(std::string_view record) {
    return impl_->edit(detail::Edit::remove(record)).status();
}

Status Device::resolve(std::string_view record, std::string_view field, const Json& value) {
    return impl_->edit(detail::Edit::resolve(record, field, value)).status();
}

namespace {
detail::Edit made_from(detail::Edit edit, const AsRead& as_read) {
    edit.as_read = as_read;
    return edit;
}
}  // namespace

Status Device::update(std::string_view record, const Json& fields, const AsRead& as_read) {
    return impl_->edit(made_from(detail::Edit::update(record, fields), as_read)).status();
}

Status Device::remove(std::string_view record, const AsRead& as_read) {
    return impl_->edit(made_from(detail::Edit::remove(record), as_read)).status();
}

Status Device::resolve(std::string_view record, std::string_view field, const Json& value, const AsRead& as_read) {
    return impl_->edit(made_from(detail::Edit::resolve(record, field, value), as_read)).status();
}

Status Device::resolve_deletion(std::string_view record, DeletionResolution resolution) {
    return impl_->edit(detail::Edit::resolve_deletion(record, resolution)).status();
}

Result<std::optional<Record>> Device::get(std::string_view record) {
    if (!is_id(record)) return std::optional<Record>();
    return impl_->records.get(record);
}

Result<std::vector<Record>> Device::list(std::string_view collection, bool include_deleted) {
    return impl_->records.list(collection, include_deleted);
}

Result<std::vector<Conflict>> Device::conflicts() {
    return impl_->records.conflicts();
}

namespace {

Result<std::vector<PendingChange>> read_outbox(Statement& s) {
    std::vector<PendingChange> out;
    TSUNAGU_TRY(detail::each_row(s, [&](const Statement& row) -> Status {
        PendingChange pending;
        pending.state = static_cast<PendingState>(row.column_int(0));
        pending.code = detail::error_code_named(row.column_text(1)).value_or(ErrorCode::ok);
        pending.reason = std::string(row.column_text(2));
        pending.cause = std::string(row.column_text(3));
        auto change = detail::read_outbox_change(row.column_text(4));
        TSUNAGU_TRY(change);
        pending.change = std::move(*change);
        out.push_back(std::move(pending));
        return Status::ok();
    }));
    return out;
}

}  // namespace

Result<std::vector<PendingChange>> Device::outbox() {
    return read_outbox(
        impl_->store.cached("SELECT state, code, reason, cause, change FROM sync_outbox ORDER BY pos"));
}

Result<std::vector<PendingChange>> Device::outbox(PendingState only) {
    // Refused and evicted entries are few, in their partial index: a sync asks for them without
    // reading the outbox.
    const bool held = only == PendingState::refused || only == PendingState::evicted;
    Statement& s = impl_->store.cached(
        held ? "SELECT state, code, reason, cause, change FROM sync_outbox INDEXED BY sync_outbox_held"
               " WHERE state >= 2 AND state = ?1 ORDER BY pos"
             : "SELECT state, code, reason, cause, change FROM sync_outbox WHERE state = ?1 ORDER BY pos");
    s.bind(1, static_cast<int>(only));
    return read_outbox(s);
}

Result<std::size_t> Device::outbox_to_push() {
    auto counts = outbox_counts();
    TSUNAGU_TRY(counts);
    return counts->to_push;
}

Result<OutboxCounts> Device::outbox_counts() {
    // One statement, so one snapshot. Counting all entries reads the smallest index; the held
    // ones are few, in their partial index. No entry's change is read.
    static_assert(static_cast<int>(PendingState::refused) == 2 && static_cast<int>(PendingState::evicted) == 3,
                  "the SQL below names the states by number");
    Statement& s = impl_->store.cached(
        "SELECT (SELECT count(*) FROM sync_outbox),"
        " (SELECT count(*) FROM sync_outbox INDEXED BY sync_outbox_held WHERE state >= 2 AND state = 2),"
        " (SELECT count(*) FROM sync_outbox INDEXED BY sync_outbox_held WHERE state >= 2 AND state = 3)");
    auto row = s.step();
    TSUNAGU_TRY(row);
    OutboxCounts counts;
    if (*row) {
        counts.refused = static_cast<std::size_t>(s.column_int(1));
        counts.evicted = static_cast<std::size_t>(s.column_int(2));
        counts.to_push = static_cast<std::size_t>(s.column_int(0)) - counts.refused - counts.evicted;
    }
    s.reset();
    return counts;
}

Result<std::size_t> Device::retry_refused() {
    TSUNAGU_TRY(impl_->store
                    .cached("UPDATE sync_outbox SET state = 0, code = NULL, reason = NULL, cause = NULL"
                            " WHERE state = 2")
                    .run());
    return static_cast<std::size_t>(impl_->store.changes());
}

Result<std::size_t> Device::discard_refused(std::string_view record) {
    if (!is_id(record)) {
        return Status(ErrorCode::invalid_argument, "record id must be 32 hex characters");
    }
    const detail::IdBytes id = detail::id_to_bytes(record);
    std::size_t discarded = 0;
    Status status = with_transaction(impl_->store, [&]() -> Status {
        // Giving up a refused create gives up the record: its later changes build on a record the
        // upstream never took, and would otherwise be sent alone (to be refused in their turn). So
        // does giving up a change refused because the upstream no longer holds its record.
        bool gives_up_record = false;
        TSUNAGU_TRY(detail::each_row(
            impl_->store.cached("SELECT change, cause FROM sync_outbox WHERE record_id = ?1 AND state = 2").bind_blob(1, id),
            [&](const Statement& s) -> Status {
                auto change = detail::read_outbox_change(s.column_text(0));
                TSUNAGU_TRY(change);
                gives_up_record = gives_up_record || change->create || s.column_text(1) == "no_record";
                return Status::ok();
            }));
        TSUNAGU_TRY(impl_->store.cached("DELETE FROM sync_outbox WHERE record_id = ?1 AND (state = 2 OR ?2)")
                        .bind_blob(1, id)
                        .bind(2, static_cast<std::int64_t>(gives_up_record))
                        .run());
        discarded = static_cast<std::size_t>(impl_->store.changes());
        if (discarded == 0) {
            return Status(ErrorCode::not_found, "record " + std::string(record) +
                                                    " has no refused change on this device");
        }
        return impl_->ask_whole(std::string(record));
    });
    TSUNAGU_TRY(status);
    return discarded;
}

Result<std::size_t> Device::compact() {
    Status status = impl_->store
                        .cached(
                            "DELETE FROM sync_records WHERE deleted = 1 AND conflicts = 0"
                            " AND id NOT IN (SELECT record_id FROM sync_outbox)"
                            " AND id NOT IN (SELECT record_id FROM sync_release_asks)")
                        .run();
    TSUNAGU_TRY(status);
    return static_cast<std::size_t>(impl_->store.changes());
}

}  // namespace tsunagu::sync
