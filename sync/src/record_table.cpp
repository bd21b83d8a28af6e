// sync_records rows: load, save, snapshots, and the read views (get, list, conflicts).
#include "sync/src/record_table.h"

#include <algorithm>

#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"

namespace tsunagu::sync::detail {
namespace {

constexpr const char* kColumns =
    "rid, id, collection, scope_key, seq, deleted, conflicts, fields, meta, log, length(spare)";

// The bytes of a row that an edit may change the size of.
std::size_t changing_bytes(const std::string& scope_key, const std::string& fields,
                           const std::string& meta, const std::string& log) {
    return scope_key.size() + fields.size() + meta.size() + log.size();
}

// The spare bytes of a row (see sync_records.spare): a little more than what an edit of one
// field adds (a version in the metadata, about 100 bytes; an entry in the change list, 30).
// Measured on sync_bench: they save a tenth of the pages written (an edit that outgrows its page
// splits it, writing three or four), for 2% more pages appended by creates.
constexpr std::size_t kSpareBytes = 160;

StoredRecord read_row(const Statement& s) {
    StoredRecord row;
    row.rid = s.column_int(0);
    row.id = id_from_bytes(s.column_blob(1));
    row.collection = std::string(s.column_text(2));
    row.scope_key = std::string(s.column_text(3));
    row.seq = s.column_int(4);
    row.deleted = s.column_int(5) != 0;
    row.conflicts = static_cast<std::size_t>(s.column_int(6));
    row.fields = std::string(s.column_text(7));
    row.meta = std::string(s.column_text(8));
    const auto log = s.column_blob(9);
    row.log.assign(reinterpret_cast<const char*>(log.data()), log.size());
    row.stored_scope_key = row.scope_key;
    row.stored_bytes = changing_bytes(row.scope_key, row.fields, row.meta, row.log);
    row.spare = static_cast<std::size_t>(s.column_int(10));
    return row;
}

Result<Record> to_view(const StoredRecord& row) {
    auto state = decode_state(row.fields, row.meta);
    TSUNAGU_TRY(state);
    return to_record(*state, row.id, row.collection, row.scope_key);
}

// Runs a query of full rows and collects them.
Result<std::vector<StoredRecord>> rows_of(Statement& s) {
    std::vector<StoredRecord> rows;
    TSUNAGU_TRY(each_row(s, [&](const Statement& row) { rows.push_back(read_row(row)); }));
    return rows;
}

}  // namespace

// Every lookup by id goes through the key index, then compares the id (keys may collide).
Result<std::optional<StoredRecord>> RecordTable::find(std::string_view id) {
    static const std::string kFind =
        std::string("SELECT ") + kColumns + " FROM sync_records WHERE key = ?1 AND id = ?2";
    Statement& s = store_.cached(kFind);
    const IdBytes bytes = id_to_bytes(id);
    s.bind(1, key_.of(bytes)).bind_blob(2, bytes);
    auto row = s.step();
    TSUNAGU_TRY(row);
    std::optional<StoredRecord> out;
    if (*row) out = read_row(s);
    s.reset();
    return out;
}

Result<std::int64_t> RecordTable::rid_of(std::string_view id) {
    Statement& s = store_.cached("SELECT rid FROM sync_records WHERE key = ?1 AND id = ?2");
    const IdBytes bytes = id_to_bytes(id);
    s.bind(1, key_.of(bytes)).bind_blob(2, bytes);
    auto row = s.step();
    TSUNAGU_TRY(row);
    const std::int64_t rid = *row ? s.column_int(0) : 0;
    s.reset();
    return rid;
}

Result<std::optional<std::string>> RecordTable::scope_key_of(std::string_view id) {
    Statement& s = store_.cached("SELECT scope_key FROM sync_records WHERE key = ?1 AND id = ?2");
    const IdBytes bytes = id_to_bytes(id);
    s.bind(1, key_.of(bytes)).bind_blob(2, bytes);
    auto row = s.step();
    TSUNAGU_TRY(row);
    std::optional<std::string> key;
    if (*row) key = std::string(s.column_text(0));
    s.reset();
    return key;
}

Result<std::optional<LoadedRecord>> RecordTable::load(std::string_view id) {
    auto row = find(id);
    TSUNAGU_TRY(row);
    if (!*row) return std::optional<LoadedRecord>();
    auto state = decode_state((*row)->fields, (*row)->meta);
    if (!state) {
        return Status(state.status().code(),
                      "record " + std::string(id) + ": " + state.status().message());
    }
    return std::optional<LoadedRecord>(LoadedRecord{std::move(**row), std::move(*state)});
}

Result<std::int64_t> RecordTable::save(const StoredRecord& row, const EncodedState& state) {
    auto bind_log = [&](Statement& s, int index) {
        if (row.log.empty()) {
            s.bind_null(index);
        } else {
            s.bind_blob(index,
                        {reinterpret_cast<const std::uint8_t*>(row.log.data()), row.log.size()});
        }
    };
    if (row.rid == 0) {
        Statement& s = store_.cached(
            "INSERT INTO sync_records(id, collection, scope_key, seq, deleted, conflicts, fields, "
            "meta, log, key, spare)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, zeroblob(?11))");
        const IdBytes bytes = id_to_bytes(row.id);
        s.bind_blob(1, bytes).bind(2, row.collection).bind(3, row.scope_key).bind(4, row.seq);
        s.bind(5, state.deleted ? 1 : 0).bind(6, static_cast<std::int64_t>(state.conflicts));
        s.bind(7, state.fields).bind(8, state.meta);
        bind_log(s, 9);
        s.bind(10, key_.of(bytes)).bind(11, static_cast<std::int64_t>(kSpareBytes));
        TSUNAGU_TRY(s.run());
        return store_.last_insert_rowid();
    }
    // Setting an indexed column rewrites its index entry even when the value is unchanged: the
    // scope key is set only when it changed.
    const bool moved = row.scope_key != row.stored_scope_key;
    Statement& s = moved ? store_.cached(
                               "UPDATE sync_records SET seq = ?2, deleted = ?3, conflicts = ?4,"
                               " fields = ?5, meta = ?6, log = ?7, spare = zeroblob(?8),"
                               " scope_key = ?9 WHERE rid = ?1")
                         : store_.cached(
                               "UPDATE sync_records SET seq = ?2, deleted = ?3, conflicts = ?4,"
                               " fields = ?5, meta = ?6, log = ?7, spare = zeroblob(?8)"
                               " WHERE rid = ?1");
    // The spare bytes take up what the row grew by (or give back what it shrank by), so that
    // its size, and the page it is on, stay as they were.
    const std::size_t before = row.stored_bytes + row.spare;
    const std::size_t after = changing_bytes(row.scope_key, state.fields, state.meta, row.log);
    const std::size_t spare = after >= before ? 0 : std::min(before - after, kSpareBytes);
    s.bind(1, row.rid).bind(2, row.seq).bind(3, state.deleted ? 1 : 0);
    s.bind(4, static_cast<std::int64_t>(state.conflicts)).bind(5, state.fields).bind(6, state.meta);
    bind_log(s, 7);
    s.bind(8, static_cast<std::int64_t>(spare));
    if (moved) s.bind(9, row.scope_key);
    TSUNAGU_TRY(s.run());
    return row.rid;
}

Status RecordTable::put(const RecordSnapshot& snapshot) {
    auto rid = rid_of(snapshot.id);
    TSUNAGU_TRY(rid);
    if (*rid != 0) {
        Statement& s = store_.cached(
            "UPDATE sync_records SET collection = ?2, scope_key = ?3, seq = ?4, deleted = ?5,"
            " conflicts = ?6, fields = ?7, meta = ?8 WHERE rid = ?1");
        s.bind(1, *rid).bind(2, snapshot.collection).bind(3, snapshot.scope_key);
        s.bind(4, snapshot.seq).bind(5, snapshot.deleted ? 1 : 0);
        s.bind(6, static_cast<std::int64_t>(snapshot.conflicts));
        s.bind(7, snapshot.fields).bind(8, snapshot.meta);
        return s.run();
    }
    Statement& s = store_.cached(
        "INSERT INTO sync_records(id, collection, scope_key, seq, deleted, conflicts, fields, meta,"
        " key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    const IdBytes bytes = id_to_bytes(snapshot.id);
    s.bind_blob(1, bytes).bind(2, snapshot.collection).bind(3, snapshot.scope_key);
    s.bind(4, snapshot.seq).bind(5, snapshot.deleted ? 1 : 0);
    s.bind(6, static_cast<std::int64_t>(snapshot.conflicts));
    s.bind(7, snapshot.fields).bind(8, snapshot.meta).bind(9, key_.of(bytes));
    return s.run();
}

Status RecordTable::set_seq(std::string_view id, std::int64_t seq) {
    Statement& s = store_.cached("UPDATE sync_records SET seq = ?3 WHERE key = ?1 AND id = ?2");
    const IdBytes bytes = id_to_bytes(id);
    return s.bind(1, key_.of(bytes)).bind_blob(2, bytes).bind(3, seq).run();
}

Status RecordTable::erase(std::string_view id) {
    Statement& s = store_.cached("DELETE FROM sync_records WHERE key = ?1 AND id = ?2");
    const IdBytes bytes = id_to_bytes(id);
    return s.bind(1, key_.of(bytes)).bind_blob(2, bytes).run();
}

Result<std::vector<std::string>> RecordTable::ids_in_scope(std::string_view scope_key) {
    Statement& s = store_.cached("SELECT id FROM sync_records WHERE scope_key = ?1");
    s.bind(1, scope_key);
    std::vector<std::string> ids;
    TSUNAGU_TRY(each_row(
        s, [&](const Statement& row) { ids.push_back(id_from_bytes(row.column_blob(0))); }));
    return ids;
}

Result<std::optional<Record>> RecordTable::get(std::string_view id) {
    auto row = find(id);
    TSUNAGU_TRY(row);
    if (!*row) return std::optional<Record>();
    auto view = to_view(**row);
    TSUNAGU_TRY(view);
    return std::optional<Record>(std::move(*view));
}

Result<std::vector<Record>> RecordTable::list(std::string_view collection, bool include_deleted) {
    Statement& s = store_.cached(std::string("SELECT ") + kColumns +
                                 " FROM sync_records WHERE collection = ?1 AND deleted <= ?2"
                                 " ORDER BY rid");
    s.bind(1, collection).bind(2, include_deleted ? 1 : 0);
    auto rows = rows_of(s);
    TSUNAGU_TRY(rows);
    std::vector<Record> records;
    records.reserve(rows->size());
    for (const auto& row : *rows) {
        auto view = to_view(row);
        TSUNAGU_TRY(view);
        records.push_back(std::move(*view));
    }
    return records;
}

Result<std::vector<Conflict>> RecordTable::conflicts() {
    Statement& s = store_.cached(std::string("SELECT ") + kColumns +
                                 " FROM sync_records INDEXED BY sync_records_in_conflict"
                                 " WHERE conflicts > 0 ORDER BY rid");
    auto rows = rows_of(s);
    TSUNAGU_TRY(rows);
    std::vector<Conflict> out;
    for (const auto& row : *rows) {
        auto state = decode_state(row.fields, row.meta);
        TSUNAGU_TRY(state);
        auto found = conflicts_of(*state, row.id, row.collection);
        out.insert(out.end(), found.begin(), found.end());
    }
    return out;
}

std::string scope_key_for(const Schema& schema, const std::string& collection,
                          const std::string& record_id, const RecordState& state) {
    const CollectionSchema* c = schema.find(collection);
    const Head* value =
        c && c->scope.kind == ScopeRule::Kind::field ? state.winner(c->scope.field) : nullptr;
    return scope_key_of(c, record_id, value ? &value->value.json() : nullptr, state.owner);
}



}  // namespace tsunagu::sync::detail
