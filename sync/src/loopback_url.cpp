// Whether a URL names this machine by a loopback address (sync/protocol.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <string>

#include "sync/protocol.h"

namespace tsunagu::sync {
namespace {

bool all_digits(std::string_view text) {
    for (char c : text) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

}  // namespace

bool is_loopback_url(std::string_view url) {
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return false;
    const std::string_view scheme = url.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https") return false;
    std::string_view authority = url.substr(scheme_end + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos) return false;

    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') return false;
        port = after.empty() ? after : after.substr(1);
        in6_addr v6{};
        if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1 || !IN6_IS_ADDR_LOOPBACK(&v6)) return false;
        return all_digits(port);
    }
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    port = colon == std::string_view::npos ? std::string_view() : authority.substr(colon + 1);
    if (!all_digits(port)) return false;
    if (host.size() == 9 && ::strncasecmp(host.data(), "localhost", 9) == 0) return true;
    in_addr v4{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1) return false;
    return (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace tsunagu::sync
