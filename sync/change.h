// The unit of sync: a change set (one save of one record), and the views of records, conflicts
// and history that replicas hand out. Plain structs, with JSON forms for the wire.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crypto/status.h"

#include "sync/hlc.h"

namespace tsunagu::sync {

using Json = nlohmann::json;

// Records, change sets and replicas are named by 128-bit random ids written as 32 lower-case hex
// characters, made where the thing is created (offline, on the device).
std::string new_id();
bool is_id(std::string_view text);
// Where an engine gets new ids: new_id, unless a test injects a reproducible sequence.
using IdSource = std::function<std::string()>;

// The reserved field through which a change set deletes (true) or restores (false) its record.
// Schema field names never start with '_'.
inline constexpr const char* kDeletedField = "_deleted";

// One save of one record: every field it sets travels and is stored as one unit under one clock
// reading, while merge stays per field (see merge.h).
struct ChangeSet {
    std::string id;          // the change set's own id: applying it twice changes nothing
    std::string collection;  // e.g. "home_visit"
    std::string record;      // the record's id
    Hlc hlc;                 // when it was made (the upstream may re-stamp a skewed one)
    std::string replica;     // the replica (device or server) that made it
    std::string user;        // the person who made it
    int schema_version = 0;  // the schema the author validated it with
    bool create = false;     // the record's first save: required fields must all be present
    // Field -> new value. A delete sets kDeletedField to true; a restore sets it to false.
    Json set = Json::object();
    // Field -> the versions (change-set ids) the author saw as that field's current value(s).
    // Empty or absent: the author saw the field unset. A plain edit lists the current winner; a
    // conflict resolution lists every competing version, which clears the conflict.
    std::map<std::string, std::vector<std::string>> base;
    // For a delete: every field version the author saw, so that an edit made concurrently with
    // the delete (and so not seen by it) is kept as a conflict.
    std::vector<std::string> seen;

    bool deletes() const;   // sets kDeletedField to true
    bool restores() const;  // sets kDeletedField to false
};

// Who wrote a value, when, and as part of which change set.
struct Version {
    std::string change_id;
    Hlc hlc;
    std::string replica;
    std::string user;
};

struct FieldVersion {
    Json value;  // null for the "value" of a delete
    Version version;
};

enum class ConflictKind {
    concurrent_edit,    // two edits of one field, neither seeing the other
    edit_vs_delete,     // an edit the delete did not see; the record stays deleted until resolved
    delete_vs_restore,  // a delete and a restore made concurrently
};
const char* conflict_kind_name(ConflictKind kind) noexcept;

// A value that lost a merge without its author or anyone else having seen the winner. Kept until a
// resolution (itself a change set that syncs) names both versions in its base.
struct Conflict {
    std::string record;
    std::string collection;
    std::string field;  // kDeletedField for delete_vs_restore
    ConflictKind kind = ConflictKind::concurrent_edit;
    FieldVersion current;  // the value in force (for edit_vs_delete: the delete)
    FieldVersion losing;   // the value that lost
};

// A record as a replica holds it: current values, who wrote each, and open conflicts.
struct Record {
    std::string id;
    std::string collection;
    std::string scope_key;         // which scope the record belongs to (see Upstream::set_scope)
    std::string owner;             // the user who created it
    bool deleted = false;          // a tombstone: kept until compaction
    Json fields = Json::object();  // field -> current value
    std::map<std::string, Version> versions;  // field -> who wrote the current value
    // field -> every version in force (the current value's, those of an equal value, and those a
    // conflict opposes to it): what an edit made from this reading supersedes (AsRead).
    std::map<std::string, std::vector<std::string>> heads;
    std::vector<Conflict> conflicts;

    // The field's current value when it is text; empty when it is unset, null (an optional field
    // cleared) or of another type. For views that must not fail on one odd record.
    std::string text(std::string_view field) const;
};

// What the person making an edit read of a record: Device::get's Record, kept while a form was
// open (its current values and the versions in force). An edit made from it supersedes only what
// was read, so a value that arrived since (a pull meanwhile) is never overwritten unseen: it stays
// beside the edit as a conflict. `parse` takes it from the record's JSON (its "fields" and "heads").
//
// An update made from a reading of the record before it was deleted (the delete arrived while the
// form was open) is kept beside the delete as an edit_vs_delete conflict, for its supervisor to
// restore or let go knowingly; one made from a reading of the deleted record, or one that does not
// say (no "deleted"), is refused.
struct AsRead {
    std::string record;  // its id: a reading is used for its own record only
    Json fields = Json::object();
    std::map<std::string, std::vector<std::string>> heads;
    // Whether the record was deleted when read (its JSON's "deleted"; absent: not known, and an
    // update of a record deleted now is refused as without a reading).
    std::optional<bool> deleted;

    static AsRead of(const Record& record) { return {record.id, record.fields, record.heads, record.deleted}; }
    // At most kMaxHeads versions, in all.
    static Result<AsRead> parse(const Json& record);
    static constexpr std::size_t kMaxHeads = 10'000;
};

enum class ChangeKind { create, edit, remove, restore, resolve };
const char* change_kind_name(ChangeKind kind) noexcept;

// One line of a record's history: who changed which fields, when, from which device.
struct HistoryEntry {
    std::string change_id;
    std::int64_t seq = 0;  // the upstream's sequence number
    Hlc hlc;
    std::string replica;
    std::string user;
    ChangeKind kind = ChangeKind::edit;
    std::vector<std::string> fields;  // the fields it set (not kDeletedField)
};

void to_json(Json& out, const ChangeSet& change);
// Throws std::exception on a malformed object; parse_change_set() (protocol.h) does not.
void from_json(const Json& in, ChangeSet& change);
void to_json(Json& out, const Version& version);
void to_json(Json& out, const Conflict& conflict);
void to_json(Json& out, const Record& record);
void to_json(Json& out, const HistoryEntry& entry);

}  // namespace tsunagu::sync
