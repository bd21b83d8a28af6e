// The server tables' versions and the steps between them (see server_schema.h).
#include "api/src/server_schema.h"

#include <iterator>
#include <string>

#include "api/src/accounts.h"
#include "api/src/audit.h"
#include "api/src/caseload.h"
#include "api/src/refused_changes.h"
#include "api/src/reports.h"
#include "api/src/sign_in_throttle.h"
#include "api/src/web_session.h"

namespace tsunagu::api {
namespace {

struct Step {
    int from;
    const char* what;  // for the error when it fails
    const char* sql;   // one statement
};

constexpr Step kSteps[] = {
    // 1 -> 2: how far each device's clock is from the server's, as its last push showed. (BIGINT,
    // which SQLite reads as INTEGER: the dialect translates types in CREATE TABLE only, and
    // PostgreSQL's INTEGER holds 24 days of milliseconds.)
    {1, "devices' clock readings", "ALTER TABLE device ADD COLUMN clock_ahead_ms BIGINT NOT NULL DEFAULT 0"},
    {1, "devices' clock readings", "ALTER TABLE device ADD COLUMN clock_read_at BIGINT NOT NULL DEFAULT 0"},
    // 2 -> 3: a worker's own kept refusals, newest first (GET /v1/sync/refused).
    {2, "refused changes by worker",
     "CREATE INDEX IF NOT EXISTS refused_change_by_user ON refused_change(user_id, last_at)"},
    // 3 -> 4: a phone an older build let sign in under the web page's device name shared a
    // device with its user's web sign-ins, and its sessions ended with the page's. A "web page"
    // device that pushed, or holds a session the page did not open, is a phone: renamed, it
    // keeps its sessions, and the page's next sign-in registers a device of its own.
    {3, "phones named like the web page",
     "UPDATE device SET name = 'phone (was \"web page\")' WHERE name = 'web page' AND (clock_read_at <> 0 OR "
     "EXISTS (SELECT 1 FROM session s WHERE s.device_id = device.id AND "
     "NOT EXISTS (SELECT 1 FROM web_session w WHERE w.session_id = s.id)))"},
    // 3 -> 4: the teams a worker was in, from which day on (api/src/area_history.h), so that the
    // records about no client they wrote before a move count in their old area.
    {3, "workers' dated teams",
     "CREATE TABLE IF NOT EXISTS account_team_since(user_id TEXT NOT NULL, since TEXT NOT NULL, "
     "team_id TEXT NOT NULL, PRIMARY KEY(user_id, since))"},
    // 4 -> 5: failed sign-ins under names no account has, counted as an account's are, so
    // that the throttle's answers do not tell which names are real, and the secret that keys
    // their hashes (sign_in_throttle.h; made at start, by create_server_tables).
    {4, "failed sign-ins under unknown names", kCreateNameAttempts},
    {4, "failed sign-ins under unknown names", kIndexNameAttempts},
    {4, "failed sign-ins under unknown names", kCreateNameSecret},
};
static_assert(std::size(kSteps) > 0 && std::rbegin(kSteps)->from + 1 == kServerSchemaVersion,
              "the last step reaches kServerSchemaVersion");

constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS server_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)";

}  // namespace

Result<int> server_schema_version(Store& store) {
    TSUNAGU_TRY(store.exec(kVersionTable));
    auto& q = store.cached("SELECT value FROM server_meta WHERE key = 'schema_version'");
    int version = 1;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { version = static_cast<int>(row.column_int(0)); }));
    return version;
}

Status migrate_server_tables(Store& store) {
    return with_transaction(store, [&]() -> Status {
        auto version = server_schema_version(store);
        TSUNAGU_TRY(version);
        if (*version > kServerSchemaVersion) {
            return Status(ErrorCode::invalid_argument,
                          "the server's tables in " + store.path() + " are at version " + std::to_string(*version) +
                              ", written by a newer tsunagu-server; this one knows versions up to " +
                              std::to_string(kServerSchemaVersion) + ": run the newer server (nothing was changed)");
        }
        if (*version == kServerSchemaVersion) return Status::ok();
        for (const Step& step : kSteps) {
            if (step.from < *version) continue;
            Status applied = store.exec(step.sql);
            if (!applied) {
                return Status(applied.code(), "upgrading the server's tables from version " +
                                                  std::to_string(step.from) + " (" + step.what +
                                                  ") failed, and nothing was changed: " + applied.message());
            }
        }
        auto& record = store.cached(
            "INSERT INTO server_meta(key, value) VALUES ('schema_version', ?1) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
        return record.bind(1, static_cast<std::int64_t>(kServerSchemaVersion)).run();
    });
}

Status create_version_1_tables(Store& store) {
    TSUNAGU_TRY(Accounts::create_schema(store));
    TSUNAGU_TRY(AuditLog::create_schema(store));
    TSUNAGU_TRY(Caseloads::create_schema(store));
    TSUNAGU_TRY(RefusedChanges::create_schema(store));
    TSUNAGU_TRY(Targets::create_schema(store));
    return WebSessions::create_schema(store);
}

Status create_server_tables(Store& store) {
    TSUNAGU_TRY(create_version_1_tables(store));
    TSUNAGU_TRY(migrate_server_tables(store));
    return ensure_name_secret(store);
}

}  // namespace tsunagu::api
