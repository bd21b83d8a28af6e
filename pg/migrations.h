// Versioned schema migrations, applied when a server starts.
//
// The database records the versions applied (tsunagu_schema_versions). migrate() applies the
// missing ones in order, each in its own transaction together with its version row, so a failure
// (or a kill) leaves the database at the version before it, and the next start resumes there. Servers that
// start together serialise on one advisory lock: each migration runs exactly once, and every
// server returns only once the database is at the newest version. A database at a version newer
// than the code is refused: an older server must not write to a schema it does not know.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pg/pg.h"

namespace tsunagu::pg {

struct Migration {
    int version = 0;    // 1, 2, 3, ... without gaps
    std::string name;   // what it does, for the record
    std::string sql;    // one or more statements
    // Then, in the same transaction, what SQL alone cannot do (sealing values needs the tenant's
    // data key, which PostgreSQL never holds); may be empty. A failure rolls the migration back.
    std::function<Status(Connection&)> run = {};
};

// The tables of this library itself (log sequences, tenant keys): version 1 of every list.
std::vector<Migration> base_migrations();

// Brings the database to the last version of `migrations` (versions 1..N in order). Returns the
// number of migrations this call applied (0 when another server had applied them).
Result<int> migrate(Connection& connection, std::span<const Migration> migrations);

// The session-level advisory lock migrate() holds, for as long as it lives; a caller may hold it
// around more start-up work (it is re-entrant within one session).
class MigrationLock {
public:
    static Result<MigrationLock> take(Connection& connection);
    MigrationLock(MigrationLock&& other) noexcept;
    MigrationLock(const MigrationLock&) = delete;
    MigrationLock& operator=(const MigrationLock&) = delete;
    MigrationLock& operator=(MigrationLock&&) = delete;
    ~MigrationLock();

private:
    explicit MigrationLock(Connection& connection) : c_(&connection) {}
    Connection* c_;
};

// The version the database is at (0 for an empty database).
Result<int> schema_version(Connection& connection);

}  // namespace tsunagu::pg
