// Reading back the names the engine writes for enums it does not own.
#pragma once

#include <optional>
#include <string_view>

#include "crypto/status.h"

namespace tsunagu::sync::detail {

using ::tsunagu::error_code_named;  // crypto/status.h

}  // namespace tsunagu::sync::detail
