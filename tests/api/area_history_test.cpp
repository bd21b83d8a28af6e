// Which area a client, or a worker, was in on a given day: reports of past years count a client's
// records in the area the client was in then, and a worker's records about no client in the area
// the worker was in then, not the one an administrator has moved them to since.
#include <catch2/catch.hpp>

#include <string>

#include "api/src/caseload.h"
#include "api/src/server_schema.h"
#include "domain/care_schema.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

// Noon in Japan (the care schema's offset) on a day given as unix seconds of its UTC midnight.
constexpr std::int64_t noon_jst(std::int64_t utc_midnight) { return utc_midnight + 3 * 3600; }
constexpr std::int64_t k2026_06_01 = 1'780'272'000;
constexpr std::int64_t k2026_12_06 = 1'796'515'200;
constexpr std::int64_t k2026_11_01 = 1'793'491'200;

struct Organisation {
    testing::TempDir dir{"tsunagu-area-history"};
    Store store = testing::open_test_store(dir.file("server.db"));
    sync::Upstream upstream = open_upstream();
    std::string kita, naka;

    Organisation() {
        Accounts accounts(store, SignInPolicy{});
        kita = *accounts.create_team("Kita");
        naka = *accounts.create_team("Naka");
    }
    sync::Upstream open_upstream() {
        REQUIRE(create_server_tables(store));
        auto opened = sync::Upstream::open(store, domain::care_schema());
        REQUIRE(opened.is_ok());
        return std::move(*opened);
    }
    void place(const std::string& client, const std::string& team, std::int64_t now) {
        Status s = Caseloads::assign(store, upstream, Caseload{client, team, {}}, now);
        INFO(s.to_string());
        REQUIRE(s.is_ok());
    }
    // The area client `id` (or, with AreaOf::worker, user `id`) was in on `date`.
    std::string area_on(const std::string& id, const std::string& date, AreaOf subject = AreaOf::client) {
        auto history = AreaHistory::read(store, subject);
        REQUIRE(history.is_ok());
        return history->area_on(id, date);
    }
};

}  // namespace

TEST_CASE("a client's first area holds for every earlier day and a move holds from its day on") {
    Organisation org;
    org.place("c1", org.kita, noon_jst(k2026_06_01));
    CHECK(org.area_on("c1", "2020-05-01") == org.kita);  // records made before the client was placed
    org.place("c1", org.naka, noon_jst(k2026_12_06));
    CHECK(org.area_on("c1", "2020-05-01") == org.kita);
    CHECK(org.area_on("c1", "2026-12-05") == org.kita);
    CHECK(org.area_on("c1", "2026-12-06") == org.naka);
    CHECK(org.area_on("c1", "2027-04-01") == org.naka);
    // Taken out of every area: no area from that day.
    org.place("c1", "", noon_jst(k2026_12_06) + 86'400);
    CHECK(org.area_on("c1", "2026-12-06") == org.naka);
    CHECK(org.area_on("c1", "2026-12-07") == "");
    CHECK(org.area_on("c2", "2026-12-07") == "");  // never placed
}

TEST_CASE("a move is dated by the day in Japan and never before the move it follows") {
    Organisation org;
    org.place("c1", org.kita, noon_jst(k2026_06_01));
    // 23:30 UTC on December 5 is already December 6 in Japan.
    org.place("c1", org.naka, k2026_12_06 - 1800);
    CHECK(org.area_on("c1", "2026-12-05") == org.kita);
    CHECK(org.area_on("c1", "2026-12-06") == org.naka);
    // The server's clock set back a month: the move back is dated at the last move's day, not
    // before it (which would leave that move in force after this one).
    org.place("c1", org.kita, noon_jst(k2026_11_01));
    CHECK(org.area_on("c1", "2026-11-15") == org.kita);
    CHECK(org.area_on("c1", "2026-12-10") == org.kita);
}

TEST_CASE("a client placed before areas were dated keeps that area for the days before its first move") {
    Organisation org;
    // As a server before this table wrote it: an area, and no dated row.
    REQUIRE(org.store.exec("INSERT INTO client_area(client_id, team_id) VALUES('c1', '" + org.kita + "')"));
    CHECK(org.area_on("c1", "2019-04-01") == org.kita);
    CHECK(org.area_on("c1", "2026-12-06") == org.kita);
    org.place("c1", org.naka, noon_jst(k2026_12_06));
    CHECK(org.area_on("c1", "2020-10-01") == org.kita);
    CHECK(org.area_on("c1", "2026-12-06") == org.naka);
}

TEST_CASE("a worker moved to another team keeps the old one for the days before the move") {
    Organisation org;
    Accounts accounts(org.store, SignInPolicy{});
    auto staff = accounts.create_user("kita.staff", "Kita staff", Role::staff, org.kita, "a long enough password");
    REQUIRE(staff.is_ok());
    auto supervisor = accounts.create_user("centre.lead", "Centre lead", Role::supervisor, "", "a long enough password");
    REQUIRE(supervisor.is_ok());
    CHECK(org.area_on(staff->id, "2020-05-01", AreaOf::worker) == org.kita);  // never moved: its team on every day
    CHECK(org.area_on(supervisor->id, "2020-05-01", AreaOf::worker) == "");    // in no team

    REQUIRE(accounts.set_team(staff->id, org.naka, "2026-12-06"));
    CHECK(org.area_on(staff->id, "2020-05-01", AreaOf::worker) == org.kita);
    CHECK(org.area_on(staff->id, "2026-12-05", AreaOf::worker) == org.kita);
    CHECK(org.area_on(staff->id, "2026-12-06", AreaOf::worker) == org.naka);
    // Set again to the same team: nothing to date.
    REQUIRE(accounts.set_team(staff->id, org.naka, "2026-12-08"));
    CHECK(org.area_on(staff->id, "2026-12-07", AreaOf::worker) == org.naka);
    // A clock set back: dated at the last move's day, not before it.
    REQUIRE(accounts.set_team(staff->id, org.kita, "2026-11-01"));
    CHECK(org.area_on(staff->id, "2026-11-15", AreaOf::worker) == org.kita);
    CHECK(org.area_on(staff->id, "2026-12-06", AreaOf::worker) == org.kita);

    // A supervisor placed in a team for the first time was in it on every earlier day.
    REQUIRE(accounts.set_team(supervisor->id, org.naka, "2026-12-06"));
    CHECK(org.area_on(supervisor->id, "2020-05-01", AreaOf::worker) == org.naka);
    // A field worker cannot be taken out of every team, and nothing is dated then.
    CHECK(accounts.set_team(staff->id, "", "2026-12-20").code() == ErrorCode::validation);
    CHECK(org.area_on(staff->id, "2026-12-20", AreaOf::worker) == org.kita);
}
