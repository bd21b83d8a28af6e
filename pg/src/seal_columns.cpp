// Sealing what older servers left in clear (pg/src/seal_columns.h).
#include "pg/src/seal_columns.h"

#include "pg/src/catalog.h"
#include "pg/src/sealed_rows.h"
#include "pg/src/sql_dialect.h"

namespace tsunagu::pg::detail {
namespace {

// Seals every value of `table`.`column` (BYTEA) in place, then adds the CHECK that keeps clear
// values out: sealed form (crypto/sealed.h) is version byte 1, then nonce, ciphertext and tag,
// at least Sealer::kOverhead bytes in all.
Status seal_in_place(Connection& connection, const SealerSource& sealer, const std::string& table,
                     const std::string& column) {
    const auto& spec = tsunagu_sealed_columns().at(table);
    auto tenant_sealer = sealer();
    TSUNAGU_TRY(tenant_sealer);
    const Sealer& seal_with = **tenant_sealer;
    RewriteCount count;
    auto seal = [&](std::span<const std::uint8_t> clear, const std::string& row_id,
                    const std::string& name) -> Result<std::vector<std::uint8_t>> {
        return seal_with.seal({reinterpret_cast<const char*>(clear.data()), clear.size()}, row_id, name);
    };
    TSUNAGU_TRY(rewrite_values(connection, table, spec.id_column, {column}, seal, count));
    return connection.exec("ALTER TABLE " + table + " ADD CONSTRAINT " + table + "_" + column + "_sealed CHECK (" +
                           column + " IS NULL OR (octet_length(" + column + ") >= " +
                           std::to_string(Sealer::kOverhead) + " AND substring(" + column +
                           " FROM 1 FOR 1) = '\\x01'::bytea))");
}

}  // namespace

Status seal_log_fields(Connection& connection, const SealerSource& sealer) {
    auto type = column_type(connection, "sync_log", "fields");
    TSUNAGU_TRY(type);
    if (type->empty() || *type == "bytea") return Status::ok();
    // The clear text as bytes first (an ACCESS EXCLUSIVE lock on the table until the commit: no
    // server reads or writes the log meanwhile), then each value sealed in place. Field lists are
    // names, never starting with byte 1.
    TSUNAGU_TRY(connection.exec("ALTER TABLE sync_log ALTER COLUMN fields TYPE BYTEA USING convert_to(fields, 'UTF8')"));
    return seal_in_place(connection, sealer, "sync_log", "fields");
}

Status seal_records_log(Connection& connection, const SealerSource& sealer) {
    auto type = column_type(connection, "sync_records", "log");
    TSUNAGU_TRY(type);
    if (type->empty()) return Status::ok();
    // No server reads or writes the records until the commit.
    TSUNAGU_TRY(connection.exec("LOCK TABLE sync_records IN ACCESS EXCLUSIVE MODE"));
    return seal_in_place(connection, sealer, "sync_records", "log");
}

}  // namespace tsunagu::pg::detail
