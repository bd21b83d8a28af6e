// Caseloads and the scopes they give: which clients each worker holds, which area (team) each
// client belongs to, and from those, the scope keys the sync engine filters every pull and push by.
//   field worker: "user:<self>" and "client:<id>" of each client assigned to them
//   supervisor:   "user:<self>", "client:<id>" of every client of their team, and
//                 "user:<member>" of every member of their team
//   admin:        nothing (administrators read no care records)
#pragma once

#include <map>
#include <set>
#include <span>
#include <utility>
#include <string>
#include <vector>

#include "api/src/accounts.h"
#include "api/src/area_history.h"
#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::api {

struct Caseload {
    std::string client_id;
    std::string team_id;                 // the client's area
    std::vector<std::string> worker_ids;  // assigned workers
};

class Caseloads {
public:
    static Status create_schema(Store& store);

    // Replaces a client's area and assigned workers, then refreshes the scopes of everyone
    // affected (old and new workers, supervisors of the old and new area). A change of area is
    // dated: the client is in the new area from today (the schema's local date at `now`, unix
    // seconds) on, and stays in the old one for the days before (api/src/area_history.h).
    static Status assign(Store& store, sync::Upstream& upstream, const Caseload& caseload, std::int64_t now);
    // assign() for several clients, in order, refreshing each affected user's scope once at the
    // end (a push creating many clients re-reads a supervisor's whole scope once, not per client).
    static Status assign(Store& store, sync::Upstream& upstream, std::span<const Caseload> caseloads,
                         std::int64_t now);
    static Result<Caseload> get(Store& store, const std::string& client_id);
    // Scope keys of one user, computed from the tables above.
    static Result<std::vector<std::string>> scope_keys(Store& store, const User& user);
    // The same keys as a set, for checking records against them.
    static Result<std::set<std::string>> scope_set(Store& store, const User& user);
    // Recomputes and hands to the engine the scopes of these users.
    static Status refresh(Store& store, sync::Upstream& upstream, const std::vector<std::string>& user_ids);
    // The supervisors of a team.
    static Result<std::vector<std::string>> supervisors_of(Store& store, const std::string& team_id);

private:
    // One client's rows, inside assign()'s transaction; adds those whose scope it changes to `affected`.
    static Status file(Store& store, sync::Upstream& upstream, const Caseload& caseload, std::int64_t now,
                       std::set<std::string>& affected);
};

}  // namespace tsunagu::api
