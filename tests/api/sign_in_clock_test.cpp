// Sign-in waits and locks, sessions and web sessions follow the server's wall clock, which can be
// set back (a wrong NTP server, an operator's fix, a virtual machine restored from a snapshot): a
// wait never lasts longer than the longest the policy gives, and a session measured from a time
// that now lies in the future ends instead of lasting the step longer.
#include <catch2/catch.hpp>

#include <string>

#include "api/src/accounts.h"
#include "api/src/server_schema.h"
#include "api/src/web_session.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "tests/api/fast_sign_in.h"

using namespace tsunagu;
using namespace tsunagu::api;

TEST_CASE("a lock begun before the clock was set back by hours lasts no longer than the policy's lock") {
    testing::TempDir dir("tsunagu-sign-in-clock");
    Store store = testing::open_test_store(dir.file("server.db"));
    REQUIRE(create_server_tables(store));
    SignInPolicy policy = testing::fast_hashing();
    policy.lock_after = 3;
    policy.free_attempts = 2;
    policy.lock_seconds = 900;
    Accounts accounts(store, policy);
    const std::string team = *accounts.create_team("Kita");
    REQUIRE(accounts.create_user("aiko", "Aiko", Role::peer_supporter, team, "a long enough password"));

    constexpr std::int64_t kLocked = 1'750'000'000;
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto failed = accounts.sign_in("aiko", "not the password", "phone", "", kLocked + 2 * attempt);
        REQUIRE(failed);
        CHECK(failed->outcome != SignIn::Outcome::ok);
    }
    auto locked = accounts.sign_in("aiko", "a long enough password", "phone", "", kLocked + 10);
    REQUIRE(locked);
    REQUIRE(locked->outcome == SignIn::Outcome::locked);
    CHECK(locked->retry_after_s <= policy.lock_seconds);

    // The clock goes back three hours: the lock still ends within the policy's 15 minutes of now.
    const std::int64_t set_back = kLocked - 3 * 3600;
    auto still = accounts.sign_in("aiko", "a long enough password", "phone", "", set_back);
    REQUIRE(still);
    CHECK(still->outcome == SignIn::Outcome::locked);
    CHECK(still->retry_after_s == policy.lock_seconds);
    auto after = accounts.sign_in("aiko", "a long enough password", "phone", "", set_back + policy.lock_seconds);
    REQUIRE(after);
    CHECK(after->outcome == SignIn::Outcome::ok);
}

TEST_CASE("a device session made before the clock was set back ends and one within a minute of now goes on") {
    testing::TempDir dir("tsunagu-session-clock");
    Store store = testing::open_test_store(dir.file("server.db"));
    REQUIRE(create_server_tables(store));
    Accounts accounts(store, testing::fast_hashing());
    const std::string team = *accounts.create_team("Kita");
    REQUIRE(accounts.create_user("aiko", "Aiko", Role::peer_supporter, team, "a long enough password"));
    constexpr std::int64_t kSignedIn = 1'750'000'000;
    const auto signed_in = [&](const char* device) {
        auto in = accounts.sign_in("aiko", "a long enough password", device, "", kSignedIn);
        REQUIRE(in);
        REQUIRE(in->outcome == SignIn::Outcome::ok);
        return in->token;
    };
    const std::string token = signed_in("phone");
    const auto outcome_at = [&](std::int64_t now) {
        auto checked = accounts.authenticate(token, now, nullptr);
        REQUIRE(checked);
        return checked->outcome;
    };
    CHECK(outcome_at(kSignedIn + 3600) == Authentication::Outcome::ok);
    // NTP's small steps back are not a reason to sign in again.
    CHECK(outcome_at(kSignedIn - 30) == Authentication::Outcome::ok);
    // Set back by three hours, the session would last three hours longer than any other.
    CHECK(outcome_at(kSignedIn - 3 * 3600) == Authentication::Outcome::expired);
}

TEST_CASE("a web session used before the clock was set back ends and the sweep finds it") {
    testing::TempDir dir("tsunagu-web-session-clock");
    Store store = testing::open_test_store(dir.file("server.db"));
    REQUIRE(create_server_tables(store));
    const WebSessionPolicy policy;  // 15 minutes idle, 12 hours in all
    constexpr std::int64_t kOpened = 1'750'000'000;
    REQUIRE(WebSessions::open(store, "s1", kOpened));
    REQUIRE(WebSessions::touch(store, "s1", kOpened + 600));
    const auto state_at = [&](std::int64_t now) {
        auto state = WebSessions::check(store, "s1", now, policy);
        REQUIRE(state);
        return *state;
    };
    const auto swept_at = [&](std::int64_t now) {
        auto ran_out = WebSessions::ran_out(store, now, policy);
        REQUIRE(ran_out);
        return *ran_out == std::vector<std::string>{"s1"};
    };
    CHECK(state_at(kOpened + 900) == WebSessions::State::active);
    CHECK_FALSE(swept_at(kOpened + 900));
    CHECK(state_at(kOpened + 600 - 30) == WebSessions::State::active);
    CHECK_FALSE(swept_at(kOpened + 600 - 30));
    // Back by an hour: last used "50 minutes from now", the page would stay open 65 minutes idle.
    CHECK(state_at(kOpened - 3600) == WebSessions::State::expired);
    CHECK(swept_at(kOpened - 3600));
}
