// Strict JSON input checks.
#include "api/src/json_input.h"

#include <cstdint>

#include "sync/protocol.h"

namespace tsunagu::api {
namespace {

const char* type_name(JsonType t) {
    switch (t) {
        case JsonType::string: return "a string";
        case JsonType::integer: return "an integer";
        case JsonType::boolean: return "true or false";
        case JsonType::array: return "an array";
        case JsonType::object: return "an object";
        case JsonType::any: return "a value";
    }
    return "a value";
}

bool has_type(const Json& v, JsonType t) {
    switch (t) {
        case JsonType::string: return v.is_string();
        case JsonType::integer:  // as an int64: nlohmann reads 2^63 and above as unsigned
            return v.is_number_integer() &&
                   !(v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t{INT64_MAX});
        case JsonType::boolean: return v.is_boolean();
        case JsonType::array: return v.is_array();
        case JsonType::object: return v.is_object();
        case JsonType::any: return true;
    }
    return false;
}

// nlohmann's document builder, its errors kept rather than thrown. Thrown, a number too large for
// a double ("1e999") was an out_of_range exception that no caller expected: the request failed
// with a 500 instead of a 400.
class DocumentReader : public nlohmann::detail::json_sax_dom_parser<Json> {
  public:
    explicit DocumentReader(Json& document) : json_sax_dom_parser(document, /*allow_exceptions=*/false) {}

    std::string error;  // why reading stopped

    // Hides the builder's own, which would throw.
    bool parse_error(std::size_t position, const std::string&, const Json::exception& e) {
        error = sync::json_body_error(position, e);
        return false;
    }
};

}  // namespace

Result<Json> parse_json_object(const std::string& body, int max_depth) {
    if (sync::json_nests_deeper_than(body, max_depth)) {
        return Status(ErrorCode::validation, sync::json_depth_error(max_depth));
    }
    Json parsed;
    DocumentReader reader(parsed);
    if (!Json::sax_parse(body, &reader, nlohmann::detail::input_format_t::json, /*strict=*/true)) {
        return Status(ErrorCode::validation, reader.error);
    }
    if (std::string nul = sync::json_nul_error(body); !nul.empty()) return Status(ErrorCode::validation, std::move(nul));
    if (std::string repeated = sync::json_repeated_member_error(body); !repeated.empty()) {
        return Status(ErrorCode::validation, std::move(repeated));
    }
    if (!parsed.is_object()) return Status(ErrorCode::validation, "the body must be a JSON object");
    return parsed;
}

Status check_fields(const Json& object, std::initializer_list<FieldSpec> fields) {
    for (const auto& [key, value] : object.items()) {
        const FieldSpec* spec = nullptr;
        for (const auto& f : fields)
            if (key == f.name) spec = &f;
        if (!spec) return Status(ErrorCode::validation, "unknown field \"" + key + "\"");
        if (!has_type(value, spec->type)) {
            return Status(ErrorCode::validation,
                          "field \"" + key + "\": must be " + type_name(spec->type));
        }
    }
    for (const auto& f : fields) {
        if (f.required && !object.contains(f.name)) {
            return Status(ErrorCode::validation, std::string("field \"") + f.name + "\": required");
        }
    }
    return Status::ok();
}

}  // namespace tsunagu::api
