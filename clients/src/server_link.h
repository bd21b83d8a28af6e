// One signed-in conversation with tsunagu-server: JSON requests with the session's bearer token,
// retried with exponential backoff and jitter when the network (or a proxy) fails.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "clients/device.h"
#include "clients/src/http_transport.h"
#include "sync/change.h"

namespace tsunagu::client {

struct ServerAnswer {
    int status = 0;
    sync::Json body;  // the parsed answer (discarded value when the body was not JSON)
    std::string text;  // send_text(): a 200 answer's body, unparsed (body is then null)
    std::optional<std::chrono::steady_clock::time_point> headers_at;  // HttpAnswer::headers_at
    // How long ago the headers arrived, in ms (-1: not known): the age of the server's clock
    // reading in the answer, at least.
    std::int64_t ms_since_headers() const;

    // The server's error code ("wipe", "session_expired", ...) or "".
    std::string error() const;
    // The server's message, or a fallback naming the HTTP status.
    std::string message() const;
};

// Why the server did not answer 200, as a Status: a session refused (401: sign in again, forbidden),
// `what` refused (403, forbidden), a failure that may pass (5xx, 408, 429: unavailable, try again
// later), or a refusal that repeating will not change (400, 404, 413, 3xx, any other status:
// invalid_argument, saying what to check).
Status refusal(const ServerAnswer& answer, const std::string& what);
// Whether the answer tells this device it was revoked and must erase its replica.
bool is_wipe(const ServerAnswer& answer);

class ServerLink {
public:
    ServerLink(std::unique_ptr<HttpTransport> transport, RetryPolicy policy);

    // Sends one request (an empty token sends none). The copies of the token it makes (the
    // Authorization header) are wiped once the exchange is over; send() also wipes the request
    // and answer texts it held (a sign-in carries a password one way and a token the other). A network failure or a 502, 503 or 504 is
    // retried up to the policy's attempts, counting repeats in `retries`; after that the answer
    // is unavailable. Any other HTTP status is returned as is, and any other failure of the
    // transport (invalid_argument: a URL that is not one, a redirect, an answer too large) at once.
    // `maybe_done`, when given, is set when an attempt before the last may have been carried out
    // by the server although no answer said so (a connection cut, a proxy's 502 or 504; not a
    // 503, which refuses the request unread): a request that is not idempotent may have taken
    // effect already.
    Result<ServerAnswer> send(const std::string& method, const std::string& path,
                              const sync::Json& body, std::string_view token,
                              std::size_t* retries = nullptr, bool* maybe_done = nullptr);
    // send() with a body that is JSON text already. A 200 answer is left as text, for the
    // caller's own reader; any other is parsed into `body` as send() does.
    Result<ServerAnswer> send_text(const std::string& method, const std::string& path,
                                   const std::string& text, std::string_view token,
                                   std::size_t* retries = nullptr);

private:
    Result<HttpAnswer> exchange(const std::string& method, const std::string& path,
                                const std::string& text, std::string_view token,
                                std::size_t* retries, bool* maybe_done = nullptr);
    std::chrono::milliseconds delay_before(int attempt);
    // The wait a 502/503/504 answer asks for in its Retry-After header, capped at the policy's
    // max_delay; 0 when it asks for none. A retry waits at least this long.
    std::chrono::milliseconds retry_after(const HttpAnswer& answer) const;
    std::unique_ptr<HttpTransport> transport_;
    RetryPolicy policy_;
};

}  // namespace tsunagu::client
