// Servers announce themselves on a tenant's database (pg/presence.h).
#include "pg/presence.h"

#include "pg/src/lock_key.h"

namespace tsunagu::pg {

namespace {

// A connection of its own holding `tenant`'s servers lock shared.
Result<Connection> hold_shared(const std::string& conninfo, std::string_view tenant) {
    auto connection = Connection::open(conninfo);
    TSUNAGU_TRY(connection);
    auto taken = connection->query("SELECT pg_try_advisory_lock_shared($1)", {detail::servers_lock(tenant)});
    TSUNAGU_TRY(taken);
    if (taken->text(0, 0) != "t") {
        return Status(ErrorCode::busy,
                      "a key rotation (tsunagu-server rotate-key) is sealing the records of tenant '" +
                          std::string(tenant) +
                          "' anew: start the server again once it has finished, with the new key file");
    }
    return std::move(*connection);
}

}  // namespace

Result<ServerPresence> ServerPresence::announce(const std::string& conninfo, std::string_view tenant) {
    auto connection = hold_shared(conninfo, tenant);
    TSUNAGU_TRY(connection);
    return ServerPresence(std::move(*connection), conninfo, std::string(tenant));
}

Result<bool> ServerPresence::renew() {
    if (connection_.healthy() && connection_.query("SELECT 1").is_ok()) return false;
    auto connection = hold_shared(conninfo_, tenant_);
    TSUNAGU_TRY(connection);
    connection_ = std::move(*connection);
    return true;
}

Status ServerPresence::take_alone(Connection& connection, std::string_view tenant) {
    const std::int64_t key = detail::servers_lock(tenant);
    auto taken = connection.query("SELECT pg_try_advisory_lock($1)", {key});
    TSUNAGU_TRY(taken);
    if (taken->text(0, 0) == "t") return Status::ok();
    // A bigint advisory key shows in pg_locks as its two halves, with objsubid 1.
    auto servers = connection.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'"
        " AND objsubid = 1 AND classid = (($1::bigint >> 32) & 4294967295)::oid"
        " AND objid = ($1::bigint & 4294967295)::oid AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        {key});
    TSUNAGU_TRY(servers);
    const std::int64_t running = servers->integer(0, 0);
    if (running == 0) {
        return Status(ErrorCode::busy, "another key rotation is running on tenant '" + std::string(tenant) +
                                           "': let it finish, then run this one again if still needed");
    }
    return Status(ErrorCode::busy, std::to_string(running) + " server(s) run on tenant '" + std::string(tenant) +
                                       "': stop every server on this database, then run this again");
}

}  // namespace tsunagu::pg
