// A device whose HTTP library has a single pool thread asks a loopback server for answers larger
// than the transport reads, then exits. Run by clients_transport_tests with a time limit: the
// refusal must not wait on a second pool thread (cpprestsdk's own stream-closing does), nor leave
// the exchange reading in the background past the answer, or the program never ends.
//
// Usage: transport_one_thread (chunked | length). Exit 0: refused as too large, and exited.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <utility>  // before Boost.Asio's headers, which use std::exchange without it

#include <pplx/threadpool.h>

#include "clients/src/http_transport.h"

namespace {

constexpr std::size_t kLimit = 1 << 20;
constexpr std::size_t kSent = 8 * kLimit;

bool send_all(int fd, const std::string& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return false;
        at += static_cast<std::size_t>(n);
    }
    return true;
}

// Answers one request with kSent bytes, chunked or with their length said first, then closes.
void answer_one(int listener, bool chunked) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<std::size_t>(n));
    }
    const std::string part(64 * 1024, 'x');
    if (chunked) {
        bool open = send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        for (std::size_t sent = 0; open && sent < kSent; sent += part.size()) {
            open = send_all(fd, size + part + "\r\n");
        }
        if (open) send_all(fd, "0\r\n\r\n");
    } else {
        bool open = send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(kSent) + "\r\n\r\n");
        for (std::size_t sent = 0; open && sent < kSent; sent += part.size()) open = send_all(fd, part);
    }
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: transport_one_thread chunked|length\n");
        return 2;
    }
    const bool chunked = std::string(argv[1]) == "chunked";
    crossplat::threadpool::initialize_with_threads(1);

    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, 4) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        std::perror("listen on loopback");
        return 2;
    }
    std::thread server([&] { answer_one(listener, chunked); });
    server.detach();  // a server still sending at exit is the case under test, not a leak

    tsunagu::client::TransportOptions options;
    options.max_answer_bytes = kLimit;
    auto transport =
        tsunagu::client::make_http_transport("http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)), options);
    auto answer = transport->send("GET", "/large", "", {});
    if (answer.is_ok()) {
        std::fprintf(stderr, "an answer of %zu bytes was read whole, past the limit of %zu\n", answer->body.size(),
                     kLimit);
        return 1;
    }
    std::fprintf(stderr, "%s\n", answer.status().message().c_str());
    return answer.status().message().find("larger than this device reads") != std::string::npos ? 0 : 1;
}
