// Argon2id runs ahead of the write group (Accounts::sign_in_ahead, PasswordWork): the group's one
// writer never waits on a password check, so sign-ins nobody has authenticated cannot queue in
// front of every push. The group's check re-reads the account and trusts the work done ahead only
// while the account still holds the hash it was done against and need not wait: the outcome is
// always the one a check inside the group would have given.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/src/accounts.h"
#include "api/src/server_schema.h"
#include "support/in_process_server.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "tests/api/fast_sign_in.h"

using namespace tsunagu;
using namespace tsunagu::api;
using nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'796'515'200;  // 2026-12-06, unix seconds
constexpr const char* kPassword = "aiko's own long password";

struct AccountStore {
    testing::TempDir dir{"tsunagu-password-ahead"};
    Store store = testing::open_test_store(dir.file("server.db"));
    SignInPolicy policy = testing::fast_hashing();
    std::string aiko;
    AccountStore() {
        REQUIRE(create_server_tables(store));
        policy.free_attempts = 2;
        policy.lock_after = 4;
        Accounts accounts(store, policy);
        const std::string team = *accounts.create_team("Kita");
        auto made = accounts.create_user("aiko", "Aiko", Role::peer_supporter, team, kPassword);
        REQUIRE(made);
        aiko = made->id;
    }
    Accounts accounts() { return Accounts(store, policy); }
    PasswordWork ahead(const std::string& username, const std::string& password) {
        auto work = accounts().sign_in_ahead(username, password, kNow);
        REQUIRE(work);
        return *work;
    }
    SignIn::Outcome sign_in(const std::string& password, const PasswordWork* ahead, std::int64_t now = kNow) {
        auto in = accounts().sign_in("aiko", password, "phone", "", now, ahead);
        REQUIRE(in);
        return in->outcome;
    }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("a password checked ahead of the write group counts only while the account holds the hash it was checked against") {
    AccountStore s;
    SECTION("the right password, unchanged since: signed in on the work done ahead") {
        const PasswordWork work = s.ahead("aiko", kPassword);
        CHECK(work.checked);
        CHECK(work.matches);
        CHECK(s.sign_in(kPassword, &work) == SignIn::Outcome::ok);
    }
    SECTION("the right password, replaced in between: checked again against the new hash, and refused") {
        const PasswordWork work = s.ahead("aiko", kPassword);
        REQUIRE(work.matches);
        REQUIRE(s.accounts().set_password(s.aiko, "set by an administrator", PasswordSetBy::administrator));
        CHECK(s.sign_in(kPassword, &work) == SignIn::Outcome::bad_credentials);
        CHECK(s.sign_in("set by an administrator", nullptr) == SignIn::Outcome::ok);
    }
    SECTION("a forged verdict for a hash the account no longer holds is not believed") {
        PasswordWork forged = s.ahead("aiko", "a guess");
        REQUIRE_FALSE(forged.matches);
        forged.matches = true;
        forged.hash = "$argon2id$v=19$m=8,t=1,p=1$not-the-account's$hash";
        CHECK(s.sign_in("a guess", &forged) == SignIn::Outcome::bad_credentials);
    }
    SECTION("wrong guesses checked side by side count one by one, then the account waits whatever came right") {
        // Four guesses checked at once, before any was counted; the last one right.
        std::vector<PasswordWork> works;
        for (const char* guess : {"guess one", "guess two", "guess three"}) works.push_back(s.ahead("aiko", guess));
        works.push_back(s.ahead("aiko", kPassword));
        CHECK(s.sign_in("guess one", &works[0]) == SignIn::Outcome::bad_credentials);
        // The second failure starts a wait (free_attempts = 2): the third guess is not counted,
        // and the right password, checked before the wait began, is not let in during it.
        CHECK(s.sign_in("guess two", &works[1]) == SignIn::Outcome::bad_credentials);
        CHECK(s.sign_in("guess three", &works[2]) == SignIn::Outcome::wait);
        CHECK(s.sign_in(kPassword, &works[3]) == SignIn::Outcome::wait);
        // Once the wait is over, the same password signs in.
        CHECK(s.sign_in(kPassword, nullptr, kNow + 60) == SignIn::Outcome::ok);
    }
    SECTION("an account waiting is not checked ahead at all") {
        CHECK(s.sign_in("guess one", nullptr) == SignIn::Outcome::bad_credentials);
        CHECK(s.sign_in("guess two", nullptr) == SignIn::Outcome::bad_credentials);
        const PasswordWork work = s.ahead("aiko", kPassword);
        CHECK_FALSE(work.checked);
        CHECK(s.sign_in(kPassword, &work) == SignIn::Outcome::wait);
    }
    SECTION("a name no account had ahead, made in between, is checked in the group") {
        const PasswordWork work = s.ahead("bunta", "bunta's long password");
        CHECK(work.checked);
        CHECK(work.user_id.empty());
        auto team = s.accounts().list_teams();
        REQUIRE(team);
        REQUIRE(s.accounts().create_user("bunta", "Bunta", Role::home_visitor, team->at(0).first,
                                         "bunta's long password"));
        auto in = s.accounts().sign_in("bunta", "bunta's long password", "phone", "", kNow, &work);
        REQUIRE(in);
        CHECK(in->outcome == SignIn::Outcome::ok);
    }
    SECTION("one's own password change: the new hash made ahead is the one kept") {
        auto in = s.accounts().sign_in("aiko", kPassword, "phone", "", kNow);
        REQUIRE(in);
        REQUIRE(in->outcome == SignIn::Outcome::ok);
        auto work = s.accounts().password_change_ahead(in->principal, kPassword, "aiko's second password", kNow);
        REQUIRE(work);
        CHECK_FALSE(work->new_hash.empty());
        auto changed = s.accounts().change_own_password(in->principal, kPassword, "aiko's second password", kNow, &*work);
        REQUIRE(changed);
        CHECK(changed->outcome == SignIn::Outcome::ok);
        CHECK(s.sign_in("aiko's second password", nullptr) == SignIn::Outcome::ok);
        CHECK(s.sign_in(kPassword, nullptr) == SignIn::Outcome::bad_credentials);
    }
    SECTION("no new hash is made for a wrong current password, nor for a replacement too short") {
        auto in = s.accounts().sign_in("aiko", kPassword, "phone", "", kNow);
        REQUIRE(in);
        auto wrong = s.accounts().password_change_ahead(in->principal, "not the current one", "a fine new password", kNow);
        REQUIRE(wrong);
        CHECK(wrong->new_hash.empty());
        auto short_one = s.accounts().password_change_ahead(in->principal, kPassword, "short", kNow);
        REQUIRE(short_one);
        CHECK(short_one->new_hash.empty());
        auto refused = s.accounts().change_own_password(in->principal, kPassword, "short", kNow, &*short_one);
        CHECK(refused.status().code() == ErrorCode::validation);
    }
}

TEST_CASE("sign-ins nobody has authenticated do not hold up the writes of others") {
    testing::TempDir dir("tsunagu-password-ahead-server");
    // A costly Argon2id, so that a check takes long next to a write.
    testing::InProcessServer server(dir, [](api::ServerConfig& config) {
        config.pwhash_ops = 96;
        config.pwhash_mem = 8u << 20;
    });
    auto started = std::chrono::steady_clock::now();
    api::HttpRequest admin_sign_in =
        testing::post_json("/v1/auth/sign-in", {{"username", "admin"}, {"password", server.first_admin_password()}});
    const api::HttpResponse signed_in = server.handle(admin_sign_in);
    REQUIRE(signed_in.status == 200);
    const double one_check_s = seconds_since(started);
    const std::string token = json::parse(signed_in.body)["token"];

    // Two callers keep trying names no account has, each check as costly as a real one.
    std::atomic<bool> stop{false};
    std::atomic<int> refused{0};
    std::vector<std::thread> guessers;
    for (int g = 0; g < 2; ++g) {
        guessers.emplace_back([&, g] {
            for (int i = 0; !stop; ++i) {
                api::HttpRequest guess = testing::post_json("/v1/auth/sign-in", {{"username", "nobody-" + std::to_string(g) + "-" +
                                                                                    std::to_string(i)},
                                                                   {"password", "a guess of theirs"}});
                if (server.handle(guess).status == 401) ++refused;
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(one_check_s / 2));
    // Meanwhile, the administrator's writes go through the group: a few a check, for as long as
    // the guessers take to have two guesses refused, so that the writes span checks under way.
    double slowest_s = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int i = 0; (i < 5 || refused < 2) && std::chrono::steady_clock::now() < give_up; ++i) {
        started = std::chrono::steady_clock::now();
        api::HttpRequest team = testing::post_json("/v1/admin/teams", {{"name", "Team " + std::to_string(i)}}, token);
        CHECK(server.handle(team).status == 201);
        slowest_s = std::max(slowest_s, seconds_since(started));
        std::this_thread::sleep_for(std::chrono::duration<double>(one_check_s / 4));
    }
    const int refused_meanwhile = refused;  // (not counting the guesses that end after the stop)
    stop = true;
    for (auto& g : guessers) g.join();
    INFO("one password check " << one_check_s << " s, slowest write among the guesses " << slowest_s << " s");
    CHECK(refused_meanwhile >= 2);
    // Queued behind checks in the group, a write would wait a whole check or more.
    CHECK(slowest_s < one_check_s / 2);
}
