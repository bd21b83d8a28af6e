// Whether a JSON text names a member twice in one object. A document keeps the last of them; a
// reader without a document may stop at the first, so the targets that compare the two leave such
// texts to the other properties (no fault, no exception). The upstream never writes one.
#pragma once

#include <string_view>

namespace tsunagu::fuzz {

// False for a text that is not JSON.
bool has_repeated_member(std::string_view text);

}  // namespace tsunagu::fuzz
