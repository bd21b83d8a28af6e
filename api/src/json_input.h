// Strict JSON input: bounded depth, valid UTF-8, each member named once, declared fields only,
// declared types only.
// Every failure names the field and says what was expected, for a 400 answer.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "crypto/status.h"

namespace tsunagu::api {

using Json = nlohmann::json;

// Parses a request body; validation errors for malformed JSON, invalid UTF-8, nesting deeper
// than `max_depth`, a member named twice in one object, or a top level that is not an object.
Result<Json> parse_json_object(const std::string& body, int max_depth = 16);

enum class JsonType { string, integer, boolean, array, object, any };

struct FieldSpec {
    const char* name;
    JsonType type;
    bool required;
};

// Checks that `object` holds only the declared fields, each of its declared type, and every
// required one.
Status check_fields(const Json& object, std::initializer_list<FieldSpec> fields);

}  // namespace tsunagu::api
