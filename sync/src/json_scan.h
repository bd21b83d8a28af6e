// Splitting a JSON object's text into its members without parsing their values: most of a
// record's values pass through a merge untouched, so they can stay text.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsunagu::sync::detail {

using Member = std::pair<std::string, std::string_view>;  // key, value's JSON text

// The members of the object `text`, in order; nullopt when `text` is not a JSON object as far as a
// structural scan can tell (strings terminated, brackets balanced, scalars well formed): callers
// then parse it properly. Keys with escapes are unescaped.
std::optional<std::vector<Member>> scan_object(std::string_view text);

// The JSON string `quoted` (its quotes included) as read, escapes resolved ("\u0061" is "a");
// nullopt when it is not one.
std::optional<std::string> read_json_string(std::string_view quoted);

// Whether the JSON text `text` (a change set's) names one of `records` anywhere (its record, or
// a value such as a visit's client): each string of an id's length is looked up. Strings are
// scanned as JSON reads them: a quote escaped inside one (a name with "" in it) does not end it.
bool names_any(std::string_view text, const std::set<std::string>& records);

}  // namespace tsunagu::sync::detail
