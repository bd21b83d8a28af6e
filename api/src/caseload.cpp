// Caseload tables and scope computation.
#include "api/src/caseload.h"

#include <algorithm>
#include <set>

namespace tsunagu::api {
namespace {

Result<std::vector<std::string>> column(Store& store, const char* sql, const std::string& arg) {
    auto& q = store.cached(sql);
    q.bind(1, arg);
    std::vector<std::string> out;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        out.emplace_back(q.column_text(0));
    }));
    return out;
}

}  // namespace

// client_area_since: the areas a client was in, from which day on (api/src/area_history.h).
Status Caseloads::create_schema(Store& store) {
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS client_area(
  client_id TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES team(id));
CREATE INDEX IF NOT EXISTS client_area_by_team ON client_area(team_id);
CREATE TABLE IF NOT EXISTS client_area_since(
  client_id TEXT NOT NULL,
  since TEXT NOT NULL,
  team_id TEXT NOT NULL,
  PRIMARY KEY(client_id, since));
CREATE TABLE IF NOT EXISTS caseload(
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES account(id),
  PRIMARY KEY(client_id, user_id));
CREATE INDEX IF NOT EXISTS caseload_by_user ON caseload(user_id);
)sql");
}

Result<std::vector<std::string>> Caseloads::supervisors_of(Store& store, const std::string& team_id) {
    return column(store, "SELECT id FROM account WHERE role = 'supervisor' AND team_id = ?1", team_id);
}

Result<Caseload> Caseloads::get(Store& store, const std::string& client_id) {
    Caseload c;
    c.client_id = client_id;
    auto team = column(store, "SELECT team_id FROM client_area WHERE client_id = ?1", client_id);
    if (!team) return team.status();
    if (!team->empty()) c.team_id = team->front();
    auto workers = column(store, "SELECT user_id FROM caseload WHERE client_id = ?1 ORDER BY user_id", client_id);
    if (!workers) return workers.status();
    c.worker_ids = std::move(*workers);
    return c;
}

Status Caseloads::assign(Store& store, sync::Upstream& upstream, const Caseload& caseload, std::int64_t now) {
    return assign(store, upstream, std::span<const Caseload>(&caseload, 1), now);
}

Status Caseloads::assign(Store& store, sync::Upstream& upstream, std::span<const Caseload> caseloads,
                         std::int64_t now) {
    std::set<std::string> affected;
    TSUNAGU_TRY(with_transaction(store, [&]() -> Status {
        for (const Caseload& caseload : caseloads) TSUNAGU_TRY(file(store, upstream, caseload, now, affected));
        return Status::ok();
    }));
    return refresh(store, upstream, std::vector<std::string>(affected.begin(), affected.end()));
}

Status Caseloads::file(Store& store, sync::Upstream& upstream, const Caseload& caseload, std::int64_t now,
                       std::set<std::string>& affected) {
    // A client filed under a team that does not exist would be no supervisor's: unreviewed, and
    // counted in no area of the report.
    auto missing = team_missing(store, caseload.team_id);
    TSUNAGU_TRY(missing);
    if (*missing) return no_such_team(caseload.team_id);
    auto before = get(store, caseload.client_id);
    if (!before) return before.status();
    affected.insert(before->worker_ids.begin(), before->worker_ids.end());
    affected.insert(caseload.worker_ids.begin(), caseload.worker_ids.end());
    for (const std::string& team : {before->team_id, caseload.team_id}) {
        if (team.empty()) continue;
        auto sups = supervisors_of(store, team);
        if (!sups) return sups.status();
        affected.insert(sups->begin(), sups->end());
    }
    if (before->team_id != caseload.team_id) {
        TSUNAGU_TRY(date_area_change(store, AreaOf::client, caseload.client_id, before->team_id, caseload.team_id,
                                     sync::local_date(upstream.schema(), now * 1000)));
    }
    auto& clear = store.cached("DELETE FROM caseload WHERE client_id = ?1");
    clear.bind(1, caseload.client_id);
    TSUNAGU_TRY(clear.run());
    if (caseload.team_id.empty()) {
        auto& drop = store.cached("DELETE FROM client_area WHERE client_id = ?1");
        drop.bind(1, caseload.client_id);
        TSUNAGU_TRY(drop.run());
    } else {
        auto& area = store.cached(
            "INSERT INTO client_area(client_id, team_id) VALUES(?1, ?2) "
            "ON CONFLICT(client_id) DO UPDATE SET team_id = excluded.team_id");
        area.bind(1, caseload.client_id).bind(2, caseload.team_id);
        Status s = area.run();
        if (s.code() == ErrorCode::constraint) {
            return Status(ErrorCode::validation, "team_id: no team " + caseload.team_id);
        }
        TSUNAGU_TRY(s);
    }
    for (const auto& worker : caseload.worker_ids) {
        auto& add = store.cached("INSERT OR IGNORE INTO caseload(client_id, user_id) VALUES(?1, ?2)");
        add.bind(1, caseload.client_id).bind(2, worker);
        Status s = add.run();
        if (s.code() == ErrorCode::constraint) {
            return Status(ErrorCode::validation, "worker_ids: no user " + worker);
        }
        TSUNAGU_TRY(s);
    }
    return Status::ok();
}

Result<std::vector<std::string>> Caseloads::scope_keys(Store& store, const User& user) {
    std::vector<std::string> keys;
    if (user.role == Role::admin || user.disabled) return keys;
    keys.push_back("user:" + user.id);
    if (is_field_worker(user.role)) {
        auto clients = column(store, "SELECT client_id FROM caseload WHERE user_id = ?1", user.id);
        if (!clients) return clients.status();
        for (auto& c : *clients) keys.push_back("client:" + c);
    } else if (user.role == Role::supervisor && !user.team_id.empty()) {
        auto clients = column(store, "SELECT client_id FROM client_area WHERE team_id = ?1", user.team_id);
        if (!clients) return clients.status();
        for (auto& c : *clients) keys.push_back("client:" + c);
        auto members = column(store, "SELECT id FROM account WHERE team_id = ?1",
                              user.team_id);
        if (!members) return members.status();
        for (auto& m : *members)
            if (m != user.id) keys.push_back("user:" + m);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return keys;
}

Result<std::set<std::string>> Caseloads::scope_set(Store& store, const User& user) {
    auto keys = scope_keys(store, user);
    if (!keys) return keys.status();
    return std::set<std::string>(keys->begin(), keys->end());
}

Status Caseloads::refresh(Store& store, sync::Upstream& upstream, const std::vector<std::string>& user_ids) {
    Accounts accounts(store, SignInPolicy{});
    for (const auto& id : user_ids) {
        auto user = accounts.find_user(id);
        if (!user) continue;  // an id that names nobody gives nobody a scope
        auto keys = scope_keys(store, *user);
        if (!keys) return keys.status();
        TSUNAGU_TRY(upstream.set_scope(id, std::move(*keys)));
    }
    return Status::ok();
}

}  // namespace tsunagu::api
