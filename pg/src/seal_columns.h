// The migration that seals the change log's field lists (sync_log.fields), which servers before
// schema version 3 stored in clear: the names of the fields each change set, which told a
// database administrator when a given client's risk flags were raised.
#pragma once

#include <functional>

#include "crypto/sealed.h"
#include "pg/pg.h"

namespace tsunagu::pg::detail {

// The tenant's sealer, asked for only when there is something to seal (a database whose change
// log does not exist yet needs no key). The pointer stays valid until the source is asked again.
using SealerSource = std::function<Result<const Sealer*>()>;

// Inside the migration's transaction (pg/migrations.h: all or nothing, under the migration lock;
// a kill part way leaves every value in clear and the next start does it all): when
// sync_log.fields is TEXT, it becomes BYTEA, every value is sealed as PostgresStore seals it
// (bound to its line's sequence number and the column's name), and a CHECK refuses from then on
// any value not in sealed form. A server of the previous version still running during an upgrade
// would otherwise write its lines in clear, which the upgraded servers would refuse to open (as
// altered) when they show the record's history: the CHECK fails that write instead (the device
// sends the change again). So the column never holds a mix of clear and sealed values.
//
// Does nothing when sync_log does not exist yet (the sync engine creates it, sealed, after the
// migrations) or its `fields` is already BYTEA. Failures of the sealer source are returned as is.
Status seal_log_fields(Connection& connection, const SealerSource& sealer);

}  // namespace tsunagu::pg::detail
