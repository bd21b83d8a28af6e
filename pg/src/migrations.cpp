// Versioned migrations under an advisory lock (pg/migrations.h).
#include "pg/migrations.h"

#include <utility>

namespace tsunagu::pg {
namespace {

// The advisory lock every starting server takes around migrate(): "tsunagu" in ASCII.
constexpr std::int64_t kMigrationLock = 0x7473756e616775;

constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS tsunagu_schema_versions("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

Status check_list(std::span<const Migration> migrations) {
    for (std::size_t i = 0; i < migrations.size(); ++i) {
        if (migrations[i].version != static_cast<int>(i) + 1) {
            return Status(ErrorCode::internal, "migration '" + migrations[i].name + "' has version " +
                                                   std::to_string(migrations[i].version) + ", expected " +
                                                   std::to_string(i + 1) + ": versions run 1, 2, 3, ...");
        }
    }
    return Status::ok();
}


}  // namespace

Result<MigrationLock> MigrationLock::take(Connection& connection) {
    // However long another server's migrations take: the connection's lock_timeout (pg.h) is for
    // writers waiting on the tenant's lock, and is put back once this one is held.
    auto before = connection.query("SELECT current_setting('lock_timeout')");
    TSUNAGU_TRY(before.status());
    const std::string lock_timeout(before->text(0, 0));
    TSUNAGU_TRY(connection.exec("SET lock_timeout = 0"));
    auto taken = connection.query("SELECT pg_advisory_lock($1)", {kMigrationLock});
    TSUNAGU_TRY(connection.query("SELECT set_config('lock_timeout', $1, false)", {lock_timeout}).status());
    TSUNAGU_TRY(taken.status());
    return MigrationLock(connection);
}

MigrationLock::MigrationLock(MigrationLock&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}

MigrationLock::~MigrationLock() {
    if (c_ != nullptr && c_->healthy()) (void)c_->query("SELECT pg_advisory_unlock($1)", {kMigrationLock});
}

std::vector<Migration> base_migrations() {
    return {{1, "log sequences and tenant keys",
             "CREATE TABLE tsunagu_log_sequences("
             " stream TEXT PRIMARY KEY,"
             " last BIGINT NOT NULL);"
             "CREATE TABLE tsunagu_tenant_keys("
             " tenant TEXT PRIMARY KEY,"
             " wrapped BYTEA NOT NULL,"
             " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"}};
}

Result<int> schema_version(Connection& connection) {
    auto exists = connection.query("SELECT to_regclass('tsunagu_schema_versions') IS NOT NULL");
    TSUNAGU_TRY(exists);
    if (exists->text(0, 0) != "t") return 0;
    auto rows = connection.query("SELECT COALESCE(max(version), 0) FROM tsunagu_schema_versions");
    TSUNAGU_TRY(rows);
    return static_cast<int>(rows->integer(0, 0));
}

Result<int> migrate(Connection& connection, std::span<const Migration> migrations) {
    TSUNAGU_TRY(check_list(migrations));
    auto lock = MigrationLock::take(connection);
    TSUNAGU_TRY(lock);
    TSUNAGU_TRY(connection.exec(kVersionTable));
    auto current = schema_version(connection);
    TSUNAGU_TRY(current);
    const int newest = static_cast<int>(migrations.size());
    if (*current > newest) {
        return Status(ErrorCode::invalid_argument,
                      "the database is at schema version " + std::to_string(*current) +
                          ", newer than this server's " + std::to_string(newest) +
                          ": upgrade this server before starting it on this database");
    }
    int applied = 0;
    for (int v = *current + 1; v <= newest; ++v) {
        const Migration& m = migrations[static_cast<std::size_t>(v - 1)];
        Status status = with_transaction(connection, [&]() -> Status {
            // An empty migration marks tables that the server's own code creates idempotently
            // under the same lock (pg_store.h's prepare_database).
            if (!m.sql.empty()) TSUNAGU_TRY(connection.exec(m.sql));
            if (m.run) TSUNAGU_TRY(m.run(connection));
            return connection.query("INSERT INTO tsunagu_schema_versions(version, name) VALUES ($1, $2)",
                                    {m.version, m.name})
                .status();
        });
        if (!status) {
            return Status(status.code(), "migration " + std::to_string(v) + " (" + m.name +
                                             ") failed, the database stays at version " +
                                             std::to_string(v - 1) + ": " + status.message());
        }
        ++applied;
    }
    return applied;
}

}  // namespace tsunagu::pg
