// Byte-exact HTTP/1.1 requests to a loopback port, as a browser sends them (Cookie, Content-Type,
// X-CSRF-Token, Sec-Fetch-Site), with every response header kept, repeated ones included.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/loopback_socket.h"

namespace tsunagu::testing {

struct BrowserAnswer {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
    std::string body;

    // The first value of a header, or "" when absent. `name` lower-case.
    std::string header(const std::string& name) const {
        for (const auto& [n, v] : headers)
            if (n == name) return v;
        return {};
    }
    std::vector<std::string> all(const std::string& name) const {
        std::vector<std::string> values;
        for (const auto& [n, v] : headers)
            if (n == name) values.push_back(v);
        return values;
    }
};

inline BrowserAnswer browser_request(int port, const std::string& method, const std::string& target,
                                     const std::map<std::string, std::string>& headers = {},
                                     const std::string& body = "") {
    const UniqueFd fd = connect_loopback(port);
    std::string request =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
    send_all(fd, request + "\r\n" + body);
    const std::string raw = read_all(fd);

    BrowserAnswer answer;
    const auto head_end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || head_end == std::string::npos)
        throw std::runtime_error("no HTTP answer: " + raw);
    answer.status = std::stoi(raw.substr(9, 3));
    std::size_t at = raw.find("\r\n") + 2;
    while (at < head_end) {
        const auto end = raw.find("\r\n", at);
        const std::string line = raw.substr(at, end - at);
        const auto colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        answer.headers.emplace_back(name, value);
        at = end + 2;
    }
    answer.body = raw.substr(head_end + 4);
    return answer;
}

}  // namespace tsunagu::testing
