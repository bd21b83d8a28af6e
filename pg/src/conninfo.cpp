// What a connection string holds (pg/pg.h).
#include <libpq-fe.h>

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
    // A Unix socket's directory (or Linux's abstract namespace), or a loopback address.
    return host.empty() || host.front() == '/' || host.front() == '@' || host == "localhost" ||
           host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

bool conninfo_has_password(const std::string& conninfo) { return parse(conninfo).count("password") != 0; }

std::string conninfo_unverified_host(const std::string& conninfo) {
    auto options = parse(conninfo);
    const std::string sslmode = options["sslmode"];
    if (sslmode == "verify-ca" || sslmode == "verify-full") return "";
    // host and hostaddr may each list several, comma-separated (libpq tries them in turn).
    for (const char* keyword : {"host", "hostaddr"}) {
        std::stringstream list(options[keyword]);
        for (std::string host; std::getline(list, host, ',');) {
            if (!is_local_host(host)) return host;
        }
    }
    return "";
}

}  // namespace tsunagu::pg
