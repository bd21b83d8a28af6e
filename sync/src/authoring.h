// Turning what a person did (create, edit, delete, resolve) into a change set against the
// record's current state. Shared by both roles; pure, no storage.
#pragma once

#include <optional>
#include <string>

#include "crypto/status.h"
#include "sync/engine.h"
#include "sync/merge.h"

namespace tsunagu::sync::detail {

struct Edit {
    enum class Kind { create, update, remove, resolve, resolve_deletion };
    Kind kind = Kind::update;
    std::string collection;        // create
    std::string record;            // all but create (create makes a new id)
    Json fields = Json::object();  // create, update
    std::string field;             // resolve
    Json value;                    // resolve
    DeletionResolution resolution = DeletionResolution::keep_deleted;  // resolve_deletion
    // update, remove, resolve, resolve_deletion: what the person read, when the edit is made from
    // it; unset: the replica's record as it stands (what the edit supersedes, see AsRead).
    std::optional<AsRead> as_read;

    static Edit create(std::string_view collection, const Json& fields);
    static Edit update(std::string_view record, const Json& fields);
    static Edit remove(std::string_view record);
    static Edit resolve(std::string_view record, std::string_view field, const Json& value);
    static Edit resolve_deletion(std::string_view record, DeletionResolution resolution);
};

// Who is editing, with which schema, at which clock reading.
struct EditContext {
    const Schema& schema;
    const IdSource& ids;
    std::string replica;
    std::string user;
    Hlc hlc;
    // The latest date an event field may hold (see latest_event_date); "" = not checked.
    std::string latest_event_date = {};
};

// The record's current values of the fields `collection`'s rules name (for validate_rules).
Json rule_values(const Schema& schema, std::string_view collection, const RecordState* state);

// The record being edited, as the editing replica holds it (null: it does not).
struct EditTarget {
    const std::string* collection = nullptr;
    const RecordState* state = nullptr;
};

// The change set for `edit`, validated against the schema (values, rules, event dates); nullopt when it changes nothing.
// Refusals say what to do: not_found, validation (naming the field), conflict (e.g. resolving a
// field that has no conflict, editing a deleted record).
Result<std::optional<ChangeSet>> build_change(const EditContext& context, const Edit& edit,
                                              const EditTarget& target);

}  // namespace tsunagu::sync::detail
