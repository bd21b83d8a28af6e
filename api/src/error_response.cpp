// The HTTP answer to a failed Status (api/src/error_response.h).
#include "api/src/error_response.h"

#include "api/src/observability.h"

namespace tsunagu::api {

HttpResponse error_response(const Status& status) {
    switch (status.code()) {
        case ErrorCode::invalid_argument:
        case ErrorCode::validation: return HttpResponse::error(400, "invalid", status.message());
        case ErrorCode::not_found: return HttpResponse::error(404, "not_found", status.message());
        case ErrorCode::already_exists:
        case ErrorCode::constraint:
        case ErrorCode::conflict: return HttpResponse::error(409, "conflict", status.message());
        case ErrorCode::forbidden: return HttpResponse::error(403, "forbidden", status.message());
        case ErrorCode::busy:
        case ErrorCode::unavailable:
            return HttpResponse::error(503, "busy", "the server is busy; retry shortly");
        case ErrorCode::storage_full:
            // The operator must act (the path goes to the log); devices keep their work and retry.
            log_event("error", "storage_full",
                      {{"error", status.message()},
                       {"hint", "free space on the data folder's disk (tsunagu_disk_free_bytes{folder=\"data\"})"}});
            return HttpResponse::error(507, "storage_full",
                                       "the server's storage is full: nothing was written; your changes stay on "
                                       "your device, sync again later");
        case ErrorCode::corrupt:
            // The store was altered or damaged on disk where this request read (a page whose seal
            // does not open): no retry mends it. The operator is told what to do in the log; the
            // answer names no page, path or content.
            log_event("error", "store_damaged",
                      {{"error", status.to_string()},
                       {"hint", "the store was altered or damaged on disk: stop the server, keep the damaged "
                                "data folder aside, and restore the latest backup (tsunagu-server restore)"}});
            return HttpResponse::error(500, "store_damaged",
                                       "the server's stored data is damaged where this request read it: nothing "
                                       "was written; your changes stay on your device, and the server's operator "
                                       "has been told");
        default:
            // Internal details (paths, SQLite messages; never record content) go to the log,
            // not into the answer.
            log_event("error", "internal_error", {{"error", status.to_string()}});
            return HttpResponse::error(500, "internal", "unexpected server error; it was logged");
    }
}

}  // namespace tsunagu::api
