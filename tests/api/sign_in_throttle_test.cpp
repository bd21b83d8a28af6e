// A name no account has is slowed and locked as an account is (api/src/sign_in_throttle.h): who
// tries names cannot tell the real ones by the answers, on a real encrypted store.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <string>
#include <vector>

#include "api/src/accounts.h"
#include "api/src/server_schema.h"
#include "api/src/sign_in_throttle.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "tests/api/fast_sign_in.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

constexpr std::int64_t kStart = 1'750'000'000;
const std::string kPassword = "a long enough password";

struct Answer {
    SignIn::Outcome outcome;
    std::int64_t retry_after_s;
    bool checked_ahead;  // whether Argon2id ran ahead of the group
    bool operator==(const Answer&) const = default;
};

struct Server {
    testing::TempDir dir{"tsunagu-sign-in-throttle"};
    Store store = testing::open_test_store(dir.file("server.db"));
    SignInPolicy policy = testing::fast_hashing();
    Accounts accounts{store, policy};
    Server() {
        REQUIRE(create_server_tables(store));
        const std::string team = *accounts.create_team("Kita");
        REQUIRE(accounts.create_user("aiko", "Aiko", Role::peer_supporter, team, kPassword));
    }
    // One attempt as the route makes it: Argon2id ahead, then the check in the group.
    Answer attempt(const std::string& name, const std::string& password, std::int64_t now) {
        auto ahead = accounts.sign_in_ahead(name, password, now);
        REQUIRE(ahead);
        auto answer = accounts.sign_in(name, password, "phone", "", now, &*ahead);
        REQUIRE(answer);
        return {answer->outcome, answer->retry_after_s, ahead->checked};
    }
    // The same attempt under the real name and under one no account has: the answers must agree.
    Answer both(const std::string& password, std::int64_t now) {
        const Answer real = attempt("aiko", password, now);
        const Answer unknown = attempt("aiko-san", password, now);
        INFO("attempt at +" << now - kStart << " s");
        CHECK(unknown == real);
        return real;
    }
    std::int64_t rows() {
        auto q = store.prepare("SELECT count(*) FROM sign_in_name_attempts");
        REQUIRE(q);
        REQUIRE(*q->step());
        return q->column_int(0);
    }
};

// Fails under both names until the lock, each attempt once its wait is over and once more
// during it; answers the time the lock ends.
std::int64_t fail_until_locked(Server& s, std::int64_t t) {
    for (int failures = 0; failures < s.policy.lock_after; ++failures) {
        const Answer failed = s.both("not the password", t);
        REQUIRE(failed.outcome != SignIn::Outcome::ok);
        if (failed.retry_after_s > 0) {
            const Answer early = s.both(kPassword, t + failed.retry_after_s - 1);  // even the right one waits
            CHECK(early.outcome == (failures + 1 >= s.policy.lock_after ? SignIn::Outcome::locked
                                                                         : SignIn::Outcome::wait));
            CHECK_FALSE(early.checked_ahead);
        }
        t += std::max<std::int64_t>(failed.retry_after_s, 1);
    }
    return t;
}

}  // namespace

TEST_CASE("a name no account has gets the answers a real one gets, attempt for attempt, waits and lock included") {
    Server s;
    const std::int64_t lock_ends = fail_until_locked(s, kStart);
    // The right password while locked is refused unchecked under both names; after the lock,
    // a wrong one locks again at once, as the count goes on.
    CHECK(s.both(kPassword, lock_ends - 1).outcome == SignIn::Outcome::locked);
    const Answer again = s.both("not the password", lock_ends);
    CHECK(again.outcome == SignIn::Outcome::locked);
    CHECK(again.retry_after_s == s.policy.lock_seconds);
    CHECK(again.checked_ahead);
    // Once the lock is over, the right password opens the real account (and only it).
    CHECK(s.attempt("aiko", kPassword, lock_ends + s.policy.lock_seconds).outcome == SignIn::Outcome::ok);
}

TEST_CASE("a lock under a name no account has, set far ahead by a clock since set back, is cut as an account's is") {
    Server s;
    const std::int64_t ahead = kStart + 10'000;
    fail_until_locked(s, ahead);
    const Answer stepped_back = s.both(kPassword, kStart);  // the clock went back by hours
    CHECK(stepped_back.outcome == SignIn::Outcome::locked);
    CHECK(stepped_back.retry_after_s == s.policy.lock_seconds);
    // The cut was kept: once it is over, attempts are checked again, under both names.
    const Answer after_cut = s.both("not the password", kStart + s.policy.lock_seconds);
    CHECK(after_cut.checked_ahead);
}

TEST_CASE("one failed sign-in is forgiven per lock's length after a wait ends, for an account and an unknown name alike") {
    Server s;
    for (int i = 0; i < s.policy.free_attempts - 1; ++i) s.both("not the password", kStart + i);
    const std::int64_t last = kStart + s.policy.free_attempts - 2;
    SECTION("within a lock's length, the next failure is counted on top") {
        CHECK(s.both("not the password", last + s.policy.lock_seconds - 1).retry_after_s == 1);
    }
    SECTION("after one, a failure was forgiven: the next one is still free") {
        CHECK(s.both("not the password", last + s.policy.lock_seconds).retry_after_s == 0);
        CHECK(s.both("not the password", last + s.policy.lock_seconds).retry_after_s == 1);
    }
    SECTION("a guesser who pauses gains nothing: once locked, one check per lock, each locking again") {
        std::int64_t lock_ends = fail_until_locked(s, last + 2 * s.policy.lock_seconds);
        for (std::int64_t pause : {std::int64_t{0}, s.policy.lock_seconds, 2 * s.policy.lock_seconds - 1}) {
            const Answer after_pause = s.both("not the password", lock_ends + pause);
            CHECK(after_pause.checked_ahead);
            CHECK(after_pause.outcome == SignIn::Outcome::locked);
            CHECK(after_pause.retry_after_s == s.policy.lock_seconds);
            lock_ends += pause + s.policy.lock_seconds;
        }
    }
}

TEST_CASE("a sign-in that succeeds does not reset the count, which would tell that the name is real") {
    Server s;
    for (int i = 0; i < s.policy.free_attempts - 1; ++i) s.both("not the password", kStart + i);
    CHECK(s.attempt("aiko", kPassword, kStart + 10).outcome == SignIn::Outcome::ok);  // its owner, meanwhile
    const Answer third = s.both("not the password", kStart + 20);
    CHECK(third.retry_after_s == 1);  // as for the name no one can sign in with
}

TEST_CASE("failed sign-ins under unknown names are kept under a keyed hash of the name, and their rows go when forgotten") {
    Server s;
    s.attempt("hanako-typo", "not the password", kStart);
    s.attempt("a password typed as the name", "not the password", kStart);
    CHECK(s.rows() == 2);
    auto q = s.store.prepare("SELECT name_key FROM sign_in_name_attempts");
    REQUIRE(q);
    std::vector<std::vector<std::uint8_t>> keys;
    while (*q->step()) {
        const auto key = q->column_blob(0);
        keys.emplace_back(key.begin(), key.end());
    }
    REQUIRE(keys.size() == 2);
    for (const std::string name : {"hanako-typo", "a password typed as the name"}) {
        // Not the name, and not its plain hash: trying guesses needs the store's secret.
        std::vector<std::uint8_t> plain(crypto_generichash_BYTES);
        crypto_generichash(plain.data(), plain.size(), reinterpret_cast<const unsigned char*>(name.data()),
                           name.size(), nullptr, 0);
        for (const auto& key : keys) {
            CHECK(key != plain);
            CHECK(std::string(key.begin(), key.end()).find(name.substr(0, 6)) == std::string::npos);
        }
    }
    // The next failure once their one failure is forgiven takes their rows out.
    s.attempt("someone-else", "not the password", kStart + s.policy.lock_seconds);
    CHECK(s.rows() == 1);
    CHECK(*name_attempts(s.store, "hanako-typo") == Attempts{});
    CHECK(name_attempts(s.store, "someone-else")->failures == 1);
}
