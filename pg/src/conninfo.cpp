// What a connection string holds (pg/pg.h).
#include <libpq-fe.h>

#include <cstring>
#include <memory>

#include "pg/pg.h"

namespace tsunagu::pg {

bool conninfo_has_password(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
    if (error != nullptr) PQfreemem(error);
    if (parsed == nullptr) return false;  // not a connection string: libpq refuses it when used
    const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(parsed, PQconninfoFree);
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
        if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr && o->val[0] != '\0') return true;
    }
    return false;
}

}  // namespace tsunagu::pg
