// Schema validation, shared by both ends: values, change sets, and scope keys.
#include "sync/schema.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace tsunagu::sync {
namespace {

constexpr std::int64_t kDefaultStringMax = 200;
constexpr std::int64_t kDefaultTextMax = 10'000;
constexpr std::int64_t kDefaultListMax = 1'000;

Status invalid(const FieldSchema& field, const std::string& what) {
    return Status(ErrorCode::validation, "field " + field.title() + ": " + what);
}

// What a refused value is, never what it says: refusals reach logs, the command line, apps and
// the server's record of refused changes, and a value is part of a person's care record. Its JSON
// type, and how long a string or list is.
std::string kind_of(const Json& value) {
    switch (value.type()) {
        case Json::value_t::null: return "null";
        case Json::value_t::boolean: return "true or false";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned: return "an integer";
        case Json::value_t::number_float: return "a number with a fraction";
        case Json::value_t::string: return "text";
        case Json::value_t::array: return "a list of " + std::to_string(value.size()) + " items";
        case Json::value_t::object: return "an object";
        default: return "another kind of value";
    }
}

std::size_t characters(const std::string& utf8) {
    std::size_t count = 0;
    for (unsigned char c : utf8) count += (c & 0xC0) != 0x80;
    return count;
}

// The earliest date a record may hold: a year typed short ("0220-05-01" for 2020) is refused at
// once, rather than kept where no yearly report ever shows it. Admissions of long-term inpatients
// go back decades; none before this.
constexpr int kEarliestYear = 1900;

bool is_date(const std::string& text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
        if (text[i] < '0' || text[i] > '9') return false;
    }
    const int year = std::stoi(text.substr(0, 4));
    const int month = std::stoi(text.substr(5, 2));
    const int day = std::stoi(text.substr(8, 2));
    if (year < kEarliestYear || month < 1 || month > 12 || day < 1) return false;
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

Status validate_length(const FieldSchema& field, const Json& value, std::int64_t default_max,
                       const char* kind) {
    if (!value.is_string())
        return invalid(field, std::string("must be ") + kind + ", got " + kind_of(value));
    const auto& text = value.get_ref<const std::string&>();
    const auto length = static_cast<std::int64_t>(characters(text));
    const std::int64_t min = field.min.value_or(0);
    const std::int64_t max = field.max.value_or(default_max);
    if (length < min || length > max) {
        return invalid(field, std::string("must be ") + kind + " of " + std::to_string(min) +
                                  " to " + std::to_string(max) + " characters, got " +
                                  std::to_string(length));
    }
    if (field.type == FieldType::string && text.find('\n') != std::string::npos) {
        return invalid(field, "must be one line (no line breaks); use a text field for notes");
    }
    return Status::ok();
}

Status validate_scalar(const FieldSchema& field, FieldType type, const Json& value) {
    switch (type) {
        case FieldType::string:
            return validate_length(field, value, kDefaultStringMax, "a string");
        case FieldType::text:
            return validate_length(field, value, kDefaultTextMax, "text");
        case FieldType::integer: {
            const std::int64_t min = field.min.value_or(std::numeric_limits<std::int64_t>::min());
            const std::int64_t max = field.max.value_or(std::numeric_limits<std::int64_t>::max());
            const bool integral = value.is_number_integer();
            if (!integral ||
                (value.is_number_unsigned() &&
                 value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) ||
                value.get<std::int64_t>() < min || value.get<std::int64_t>() > max) {
                std::string range = field.min || field.max ? " from " + std::to_string(min) +
                                                                 " to " + std::to_string(max)
                                                           : "";
                return invalid(field, "must be an integer" + range + ", got " +
                                          (integral ? "one outside that range" : kind_of(value)));
            }
            return Status::ok();
        }
        case FieldType::date:
            if (!value.is_string() || !is_date(value.get_ref<const std::string&>())) {
                return invalid(field, "must be a date written YYYY-MM-DD, from 1900-01-01, got " +
                                          (value.is_string() ? "text that is not such a date"
                                                             : kind_of(value)));
            }
            return Status::ok();
        case FieldType::enumeration:
            if (!value.is_string() ||
                std::find(field.choices.begin(), field.choices.end(),
                          value.get_ref<const std::string&>()) == field.choices.end()) {
                return invalid(field,
                               "must be one of " + joined(field.choices) + ", got " +
                                   (value.is_string() ? "text that is none of them" : kind_of(value)));
            }
            return Status::ok();
        case FieldType::reference:
            if (!value.is_string() || !is_id(value.get_ref<const std::string&>())) {
                return invalid(
                    field, "must be a record id (32 lower-case hex characters)" +
                               std::string(field.target.empty() ? "" : " of a " + field.target) +
                               ", got " + (value.is_string() ? "text that is not one" : kind_of(value)));
            }
            return Status::ok();
        case FieldType::list:
            return invalid(field, "lists of lists are not supported");
    }
    return invalid(field, "has an unknown type");
}

}  // namespace

const char* field_type_name(FieldType type) noexcept {
    switch (type) {
        case FieldType::string:
            return "string";
        case FieldType::integer:
            return "integer";
        case FieldType::date:
            return "date";
        case FieldType::enumeration:
            return "enumeration";
        case FieldType::text:
            return "text";
        case FieldType::reference:
            return "reference";
        case FieldType::list:
            return "list";
    }
    return "unknown";
}

std::string FieldSchema::title() const {
    std::string out = "\"" + name + "\"";
    if (label.ja.empty() && label.en.empty()) return out;
    if (label.ja.empty() || label.en.empty()) return out + " (" + label.ja + label.en + ")";
    return out + " (" + label.ja + " / " + label.en + ")";
}

const FieldSchema* CollectionSchema::find(std::string_view field) const {
    for (const auto& f : fields) {
        if (f.name == field) return &f;
    }
    return nullptr;
}

const CollectionSchema* Schema::find(std::string_view collection) const {
    for (const auto& c : collections) {
        if (c.name == collection) return &c;
    }
    return nullptr;
}

Status Schema::check() const {
    std::set<std::string> names;
    for (const auto& c : collections) {
        const std::string where =
            "schema v" + std::to_string(version) + ", collection \"" + c.name + "\"";
        if (c.name.empty() || c.name[0] == '_') {
            return Status(ErrorCode::invalid_argument,
                          where + ": names must not be empty or start with '_'");
        }
        if (!names.insert(c.name).second) {
            return Status(ErrorCode::invalid_argument, where + ": declared twice");
        }
        std::set<std::string> fields;
        for (const auto& f : c.fields) {
            if (f.name.empty() || f.name[0] == '_' || !fields.insert(f.name).second) {
                return Status(ErrorCode::invalid_argument,
                              where + ": field \"" + f.name +
                                  "\" is empty, starts with '_', or is declared twice");
            }
            const bool enumerated = f.type == FieldType::enumeration ||
                                    (f.type == FieldType::list && f.item == FieldType::enumeration);
            if (enumerated && f.choices.empty()) {
                return Status(ErrorCode::invalid_argument,
                              where + ": enumeration field \"" + f.name + "\" has no choices");
            }
            for (const auto& [choice, label] : f.choice_labels) {
                if (std::find(f.choices.begin(), f.choices.end(), choice) == f.choices.end()) {
                    return Status(ErrorCode::invalid_argument,
                                  where + ": field \"" + f.name + "\" labels \"" + choice +
                                      "\", which is not one of its choices");
                }
            }
            if (f.type == FieldType::list && f.item == FieldType::list) {
                return Status(ErrorCode::invalid_argument,
                              where + ": field \"" + f.name + "\" is a list of lists");
            }
            if (f.defaults_to_author && f.type != FieldType::reference) {
                return Status(ErrorCode::invalid_argument,
                              where + ": field \"" + f.name + "\" defaults to its author but is not a reference");
            }
            if (f.since > version || f.required_since > version) {
                return Status(ErrorCode::invalid_argument,
                              where + ": field \"" + f.name + "\" is newer than the schema");
            }
        }
        for (const auto& rule : c.rules) {
            if (!c.find(rule.field) || !c.find(rule.other) || rule.since > version) {
                return Status(ErrorCode::invalid_argument,
                              where + ": a rule between \"" + rule.field + "\" and \"" + rule.other +
                                  "\" names an undeclared field or a later schema version");
            }
            const bool values_given = !rule.unless.empty() || !rule.when.empty();
            if ((rule.kind != RecordRule::Kind::required_with && values_given) ||
                (!rule.unless.empty() && !rule.when.empty())) {
                return Status(ErrorCode::invalid_argument,
                              where + ": the rule on \"" + rule.field +
                                  "\" lists values of \"" + rule.other +
                                  "\"; only required_with takes them, and either \"when\" or \"unless\", not both");
            }
        }
        if (c.scope.kind == ScopeRule::Kind::field && !c.find(c.scope.field)) {
            return Status(ErrorCode::invalid_argument,
                          where + ": scope field \"" + c.scope.field + "\" is not declared");
        }
    }
    return Status::ok();
}

Status validate_value(const FieldSchema& field, const Json& value) {
    if (field.type != FieldType::list) return validate_scalar(field, field.type, value);
    if (!value.is_array()) return invalid(field, "must be a list, got " + kind_of(value));
    const std::int64_t min = field.min.value_or(0);
    const std::int64_t max = field.max.value_or(kDefaultListMax);
    const auto size = static_cast<std::int64_t>(value.size());
    if (size < min || size > max) {
        return invalid(field, "must hold " + std::to_string(min) + " to " + std::to_string(max) +
                                  " items, got " + std::to_string(size));
    }
    FieldSchema item = field;
    item.min.reset();
    item.max.reset();
    for (std::size_t i = 0; i < value.size(); ++i) {
        item.name = field.name + "[" + std::to_string(i) + "]";
        TSUNAGU_TRY(validate_scalar(item, field.item, value[i]));
    }
    return Status::ok();
}

Status validate_change(const Schema& schema, const ChangeSet& change) {
    // Messages are built only on refusal: this runs for every change set applied.
    const bool newer = change.schema_version > schema.version;
    auto who = [&] { return "record " + change.record + " (" + change.collection + ")"; };
    auto versions = [&] {
        return "; the change was made with schema v" + std::to_string(change.schema_version) +
               " and this peer has v" + std::to_string(schema.version);
    };
    const CollectionSchema* collection = schema.find(change.collection);
    // No schema was ever numbered below 1, nor had a collection before its `since`: such a claim
    // would only skip the checks of the fields required since.
    const int oldest = collection ? collection->since : 1;
    if (change.schema_version < oldest) {
        return Status(ErrorCode::validation,
                      who() + ": \"schema\" is " + std::to_string(change.schema_version) +
                          ", but " + change.collection + " records exist from schema v" +
                          std::to_string(oldest) + " on; send the version of the schema the change was " +
                          "validated with (this peer has v" + std::to_string(schema.version) + ")");
    }
    if (!collection) {
        if (newer) return Status::ok();  // kept and passed on
        return Status(ErrorCode::validation, who() + ": collection \"" + change.collection +
                                                 "\" is not in the schema" + versions());
    }
    for (const auto& item : change.set.items()) {
        const std::string& name = item.key();
        const Json& value = item.value();
        if (name == kDeletedField) {
            if (!value.is_boolean()) {
                return Status(ErrorCode::validation,
                              who() + ": " + kDeletedField + " must be true or false");
            }
            continue;
        }
        const FieldSchema* field = collection->find(name);
        if (!field) {
            if (newer) continue;  // a field from a newer schema: kept and passed on
            return Status(ErrorCode::validation, who() + ": field \"" + name +
                                                     "\" is not part of " + change.collection +
                                                     versions());
        }
        if (value.is_null()) {
            if (field->required && change.schema_version >= field->required_from()) {
                return Status(ErrorCode::validation,
                              who() + ": field " + field->title() + " is required and cannot be cleared");
            }
            continue;
        }
        if (field->required && field->type == FieldType::list && value.is_array() && value.empty() &&
            change.schema_version >= field->required_from()) {
            return Status(ErrorCode::validation,
                          who() + ": field " + field->title() + " is required: give at least one");
        }
        Status valid = validate_value(*field, value);
        if (!valid) {
            return Status(ErrorCode::validation,
                          who() + ": " + valid.message() +
                              (newer ? versions() + ": upgrade this peer to accept it" : ""));
        }
    }
    if (change.create) {
        for (const auto& field : collection->fields) {
            if (!field.required || field.required_from() > change.schema_version) continue;
            auto it = change.set.find(field.name);
            if (it == change.set.end() || it->is_null() || (it->is_array() && it->empty())) {
                return Status(ErrorCode::validation,
                              who() + ": field " + field.title() + " is required" +
                                  (field.type == FieldType::list ? ": give at least one" : ""));
            }
        }
    }
    return Status::ok();
}

namespace {

const Json* value_after(const ChangeSet& change, const Json& current, const std::string& field) {
    auto set = change.set.find(field);
    if (set != change.set.end()) return set->is_null() ? nullptr : &*set;
    auto it = current.is_object() ? current.find(field) : current.end();
    return it == current.end() || it->is_null() ? nullptr : &*it;
}

// The civil date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
std::string civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
    char text[32];
    std::snprintf(text, sizeof text, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
    return text;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

Status validate_rules(const Schema& schema, const ChangeSet& change, const Json& current) {
    const CollectionSchema* collection = schema.find(change.collection);
    if (!collection) return Status::ok();
    for (const RecordRule& rule : collection->rules) {
        if (rule.since > change.schema_version) continue;
        if (!change.set.contains(rule.field) && !change.set.contains(rule.other)) continue;
        const FieldSchema* field = collection->find(rule.field);
        const FieldSchema* other = collection->find(rule.other);
        const Json* a = value_after(change, current, rule.field);
        const Json* b = value_after(change, current, rule.other);
        auto refuse = [&](const std::string& what) {
            return Status(ErrorCode::validation, "record " + change.record + " (" + change.collection +
                                                     "): field " + field->title() + ": " + what);
        };
        switch (rule.kind) {
            case RecordRule::Kind::at_most:
                if (a && b && a->is_number_integer() && b->is_number_integer() &&
                    a->get<std::int64_t>() > b->get<std::int64_t>()) {
                    return refuse("must be at most field " + other->title() + ", got more; correct one of them");
                }
                break;
            case RecordRule::Kind::not_before:
                // "YYYY-MM-DD" dates order as text.
                if (a && b && a->is_string() && b->is_string() &&
                    a->get_ref<const std::string&>() < b->get_ref<const std::string&>()) {
                    return refuse("must not be before field " + other->title() +
                                  ", got an earlier date; correct one of them");
                }
                break;
            case RecordRule::Kind::required_with: {
                if (a || !b) break;
                auto listed = [&](const std::vector<std::string>& values) {
                    return b->is_string() &&
                           std::find(values.begin(), values.end(), b->get_ref<const std::string&>()) != values.end();
                };
                if (rule.when.empty() ? !listed(rule.unless) : listed(rule.when)) {
                    return refuse("is required when field " + other->title() +
                                  (rule.when.empty() ? std::string(" is set")
                                                     : " is \"" + b->get_ref<const std::string&>() + "\"") +
                                  "; give the date it happened");
                }
                break;
            }
        }
    }
    return Status::ok();
}

namespace {

std::string date_at(std::int64_t unix_ms, int offset_minutes, int days_after) {
    const std::int64_t local_ms = unix_ms + std::int64_t{offset_minutes} * 60'000;
    return civil_from_days(floor_div(local_ms, 86'400'000) + days_after);
}

}  // namespace

std::string latest_event_date(const Schema& schema, std::int64_t unix_ms, int grace_days) {
    if (!schema.utc_offset_minutes) return {};
    return date_at(unix_ms, *schema.utc_offset_minutes, grace_days);
}

std::string local_date(const Schema& schema, std::int64_t unix_ms) {
    return date_at(unix_ms, schema.utc_offset_minutes.value_or(0), 0);
}

Status validate_event_dates(const Schema& schema, const ChangeSet& change, std::string_view latest) {
    if (latest.empty()) return Status::ok();
    const CollectionSchema* collection = schema.find(change.collection);
    if (!collection) return Status::ok();
    for (const auto& item : change.set.items()) {
        const FieldSchema* field = collection->find(item.key());
        if (!field || field->future) continue;
        const bool dates = field->type == FieldType::date ||
                           (field->type == FieldType::list && field->item == FieldType::date);
        if (!dates) continue;
        const Json& value = item.value();
        bool later = false;
        auto check = [&](const Json& v) { later |= v.is_string() && v.get_ref<const std::string&>() > latest; };
        if (value.is_array()) {
            for (const Json& v : value) check(v);
        } else {
            check(value);
        }
        if (later) {
            return Status(ErrorCode::validation,
                          "record " + change.record + " (" + change.collection + "): field " + field->title() +
                              ": must not be after " + std::string(latest) +
                              " (the day after today, local time), got a later date; give the date it "
                              "happened, and check the device's clock");
        }
    }
    return Status::ok();
}

std::string scope_key_of(const CollectionSchema* collection, std::string_view record_id,
                         const Json* scope_field_value, std::string_view owner) {
    if (collection) {
        const ScopeRule& rule = collection->scope;
        if (rule.kind == ScopeRule::Kind::self) return rule.prefix + std::string(record_id);
        if (rule.kind == ScopeRule::Kind::field && scope_field_value &&
            scope_field_value->is_string() &&
            !scope_field_value->get_ref<const std::string&>().empty()) {
            return rule.prefix + scope_field_value->get<std::string>();
        }
    }
    return "user:" + std::string(owner);
}

std::string scope_key_of(const Schema& schema, const ChangeSet& change) {
    const CollectionSchema* c = schema.find(change.collection);
    const Json* value = nullptr;
    if (c && c->scope.kind == ScopeRule::Kind::field) {
        auto it = change.set.find(c->scope.field);
        if (it != change.set.end()) value = &*it;
    }
    return scope_key_of(c, change.record, value, change.user);
}

}  // namespace tsunagu::sync
