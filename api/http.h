// The HTTP boundary of the server in plain C++: what the adapter hands in and what it sends back.
// Nothing here knows the HTTP library; replacing cpprestsdk means rewriting one adapter file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tsunagu::api {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string path;    // decoded path without the query, e.g. "/v1/sync/pull"
    std::map<std::string, std::string> query;    // decoded query parameters
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    std::string remote_address;
    std::string request_id;  // assigned by the adapter, echoed as X-Request-Id

    // The header's value, or "" when absent. `name` must be lower-case.
    const std::string& header(const std::string& name) const;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // {"error": code, "message": message}
    static HttpResponse error(int status, const std::string& code, const std::string& message);
};

// Adds the headers every answer carries, each unless the answer set its own: a
// Content-Security-Policy that allows nothing (JSON needs nothing), no referrer, no framing, no
// reading by other origins, no sniffing, no caching. Called on every answer the server sends, by
// the adapter too for those it makes itself (a body too large, a queue full); idempotent.
void add_security_headers(HttpResponse& response);

// Called by the adapter on a worker thread (never on an I/O thread): may block, must not throw.
using HttpHandler = std::function<HttpResponse(HttpRequest&)>;
// Which of the worker pool's lanes a request waits in (worker_queue.h):
//  - interactive: pushes, supervisor screens, everything small; taken first;
//  - bulk: pull pages, which may occupy every worker but one, so that a morning rush of initial
//    syncs never makes a small push wait behind it;
//  - password: requests that run Argon2id (sign-ins, a password change), which the process runs
//    one at a time (19 MiB each); at most one worker holds such a request, and a short queue of
//    them is kept, so that a crowd or a flood of sign-ins waits there and never occupies the
//    workers the pushes need.
enum class Lane { interactive, bulk, password };
using LaneClassifier = std::function<Lane(const HttpRequest&)>;

struct ListenerLimits {
    std::size_t max_body_bytes = 4 << 20;  // refused with 413 from Content-Length, before reading
    std::size_t io_threads = 4;            // cpprestsdk's pool (it only moves bytes)
    std::size_t worker_threads = 8;        // run handlers (SQLite work); 0 = inline on the I/O
                                           // thread, only for trivial handlers (benchmark echo)
    std::size_t queue_capacity = 2048;     // requests waiting for a worker in each of the
                                           // interactive and bulk lanes; beyond: 503
    std::size_t password_queue_capacity = 64;  // sign-ins waiting their Argon2id turn (about
                                               // 40 ms each); beyond: 503 with Retry-After
    int request_timeout_seconds = 30;
};

struct TlsFiles {
    std::string certificate_chain;  // PEM
    std::string private_key;        // PEM
};

}  // namespace tsunagu::api
