// What a client reads when a request fails: the status and the word it can act on
// ({"error": code, "message": what to do}), never a path, a SQLite message or anything else of
// the server's inside, which goes to the log instead.
#pragma once

#include "api/http.h"
#include "crypto/status.h"

namespace tsunagu::api {

// Maps a Status to the HTTP answer a client can act on.
HttpResponse error_response(const Status& status);

}  // namespace tsunagu::api
