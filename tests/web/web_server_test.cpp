// The server's side of the supervisor's web page, against the real tsunagu-server on loopback:
// the page and its assets, the security headers, the cookie session and its CSRF rule.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "api/api_client.h"
#include "api/src/web_assets.h"
#include "browser_request.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu::testing;
using nlohmann::json;

namespace {

constexpr const char* kCookieName = "__Host-tsunagu_session";

struct WebSession {
    std::string cookie;  // "name=token", as the browser sends it back
    std::string csrf;
};

// A server with a team, a supervisor (sato) and a field worker (aoi).
struct Office {
    TempDir dir{"tsunagu-web"};
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    std::unique_ptr<ApiClient> admin;
    std::string team;

    Office() {
        server.start();
        admin = std::make_unique<ApiClient>(server.url());
        REQUIRE(admin->sign_in("admin", server.admin_password()).status == 200);
        team = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
        for (const auto& [name, role] :
             {std::pair{"sato", "supervisor"}, std::pair{"aoi", "peer_supporter"}}) {
            REQUIRE(admin
                        ->post("/v1/admin/users", {{"username", name},
                                                   {"role", role},
                                                   {"team_id", team},
                                                   {"password", std::string(name) + "-password-1"},
                                                   {"must_change_password", false}})
                        .status == 201);
        }
    }

    BrowserAnswer send(const std::string& method, const std::string& target,
                       std::map<std::string, std::string> headers = {},
                       const std::string& body = "") {
        return browser_request(server.port(), method, target, headers, body);
    }

    BrowserAnswer sign_in_answer(const std::string& user, const std::string& password) {
        return send("POST", "/v1/web/sign-in",
                    {{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "same-origin"}},
                    json{{"username", user}, {"password", password}}.dump());
    }

    WebSession sign_in(const std::string& user) {
        BrowserAnswer a = sign_in_answer(user, user + "-password-1");
        REQUIRE(a.status == 200);
        const std::string set_cookie = a.header("set-cookie");
        WebSession s;
        s.cookie = set_cookie.substr(0, set_cookie.find(';'));
        s.csrf = json::parse(a.body)["csrf_token"];
        return s;
    }

    // A state change (creating a team) made with the cookie.
    BrowserAnswer create_team(const WebSession& s, std::map<std::string, std::string> extra = {}) {
        extra["Cookie"] = s.cookie;
        extra["Content-Type"] = "application/json";
        return send("POST", "/v1/admin/teams", extra, R"({"name": "Minami"})");
    }

    json devices_of(const std::string& username) {
        std::string id;
        const Reply users = admin->get("/v1/admin/users");
        for (const auto& u : users.body["users"])
            if (u["username"] == username) id = u["id"];
        REQUIRE(!id.empty());
        return admin->get("/v1/admin/devices?user_id=" + id).body["devices"];
    }
};

}  // namespace

TEST_CASE(
    "the page and every asset are served from the binary with their content type and a strict "
    "CSP") {
    Office office;
    const auto assets = tsunagu::api::web_assets();
    REQUIRE(assets.size() >= 10);
    bool saw_page = false, saw_script = false, saw_styles = false;
    for (const auto& asset : assets) {
        INFO(asset.path);
        BrowserAnswer a = office.send("GET", std::string(asset.path));
        CHECK(a.status == 200);
        CHECK(a.header("content-type") == asset.content_type);
        CHECK(a.body == asset.body);
        const std::string policy = a.header("content-security-policy");
        CHECK(policy.find("default-src 'self'") != std::string::npos);
        CHECK(policy.find("script-src 'self'") != std::string::npos);
        CHECK(policy.find("style-src 'self'") != std::string::npos);
        CHECK(policy.find("frame-ancestors 'none'") != std::string::npos);
        CHECK(policy.find("unsafe-inline") == std::string::npos);
        CHECK(policy.find("unsafe-eval") == std::string::npos);
        CHECK(a.header("x-content-type-options") == "nosniff");
        CHECK(a.header("referrer-policy") == "no-referrer");
        CHECK(a.header("x-frame-options") == "DENY");
        saw_page |= asset.path == "/" && asset.content_type == "text/html; charset=utf-8";
        saw_script |= asset.path == "/assets/app.js" &&
                      asset.content_type == "text/javascript; charset=utf-8";
        saw_styles |=
            asset.path == "/assets/app.css" && asset.content_type == "text/css; charset=utf-8";
    }
    CHECK(saw_page);
    CHECK(saw_script);
    CHECK(saw_styles);
}

TEST_CASE("the page holds no inline script, no inline style and nothing from elsewhere") {
    for (const auto& asset : tsunagu::api::web_assets()) {
        INFO(asset.path);
        std::string body(asset.body);
        // The SVG namespace is a name, not an address anything is loaded from.
        for (std::size_t at; (at = body.find("http://www.w3.org/2000/svg")) != std::string::npos;)
            body.erase(at, 26);
        CHECK(body.find("style=") == std::string::npos);
        CHECK(body.find("http://") == std::string::npos);
        CHECK(body.find("https://") == std::string::npos);
        CHECK(body.find(".innerHTML") == std::string::npos);
        CHECK(body.find(".outerHTML") == std::string::npos);
        CHECK(body.find("insertAdjacentHTML") == std::string::npos);
        CHECK(body.find("document.write") == std::string::npos);
        CHECK(body.find("eval(") == std::string::npos);
        if (asset.path == "/") {
            CHECK(body.find("<script>") == std::string::npos);
            CHECK(body.find("<style") == std::string::npos);
            CHECK(body.find(" on") == std::string::npos);  // no onclick= and the like
        }
    }
}

TEST_CASE("an unknown asset is 404 and API answers carry security headers too") {
    Office office;
    CHECK(office.send("GET", "/assets/missing.js").status == 404);
    CHECK(office.send("GET", "/assets/../api/main.cpp").status == 404);
    CHECK(office.send("GET", "/index.html").status == 404);
    CHECK(office.send("POST", "/assets/app.js").status == 405);
    BrowserAnswer health = office.send("GET", "/healthz");
    CHECK(health.status == 200);
    CHECK(health.header("content-security-policy") == "default-src 'none'; frame-ancestors 'none'");
    CHECK(health.header("referrer-policy") == "no-referrer");
    CHECK(health.header("x-content-type-options") == "nosniff");
}

TEST_CASE(
    "a web sign-in sets an HttpOnly, Secure, SameSite=Strict cookie and answers a CSRF token") {
    Office office;
    BrowserAnswer a = office.sign_in_answer("sato", "sato-password-1");
    REQUIRE(a.status == 200);
    REQUIRE(a.all("set-cookie").size() == 1);
    const std::string cookie = a.header("set-cookie");
    CHECK(cookie.rfind(std::string(kCookieName) + "=tsn_", 0) == 0);
    CHECK(cookie.find("; HttpOnly") != std::string::npos);
    CHECK(cookie.find("; Secure") != std::string::npos);
    CHECK(cookie.find("; SameSite=Strict") != std::string::npos);
    CHECK(cookie.find("; Path=/") != std::string::npos);
    CHECK(cookie.find("Domain") == std::string::npos);
    json body = json::parse(a.body);
    CHECK(body["user"]["username"] == "sato");
    CHECK(body["idle_seconds"] == 900);
    CHECK(body["csrf_token"].get<std::string>().size() == 64);
    CHECK(body.dump().find("tsn_") == std::string::npos);  // the token itself stays in the cookie

    const std::string token_cookie = cookie.substr(0, cookie.find(';'));
    BrowserAnswer session =
        office.send("GET", "/v1/web/session", {{"Cookie", "other=1; " + token_cookie}});
    CHECK(session.status == 200);
    CHECK(json::parse(session.body)["csrf_token"] == body["csrf_token"]);
    CHECK(office.send("GET", "/v1/records", {{"Cookie", token_cookie}}).status == 200);
}

TEST_CASE("a field worker is refused by the web sign-in, and nothing is registered for them") {
    Office office;
    BrowserAnswer a = office.sign_in_answer("aoi", "aoi-password-1");
    CHECK(a.status == 403);
    CHECK(json::parse(a.body)["error"] == "not_for_field_workers");
    CHECK(a.header("set-cookie").empty());
    CHECK(office.devices_of("aoi").empty());
    // A wrong password still says only that, for workers too.
    CHECK(office.sign_in_answer("aoi", "wrong").status == 401);
}

TEST_CASE("state changes with the cookie are refused without the right CSRF token") {
    Office office;
    REQUIRE(office.admin->post("/v1/me/password", {{"current_password", office.server.admin_password()},
                                                  {"password", "admin-password-1"}})
                .status ==
            200);
    WebSession s = office.sign_in("admin");
    BrowserAnswer missing = office.create_team(s);
    CHECK(missing.status == 403);
    CHECK(json::parse(missing.body)["error"] == "csrf");
    std::string wrong = s.csrf;
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    CHECK(office.create_team(s, {{"X-CSRF-Token", wrong}}).status == 403);
    CHECK(office.create_team(s, {{"X-CSRF-Token", s.csrf.substr(0, 63)}}).status == 403);
    CHECK(office.create_team(s, {{"X-CSRF-Token", s.csrf}, {"Sec-Fetch-Site", "cross-site"}})
              .status == 403);
    // Another session's token does not fit this one.
    WebSession other = office.sign_in("admin");
    CHECK(office.create_team(s, {{"X-CSRF-Token", other.csrf}}).status == 403);
    CHECK(office.admin->get("/v1/admin/teams").body["teams"].size() == 1);  // nothing was created

    CHECK(office.create_team(s, {{"X-CSRF-Token", s.csrf}, {"Sec-Fetch-Site", "same-origin"}})
              .status == 201);
    // Reads need no token; bearer clients (devices) need none either.
    CHECK(office.send("GET", "/v1/admin/teams", {{"Cookie", s.cookie}}).status == 200);
    CHECK(office.admin->post("/v1/admin/teams", {{"name", "Higashi"}}).status == 201);
    // But no read is made for another site, a sibling subdomain included (SameSite lets its
    // requests carry the cookie): an <img> there would fill the trail with reads never made.
    for (const char* site : {"same-site", "cross-site"}) {
        BrowserAnswer read = office.send("GET", "/v1/admin/teams", {{"Cookie", s.cookie}, {"Sec-Fetch-Site", site}});
        CHECK(read.status == 403);
    }
}

TEST_CASE("TRACE and OPTIONS go to the router like any method, and echo nothing") {
    Office office;
    WebSession s = office.sign_in("sato");
    for (const char* method : {"TRACE", "OPTIONS"}) {
        INFO(method);
        BrowserAnswer a = office.send(method, "/v1/records", {{"Cookie", s.cookie}, {"Authorization", "Bearer a-token"}});
        CHECK((a.status == 405 || a.status == 404));
        CHECK(a.body.find(s.cookie.substr(s.cookie.find('=') + 1)) == std::string::npos);
        CHECK(a.body.find("a-token") == std::string::npos);
        CHECK(a.header("content-security-policy") == "default-src 'none'; frame-ancestors 'none'");
    }
}

TEST_CASE("an endpoint answers under one spelling only, so that a proxy's rule for it cannot be walked around") {
    Office office;
    // nginx limits sign-ins by path: "/v1/web/sign-in/" must not be a way around the limit.
    for (const char* path : {"/v1/web/sign-in/", "/v1//web/sign-in", "/v1/auth/sign-in/"}) {
        INFO(path);
        BrowserAnswer a = office.send("POST", path, {{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "same-origin"}},
                                      json{{"username", "sato"}, {"password", "sato-password-1"}}.dump());
        CHECK(a.status == 404);
        CHECK(a.header("set-cookie").empty());
    }
    CHECK(office.sign_in_answer("sato", "sato-password-1").status == 200);
}

TEST_CASE("answers the listener makes itself carry the security headers too") {
    Office office;
    // A body over the limit is refused from its Content-Length, before any route.
    BrowserAnswer too_large = office.send("POST", "/v1/sync/push", {{"Content-Type", "application/json"}},
                                          std::string(5u << 20, ' '));
    CHECK(too_large.status == 413);
    CHECK(too_large.header("content-security-policy") == "default-src 'none'; frame-ancestors 'none'");
    CHECK(too_large.header("x-frame-options") == "DENY");
    CHECK(too_large.header("cache-control") == "no-store");
}

TEST_CASE("the web sign-in only takes JSON from the page's own origin") {
    Office office;
    const std::string body = json{{"username", "sato"}, {"password", "sato-password-1"}}.dump();
    CHECK(office.send("POST", "/v1/web/sign-in", {{"Content-Type", "text/plain"}}, body).status ==
          415);
    CHECK(office
              .send("POST", "/v1/web/sign-in",
                    {{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "cross-site"}}, body)
              .status == 403);
}

TEST_CASE("the cookie carries web sessions only: a device's token in it is refused") {
    Office office;
    const std::string cookie = std::string(kCookieName) + "=" + office.admin->token;
    BrowserAnswer a = office.send("GET", "/v1/admin/teams", {{"Cookie", cookie}});
    CHECK(a.status == 401);
    CHECK(office
              .send("GET", "/v1/admin/teams",
                    {{"Cookie", std::string(kCookieName) + "=tsn_forged.secret"}})
              .status == 401);
    CHECK(office.send("GET", "/v1/admin/teams").status == 401);
}

TEST_CASE("signing out ends the web session and erases the cookie, by either sign-out route") {
    Office office;
    // The page's own route, or the devices' one sent with the page's cookie: the same ending.
    const std::string route = GENERATE(std::string("/v1/web/sign-out"), std::string("/v1/auth/sign-out"));
    INFO(route);
    WebSession s = office.sign_in("sato");
    BrowserAnswer out = office.send(
        "POST", route,
        {{"Cookie", s.cookie}, {"X-CSRF-Token", s.csrf}, {"Content-Type", "application/json"}},
        "{}");
    CHECK(out.status == 200);
    CHECK(out.header("set-cookie").find("Max-Age=0") != std::string::npos);
    CHECK(office.send("GET", "/v1/web/session", {{"Cookie", s.cookie}}).status == 401);
    // Its token no longer works as a bearer token either.
    ApiClient bearer(office.server.url());
    bearer.token = s.cookie.substr(s.cookie.find('=') + 1);
    CHECK(bearer.get("/v1/me").status == 401);
}

TEST_CASE("a user's web sign-ins share one registered device") {
    Office office;
    office.sign_in("sato");
    office.sign_in("sato");
    json devices = office.devices_of("sato");
    REQUIRE(devices.size() == 1);
    CHECK(devices[0]["name"] == "web page");
}
