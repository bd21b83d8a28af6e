// The HTTP server the rest of api/ sees: start on a URL with a handler, stop gracefully.
// Implemented over cpprestsdk in cpprest_adapter.cpp, the one file that includes it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/http.h"
#include "crypto/status.h"

namespace tsunagu::api {

class HttpServer {
public:
    virtual ~HttpServer() = default;
    // Stops accepting, lets requests in flight finish (up to `grace_seconds`), then closes.
    virtual void stop(int grace_seconds = 10) = 0;
    // Requests accepted and not yet answered.
    virtual std::size_t in_flight() const = 0;
    // Requests waiting for a worker.
    virtual std::size_t queue_depth() const = 0;
};

// Listens on `url` ("http://127.0.0.1:8080" or "https://host:8443"); `tls` is required for
// https. Each request's body is refused with 413 when Content-Length exceeds the limit, before
// it is read; handlers run on a bounded worker pool, in the lane `lane_of` gives each request
// (interactive for all when empty), and a full lane answers 503 at once.
Result<std::unique_ptr<HttpServer>> start_http_server(const std::string& url,
                                                      const std::optional<TlsFiles>& tls,
                                                      const ListenerLimits& limits,
                                                      HttpHandler handler,
                                                      LaneClassifier lane_of = {});

}  // namespace tsunagu::api
