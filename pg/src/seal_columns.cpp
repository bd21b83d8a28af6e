// Sealing the field lists older servers left in clear in the change log (pg/src/seal_log_fields.h).
#include "pg/src/seal_log_fields.h"

#include "pg/src/catalog.h"
#include "pg/src/sealed_rows.h"
#include "pg/src/sql_dialect.h"

namespace tsunagu::pg::detail {

Status seal_log_fields(Connection& connection, const SealerSource& sealer) {
    const std::string table = "sync_log", column = "fields";
    const auto& spec = tsunagu_sealed_columns().at(table);
    auto type = column_type(connection, table, column);
    TSUNAGU_TRY(type);
    if (type->empty() || *type == "bytea") return Status::ok();
    auto tenant_sealer = sealer();
    TSUNAGU_TRY(tenant_sealer);
    const Sealer& seal_with = **tenant_sealer;
    // The clear text as bytes first (an ACCESS EXCLUSIVE lock on the table until the commit: no
    // server reads or writes the log meanwhile), then each value sealed in place.
    TSUNAGU_TRY(connection.exec("ALTER TABLE sync_log ALTER COLUMN fields TYPE BYTEA USING convert_to(fields, 'UTF8')"));
    RewriteCount count;
    auto seal = [&](std::span<const std::uint8_t> clear, const std::string& seq,
                    const std::string& name) -> Result<std::vector<std::uint8_t>> {
        return seal_with.seal({reinterpret_cast<const char*>(clear.data()), clear.size()}, seq, name);
    };
    TSUNAGU_TRY(rewrite_values(connection, table, spec.id_column, {column}, seal, count));
    // Sealed form (crypto/sealed.h): version byte 1, then nonce, ciphertext and tag, at least
    // Sealer::kOverhead bytes in all. Field lists are names, never starting with byte 1.
    return connection.exec("ALTER TABLE sync_log ADD CONSTRAINT sync_log_fields_sealed CHECK (fields IS NULL OR "
                           "(octet_length(fields) >= " + std::to_string(Sealer::kOverhead) +
                           " AND substring(fields FROM 1 FOR 1) = '\\x01'::bytea))");
}

}  // namespace tsunagu::pg::detail
