// The server's storage on PostgreSQL: a Store (crypto/store.h) whose SQL runs on a PostgreSQL
// database, so that the sync engine and the server run on it unchanged, and several servers can
// share one database.
//
// What it guarantees:
//  - Record contents (sync_records.fields and .meta: current values, and every version with its
//    losing, conflicting values) are sealed with the tenant's data key before PostgreSQL sees
//    them, the record's id and the column's name bound as associated data; so are the change
//    log's field lists (sync_log.fields, bound to the line's sequence number) and the refused
//    changes kept for supervisors (pg/src/sql_dialect.h lists them all). They are opened again as
//    they are read; a value that does not open (altered, moved from another row) fails the read
//    as corrupt. Ids, clocks, sequence numbers and scope keys stay in clear, for indexes.
//  - Writers are serialised per tenant across every server: begin_immediate() takes the tenant's
//    transaction-scoped advisory lock, as SQLite's BEGIN IMMEDIATE takes its write lock. The
//    engine reads and advances its sequence number inside that lock, so sequence numbers commit
//    in order: a device that pulled up to S never later misses a change numbered below S.
//  - A reading transaction (begin_deferred) is one REPEATABLE READ snapshot, like SQLite's.
//  - A statement's failure never quotes row values (pg/pg.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crypto/sealed.h"
#include "crypto/store.h"

namespace tsunagu::pg {

struct PgStoreOptions {
    std::string conninfo;               // libpq connection string
    std::string tenant = "default";     // whose data key seals, and whose writers queue together
    std::shared_ptr<const Sealer> sealer;  // the tenant's (see prepare_database)
    // The tenant's key as the database held it wrapped when `sealer` was made. A write transaction
    // finding another there (a rotation since, pg/presence.h) is refused, so nothing is sealed
    // under a data key the database no longer holds.
    std::vector<std::uint8_t> wrapped_key;
};

// Opens one connection as a Store.
Result<Store> open_store(const PgStoreOptions& options);

// Readies the database for a server starting on it, safely when several start at once: under the
// migration lock (pg/migrations.h) it applies the versioned migrations (versions 3 and 4 seal the
// change log's field lists and the records' change lists older servers left in clear,
// pg/src/seal_columns.h), unwraps (or,
// on first start, creates) the tenant's data key with `kek` (the servers' key file), and runs
// `create_schema` on a Store over the database (the server's idempotent schema, first admin...).
// Returns how to open stores on it (open_store). A database serves one tenant: invalid_argument,
// naming the tenant it belongs to and changing nothing, when it holds another tenant's key.
Result<PgStoreOptions> prepare_database(const std::string& conninfo, const std::string& tenant,
                                                       const Secret& kek,
                                                       const std::function<Status(Store&)>& create_schema);

}  // namespace tsunagu::pg
