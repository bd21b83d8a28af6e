// The tenant's data key, wrapped in the database (pg/tenant_key.h).
#include "pg/tenant_key.h"

#include "crypto/sealed.h"

namespace tsunagu::pg {

Result<Secret> tenant_data_key(Connection& connection, std::string_view tenant, const Secret& kek) {
    const std::string context = "tenant " + std::string(tenant);
    {
        // A fresh key, offered; when another server's offer won the race, theirs is read below.
        Secret fresh = Secret::random(Sealer::kKeyBytes);
        auto wrapped = wrap_key(kek, fresh, context);
        TSUNAGU_TRY(wrapped);
        TSUNAGU_TRY(connection
                        .query("INSERT INTO tsunagu_tenant_keys(tenant, wrapped) VALUES ($1, $2) "
                               "ON CONFLICT (tenant) DO NOTHING",
                               {tenant, Param::bytes(*wrapped)})
                        .status());
    }
    auto rows = connection.query("SELECT wrapped FROM tsunagu_tenant_keys WHERE tenant = $1", {tenant});
    TSUNAGU_TRY(rows);
    if (rows->empty()) return Status(ErrorCode::internal, "the tenant key row vanished after its insert");
    auto key = unwrap_key(kek, rows->bytes(0, 0), context);
    if (!key) {
        return Status(key.status().code(),
                      "the key file does not open the data key of tenant '" + std::string(tenant) +
                          "' in this database: start every server with the key file the database "
                          "was first used with");
    }
    return key;
}

}  // namespace tsunagu::pg
