// key=value parsing by schema, and values shown back to people.
#include "clients/cli/field_values.h"

#include <charconv>
#include <map>

namespace tsunagu::cli {
namespace {

Result<sync::Json> scalar(const sync::FieldSchema& field, sync::FieldType type, std::string_view text) {
    if (type == sync::FieldType::integer) {
        std::int64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
            // Never the text itself: it may be a record's content typed in the wrong place.
            return Status(ErrorCode::validation, "field \"" + field.name + "\": expected a whole number");
        }
        return sync::Json(value);
    }
    return sync::Json(std::string(text));
}

// "item 3" (of the words, or of the lines read with -): which one, never what it says (it may be
// a record's content typed in the wrong place).
std::string nth(std::size_t index) { return "item " + std::to_string(index + 1); }

// A name worth showing back: one a schema could have (letters, digits, '_'), short.
bool shows_as_name(std::string_view name) {
    if (name.empty() || name.size() > 40) return false;
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

std::string known_fields(const sync::CollectionSchema& collection) {
    std::string names;
    for (const auto& f : collection.fields) names += (names.empty() ? "" : ", ") + f.name;
    return names;
}

}  // namespace

std::string word_as_shown(std::string_view word, std::size_t index) {
    return shows_as_name(word) ? "\"" + std::string(word) + "\"" : nth(index);
}

Result<sync::Json> parse_field_value(const sync::FieldSchema& field, std::string_view text) {
    if (text.empty()) return sync::Json(nullptr);
    if (field.type != sync::FieldType::list) {
        auto value = scalar(field, field.type, text);
        if (!value) return value;
        TSUNAGU_TRY(sync::validate_value(field, *value));
        return value;
    }
    sync::Json items = sync::Json::array();
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        auto item = scalar(field, field.item, text.substr(start, comma - start));
        if (!item) return item;
        items.push_back(std::move(*item));
        start = comma + 1;
    }
    TSUNAGU_TRY(sync::validate_value(field, items));
    return items;
}

Result<sync::Json> parse_assignments(const sync::CollectionSchema& collection, const std::vector<std::string>& words) {
    sync::Json fields = sync::Json::object();
    std::map<std::string, std::size_t> given_at;
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& word = words[i];
        const auto eq = word.find('=');
        if (eq == std::string::npos || eq == 0) {
            return Status(ErrorCode::invalid_argument,
                          nth(i) + ": expected field=value (fields of " + collection.name + ": " +
                              known_fields(collection) + ")");
        }
        const std::string name = word.substr(0, eq);
        const sync::FieldSchema* field = collection.find(name);
        if (!field) {
            return Status(ErrorCode::validation,
                          (shows_as_name(name) ? "field \"" + name + "\"" : nth(i)) + ": " + collection.name +
                              " has no such field (it has: " + known_fields(collection) + ")");
        }
        if (auto [at, first] = given_at.try_emplace(name, i); !first) {
            // Kept as the last, the first value would be lost without a word.
            return Status(ErrorCode::invalid_argument, "field \"" + name + "\" is given twice (" + nth(at->second) +
                                                           " and " + nth(i) + "): give it once");
        }
        auto value = parse_field_value(*field, std::string_view(word).substr(eq + 1));
        if (!value) return value;
        fields[name] = std::move(*value);
    }
    return fields;
}

std::string display_value(const sync::Json& value) {
    if (value.is_null()) return "-";
    if (value.is_string()) return value.get<std::string>();
    if (value.is_array()) {
        std::string out;
        for (const auto& item : value) out += (out.empty() ? "" : ",") + display_value(item);
        return out;
    }
    return value.dump();
}

}  // namespace tsunagu::cli
