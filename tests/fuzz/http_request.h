// A request as the HTTP adapter hands it to the server's handler (api/http.h), for the targets that
// drive the whole server in process (ServerConfig::serve_in_process): the target's query split at
// & and = (as the listener decodes it), header names lower-cased, from loopback, JSON.
#pragma once

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <string_view>

#include "api/http.h"

namespace tsunagu::fuzz {

inline api::HttpRequest http_request(std::string method, std::string_view target,
                                     const std::map<std::string, std::string>& headers, std::string body) {
    api::HttpRequest request;
    request.method = std::move(method);
    const std::size_t question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) {
        std::string_view query = target.substr(question + 1);
        while (!query.empty()) {
            const std::string_view pair = query.substr(0, query.find('&'));
            const std::size_t equals = pair.find('=');
            request.query[std::string(pair.substr(0, equals))] =
                equals == std::string_view::npos ? "" : std::string(pair.substr(equals + 1));
            query.remove_prefix(std::min(query.size(), pair.size() + 1));
        }
    }
    for (const auto& [name, value] : headers) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[lower] = value;
    }
    request.headers["content-type"] = "application/json";
    request.body = std::move(body);
    request.remote_address = "127.0.0.1";
    request.request_id = "fuzz";
    return request;
}

}  // namespace tsunagu::fuzz
