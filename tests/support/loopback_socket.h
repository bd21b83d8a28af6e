// Raw TCP to a loopback port, for tests that send what no HTTP client would: half a body, then
// nothing; a connection left open; bytes a browser sends exactly.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <stdexcept>
#include <string>

#include "crypto/unique_fd.h"

namespace tsunagu::testing {

// A connection to 127.0.0.1:`port`, whose reads give up after `read_timeout_s`. Throws when the
// connection is refused.
inline UniqueFd connect_loopback(int port, int read_timeout_s = 10) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    if (!fd) throw std::runtime_error("socket failed");
    timeval timeout{read_timeout_s, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
    }
    return fd;
}

// Sends all of `bytes` (or as much as the peer takes before it closes).
inline void send_all(const UniqueFd& fd, const std::string& bytes) {
    for (std::size_t sent = 0; sent < bytes.size();) {
        const ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
    }
}

// Reads until the peer closes or the read timeout passes.
inline std::string read_all(const UniqueFd& fd) {
    std::string raw;
    char buffer[8192];
    for (ssize_t n; (n = ::recv(fd.get(), buffer, sizeof buffer, 0)) > 0;) raw.append(buffer, static_cast<std::size_t>(n));
    return raw;
}

// The head of an HTTP/1.1 request with a body of `length` bytes, as a phone sends it.
inline std::string request_head(int port, const std::string& method, const std::string& target,
                                const std::string& token, std::size_t length) {
    std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) + "\r\n";
    if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
    return head + "\r\n";
}

}  // namespace tsunagu::testing
