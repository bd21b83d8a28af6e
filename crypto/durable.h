// Making what was written survive a power cut: fsync of a file and of the folder that names it.
#pragma once

#include <string>

#include "crypto/status.h"

namespace tsunagu {

// fsync of the file (or folder) at `path`, then of the folder holding it: what was written to it,
// and its name in that folder, are on disk when this answers ok; io_error naming what could not
// be synced otherwise.
Status make_durable(const std::string& path);
// fsync of the folder that held `path`: the removal of that name is on disk.
Status make_removal_durable(const std::string& path);

}  // namespace tsunagu
