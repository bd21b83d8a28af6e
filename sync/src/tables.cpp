// Schema of the engine's own tables, and its metadata.
#include "sync/src/tables.h"

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string_view>

#include "sync/change.h"

namespace tsunagu::sync::detail {
namespace {

// Both roles. A record is one row whatever its number of fields: `fields` holds the current
// values, `meta` the versions and conflicts (see encode_state), `log` (upstream only) the change
// sets applied to it (see ChangeList). `seq` is the sequence number of the last change set applied
// (upstream) or of the snapshot last pulled (device; 0: made here, never pulled). `spare` (zero
// bytes, or NULL) is room for the row to grow in: an edit takes what it adds from it, so the row
// keeps its size and is rewritten in place, where a row outgrowing a full page would split it
// and rewrite three or four pages.
//
// Every index costs a page write per change, so there are few: records by key (the one random
// index, as any keyed table has; `key` is an 8-byte hash of the id, see RecordKey, and the engine
// keeps ids unique; 4 bytes, as SQLite stores a 32-bit value), by collection (appends), those in conflict (rarely written).
constexpr const char* kCommonTables = R"sql(
CREATE TABLE IF NOT EXISTS sync_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_records(
  rid INTEGER PRIMARY KEY,
  key INTEGER NOT NULL,
  id BLOB NOT NULL,
  collection TEXT NOT NULL,
  scope_key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  conflicts INTEGER NOT NULL,
  fields TEXT NOT NULL,
  meta TEXT NOT NULL,
  log BLOB,
  spare BLOB);
CREATE INDEX IF NOT EXISTS sync_records_by_key ON sync_records(key);
CREATE INDEX IF NOT EXISTS sync_records_by_collection ON sync_records(collection);
CREATE INDEX IF NOT EXISTS sync_records_in_conflict ON sync_records(conflicts) WHERE conflicts > 0;
)sql";

// The upstream's change log: one row per accepted change set (its history line; its id is in the
// record's ChangeList) or per record given a fresh sequence number (kind 100: its scope key was
// granted to someone), appended in sequence order. Pulls walk it by sequence number and find
// its record by `rid` (a row id may be reused once its record is purged, so a line's record is
// the one whose `seq` is the line's). Scope members, moves and removals decide what each user's
// devices see and evict.
//
// A pull finds its lines one of two ways (see PullLines). It walks the log after the device's
// cursor through sync_log_walk, which holds only what a walk needs (sequence, scope key, record
// row): three times as many lines to a page as the log's own rows, and appended at its end like
// them. Or, for the lines filed so far, it looks up the user's scope keys in sync_log_by_key and
// walks only the rest. The log is filed in chunks of UpstreamOptions::file_log_every lines
// (Upstream::Impl::file_log_by_key), each chunk sorted by key and appended after the last, named
// by the sequence number it starts after: a chunk's lines all precede the next chunk's, so a
// lookup reads chunk after chunk, a seek per key in each, and filing writes only new pages. (An
// index by key, filed line by line, dirtied a page of the key's run wherever it was for every
// change set: it cost sync_bench's apply 42%.) Lines that compaction drops may stay filed: a
// lookup joins each line to its record at the line's sequence number, which no other line has.
// sync_taken_marks holds the sequence number the upstream had reached at the start of each
// compaction run (at_ms: the run's retention time): every change set at or below it was taken by
// then. Retention ages changes by these marks, not by their stamps, which are their devices'
// clocks (see compaction.cpp). A few thousand rows at most: a run drops the marks no bound needs.
//
// sync_scope_keys lists every scope key a record has had (a key whose records are all gone may
// stay): granting a key not in it sends nothing, and costs no search for its records (new
// clients' keys are granted all day; records have no index by scope key, which would cost every
// change a page write).
constexpr const char* kUpstreamTables = R"sql(
CREATE TABLE IF NOT EXISTS sync_log(
  seq INTEGER PRIMARY KEY,
  rid INTEGER NOT NULL,
  hlc INTEGER,
  replica BLOB,
  user TEXT,
  kind INTEGER NOT NULL,
  fields TEXT,
  scope_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sync_log_walk ON sync_log(seq, scope_key, rid);
CREATE TABLE IF NOT EXISTS sync_log_by_key(
  chunk INTEGER NOT NULL,
  scope_key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  rid INTEGER NOT NULL,
  PRIMARY KEY(chunk, scope_key, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_scope_keys(scope_key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_scope_members(
  user TEXT NOT NULL,
  scope_key TEXT NOT NULL,
  PRIMARY KEY(user, scope_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_scope_moves(
  seq INTEGER PRIMARY KEY,
  record_id BLOB NOT NULL,
  old_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_scope_removals(
  seq INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  scope_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_taken_marks(
  at_ms INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_replicas(
  replica BLOB PRIMARY KEY,
  user TEXT NOT NULL,
  cursor INTEGER NOT NULL,
  outbox_floor INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// The device: the outbox, oldest first, each change set as its JSON wire form. (No index by scope
// key: it would cost a fresh device a page write per record pulled; evicting a key scans.) The
// partial index holds only refused and evicted entries (rare), which hold back their records'
// later changes: preparing a push finds them without reading the outbox.
//
// sync_acked lists the records whose pushed changes the upstream acknowledged at a sequence number
// the device has not pulled past (appended, one line per acknowledgement, so that a push pays one
// append for it): pulls name them as held, so that the upstream need not send them back (see
// PullRequest::held).
//
// sync_refetch lists the records to be held as the upstream holds them: those whose refused
// changes the worker discarded, and those a change answered as a duplicate was replayed onto
// after a pull had brought them. Pulls ask for them whole (PullRequest::refetch) until a page
// brings them, or evicts them.
//
// sync_evicted lists the records evicted with their scope key (the user lost it) while the outbox
// held unsent changes to them, under that key: a page that brings any record filed under it again
// makes them due (the key is back). The upstream may never have seen such a record (made offline,
// evicted before it was pushed): no page brings it back itself.
//
// sync_journal keeps the changes the upstream acknowledged, as the outbox held them, for
// DeviceOptions::keep_acknowledged_ms: should the upstream be restored from an older backup, they
// go back to the outbox and are sent again (Device::Impl::heard_epoch). Oldest first; appended
// only (no index: a change is journaled once, when it leaves the outbox).
//
// sync_resync_seen lists the records the pages of a pull begun from the start again brought
// (Device::pull_everything_again, after a salvage whose pages fell back to older versions): on
// its last page, the records it did not bring, with nothing in the outbox, go (deleted upstream
// and purged, or out of scope, while the device's progress said it knew). Empty otherwise. A pull
// from the start after a restore fills it too, and erases nothing at its end (see below).
//
// sync_release_asks lists the records a pull from the start after a restore kept though no page
// of it brought them, or a page evicted them: the restored upstream may have lost what the copy
// holds, or the worker may no longer see it. Later pulls ask the upstream about them
// (PullRequest::release), at most once every DeviceOptions::release_ask_again_ms each (asked_ms), until it answers
// that the user sees the record, or that it holds every version of it: the record goes then.
constexpr const char* kDeviceTables = R"sql(
CREATE TABLE IF NOT EXISTS sync_resync_seen(record_id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_release_asks(record_id BLOB PRIMARY KEY, asked_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_outbox(
  pos INTEGER PRIMARY KEY,
  change_id BLOB NOT NULL UNIQUE,
  record_id BLOB NOT NULL,
  state INTEGER NOT NULL,
  hlc INTEGER NOT NULL,
  raw_wall_ms INTEGER NOT NULL,
  cursor INTEGER NOT NULL,
  change TEXT NOT NULL,
  code TEXT,
  reason TEXT,
  cause TEXT);
CREATE INDEX IF NOT EXISTS sync_outbox_by_record ON sync_outbox(record_id);
CREATE INDEX IF NOT EXISTS sync_outbox_held ON sync_outbox(record_id) WHERE state >= 2;
CREATE TABLE IF NOT EXISTS sync_acked(
  pos INTEGER PRIMARY KEY,
  record_id BLOB NOT NULL,
  seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_refetch(record_id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_evicted(record_id BLOB PRIMARY KEY, scope_key TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_journal(
  pos INTEGER PRIMARY KEY,
  change_id BLOB NOT NULL,
  record_id BLOB NOT NULL,
  hlc INTEGER NOT NULL,
  raw_wall_ms INTEGER NOT NULL,
  cursor INTEGER NOT NULL,
  change TEXT NOT NULL,
  acked_ms INTEGER NOT NULL);
)sql";

const char* role_name(Role role) {
    return role == Role::upstream ? "upstream" : "device";
}

// One step of a store's layout, from format `from` to the next: the statements for each role
// (nullptr: nothing changes for it). Steps only add (columns, tables, indexes), so that a device
// whose outbox holds unsent work keeps it through an upgrade of the app. New tables and indexes
// need no step: the CREATE ... IF NOT EXISTS above make them.
struct Migration {
    std::int64_t from;
    const char* device;
    const char* upstream;
};

constexpr Migration kMigrations[] = {
    // 5 -> 6: the outbox keeps the word for why a change was refused (PushOutcome::cause).
    {5, "ALTER TABLE sync_outbox ADD COLUMN cause TEXT", nullptr},
    // 6 -> 7: the device keeps the changes the upstream acknowledged, in case it is restored.
    {6,
     "CREATE TABLE IF NOT EXISTS sync_journal(pos INTEGER PRIMARY KEY, change_id BLOB NOT NULL,"
     " record_id BLOB NOT NULL, hlc INTEGER NOT NULL, raw_wall_ms INTEGER NOT NULL, cursor INTEGER NOT NULL,"
     " change TEXT NOT NULL, acked_ms INTEGER NOT NULL)",
     nullptr},
};
static_assert(std::size(kMigrations) == kFormat - kFirstMigratedFormat,
              "every format from kFirstMigratedFormat has a step to the next");

// Brings a store of format `format` (kFirstMigratedFormat..kFormat) to kFormat, in the caller's
// transaction.
Status migrate(Store& store, Role role, std::int64_t format) {
    for (const Migration& step : kMigrations) {
        if (step.from < format) continue;
        const char* sql = role == Role::upstream ? step.upstream : step.device;
        if (sql == nullptr) continue;
        Status status = store.exec(sql);
        if (!status.is_ok()) {
            return Status(status.code(), "store " + store.path() + ": bringing the sync tables from format " +
                                             std::to_string(step.from) + " to " + std::to_string(step.from + 1) +
                                             " failed (the store is unchanged): " + status.message());
        }
    }
    return Status::ok();
}

// Whether a store of `format` can be opened: the same, or an older one that migrate() takes.
Status check_format(Store& store, std::int64_t format) {
    if (format > kFormat) {
        return Status(ErrorCode::invalid_argument,
                      "store " + store.path() + " holds sync tables of format " + std::to_string(format) +
                          ", written by a newer Tsunagu; this one reads formats up to " +
                          std::to_string(kFormat) + ": update it (the store is unchanged)");
    }
    if (format < kFirstMigratedFormat) {
        return Status(ErrorCode::invalid_argument,
                      "store " + store.path() + " holds sync tables of format " + std::to_string(format) +
                          ", from before the first release; this engine migrates formats from " +
                          std::to_string(kFirstMigratedFormat) + " to " + std::to_string(kFormat) +
                          ": start a new store");
    }
    return Status::ok();
}

}  // namespace

Result<std::int64_t> meta_int(Store& store, std::string_view key, std::int64_t fallback) {
    Statement& s = store.cached("SELECT value FROM sync_meta WHERE key = ?1");
    s.bind(1, key);
    auto row = s.step();
    TSUNAGU_TRY(row);
    const std::int64_t value = *row ? s.column_int(0) : fallback;
    s.reset();
    return value;
}

Status set_meta_int(Store& store, std::string_view key, std::int64_t value) {
    // An UPDATE first, as the row exists but for a key's first write: PostgreSQL rewrites a
    // counter in place (a HOT update) where an upsert also tries an insert into its index.
    Statement& update = store.cached("UPDATE sync_meta SET value = ?2 WHERE key = ?1");
    TSUNAGU_TRY(update.bind(1, key).bind(2, value).run());
    if (store.changes() > 0) return Status::ok();
    Statement& insert = store.cached("INSERT INTO sync_meta(key, value) VALUES (?1, ?2)");
    return insert.bind(1, key).bind(2, value).run();
}

Result<std::string> meta_text(Store& store, std::string_view key) {
    Statement& s = store.cached("SELECT value FROM sync_meta WHERE key = ?1");
    s.bind(1, key);
    auto row = s.step();
    TSUNAGU_TRY(row);
    std::string value = *row ? std::string(s.column_text(0)) : std::string();
    s.reset();
    return value;
}

Status set_meta_text(Store& store, std::string_view key, std::string_view value) {
    Statement& s = store.cached("INSERT OR REPLACE INTO sync_meta(key, value) VALUES (?1, ?2)");
    return s.bind(1, key).bind(2, value).run();
}

namespace {

// A store made before sync_scope_keys existed lists its records' keys once, on first open.
Status list_scope_keys_once(Store& store) {
    auto listed = meta_int(store, kMetaScopeKeysListed, 0);
    TSUNAGU_TRY(listed);
    if (*listed == 1) return Status::ok();
    TSUNAGU_TRY(store.exec(
        "INSERT OR IGNORE INTO sync_scope_keys(scope_key) SELECT DISTINCT scope_key FROM sync_records"));
    return set_meta_int(store, kMetaScopeKeysListed, 1);
}

}  // namespace

Status note_scope_key(Store& store, const std::string& scope_key) {
    Statement& s = store.cached("INSERT OR IGNORE INTO sync_scope_keys(scope_key) VALUES (?1)");
    return s.bind(1, scope_key).run();
}

Result<bool> scope_key_may_have_records(Store& store, const std::string& scope_key) {
    Statement& s = store.cached("SELECT 1 FROM sync_scope_keys WHERE scope_key = ?1");
    s.bind(1, scope_key);
    auto row = s.step();
    TSUNAGU_TRY(row);
    s.reset();
    return *row;
}

namespace {

// FNV-1a (64 bits) of the definitions open_tables runs for `role`, in hex: not a secret, only a
// way to tell that they changed.
const std::string& tables_digest(Role role) {
    static const auto digest_of = [](std::initializer_list<std::string_view> parts) {
        std::uint64_t h = 0xcbf29ce484222325ULL;
        for (std::string_view part : parts) {
            for (unsigned char c : part) h = (h ^ c) * 0x100000001b3ULL;
        }
        char text[17];
        std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
        return std::string(text);
    };
    static const std::string upstream = digest_of({kCommonTables, kUpstreamTables});
    static const std::string device = digest_of({kCommonTables, kDeviceTables});
    return role == Role::upstream ? upstream : device;
}

// open_tables' answer read alone, when the store is set up for `role` (and `user`) at the current
// format, so that opening one more connection to it takes no write lock: on PostgreSQL the
// tenant's writer lock, which another server may hold for seconds. nullopt when anything is to
// be created, migrated or checked the long way (a table missing, on PostgreSQL, ends the read
// transaction with an error: it is rolled back, and the long way taken).
std::optional<OpenedTables> already_open(Store& store, Role role, std::string_view user) {
    if (store.in_transaction() || !store.begin_deferred()) return std::nullopt;
    std::optional<OpenedTables> out;
    [&] {
        auto stored_role = meta_text(store, kMetaRole);
        auto format = meta_int(store, kMetaFormat, 0);
        if (!stored_role || *stored_role != role_name(role) || !format || *format != kFormat) return;
        auto digest = meta_text(store, kMetaTablesDigest);
        if (!digest || *digest != tables_digest(role)) return;
        if (role == Role::upstream) {
            auto listed = meta_int(store, kMetaScopeKeysListed, 0);
            if (!listed || *listed != 1) return;
        } else {
            auto stored_user = meta_text(store, kMetaUser);
            if (!stored_user || *stored_user != user) return;
        }
        auto replica = meta_text(store, kMetaReplica);
        auto secret_text = meta_text(store, kMetaRecordKey);
        if (!replica || replica->empty() || !secret_text || secret_text->empty()) return;
        auto secret = RecordKey::from_text(*secret_text);
        if (!secret) return;
        out = OpenedTables{std::move(*replica), RecordKey(*secret)};
    }();
    (void)store.rollback();
    return out;
}

}  // namespace

Result<OpenedTables> open_tables(Store& store, Role role, std::string_view user,
                                 const IdSource& ids) {
    if (auto opened = already_open(store, role, user)) return std::move(*opened);
    std::string replica;
    RecordKey::Secret secret{};
    Status status = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(store.exec(
            "CREATE TABLE IF NOT EXISTS sync_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID"));
        auto stored_role = meta_text(store, kMetaRole);
        TSUNAGU_TRY(stored_role);
        if (!stored_role->empty() && *stored_role != role_name(role)) {
            return Status(ErrorCode::invalid_argument, "store " + store.path() + " holds a " +
                                                           *stored_role + " replica, not a " +
                                                           role_name(role) + " one");
        }
        auto format = meta_int(store, kMetaFormat, 0);
        TSUNAGU_TRY(format);
        if (!stored_role->empty()) {
            TSUNAGU_TRY(check_format(store, *format));
            TSUNAGU_TRY(migrate(store, role, *format));
        }
        TSUNAGU_TRY(store.exec(kCommonTables));
        TSUNAGU_TRY(set_meta_int(store, kMetaFormat, kFormat));
        TSUNAGU_TRY(store.exec(role == Role::upstream ? kUpstreamTables : kDeviceTables));
        if (role == Role::upstream) TSUNAGU_TRY(list_scope_keys_once(store));
        if (role == Role::device) {
            auto stored_user = meta_text(store, kMetaUser);
            TSUNAGU_TRY(stored_user);
            if (!stored_user->empty() && *stored_user != user) {
                return Status(ErrorCode::forbidden,
                              "store " + store.path() +
                                  " is the replica of another user; "
                                  "sign in as that user or start a new replica");
            }
            TSUNAGU_TRY(set_meta_text(store, kMetaUser, user));
        }
        TSUNAGU_TRY(set_meta_text(store, kMetaRole, role_name(role)));
        TSUNAGU_TRY(set_meta_text(store, kMetaTablesDigest, tables_digest(role)));
        auto id = meta_text(store, kMetaReplica);
        TSUNAGU_TRY(id);
        replica = id->empty() ? ids() : *id;
        if (id->empty()) TSUNAGU_TRY(set_meta_text(store, kMetaReplica, replica));
        auto stored_secret = meta_text(store, kMetaRecordKey);
        TSUNAGU_TRY(stored_secret);
        if (stored_secret->empty()) {
            secret = RecordKey::fresh_secret();
            return set_meta_text(store, kMetaRecordKey, RecordKey::to_text(secret));
        }
        auto read = RecordKey::from_text(*stored_secret);
        TSUNAGU_TRY(read);
        secret = *read;
        return Status::ok();
    });
    TSUNAGU_TRY(status);
    return OpenedTables{std::move(replica), RecordKey(secret)};
}

namespace {

Result<std::int64_t> pragma_int(Store& store, const std::string& sql) {
    auto statement = store.prepare(sql);
    TSUNAGU_TRY(statement);
    auto row = statement->step();
    TSUNAGU_TRY(row);
    return *row ? statement->column_int(0) : 0;
}

}  // namespace

Status tune_connection(Store& store, std::int64_t cache_kib, std::int64_t checkpoint_pages) {
    auto cache = pragma_int(store, "PRAGMA cache_size");  // < 0: KiB; > 0: pages
    TSUNAGU_TRY(cache);
    auto page_size = pragma_int(store, "PRAGMA page_size");
    TSUNAGU_TRY(page_size);
    const std::int64_t current_kib = *cache < 0 ? -*cache : *cache * *page_size / 1024;
    if (current_kib < cache_kib) {
        TSUNAGU_TRY(store.exec("PRAGMA cache_size=-" + std::to_string(cache_kib)));
    }
    auto checkpoint = pragma_int(store, "PRAGMA wal_autocheckpoint");  // 0: the caller's own
    TSUNAGU_TRY(checkpoint);
    if (*checkpoint > 0 && *checkpoint < checkpoint_pages) {
        TSUNAGU_TRY(pragma_int(store, "PRAGMA wal_autocheckpoint=" + std::to_string(checkpoint_pages)).status());
    }
    return Status::ok();
}

}  // namespace tsunagu::sync::detail
