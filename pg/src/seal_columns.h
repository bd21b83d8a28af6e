// The migrations that seal what servers of earlier versions stored in clear: the change log's
// field lists (sync_log.fields, before schema version 3), which told a database administrator
// when a given client's risk flags were raised; and each record's change list
// (sync_records.log, before version 4), whose entries for a change not yet received name fields.
#pragma once

#include <functional>

#include "crypto/sealed.h"
#include "pg/pg.h"

namespace tsunagu::pg::detail {

// The tenant's sealer, asked for only when there is something to seal (a database whose tables
// do not exist yet needs no key). The pointer stays valid until the source is asked again.
using SealerSource = std::function<Result<const Sealer*>()>;

// Both run inside their migration's transaction (pg/migrations.h: all or nothing, under the
// migration lock; a kill part way leaves every value in clear and the next start does it all).
// Each value is sealed as PostgresStore seals it (bound to its row's id and the column's name),
// and a CHECK refuses from then on any value not in sealed form. A server of the previous version
// still running during an upgrade would otherwise write in clear, which the upgraded servers
// would refuse to open (as altered): the CHECK fails that write instead (the device sends the
// change again). Failures of the sealer source are returned as is.

// When sync_log.fields is TEXT, it becomes BYTEA and is sealed. Does nothing when sync_log does
// not exist yet (the sync engine creates it, sealed, after the migrations) or its `fields` is
// already BYTEA.
Status seal_log_fields(Connection& connection, const SealerSource& sealer);

// Seals sync_records.log. Does nothing when sync_records does not exist yet (the sync engine
// creates it after the migrations, and seals the column from the first write). The CHECK cannot
// tell every clear list from a sealed one: a list in clear whose first entry is the database's
// very first change set, and which holds more than one entry, passes it.
Status seal_records_log(Connection& connection, const SealerSource& sealer);

}  // namespace tsunagu::pg::detail
