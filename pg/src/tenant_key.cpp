// The tenant's data key, wrapped in the database, and its rotation (pg/tenant_key.h).
#include "pg/tenant_key.h"

#include <sodium.h>

#include <string>

#include "crypto/sealed.h"
#include "pg/migrations.h"
#include "pg/src/catalog.h"
#include "pg/src/lock_key.h"
#include "pg/src/sealed_rows.h"
#include "pg/src/sql_dialect.h"

namespace tsunagu::pg {
namespace {

std::string context_of(std::string_view tenant) { return "tenant " + std::string(tenant); }

// Seals every sealed value of `table` anew: opened under `from`, sealed under `to`, with the same
// row id and column bound. Runs inside the caller's transaction.
Status reseal_table(Connection& connection, const std::string& table, const detail::SealedTable& spec,
                    const Sealer& from, const Sealer& to, Resealed& done) {
    auto exists = connection.query("SELECT to_regclass($1) IS NOT NULL", {table});
    TSUNAGU_TRY(exists);
    if (exists->text(0, 0) != "t") return Status::ok();  // a table this database never needed
    std::vector<std::string> columns;
    for (const std::string& column : spec.columns) {
        auto type = detail::column_type(connection, table, column);
        TSUNAGU_TRY(type);
        if (!type->empty()) columns.push_back(column);  // (a column the table has)
    }
    if (columns.empty()) return Status::ok();
    detail::RewriteCount count;
    auto reseal = [&](std::span<const std::uint8_t> stored, const std::string& id,
                      const std::string& column) -> Result<std::vector<std::uint8_t>> {
        auto plain = from.open(stored, id, column);
        if (!plain) {
            return Status(ErrorCode::corrupt, "a value of " + table + "." + column +
                                                  " does not open under the tenant's data key (altered, moved "
                                                  "from another row, or sealed under another key); nothing was "
                                                  "changed");
        }
        std::vector<std::uint8_t> sealed = to.seal(*plain, id, column);
        sodium_memzero(plain->data(), plain->size());
        return sealed;
    };
    TSUNAGU_TRY(detail::rewrite_values(connection, table, spec.id_column, columns, reseal, count));
    done.rows += count.rows;
    done.values += count.values;
    return Status::ok();
}

// Refuses a database where a column this code seals still holds what older servers wrote in
// clear: it would not open as sealed. The migration that seals it (pg/src/seal_columns.h)
// runs when a server of this version starts.
Status check_columns_sealed(Connection& connection) {
    auto still_clear = [](const std::string& column) {
        return Status(ErrorCode::invalid_argument,
                      column + " is still in clear in this database, as servers before this version left it: "
                      "start one tsunagu-server of this version on the database (it seals the column as it "
                      "migrates the database), stop it, then rotate the key; nothing was changed");
    };
    for (const auto& [table, spec] : detail::tsunagu_sealed_columns()) {
        for (const std::string& column : spec.columns) {
            auto type = detail::column_type(connection, table, column);
            TSUNAGU_TRY(type);
            if (type->empty() || *type == "bytea") continue;  // absent, or sealed
            return still_clear(table + "." + column);
        }
    }
    // sync_records.log was BYTEA already while in clear: only the migration that sealed it (4) tells.
    auto version = schema_version(connection);
    TSUNAGU_TRY(version);
    auto log = detail::column_type(connection, "sync_records", "log");
    TSUNAGU_TRY(log);
    if (*version < 4 && !log->empty()) return still_clear("sync_records.log");
    return Status::ok();
}

}  // namespace

Result<TenantKey> tenant_data_key(Connection& connection, std::string_view tenant, const Secret& kek) {
    const std::string context = context_of(tenant);
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
    std::vector<std::uint8_t> wrapped = rows->bytes(0, 0);
    auto key = unwrap_key(kek, wrapped, context);
    if (!key) {
        return Status(key.status().code(),
                      "the key file does not open the data key of tenant '" + std::string(tenant) +
                          "' in this database: start every server with the key file the database "
                          "was first used with (after tsunagu-server rotate-key, the new one)");
    }
    return TenantKey{std::move(*key), std::move(wrapped)};
}

Result<Resealed> reseal_tenant(Connection& connection, std::string_view tenant, const Secret& old_kek,
                               const Secret& new_kek) {
    const std::string context = context_of(tenant);
    TSUNAGU_TRY(connection.begin());
    auto reseal = [&]() -> Result<Resealed> {
        // No writer of the tenant commits while its rows are rewritten (none should run at all).
        TSUNAGU_TRY(connection.query("SELECT pg_advisory_xact_lock($1)", {detail::writers_lock(tenant)}).status());
        auto keys = connection.query("SELECT tenant, wrapped FROM tsunagu_tenant_keys ORDER BY tenant FOR UPDATE");
        TSUNAGU_TRY(keys);
        int mine = -1;
        for (int i = 0; i < keys->size(); ++i) {
            if (keys->text(i, 0) == tenant) mine = i;
        }
        if (mine < 0) return Status(ErrorCode::not_found, "no data key of tenant '" + std::string(tenant) + "' in this database");
        if (keys->size() > 1) {
            return Status(ErrorCode::invalid_argument,
                          "this database holds the data keys of " + std::to_string(keys->size()) +
                              " tenants, whose rows share its tables: rotating one would leave the others' "
                              "rows sealed under keys it does not hold; nothing was changed");
        }
        const std::vector<std::uint8_t> wrapped = keys->bytes(mine, 1);
        if (unwrap_key(new_kek, wrapped, context)) return Resealed{true, 0, 0};
        TSUNAGU_TRY(check_columns_sealed(connection));
        auto old_key = unwrap_key(old_kek, wrapped, context);
        if (!old_key) {
            return Status(ErrorCode::wrong_key, "the old key file does not open the data key of tenant '" +
                                                    std::string(tenant) + "'; nothing was changed");
        }
        auto from = Sealer::with_key(std::move(*old_key));
        TSUNAGU_TRY(from);
        Secret fresh = Secret::random(Sealer::kKeyBytes);
        auto rewrapped = wrap_key(new_kek, fresh, context);
        TSUNAGU_TRY(rewrapped);
        auto to = Sealer::with_key(std::move(fresh));
        TSUNAGU_TRY(to);
        Resealed done;
        for (const auto& [table, spec] : detail::tsunagu_sealed_columns()) {
            TSUNAGU_TRY(reseal_table(connection, table, spec, *from, *to, done));
        }
        TSUNAGU_TRY(connection
                        .query("UPDATE tsunagu_tenant_keys SET wrapped = $2 WHERE tenant = $1",
                               {tenant, Param::bytes(*rewrapped)})
                        .status());
        return done;
    };
    auto done = reseal();
    if (!done) {
        (void)connection.rollback();
        return done.status();
    }
    TSUNAGU_TRY(connection.commit());
    return done;
}

}  // namespace tsunagu::pg
