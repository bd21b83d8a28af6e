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

Result<std::size_t> rewrap_tenant_keys(Connection& connection, const Secret& old_kek, const Secret& new_kek) {
    TSUNAGU_TRY(connection.begin());
    auto rewrap = [&]() -> Result<std::size_t> {
        auto rows = connection.query("SELECT tenant, wrapped FROM tsunagu_tenant_keys ORDER BY tenant FOR UPDATE");
        TSUNAGU_TRY(rows);
        std::size_t rewrapped = 0;
        for (int i = 0; i < rows->size(); ++i) {
            const std::string tenant(rows->text(i, 0));
            const std::string context = "tenant " + tenant;
            const std::vector<std::uint8_t> wrapped = rows->bytes(i, 1);
            if (unwrap_key(new_kek, wrapped, context)) continue;  // rotated already
            auto key = unwrap_key(old_kek, wrapped, context);
            if (!key) {
                return Status(ErrorCode::wrong_key, "neither key file opens the data key of tenant '" + tenant +
                                                        "'; nothing was changed");
            }
            auto sealed = wrap_key(new_kek, *key, context);
            TSUNAGU_TRY(sealed);
            TSUNAGU_TRY(connection
                            .query("UPDATE tsunagu_tenant_keys SET wrapped = $2 WHERE tenant = $1",
                                   {std::string_view(tenant), Param::bytes(*sealed)})
                            .status());
            ++rewrapped;
        }
        return rewrapped;
    };
    auto done = rewrap();
    if (!done) {
        (void)connection.rollback();
        return done.status();
    }
    TSUNAGU_TRY(connection.commit());
    return done;
}

}  // namespace tsunagu::pg
