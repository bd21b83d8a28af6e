// Schemas: the declared collections and their typed fields, validated the same way on both ends.
// Schemas are versioned. A peer keeps, and passes on untouched, fields and collections that a newer
// schema added; it refuses, naming the field, a change its own schema cannot validate.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "sync/change.h"

namespace tsunagu::sync {

enum class FieldType {
    string,       // one line of text, up to `max` characters (default 200)
    integer,      // a JSON integer in [min, max]
    date,         // "YYYY-MM-DD", a real calendar date
    enumeration,  // one of `choices`
    text,         // free text, up to `max` characters (default 10,000)
    reference,    // the id of a record (of collection `target` when set)
    list,         // a JSON array of up to `max` items, each validated as `item`
};
const char* field_type_name(FieldType type) noexcept;

// What people see instead of a machine name, in Japanese and in English ("" = not given).
struct Labels {
    std::string ja;
    std::string en;
};

struct FieldSchema {
    std::string name;  // never starts with '_'
    FieldType type = FieldType::string;
    bool required = false;  // must be present and non-null from schema version `since` on
    // integer: the value range; string, text: length in characters; list: number of items.
    // Unset means the type's default (see FieldType).
    std::optional<std::int64_t> min{};
    std::optional<std::int64_t> max{};
    std::vector<std::string> choices{};  // enumeration (and lists of enumerations)
    std::string target{};                // reference: the collection referred to
    FieldType item = FieldType::string;  // list: the type of each item
    int since = 1;                       // the schema version that added the field
    Labels label{};
    std::map<std::string, Labels> choice_labels{};  // enumeration: how each choice is shown

    // How messages name the field: `"date" (日付 / Date)`, or `"date"` without labels.
    std::string title() const;
};

// Where a record belongs, for scopes (see Upstream::set_scope): its scope key.
struct ScopeRule {
    enum class Kind {
        owner,  // "user:<owner>"
        field,  // "<prefix><value of field>", or "user:<owner>" when the field is unset
        self,   // "<prefix><record id>" (e.g. the client record itself)
    };
    Kind kind = Kind::owner;
    std::string field;
    std::string prefix;
};

struct CollectionSchema {
    std::string name;
    std::vector<FieldSchema> fields;
    ScopeRule scope;
    int since = 1;
    Labels label{};

    const FieldSchema* find(std::string_view field) const;
};

struct Schema {
    int version = 1;
    std::vector<CollectionSchema> collections;

    const CollectionSchema* find(std::string_view collection) const;
    // A structurally sound schema: unique names, no '_' prefixes, choices for enumerations,
    // scope fields that exist. Engines refuse to open with one that is not.
    Status check() const;
};

// Validates one value against its field. The message names the field and says what is allowed.
Status validate_value(const FieldSchema& field, const Json& value);

// Validates a change set as the receiving peer: known fields are type-checked; a field or a
// collection this schema does not know is kept (passed on) when the change was made with a newer
// schema, and refused otherwise; a create must carry every required field. Refusals name the
// record and the field, and say which side should be upgraded.
Status validate_change(const Schema& schema, const ChangeSet& change);

// The scope key of a record, from its collection's rule (null: a collection this schema does not
// know, scoped by owner), the current value of the rule's field (null when unset) and its owner.
std::string scope_key_of(const CollectionSchema* collection, std::string_view record_id,
                         const Json* scope_field_value, std::string_view owner);

void to_json(Json& out, const Schema& schema);
// Reads a schema published as JSON; validation errors name the offending entry.
Result<Schema> schema_from_json(const Json& in);

}  // namespace tsunagu::sync
