// Strict JSON input checks.
#include "api/src/json_input.h"

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
        case JsonType::integer: return v.is_number_integer();
        case JsonType::boolean: return v.is_boolean();
        case JsonType::array: return v.is_array();
        case JsonType::object: return v.is_object();
        case JsonType::any: return true;
    }
    return false;
}

}  // namespace

Result<Json> parse_json_object(const std::string& body, int max_depth) {
    if (sync::json_nests_deeper_than(body, max_depth)) {
        return Status(ErrorCode::validation,
                      "the body nests deeper than " + std::to_string(max_depth) + " levels");
    }
    Json parsed;
    try {
        parsed = Json::parse(body);
    } catch (const Json::parse_error& e) {
        const bool utf8 = std::string(e.what()).find("UTF-8") != std::string::npos;
        std::string why = utf8 ? "the body is not valid UTF-8" : "the body is not valid JSON";
        return Status(ErrorCode::validation, why + " (at byte " + std::to_string(e.byte) + ")");
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
