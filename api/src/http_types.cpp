// Plain HTTP request/response helpers.
#include <strings.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "api/http.h"

namespace tsunagu::api {

const std::string& HttpRequest::header(const std::string& name) const {
    static const std::string kEmpty;
    auto it = headers.find(name);
    return it == headers.end() ? kEmpty : it->second;
}

void add_security_headers(HttpResponse& response) {
    auto add = [&](const char* name, const char* value) {
        for (const auto& [present, _] : response.headers) {
            if (present.size() == std::strlen(name) && strcasecmp(present.c_str(), name) == 0) return;
        }
        response.headers.emplace_back(name, value);
    };
    add("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    add("Referrer-Policy", "no-referrer");
    add("X-Frame-Options", "DENY");
    add("Cross-Origin-Resource-Policy", "same-origin");
    add("X-Content-Type-Options", "nosniff");
    add("Cache-Control", "no-store");
}

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
    HttpResponse r;
    r.status = status;
    // A message may quote the request (its path, a parameter), which need not be UTF-8: such bytes
    // are replaced, where a plain dump() threw out of the handler (found by the fuzz target
    // requests: "GET /%F6" answered 500, not 404).
    r.body = nlohmann::json{{"error", code}, {"message", message}}.dump(-1, ' ', false,
                                                                         nlohmann::json::error_handler_t::replace);
    return r;
}

}  // namespace tsunagu::api
