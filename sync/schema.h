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
    bool required = false;  // present and non-null (a list: not empty) from required_from() on
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
    // required: the schema version from which a create must carry the field, when later than
    // `since` (a field made required after replicas in the field were built without the rule:
    // their changes, made with an older version, are still taken). 0 = `since`.
    int required_since = 0;
    // date (and lists of dates): may lie in the future (a planned visit, a review date). Other
    // dates record when something happened, and are refused when later than the day after today
    // (see Schema::utc_offset_minutes and latest_event_date).
    bool future = false;
    // reference: a record created without it takes its author's user id ("default": "author" in
    // JSON), when that is a record id (a server's users are): a home visit's visitor is whoever
    // records it, unless they say otherwise.
    bool defaults_to_author = false;

    // The first schema version whose creates must carry the field.
    int required_from() const { return required_since > since ? required_since : since; }

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

// A rule between two fields of one record, checked on the record as a change leaves it, whenever
// the change sets either field (a record that broke a rule before it existed is not refused for
// an unrelated edit, such as its approval). Both ends check it, as they check values.
struct RecordRule {
    enum class Kind {
        at_most,        // integers: `field` <= `other` (e.g. completed <= enrolled), when both set
        not_before,     // dates: `field` >= `other` (e.g. end_date >= start_date), when both set
        required_with,  // `field` must be set when `other` is set to one of `when` (when given),
                        // or else to anything but `unless`
    };
    Kind kind = Kind::at_most;
    std::string field;
    std::string other;
    std::vector<std::string> unless{};  // required_with: values of `other` that need no `field`
    std::vector<std::string> when{};    // required_with: the only values of `other` that need `field`
    int since = 1;                      // the schema version from which changes must keep it
};

struct CollectionSchema {
    std::string name;
    std::vector<FieldSchema> fields;
    ScopeRule scope;
    int since = 1;
    Labels label{};
    std::vector<RecordRule> rules{};

    const FieldSchema* find(std::string_view field) const;
};

struct Schema {
    int version = 1;
    std::vector<CollectionSchema> collections;
    // The offset from UTC of the local time the schema's dates are written in (540: Japan, which
    // has no daylight saving time). Unset: dates are not checked against the clock.
    std::optional<int> utc_offset_minutes{};

    const CollectionSchema* find(std::string_view collection) const;
    // A structurally sound schema: unique names, no '_' prefixes, choices for enumerations,
    // scope fields that exist. Engines refuse to open with one that is not.
    Status check() const;
};

// Validates one value against its field. The message names the field and says what is allowed.
Status validate_value(const FieldSchema& field, const Json& value);

// Validates a change set as the receiving peer: known fields are type-checked; a field or a
// collection this schema does not know is kept (passed on) when the change was made with a newer
// schema, and refused otherwise; a create must carry every required field. A change claiming a
// schema version below 1, or below its collection's `since`, is refused (no schema ever had it,
// and the claim would skip the required fields). Refusals name the record and the field, and say
// which side should be upgraded.
Status validate_change(const Schema& schema, const ChangeSet& change);

// Checks the collection's RecordRules that `change` touches, on the record as the change leaves
// it: `current` holds the record's values before the change (a JSON object, empty for a new
// record; only the fields the rules name are read). Refusals name both fields.
Status validate_rules(const Schema& schema, const ChangeSet& change, const Json& current);

// The latest date an event may carry ("YYYY-MM-DD"): the local date (Schema::utc_offset_minutes)
// at `unix_ms`, plus `grace_days`. "" when the schema sets no offset (nothing is checked).
std::string latest_event_date(const Schema& schema, std::int64_t unix_ms, int grace_days);
// The local date ("YYYY-MM-DD") at `unix_ms`: in the schema's offset, or UTC when it sets none.
std::string local_date(const Schema& schema, std::int64_t unix_ms);

// How many days after today (local time) an event date may be: the upstream's check, the one that
// counts, allows tomorrow (a record made just after midnight somewhere, a clock a little fast);
// a device, whose clock may be wrong, checks with a day more (its reading is its hybrid clock's,
// which never falls behind what it last heard from the upstream).
inline constexpr int kEventDateGraceDays = 1;
inline constexpr int kDeviceEventDateGraceDays = 2;

// Refuses a date field of `change` (or an item of a list of dates) later than `latest`, unless the
// field is `future`. Nothing is checked when `latest` is "".
Status validate_event_dates(const Schema& schema, const ChangeSet& change, std::string_view latest);

// The scope key of a record, from its collection's rule (null: a collection this schema does not
// know, scoped by owner), the current value of the rule's field (null when unset) and its owner.
std::string scope_key_of(const CollectionSchema* collection, std::string_view record_id,
                         const Json* scope_field_value, std::string_view owner);
// The scope key of a record that only `change` wrote: from the value the change sets, its author
// as owner.
std::string scope_key_of(const Schema& schema, const ChangeSet& change);

void to_json(Json& out, const Schema& schema);
// Reads a schema published as JSON; validation errors name the offending entry.
Result<Schema> schema_from_json(const Json& in);

}  // namespace tsunagu::sync
