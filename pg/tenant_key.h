// The data key that seals one tenant's record contents in PostgreSQL (crypto/sealed.h).
//
// It lives in the database itself, wrapped under the key-encryption key every server of the
// deployment holds (the server's key file), with the tenant's name bound to the wrapping. So a
// dump or backup of the database carries the key only wrapped: without the key file, nothing
// sealed in it opens. The first server to start creates the key; every other server, then and
// later, unwraps that same one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "crypto/secret.h"
#include "pg/pg.h"

namespace tsunagu::pg {

struct TenantKey {
    Secret key;                          // the data key, in guarded memory
    std::vector<std::uint8_t> wrapped;   // as the database holds it (which changes when rotated)
};

// The tenant's data key: created on first use (safe when several servers start at once), else
// unwrapped. wrong_key when `kek` is not the key the database's servers were started with.
Result<TenantKey> tenant_data_key(Connection& connection, std::string_view tenant, const Secret& kek);

struct Resealed {
    bool already = false;       // the key was under `new_kek` already: nothing was done
    std::size_t rows = 0;       // rows whose sealed values were sealed anew
    std::size_t values = 0;     // values sealed anew (NULLs are left as they are)
};

// A rotation of the servers' key file, for a database no server runs on (pg/presence.h): a new
// data key for `tenant`, every sealed value of every row opened under the old one and sealed
// under the new one, and the new key wrapped under `new_kek`, in one transaction (all or none,
// so a rotation killed part way changed nothing, and running it again does it all). Whoever kept
// the old key file and a copy of the database from before can open nothing written from then on.
//
// `already` when the tenant's key opens under `new_kek` (the rotation was done). Refused,
// changing nothing: wrong_key when the key opens under neither; corrupt when a sealed value does
// not open under the old data key (named by table and column, never by content);
// invalid_argument when the database holds other tenants' keys, whose rows share the tables, or
// when a column this code seals is still in clear there (no server of this version has started
// on the database yet to migrate it: the message says to start one first).
Result<Resealed> reseal_tenant(Connection& connection, std::string_view tenant, const Secret& old_kek,
                               const Secret& new_kek);

}  // namespace tsunagu::pg
