// The dated areas of clients and workers (api/src/area_history.h).
#include "api/src/area_history.h"

#include <algorithm>

namespace tsunagu::api {
namespace {

// The same statements over each subject's tables.
struct Tables {
    const char* last_change;  // ?1 id -> max(since)
    const char* record;       // ?1 id, ?2 since, ?3 team
    const char* history;      // id, since, team, by id and since
    const char* current;      // id, team of every subject in an area now
};

const Tables& tables_of(AreaOf subject) {
    static const Tables kClients{
        "SELECT max(since) FROM client_area_since WHERE client_id = ?1",
        "INSERT INTO client_area_since(client_id, since, team_id) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(client_id, since) DO UPDATE SET team_id = excluded.team_id",
        "SELECT client_id, since, team_id FROM client_area_since ORDER BY client_id, since",
        "SELECT client_id, team_id FROM client_area",
    };
    static const Tables kWorkers{
        "SELECT max(since) FROM account_team_since WHERE user_id = ?1",
        "INSERT INTO account_team_since(user_id, since, team_id) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(user_id, since) DO UPDATE SET team_id = excluded.team_id",
        "SELECT user_id, since, team_id FROM account_team_since ORDER BY user_id, since",
        "SELECT id, team_id FROM account WHERE team_id IS NOT NULL AND team_id <> ''",
    };
    return subject == AreaOf::client ? kClients : kWorkers;
}

}  // namespace

Status date_area_change(Store& store, AreaOf subject, const std::string& id, const std::string& before,
                        const std::string& after, std::string today) {
    const Tables& tables = tables_of(subject);
    auto& last = store.cached(tables.last_change);
    last.bind(1, id);
    auto row = last.step();
    if (!row) return row.status();
    const bool first = last.column_is_null(0);
    if (!first) today = std::max(today, std::string(last.column_text(0)));
    last.reset();
    auto& since = store.cached(tables.record);
    // The first row says since always: the area before (records made before a client was placed
    // count in its first area).
    if (first && !before.empty()) TSUNAGU_TRY(since.bind(1, id).bind(2, "").bind(3, before).run());
    return since.bind(1, id).bind(2, first && before.empty() ? "" : today).bind(3, after).run();
}

Result<AreaHistory> AreaHistory::read(Store& store, AreaOf subject) {
    const Tables& tables = tables_of(subject);
    AreaHistory history;
    auto& q = store.cached(tables.history);
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        history.spans_[std::string(q.column_text(0))].emplace_back(q.column_text(1), q.column_text(2));
    }));
    // Subjects never moved since their dated table came: in their one area on every day.
    auto& current = store.cached(tables.current);
    TSUNAGU_TRY(each_row(current, [&](const Statement&) {
        history.spans_.try_emplace(std::string(current.column_text(0)),
                                   std::vector<std::pair<std::string, std::string>>{{"", std::string(current.column_text(1))}});
    }));
    return history;
}

std::string AreaHistory::area_on(const std::string& id, const std::string& date) const {
    auto it = spans_.find(id);
    if (it == spans_.end()) return {};
    std::string area;
    for (const auto& [since, team] : it->second) {
        if (since > date) break;
        area = team;
    }
    return area;
}

}  // namespace tsunagu::api
