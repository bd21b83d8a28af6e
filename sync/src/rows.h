// Walking the rows of a statement: the one loop every query of the engine needs (each_row, in
// crypto/store.h, under the engine's name for it).
#pragma once

#include "crypto/store.h"

namespace tsunagu::sync::detail {

using tsunagu::each_row;

}  // namespace tsunagu::sync::detail
