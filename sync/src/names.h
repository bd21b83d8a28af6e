// Reading back the names the engine writes for enums it does not own.
#pragma once

#include <optional>
#include <string_view>

#include "crypto/status.h"

namespace tsunagu::sync::detail {

// The code whose error_code_name() is `name`.
std::optional<ErrorCode> error_code_named(std::string_view name);

}  // namespace tsunagu::sync::detail
