// The session table: name/value rows in the encrypted replica.
#include "clients/src/session.h"

#include <map>

#include "sync/change.h"

namespace tsunagu::client {
namespace {

Status put(Store& store, const char* name, std::string_view value) {
    auto& q = store.cached("INSERT INTO client_session(name, value) VALUES(?1, ?2) "
                           "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
    q.bind(1, name).bind(2, value);
    return q.run();
}

}  // namespace

Status prepare_session_table(Store& store) {
    TSUNAGU_TRY(store.exec("CREATE TABLE IF NOT EXISTS client_session(name TEXT PRIMARY KEY, value TEXT NOT NULL)"));
    return store.exec("CREATE TABLE IF NOT EXISTS client_reported(kind TEXT NOT NULL, key TEXT NOT NULL, "
                      "PRIMARY KEY(kind, key)) WITHOUT ROWID");
}

Result<Session> load_session(Store& store) {
    auto& q = store.cached("SELECT name, value FROM client_session");
    std::map<std::string, std::string> values;
    Session s;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        // The token goes straight from SQLite's row into guarded memory, through no std::string.
        if (q.column_text(0) == "token") s.token = Secret::copy_of(q.column_text(1));
        else values[std::string(q.column_text(0))] = std::string(q.column_text(1));
    }));
    s.server_url = values["server_url"];
    s.user_id = values["user_id"];
    s.username = values["username"];
    s.role = values["role"];
    s.team_id = values["team_id"];
    s.device_id = values["device_id"];
    if (!values["last_sync_ms"].empty()) s.last_sync_ms = std::stoll(values["last_sync_ms"]);
    s.wal_holds_evicted = values["wal_holds_evicted"] == "1";
    return s;
}

Status save_session(Store& store, const Session& s) {
    return with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(put(store, "server_url", s.server_url));
        TSUNAGU_TRY(put(store, "token", s.token.view()));
        TSUNAGU_TRY(put(store, "user_id", s.user_id));
        TSUNAGU_TRY(put(store, "username", s.username));
        TSUNAGU_TRY(put(store, "role", s.role));
        TSUNAGU_TRY(put(store, "team_id", s.team_id));
        TSUNAGU_TRY(put(store, "device_id", s.device_id));
        TSUNAGU_TRY(put(store, "last_sync_ms", std::to_string(s.last_sync_ms)));
        return Status::ok();
    });
}

Status save_last_sync(Store& store, std::int64_t when_ms) {
    return put(store, "last_sync_ms", std::to_string(when_ms));
}

Result<std::string> proposed_device_id(Store& store) {
    auto& q = store.cached("SELECT value FROM client_session WHERE name = 'proposed_device_id'");
    std::string id;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) { id = std::string(q.column_text(0)); }));
    if (sync::is_id(id)) return id;
    id = sync::new_id();
    TSUNAGU_TRY(put(store, "proposed_device_id", id));
    return id;
}

Status save_wal_holds_evicted(Store& store, bool holds) {
    return put(store, "wal_holds_evicted", holds ? "1" : "0");
}

std::string conflict_key(const std::string& record, const std::string& field, const std::string& losing_change) {
    return record + '\n' + field + '\n' + losing_change;  // ids are hex; field names hold no newline
}

Result<std::optional<Reported>> load_reported(Store& store) {
    auto& kept = store.cached("SELECT value FROM client_session WHERE name = 'reported_kept'");
    bool is_kept = false;
    TSUNAGU_TRY(each_row(kept, [&](const Statement&) { is_kept = kept.column_text(0) == "1"; }));
    if (!is_kept) return std::optional<Reported>();
    Reported reported;
    auto& q = store.cached("SELECT kind, key FROM client_reported");
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        (q.column_text(0) == "refused" ? reported.refused : reported.conflicts).insert(std::string(q.column_text(1)));
    }));
    return std::optional<Reported>(std::move(reported));
}

Status save_reported(Store& store, const Reported& reported) {
    return with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(store.exec("DELETE FROM client_reported"));
        auto& insert = store.cached("INSERT INTO client_reported(kind, key) VALUES(?1, ?2)");
        for (const auto& [kind, keys] : {std::pair{"refused", &reported.refused}, std::pair{"conflict", &reported.conflicts}}) {
            for (const std::string& key : *keys) {
                insert.bind(1, kind).bind(2, key);
                TSUNAGU_TRY(insert.run());
            }
        }
        return put(store, "reported_kept", "1");
    });
}

}  // namespace tsunagu::client
