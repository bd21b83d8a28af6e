// The engine's tables (all named sync_*) and its small key-value metadata table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/store.h"
#include "sync/change.h"
#include "sync/hlc.h"
#include "sync/src/record_key.h"

namespace tsunagu::sync::detail {

enum class Role { upstream, device };

// The layout of the tables. A store of an older format from kFirstMigratedFormat on is brought
// up to date when opened (see open_tables); older ones, and newer ones, are refused, not misread.
inline constexpr std::int64_t kFormat = 7;
inline constexpr std::int64_t kFirstMigratedFormat = 5;

// Metadata keys.
inline constexpr const char* kMetaFormat = "format";
inline constexpr const char* kMetaRole = "role";
inline constexpr const char* kMetaReplica = "replica";
inline constexpr const char* kMetaUser = "user";
inline constexpr const char* kMetaRecordKey = "record_key";        // RecordKey's secret, hex
inline constexpr const char* kMetaClock = "clock";                 // packed Hlc: the last reading
inline constexpr const char* kMetaSequence = "sequence";           // upstream: last sequence number
inline constexpr const char* kMetaLogFiled = "log_filed";          // upstream: lines filed by key
inline constexpr const char* kMetaEpoch = "epoch";                  // upstream: set by a restore
inline constexpr const char* kMetaUpstreamEpoch = "upstream_epoch";  // device: the epoch last heard
inline constexpr const char* kMetaCursor = "cursor";               // device: last applied sequence
inline constexpr const char* kMetaOffset = "clock_offset_ms";      // device: wall clock correction
inline constexpr const char* kMetaUpstreamTime = "upstream_time";  // device: packed Hlc
// device: the boot clock's reading (boot, ms) when the upstream's time was last heard, and that time
inline constexpr const char* kMetaAnchorBoot = "anchor_boot";
inline constexpr const char* kMetaAnchorBootMs = "anchor_boot_ms";
inline constexpr const char* kMetaAnchorWall = "anchor_wall_ms";
// upstream: 1 once sync_scope_keys lists every scope key a record has (stores made before it
// existed fill it on their first open)
inline constexpr const char* kMetaScopeKeysListed = "scope_keys_listed";
// A digest of the table definitions the store was last opened with (open_tables): a store at the
// current format whose definitions changed since (a table or index added) is opened the long way.
inline constexpr const char* kMetaTablesDigest = "tables_digest";
// device: while a pull begun from the start again runs, why (a Resync); absent or 0 otherwise
inline constexpr const char* kMetaResync = "resync";
enum Resync : std::int64_t {
    kResyncNone = 0,
    // Device::pull_everything_again: what its pages did not bring goes (see sync_resync_seen).
    kResyncEverything = 1,
    // A restored upstream was heard (Device::Impl::heard_epoch): what its pages do not bring stays,
    // and is asked about once the pull ends (see sync_release_asks).
    kResyncRestored = 2,
};

// sync_log.kind of a row that only gives a record a fresh sequence number (other rows hold a
// ChangeKind).
inline constexpr int kTouchKind = 100;

// Upstream: notes that a record now has `scope_key` (it was created, or moved there), so that
// granting the key knows it has records to send (see sync_scope_keys).
Status note_scope_key(Store& store, const std::string& scope_key);
// Upstream: whether any record may have `scope_key`. False means certainly none.
Result<bool> scope_key_may_have_records(Store& store, const std::string& scope_key);

struct OpenedTables {
    std::string replica;  // this replica's id
    RecordKey record_key;
};

// Creates the tables and indexes of `role` if missing, migrates a store of an older format, and
// checks that the store was not made for the other role (or, on a device, for another user).
// Returns this replica's id and the hash of the records' index, both made on first use. Runs in
// its own transaction.
Result<OpenedTables> open_tables(Store& store, Role role, std::string_view user,
                                 const IdSource& ids);

Result<std::int64_t> meta_int(Store& store, std::string_view key, std::int64_t fallback);

// Raises the connection's page cache to at least `cache_kib` and its WAL auto-checkpoint interval
// to at least `checkpoint_pages` (never lowering what the caller chose, and leaving automatic
// checkpoints off when the caller turned them off). A cache miss costs a read and a decryption;
// a checkpoint copies every page rewritten since the last one (decrypted and re-encrypted), so
// fewer checkpoints copy hot pages fewer times. Durability does not change: a commit is durable
// once its frames are in the synced WAL, whenever the checkpoint runs.
Status tune_connection(Store& store, std::int64_t cache_kib, std::int64_t checkpoint_pages);
Status set_meta_int(Store& store, std::string_view key, std::int64_t value);
Result<std::string> meta_text(Store& store, std::string_view key);  // "" when absent
Status set_meta_text(Store& store, std::string_view key, std::string_view value);

}  // namespace tsunagu::sync::detail
