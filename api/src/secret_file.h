// A secret an operator hands the server in a file (a backup passphrase, the first administrator's
// password): its first line, read straight into libsodium's guarded memory.
#pragma once

#include <string>

#include "crypto/secret.h"
#include "crypto/status.h"

namespace tsunagu::api {

// The first line of `path` (without its line end), of `min_chars` to 1,024 bytes. The file must
// belong to the user this runs as and be readable by them only, checked on the file opened (it
// cannot be swapped in between). `what` names the file in errors ("passphrase file"); `why_long`
// says why a short secret is refused.
Result<Secret> read_secret_file(const std::string& path, const std::string& what, std::size_t min_chars,
                                const std::string& why_long);

}  // namespace tsunagu::api
