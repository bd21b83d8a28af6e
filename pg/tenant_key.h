// The data key that seals one tenant's record contents in PostgreSQL (crypto/sealed.h).
//
// It lives in the database itself, wrapped under the key-encryption key every server of the
// deployment holds (the server's key file), with the tenant's name bound to the wrapping. So a
// dump or backup of the database carries the key only wrapped: without the key file, nothing
// sealed in it opens. The first server to start creates the key; every other server, then and
// later, unwraps that same one.
#pragma once

#include <string_view>

#include "crypto/secret.h"
#include "pg/pg.h"

namespace tsunagu::pg {

// The tenant's data key: created on first use (safe when several servers start at once), else
// unwrapped. wrong_key when `kek` is not the key the database's servers were started with.
Result<Secret> tenant_data_key(Connection& connection, std::string_view tenant, const Secret& kek);

// Wraps every tenant's data key under `new_kek` instead of `old_kek`, in one transaction (all or
// none), for a rotation of the servers' key file. The data keys themselves do not change (the
// records stay sealed as they are), so running servers, which hold them unwrapped, go on; servers
// started afterwards need the new key file. A key already wrapped under `new_kek` (a rotation run
// again) is left as it is. wrong_key, changing nothing, when a tenant's key opens under neither.
// Returns how many keys were wrapped anew.
Result<std::size_t> rewrap_tenant_keys(Connection& connection, const Secret& old_kek, const Secret& new_kek);

}  // namespace tsunagu::pg
