// Reading and writing rows of sync_records: one row per record, current values and merge state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/store.h"
#include "sync/merge.h"
#include "sync/protocol.h"
#include "sync/schema.h"
#include "sync/src/record_key.h"

namespace tsunagu::sync::detail {

struct StoredRecord {
    std::int64_t rid = 0;
    std::string id;
    std::string collection;
    std::string scope_key;
    std::int64_t seq = 0;
    bool deleted = false;
    std::size_t conflicts = 0;
    std::string fields;
    std::string meta;
    std::string log;  // upstream: the record's ChangeList, stored form (bytes)
    std::string
        stored_scope_key;  // as read, so that saving rewrites the scope index only on a move
    std::size_t stored_bytes = 0;  // as read: the size of the columns an edit may resize
    std::size_t spare = 0;         // as read: the row's spare bytes (see sync_records.spare)
};

// A stored record with its merge state decoded.
struct LoadedRecord {
    StoredRecord stored;
    RecordState state;
};

class RecordTable {
  public:
    RecordTable(Store& store, RecordKey key) : store_(store), key_(key) {}

    Result<std::optional<StoredRecord>> find(std::string_view id);
    // The row id of a record; 0 when absent.
    Result<std::int64_t> rid_of(std::string_view id);
    // The scope key a record is filed under; nullopt when absent.
    Result<std::optional<std::string>> scope_key_of(std::string_view id);
    Result<std::optional<LoadedRecord>> load(std::string_view id);
    // Inserts a new row (rid 0) or rewrites an existing one (by rid) with an encoded state.
    // Returns the row's rid. Precondition for an insert: no row holds the id (ids are unique).
    Result<std::int64_t> save(const StoredRecord& row, const EncodedState& state);
    // Stores a pulled snapshot as is, replacing any local row.
    Status put(const RecordSnapshot& snapshot);
    // Files a record held as the upstream has it as pulled at `seq` (see PullPage::kept).
    Status set_seq(std::string_view id, std::int64_t seq);
    Status erase(std::string_view id);
    // Ids of the records with a given scope key (a full scan: evictions are rare).
    Result<std::vector<std::string>> ids_in_scope(std::string_view scope_key);

    Result<std::optional<Record>> get(std::string_view id);
    Result<std::vector<Record>> list(std::string_view collection, bool include_deleted);
    Result<std::vector<Conflict>> conflicts();

  private:
    Store& store_;
    RecordKey key_;
};

// The scope key a record has in `state` (see scope_key_of).
std::string scope_key_for(const Schema& schema, const std::string& collection,
                          const std::string& record_id, const RecordState& state);

}  // namespace tsunagu::sync::detail
