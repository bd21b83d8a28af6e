// The device library's HTTP transport: one request, one answer, no knowledge of the HTTP library
// in the interface. Implemented over cpprestsdk's http_client in http_transport.cpp, the one
// client-side file that includes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "crypto/status.h"

namespace tsunagu::client {

struct HttpAnswer {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names lower-cased
    // When the answer's status and headers had arrived, before its body (unset: not known). The
    // server read its clock before answering: the device counts the age of that reading from here.
    std::optional<std::chrono::steady_clock::time_point> headers_at;
};

struct TransportOptions {
    std::chrono::milliseconds timeout{30000};
    // For tests against a self-signed certificate on loopback only.
    bool verify_tls = true;
    // The largest answer body read, in bytes: a larger one is refused as it arrives (by its
    // Content-Length, or once that many bytes came), so that a wrong server or a proxy cannot
    // exhaust a phone's memory. A pull page of 1000 records is a few MiB.
    std::size_t max_answer_bytes = std::size_t{64} << 20;
};

class HttpTransport {
public:
    virtual ~HttpTransport() = default;
    // Sends one request. A network failure (refused, reset, timeout) is ErrorCode::unavailable.
    // Refused with invalid_argument, the same however often repeated: a base URL that is not one,
    // a redirect (any 3xx: never followed, so the session's token goes to the configured server
    // only), an answer body over max_answer_bytes. Any other HTTP status, including 4xx and 5xx,
    // is a successful exchange. May be called from several threads at once (a sync keeps several
    // pushes in flight): a transport must be thread-safe.
    virtual Result<HttpAnswer> send(const std::string& method, const std::string& path_and_query,
                                    const std::string& body,
                                    const std::map<std::string, std::string>& headers) = 0;
};

// A transport to `base_url` ("http://127.0.0.1:8080" or "https://..."). Never throws: a URL the
// HTTP library refuses gives a transport whose every send() is refused, saying so.
std::unique_ptr<HttpTransport> make_http_transport(const std::string& base_url,
                                                   TransportOptions options = {});

}  // namespace tsunagu::client
