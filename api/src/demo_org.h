// The demo organisation: a realistic, pseudonymous city to try Tsunagu with. Six areas, each with
// a supervisor, peer supporters, a home visitor and centre staff; 300 clients; and fiscal year
// 2020 of records whose indicators reproduce the city's FY2020 table (../shared/DOMAIN.md)
// exactly, target and actual, with the records that must not count beside them (drafts, records
// awaiting review, a returned one, a deleted one, other fiscal years), and a few conflicting
// offline edits from two workers' devices waiting for a supervisor.
#pragma once

#include <string>
#include <vector>

#include "api/src/accounts.h"
#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::api {

struct DemoAccount {
    std::string username;
    std::string role;
    std::string area;
    std::string password;
};

struct DemoOrganisation {
    std::vector<DemoAccount> accounts;
    std::size_t clients = 0;
    std::size_t records = 0;
    std::size_t conflicts = 0;
    std::size_t refused = 0;  // refused changes kept for review
};

// Creates the demo in a store that holds no teams yet (refused otherwise), in one transaction.
// `scratch_dir` holds the two demo devices' replicas while they make the conflicting edits; it is
// removed afterwards. Passwords are random, returned once.
Result<DemoOrganisation> create_demo_organisation(Store& store, Accounts& accounts, const std::string& scratch_dir);

// True once the store holds a demo organisation.
Result<bool> holds_demo_organisation(Store& store);

}  // namespace tsunagu::api
