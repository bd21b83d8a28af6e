// The cache of authenticated sessions: a session checked once is not read again while nothing it
// depends on changes, and any change to an account, a device or a session, from any connection,
// ends every cached answer at once.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "api/src/accounts.h"
#include "api/src/server_schema.h"
#include "api/src/session_cache.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "tests/api/fast_sign_in.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

constexpr std::int64_t kNow = 1'750'000'000;

// One store with one signed-in worker, and a second connection to it for changes made elsewhere
// (by another request, or another process).
struct Signed {
    testing::TempDir dir{"tsunagu-session-cache"};
    std::string path = dir.file("server.db");
    Store store = open();
    Store elsewhere = open();
    Accounts accounts{store, testing::fast_hashing()};
    Accounts other{elsewhere, testing::fast_hashing()};
    SessionCache cache;
    User worker;
    SignIn signed_in;

    Signed() {
        REQUIRE(create_server_tables(store));
        const std::string team = *accounts.create_team("Kita");
        worker = *accounts.create_user("aiko", "Aiko", Role::peer_supporter, team, "a long enough password");
        signed_in = *accounts.sign_in("aiko", "a long enough password", "phone", "", kNow);
        REQUIRE(signed_in.outcome == SignIn::Outcome::ok);
    }
    Store open() { return testing::open_test_store(path); }
    std::int64_t generation() {
        Statement& q = store.cached("SELECT n FROM auth_generation WHERE id = 1");
        auto row = q.step();
        REQUIRE(row);
        REQUIRE(*row);
        const std::int64_t n = q.column_int(0);
        q.reset();
        return n;
    }
    Authentication check(std::int64_t at = kNow + 1) {
        auto auth = accounts.authenticate(signed_in.token, at, &cache);
        REQUIRE(auth);
        return *auth;
    }
    const std::string& session_id() const { return signed_in.principal.session_id; }
};

}  // namespace

TEST_CASE("a session checked once is kept, under the accounts generation it was read in") {
    Signed s;
    CHECK_FALSE(s.cache.find(s.session_id(), s.generation()).has_value());
    const Authentication first = s.check();
    REQUIRE(first.outcome == Authentication::Outcome::ok);
    auto kept = s.cache.find(s.session_id(), s.generation());
    REQUIRE(kept.has_value());
    CHECK(kept->user.id == s.worker.id);
    CHECK(kept->device.id == first.principal.device.id);
    const Authentication again = s.check();
    CHECK(again.outcome == Authentication::Outcome::ok);
    CHECK(again.principal.user.id == s.worker.id);
    // A wrong secret for a cached session is still refused: the cache holds the hash, not a verdict.
    const std::string forged = s.signed_in.token.substr(0, s.signed_in.token.find('.') + 1) + "0000";
    auto refused = s.accounts.authenticate(forged, kNow + 1, &s.cache);
    REQUIRE(refused);
    CHECK(refused->outcome == Authentication::Outcome::invalid);
}

TEST_CASE("a cached session is refused at once when another connection revokes, disables or signs out") {
    SECTION("its device is revoked: wipe") {
        Signed s;
        REQUIRE(s.check().outcome == Authentication::Outcome::ok);
        REQUIRE(s.other.revoke_device(s.signed_in.principal.device.id, kNow + 2));
        CHECK(s.check(kNow + 3).outcome == Authentication::Outcome::wipe);
    }
    SECTION("its account is disabled") {
        Signed s;
        REQUIRE(s.check().outcome == Authentication::Outcome::ok);
        REQUIRE(s.other.set_disabled(s.worker.id, true));
        CHECK(s.check(kNow + 3).outcome == Authentication::Outcome::invalid);
    }
    SECTION("it signs out") {
        Signed s;
        REQUIRE(s.check().outcome == Authentication::Outcome::ok);
        REQUIRE(s.other.sign_out(s.session_id()));
        CHECK(s.check(kNow + 3).outcome == Authentication::Outcome::invalid);
    }
    SECTION("its user moves to another team: the principal says so") {
        Signed s;
        REQUIRE(s.check().principal.user.team_id == s.worker.team_id);
        auto team = s.other.create_team("北区");
        REQUIRE(team);
        REQUIRE(s.other.set_team(s.worker.id, *team, "2026-12-06"));
        CHECK(s.check(kNow + 3).principal.user.team_id == *team);
    }
}

TEST_CASE("what a transaction that rolls back read is never kept, though its generation is given out again") {
    Signed s;
    REQUIRE(s.check().outcome == Authentication::Outcome::ok);
    REQUIRE(s.store.begin_immediate());
    REQUIRE(s.accounts.revoke_device(s.signed_in.principal.device.id, kNow + 2));
    CHECK(s.check(kNow + 3).outcome == Authentication::Outcome::wipe);  // seen inside, uncommitted
    const std::int64_t uncommitted = s.generation();
    REQUIRE(s.store.rollback());
    // Other changes, committed, take the generation number the rolled-back revocation had.
    auto team = s.other.create_team("中区");
    REQUIRE(team);
    while (s.generation() < uncommitted) REQUIRE(s.other.set_team(s.worker.id, *team, "2026-12-06"));
    REQUIRE(s.generation() == uncommitted);
    const Authentication after = s.check(kNow + 4);
    CHECK(after.outcome == Authentication::Outcome::ok);
    CHECK(after.principal.user.team_id == *team);
}

TEST_CASE("without its generation row the cache is not used, so a revocation still acts at once") {
    Signed s;
    REQUIRE(s.elsewhere.exec("DELETE FROM auth_generation"));
    REQUIRE(s.check().outcome == Authentication::Outcome::ok);
    REQUIRE(s.other.revoke_device(s.signed_in.principal.device.id, kNow + 2));  // no generation to bump
    CHECK(s.check(kNow + 3).outcome == Authentication::Outcome::wipe);
}

TEST_CASE("writing any column a session check reads bumps the generation, but not a device's last-seen time") {
    Signed s;
    // A device's last-seen time and clock reading change the cached entry in place
    // (SessionCache::seen, SessionCache::clock_read), and decide nothing a check answers.
    const std::set<std::string> left_out = {"device.last_seen_at", "device.clock_ahead_ms", "device.clock_read_at",
                                            "account.failed_sign_ins", "account.next_attempt_at"};
    for (const std::string table : {"account", "device", "session"}) {
        std::vector<std::string> columns;
        Statement& info = s.store.cached("SELECT name FROM pragma_table_info(?1)");
        info.bind(1, table);
        while (*info.step()) columns.emplace_back(info.column_text(0));
        info.reset();
        REQUIRE_FALSE(columns.empty());
        for (const auto& column : columns) {
            const std::int64_t before = s.generation();
            REQUIRE(s.elsewhere.exec("UPDATE " + table + " SET " + column + " = " + column));
            INFO(table << "." << column);
            if (left_out.contains(table + "." + column)) {
                CHECK(s.generation() == before);
            } else {
                CHECK(s.generation() > before);
            }
        }
    }
    const std::int64_t before = s.generation();
    REQUIRE(s.elsewhere.exec("DELETE FROM session"));
    CHECK(s.generation() > before);
}

TEST_CASE("recording that a device was seen keeps its cached session, and the next check is not due") {
    Signed s;
    const std::int64_t later = kNow + 120;
    const Authentication due = s.check(later);
    REQUIRE(due.outcome == Authentication::Outcome::ok);
    REQUIRE(due.seen_due);
    const std::int64_t before = s.generation();
    REQUIRE(s.accounts.mark_seen(due.principal.device.id, later));
    s.cache.seen(s.session_id(), later);
    CHECK(s.generation() == before);
    const Authentication next = s.check(later + 10);
    CHECK(next.outcome == Authentication::Outcome::ok);
    CHECK_FALSE(next.seen_due);
    CHECK(s.cache.find(s.session_id(), s.generation()).has_value());
}
