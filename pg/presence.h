// Which servers run on a tenant's database, for what must run with none (a key rotation that
// seals every record anew, tsunagu-server rotate-key).
//
// A server announces itself for as long as it runs: a connection of its own holds the tenant's
// servers lock shared (a session-level advisory lock, so it is released when the server stops,
// however it stops, or when its connection ends). What needs the database to itself takes the
// same lock exclusive, without waiting: it gets it only when no server holds it, and while it
// holds it no server starts.
//
// The lock is an announcement, not the guarantee: a server whose connection was ended (a
// restart of PostgreSQL, an idle-session timeout) no longer holds it until it renews it (renew(),
// which the server calls every few seconds). So a writer also checks, in each write transaction,
// that the tenant's data key is still the one it started with (PgStoreOptions::wrapped_key).
#pragma once

#include <string>
#include <string_view>

#include "pg/pg.h"

namespace tsunagu::pg {

class ServerPresence {
public:
    // Announces a server on `tenant`'s database, on a connection of its own. busy, saying to
    // wait, while a rotation holds the database; unavailable when PostgreSQL cannot be reached.
    static Result<ServerPresence> announce(const std::string& conninfo, std::string_view tenant);

    // Takes `tenant`'s database for the caller alone, on `connection` (session-level: released
    // when the connection ends), without waiting. busy, naming how many servers run and what to
    // do, while any does.
    static Status take_alone(Connection& connection, std::string_view tenant);

    // Checks that the announcement still holds (its connection answers) and, when its
    // connection was ended, announces again on a new one. Answers whether it was renewed now
    // (false: it held all along); busy while a rotation holds the database, unavailable while
    // PostgreSQL cannot be reached (tried again at the next call). One thread at a time.
    Result<bool> renew();

    ServerPresence(ServerPresence&&) noexcept = default;
    ServerPresence& operator=(ServerPresence&&) noexcept = default;

private:
    ServerPresence(Connection connection, std::string conninfo, std::string tenant)
        : connection_(std::move(connection)), conninfo_(std::move(conninfo)), tenant_(std::move(tenant)) {}
    Connection connection_;  // holds the lock for as long as it is open
    std::string conninfo_, tenant_;
};

}  // namespace tsunagu::pg
