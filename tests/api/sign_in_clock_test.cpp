// Sign-in waits and locks follow the server's wall clock, which can be set back (a wrong NTP
// server, an operator's fix): a wait never lasts longer than the longest the policy gives.
#include <catch2/catch.hpp>

#include <string>

#include "api/src/accounts.h"
#include "api/src/server_schema.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;

TEST_CASE("a lock begun before the clock was set back by hours lasts no longer than the policy's lock") {
    testing::TempDir dir("tsunagu-sign-in-clock");
    Store store = testing::open_test_store(dir.file("server.db"));
    REQUIRE(create_server_tables(store));
    SignInPolicy policy;
    policy.pwhash_ops = 1;
    policy.pwhash_mem = 8192;
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
