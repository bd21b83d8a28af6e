// Writing JSON text straight into a string: the hot path of storing record states, without the
// temporary objects and allocations of building an nlohmann::json first.
#pragma once

#include <string>
#include <string_view>

#include "sync/protocol.h"

namespace tsunagu::sync::detail {

// Appends `value` as compact JSON, the same text nlohmann::json::dump() writes (object keys in
// order), except that invalid UTF-8 in strings is replaced by U+FFFD instead of throwing.
void write_json(std::string& out, const Json& value);
// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_utf8(std::string_view text);
// Whether some string in `value` (a member name, or a string at any depth) is not valid UTF-8:
// dump() would throw on it.
bool holds_invalid_utf8(const Json& value);
// Appends a JSON string literal.
void write_json_string(std::string& out, std::string_view text);
// Appends an object member's key and its colon: `key` needs no escaping.
void write_key(std::string& out, const char* key);
void write_int(std::string& out, std::int64_t n);
// Appends the text of Json(outcome).dump().
void write_push_outcome(std::string& out, const PushOutcome& outcome);

}  // namespace tsunagu::sync::detail
