// Turns the command line's key=value words into typed field values, following the schema:
// integers as JSON integers, lists as comma-separated items, an empty value clears the field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "sync/change.h"
#include "sync/schema.h"

namespace tsunagu::cli {

// One value for `field`. Errors name the field and say what is expected.
Result<sync::Json> parse_field_value(const sync::FieldSchema& field, std::string_view text);

// "key=value" words for `collection` into a JSON object. Errors name the word or field.
Result<sync::Json> parse_assignments(const sync::CollectionSchema& collection,
                                     const std::vector<std::string>& words);

// A word the command line could not take, as its errors show it: quoted when it looks like a name
// a schema could have (letters, digits, '_', short), else by its place ("item 2"): it may be a
// record's content typed in the wrong place, which must not reach a terminal's scrollback.
std::string word_as_shown(std::string_view word, std::size_t index);

// A value as a person reads it: strings bare, lists comma-separated, null as "-".
std::string display_value(const sync::Json& value);

}  // namespace tsunagu::cli
