// Web sessions: the idle and lifetime rules on a real store with an injected clock, the CSRF
// token and cookie parsing, and the idle rule enforced by a real server started in process.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "api/server.h"
#include "api/src/web_session.h"
#include "browser_request.h"
#include "crypto/store.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu;
using namespace tsunagu::api;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

Store open_store(const TempDir& dir) {
    auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 7));
    REQUIRE(key.is_ok());
    auto store = Store::open(dir.file("web.db"), *key);
    REQUIRE(store.is_ok());
    REQUIRE(WebSessions::create_schema(*store).is_ok());
    return std::move(*store);
}

WebSessions::State state_at(Store& store, const std::string& id, std::int64_t now) {
    auto state = WebSessions::check(store, id, now, WebSessionPolicy{});
    REQUIRE(state.is_ok());
    return *state;
}

// The real server, started in process on a loopback port over `dir`, whose first administrator
// has `admin_password`; `web_idle_seconds`: 0 keeps the default.
struct InProcess {
    int port = free_port();
    std::optional<StartedServer> started;

    InProcess(const TempDir& dir, const std::string& admin_password, std::int64_t web_idle_seconds = 0) {
        ServerConfig config;
        config.data_dir = dir.file("data");
        config.listen_url = "http://127.0.0.1:" + std::to_string(port);
        config.log_requests = false;
        config.pwhash_ops = 1;
        config.pwhash_mem = 8192;
        if (web_idle_seconds > 0) config.web_idle_seconds = web_idle_seconds;
        config.admin_password_file = dir.file("admin-password");
        std::ofstream(config.admin_password_file) << admin_password;
        std::filesystem::permissions(config.admin_password_file,
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        auto result = start_server(config);
        INFO(result.status().to_string());
        REQUIRE(result.is_ok());
        REQUIRE(result->first_admin_from_file);
        started.emplace(std::move(*result));
    }
    ~InProcess() { started->server->stop(); }
};

}  // namespace

TEST_CASE("a web session ends after 15 minutes without a request, and activity keeps it going") {
    TempDir dir{"tsunagu-web-session"};
    Store store = open_store(dir);
    const std::int64_t start = 1'600'000'000;
    REQUIRE(WebSessions::open(store, "s1", start).is_ok());
    CHECK(state_at(store, "s1", start + 899) == WebSessions::State::active);
    CHECK(state_at(store, "s1", start + 900) == WebSessions::State::expired);

    REQUIRE(WebSessions::touch(store, "s1", start + 600).is_ok());
    CHECK(state_at(store, "s1", start + 1499) == WebSessions::State::active);
    CHECK(state_at(store, "s1", start + 1500) == WebSessions::State::expired);
    // A late, out-of-order touch never moves activity backwards.
    REQUIRE(WebSessions::touch(store, "s1", start + 100).is_ok());
    CHECK(state_at(store, "s1", start + 1499) == WebSessions::State::active);
}

TEST_CASE("a web session ends after 12 hours however active it is") {
    TempDir dir{"tsunagu-web-session"};
    Store store = open_store(dir);
    const std::int64_t start = 1'600'000'000;
    REQUIRE(WebSessions::open(store, "s1", start).is_ok());
    std::int64_t now = start;
    for (; now < start + 12 * 3600 - 600; now += 600)
        REQUIRE(WebSessions::touch(store, "s1", now).is_ok());
    CHECK(state_at(store, "s1", now) == WebSessions::State::active);
    CHECK(state_at(store, "s1", start + 12 * 3600) == WebSessions::State::expired);
}

TEST_CASE("sessions that are not web sessions are left to the device rules") {
    TempDir dir{"tsunagu-web-session"};
    Store store = open_store(dir);
    CHECK(state_at(store, "device-session", 1) == WebSessions::State::not_web);
    REQUIRE(WebSessions::open(store, "s1", 100).is_ok());
    REQUIRE(WebSessions::forget(store, "s1").is_ok());
    CHECK(state_at(store, "s1", 101) == WebSessions::State::not_web);
}

TEST_CASE("the web sessions that ran out are listed for ending") {
    TempDir dir{"tsunagu-web-session"};
    Store store = open_store(dir);
    REQUIRE(WebSessions::open(store, "old", 1000).is_ok());
    REQUIRE(WebSessions::open(store, "new", 1800).is_ok());
    auto ran_out = WebSessions::ran_out(store, 1000 + 900, WebSessionPolicy{});
    REQUIRE(ran_out.is_ok());
    CHECK(*ran_out == std::vector<std::string>{"old"});
}

TEST_CASE("the CSRF token belongs to one session token and is checked exactly") {
    const std::string token = "tsn_0123456789abcdef0123456789abcdef.secret-part";
    const std::string csrf = csrf_token_for(token);
    CHECK(csrf.size() == 64);
    CHECK(csrf == csrf_token_for(token));
    CHECK(csrf != csrf_token_for(token + "x"));
    CHECK(csrf.find("secret") == std::string::npos);
    CHECK(csrf_token_matches(token, csrf));
    CHECK_FALSE(csrf_token_matches(token, ""));
    CHECK_FALSE(csrf_token_matches(token, csrf.substr(1)));
    CHECK_FALSE(csrf_token_matches(token, csrf + "0"));
    CHECK_FALSE(csrf_token_matches("", csrf_token_for("")));
    std::string flipped = csrf;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    CHECK_FALSE(csrf_token_matches(token, flipped));
}

TEST_CASE("the session cookie is found among others and only under its exact name") {
    CHECK(session_token_from_cookie("") == "");
    CHECK(session_token_from_cookie("__Host-tsunagu_session=tsn_a.b") == "tsn_a.b");
    CHECK(session_token_from_cookie("theme=dark;  __Host-tsunagu_session=tsn_a.b ; x=1") ==
          "tsn_a.b");
    CHECK(session_token_from_cookie("x__Host-tsunagu_session=tsn_a.b") == "");
    CHECK(session_token_from_cookie("__Host-tsunagu_sessionx=tsn_a.b") == "");
    CHECK(session_cookie("tsn_a.b") ==
          "__Host-tsunagu_session=tsn_a.b; Path=/; HttpOnly; Secure; SameSite=Strict");
    CHECK(expired_session_cookie().find("Max-Age=0") != std::string::npos);
}

TEST_CASE("the server keeps a web session in use alive and signs an idle one out everywhere") {
    TempDir dir{"tsunagu-web-idle"};
    const std::string admin_password = "the administrator's own";
    // Four seconds: the server counts whole seconds and touches a session read outside the
    // commit group once a second at most, so a shorter limit could run out between two requests of
    // a loaded machine.
    InProcess server(dir, admin_password, /*web_idle_seconds=*/4);
    const int port = server.port;

    BrowserAnswer signed_in = browser_request(
        port, "POST", "/v1/web/sign-in", {{"Content-Type", "application/json"}},
        json{{"username", "admin"}, {"password", admin_password}}.dump());
    REQUIRE(signed_in.status == 200);
    CHECK(json::parse(signed_in.body)["idle_seconds"] == 4);
    const std::string set_cookie = signed_in.header("set-cookie");
    const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
    const std::string token = cookie.substr(cookie.find('=') + 1);
    CHECK(browser_request(port, "GET", "/v1/admin/teams", {{"Cookie", cookie}}).status == 200);
    // Reads that run on connections of their own, outside the commit group (a caseload, the
    // indicators, a pull page), are activity too: 6.3 s of them keep a 4 s session alive.
    for (int i = 0; i < 9; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        const BrowserAnswer read =
            browser_request(port, "GET", "/v1/admin/clients/" + std::string(32, 'a') + "/caseload", {{"Cookie", cookie}});
        INFO(read.body);
        CHECK(read.status != 401);
    }
    CHECK(browser_request(port, "GET", "/v1/admin/teams", {{"Cookie", cookie}}).status == 200);

    std::this_thread::sleep_for(std::chrono::milliseconds(5100));
    BrowserAnswer expired = browser_request(port, "GET", "/v1/admin/teams", {{"Cookie", cookie}});
    CHECK(expired.status == 401);
    CHECK(json::parse(expired.body)["error"] == "session_expired");
    CHECK(expired.header("set-cookie").find("Max-Age=0") != std::string::npos);
    // Signed out on the server: the same token as a bearer header is no longer a session.
    CHECK(browser_request(port, "GET", "/v1/me", {{"Authorization", "Bearer " + token}}).status ==
          401);
}

TEST_CASE("a phone signing in under the web page's device id gets a device of its own") {
    TempDir dir{"tsunagu-web-device"};
    const std::string admin_password = "the administrator's own";
    InProcess server(dir, admin_password);
    const int port = server.port;

    BrowserAnswer page = browser_request(port, "POST", "/v1/web/sign-in", {{"Content-Type", "application/json"}},
                                         json{{"username", "admin"}, {"password", admin_password}}.dump());
    REQUIRE(page.status == 200);
    const std::string set_cookie = page.header("set-cookie");
    const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
    const BrowserAnswer me = browser_request(port, "GET", "/v1/me", {{"Cookie", cookie}});
    REQUIRE(me.status == 200);
    const std::string web_device = json::parse(me.body)["device_id"];

    const BrowserAnswer phone =
        browser_request(port, "POST", "/v1/auth/sign-in", {{"Content-Type", "application/json"}},
                        json{{"username", "admin"}, {"password", admin_password}, {"device_name", "admin's phone"},
                             {"device_id", web_device}}
                            .dump());
    REQUIRE(phone.status == 200);
    CHECK(json::parse(phone.body)["device_id"] != web_device);
    // The page's session is the page's still, under its own rules.
    CHECK(browser_request(port, "GET", "/v1/admin/teams", {{"Cookie", cookie}}).status == 200);
}
