// What a connection string holds (pg/pg.h).
#include <arpa/inet.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include "pg/pg.h"

namespace tsunagu::pg {

namespace {

// The connection string's keywords and values; empty when it is not one (libpq refuses it when
// used, with its own message).
std::map<std::string, std::string> parse(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
    if (error != nullptr) PQfreemem(error);
    std::map<std::string, std::string> out;
    if (parsed == nullptr) return out;
    const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(parsed, PQconninfoFree);
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
        if (o->val != nullptr && o->val[0] != '\0') out[o->keyword] = o->val;
    }
    return out;
}

bool is_local_host(const std::string& host) {
    // A Unix socket's directory (or Linux's abstract namespace), or a loopback address: written as
    // an address, as a name may begin with "127." (127.db.example.org) and be anywhere.
    in_addr v4{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    return host.empty() || host.front() == '/' || host.front() == '@' || host == "localhost" || host == "::1";
}

}  // namespace

bool conninfo_has_password(const std::string& conninfo) {
    const auto options = parse(conninfo);
    return options.count("password") != 0 || options.count("sslpassword") != 0;
}

std::string conninfo_unverified_host(const std::string& conninfo) {
    auto options = parse(conninfo);
    // What libpq will use: the string's value, else its environment variable's.
    auto effective = [&options](const char* keyword, const char* variable) -> std::string {
        if (const auto it = options.find(keyword); it != options.end()) return it->second;
        const char* value = std::getenv(variable);
        return value ? value : "";
    };
    const std::string sslmode = effective("sslmode", "PGSSLMODE");
    if (sslmode == "verify-ca" || sslmode == "verify-full") return "";
    // A service file may name any host, and sets what it says only when libpq connects.
    if (const std::string service = effective("service", "PGSERVICE"); !service.empty()) {
        return "the host of service " + service;
    }
    // host and hostaddr may each list several, comma-separated (libpq tries them in turn).
    for (const auto& [keyword, variable] : {std::pair{"host", "PGHOST"}, std::pair{"hostaddr", "PGHOSTADDR"}}) {
        std::stringstream list(effective(keyword, variable));
        for (std::string host; std::getline(list, host, ',');) {
            if (!is_local_host(host)) return host;
        }
    }
    return "";
}

}  // namespace tsunagu::pg
