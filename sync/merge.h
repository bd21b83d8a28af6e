// The merge rules: pure functions over plain structs, no storage. Every replica (and any future
// storage backend) applies change sets with these, so all of them converge on the same state.
//
// The rules. For each field of a record a replica keeps its *heads*: the written values that no
// change set it has applied lists in its base for that field. Applying a change set removes from
// each field it sets the heads its base names, and adds its own value as a head. The head that
// wins last-writer-wins (later Hlc, then greater replica id, then greater change-set id) is the
// field's current value; every other head whose value differs is a conflict, until a change set
// names it in its base (a resolution). Because the heads are a function of the *set* of applied
// change sets, applying them in any order, or twice, gives the same state; and no value is ever
// dropped unless an author saw it and wrote over it (zero silent loss).
//
// Deletion is the reserved field kDeletedField. A record is deleted when that field's current
// value is true. A deleted record keeps its field heads (a restore brings them back); those the
// delete's `seen` list does not name were edited concurrently with it and are conflicts.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "sync/change.h"

namespace tsunagu::sync {

// A version referenced by the state, with what a delete saw.
struct StateVersion {
    Version version;
    std::vector<std::string> seen;  // only for a change set that deletes
};

// A field value as a state holds it: a JSON value, or the JSON text it was stored as, parsed on
// first use (most values of a record pass through a merge untouched and are written back as is).
// Two values compare equal when their JSON values are equal; two stored texts compare as text
// (they are written in one canonical form).
class FieldValue {
  public:
    FieldValue() = default;
    FieldValue(Json value)
        : json_(std::move(value)), parsed_(true) {}  // NOLINT: implicit by design
    static FieldValue from_text(std::string text);

    // The value (null for a text that is not JSON: a damaged store, which the encryption's
    // authentication would have refused already).
    const Json& json() const;
    bool is_text() const noexcept { return !parsed_; }
    const std::string& text() const noexcept { return text_; }

    friend bool operator==(const FieldValue& a, const FieldValue& b);
    friend bool operator==(const FieldValue& a, const Json& b) { return a.json() == b; }

  private:
    mutable Json json_;
    mutable bool parsed_ = true;
    std::string text_;
};

struct Head {
    std::size_t version = 0;  // index into RecordState::versions
    FieldValue value;
};

// Everything a replica keeps about one record.
struct RecordState {
    std::string owner;  // the user whose change set created the record
    std::vector<StateVersion> versions;
    // Field -> heads, winner first, never empty. Includes kDeletedField once deleted or restored.
    std::map<std::string, std::vector<Head>> fields;

    bool deleted() const;
    const Head* winner(std::string_view field) const;
    const Version& version_of(const Head& head) const { return versions[head.version].version; }
};

// True when `a` beats `b` under last-writer-wins.
bool wins_over(const Version& a, const Version& b);

enum class Applied { applied, duplicate };

// Applies one change set. `superseded` names the fields for which an already applied change set
// listed `change` in its base: `change` arrived late (reordered delivery) and its values there
// were knowingly overwritten; the caller finds them in its history (see superseded_fields).
// Preconditions: change.record is this record; ids are well formed (validated by the caller).
Applied apply_change(RecordState& state, const ChangeSet& change,
                     const std::set<std::string>& superseded = {});

// Fields whose base, in a change set applied earlier, names `change_id`.
std::set<std::string> superseded_fields(
    std::string_view change_id, const std::map<std::string, std::vector<std::string>>& base);

// Gives version `change_id` a new clock reading and re-sorts the heads it is in. Returns false
// when the state does not reference it. Used when a skewed stamp is corrected.
bool restamp(RecordState& state, std::string_view change_id, Hlc hlc);

// The ids of the heads of `field` whose value equals its current value: what an author editing
// that field saw, and so the base of a plain edit.
std::vector<std::string> current_base(const RecordState& state, std::string_view field);
// The ids of every head of `field`: the base of a resolution.
std::vector<std::string> head_ids(const RecordState& state, std::string_view field);
// The ids of every head of every field except kDeletedField: what a delete saw.
std::vector<std::string> all_field_head_ids(const RecordState& state);

std::vector<Conflict> conflicts_of(const RecordState& state, const std::string& record,
                                   const std::string& collection);
std::size_t conflict_count(const RecordState& state);
// Current values of every field except kDeletedField.
Json current_values(const RecordState& state);
Record to_record(const RecordState& state, std::string id, std::string collection,
                 std::string scope_key);

// The stored and wire form of a state: the current values as one JSON object (queryable as is),
// and the metadata (versions, losing heads, deletion) as another:
//   {"o": owner, "v": [[change_id, packed_hlc, replica, user, [seen...]?], ...],
//    "d": version of every field not in "w", "w": {field: version},
//    "l": {field: [[version, value], ...]}, "x": [[version, deleted], ...]}
struct EncodedState {
    std::string fields;
    std::string meta;
    bool deleted = false;
    std::size_t conflicts = 0;
};
EncodedState encode_state(const RecordState& state);
// True when `change` alone makes a whole record: a create that names no base and does not delete.
bool makes_whole_record(const ChangeSet& change);
// Precondition: makes_whole_record(change). What encode_state gives for a record to which only
// `change` was applied, written straight from the change set (the common case of a push).
EncodedState encode_created(const ChangeSet& change);
Result<RecordState> decode_state(std::string_view fields, std::string_view meta);
// True when every version the encoded state `meta` references (every head, current or losing,
// and any deletion) was made by `replica`: that replica then holds this very state, since merge
// is deterministic and it made every change it is built of. False for damaged metadata.
bool made_only_by(std::string_view meta, std::string_view replica);

}  // namespace tsunagu::sync
