// The device library's HTTP transport: one request, one answer, no knowledge of the HTTP library
// in the interface. Implemented over cpprestsdk's http_client in http_transport.cpp, the one
// client-side file that includes it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "crypto/status.h"

namespace tsunagu::client {

struct HttpAnswer {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names lower-cased
};

struct TransportOptions {
    std::chrono::milliseconds timeout{30000};
    // For tests against a self-signed certificate on loopback only.
    bool verify_tls = true;
};

class HttpTransport {
public:
    virtual ~HttpTransport() = default;
    // Sends one request. A network failure (refused, reset, timeout) is ErrorCode::unavailable;
    // any HTTP status, including 4xx and 5xx, is a successful exchange. May be called from several
    // threads at once (a sync keeps several pushes in flight): a transport must be thread-safe.
    virtual Result<HttpAnswer> send(const std::string& method, const std::string& path_and_query,
                                    const std::string& body,
                                    const std::map<std::string, std::string>& headers) = 0;
};

// A transport to `base_url` ("http://127.0.0.1:8080" or "https://...").
std::unique_ptr<HttpTransport> make_http_transport(const std::string& base_url,
                                                   TransportOptions options = {});

}  // namespace tsunagu::client
