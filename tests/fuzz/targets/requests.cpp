// Fuzz target requests: the whole server in process (ServerConfig::serve_in_process) over a real
// encrypted store in a temporary folder, with an organisation in it. Any request, as anyone, on
// any route, is answered, and never with a server error:
//   - a status from 200 to 499;
//   - a JSON answer (application/json) is JSON, and an error is {"error": code, "message": why};
//   - nobody (no token) is answered 2xx only on the routes open to anyone;
//   - a request that changes state with the web page's cookie but without its CSRF token (a
//     forged one, from another site) is never answered 2xx, on any route but the open ones;
//   - the server still answers /healthz with 200 after it.
// It must never throw, crash or hang. Bad input gets a clear 4xx: this looks for the input that
// does not.
//
// An input is one request in a small text form, its first line saying who sends what:
//   <who> <METHOD> <path>[?<query>]
//   <body, the rest>
// <who>: nobody (no token), admin, supervisor (of the team Kita), worker (a home visitor of Kita,
// with a client and visits), other (a peer supporter of the team Minami), web (the supervisor on
// the web page: its session cookie and CSRF token) or forged (that cookie with a wrong CSRF
// token). Query parameters are split at & and =, as the listener hands them in (decoded).
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_target.h"
#include "fuzz/http_request.h"
#include "support/in_process_server.h"
#include "support/temp_dir.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

struct Account {
    std::string token, user_id, device_id;
};

// How a request is signed: a bearer token, or the web page's cookie and CSRF token.
struct Caller {
    std::string token;
    std::string cookie, csrf;
};

Caller bearer(std::string token) {
    Caller c;
    c.token = std::move(token);
    return c;
}

bool changes_state(const std::string& method) {
    return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

// The routes open to anyone, and the page with its assets.
bool open_route(const std::string& path) {
    return path == "/healthz" || path == "/metrics" || path == "/v1/auth/sign-in" || path == "/v1/web/sign-in" ||
           !path.starts_with("/v1/");
}

// The server and the organisation, made once per process; stopped and removed at exit.
class World {
  public:
    World() {
        admin_ = sign_in("admin", server_.first_admin_password());
        kita_ = created(send(admin_.token, "POST", "/v1/admin/teams", R"({"name":"Kita"})"))["team"]["id"];
        const std::string minami =
            created(send(admin_.token, "POST", "/v1/admin/teams", R"({"name":"Minami"})"))["team"]["id"];
        supervisor_ = account("kita-supervisor", "supervisor", kita_);
        web_ = web_sign_in("kita-supervisor", "kita-supervisor-password-1");
        worker_ = account("kita-visitor", "home_visitor", kita_);
        other_ = account("minami-peer", "peer_supporter", minami);

        // The worker's client and two visits, the second waiting for review.
        client_ = std::string(31, 'c') + "1";
        visit_ = std::string(31, 'e') + "1";
        json changes = json::array();
        changes.push_back(change("client", client_, {{"pseudonym", "K-001"}, {"area", "Kita"}}, 1));
        changes.push_back(change("home_visit", std::string(31, 'e') + "0", visit(false), 2));
        changes.push_back(change("home_visit", visit_, visit(true), 3));
        push_body_ = json{{"changes", changes}, {"sent_at", 1750000000000}}.dump();
        const json pushed = expect_ok(send(worker_.token, "POST", "/v1/sync/push", push_body_));
        for (const auto& outcome : pushed["outcomes"]) {
            if (outcome["status"] != "accepted") fail("the world's push was refused: " + pushed.dump(), "");
        }
        // What a supervisor read of the visit, for the decisions that must say so ("seen").
        visit_version_ = expect_ok(send(supervisor_.token, "GET", "/v1/records/" + visit_, ""))["version"];
    }

    api::HttpResponse send(const std::string& token, std::string method, std::string target, std::string body) {
        return send(bearer(token), std::move(method), std::move(target), std::move(body));
    }

    api::HttpResponse send(const Caller& caller, std::string method, std::string target, std::string body) {
        std::map<std::string, std::string> headers;
        if (!caller.token.empty()) headers["authorization"] = "Bearer " + caller.token;
        if (!caller.cookie.empty()) headers["cookie"] = caller.cookie;
        if (!caller.csrf.empty()) headers["x-csrf-token"] = caller.csrf;
        api::HttpRequest request = http_request(std::move(method), target, headers, std::move(body));
        return server_.handle(request);
    }

    // How `who` signs; nullopt for a name that is no one's.
    std::optional<Caller> caller(std::string_view who) const {
        if (who == "nobody") return Caller{};
        if (who == "admin") return bearer(admin_.token);
        if (who == "supervisor") return bearer(supervisor_.token);
        if (who == "worker") return bearer(worker_.token);
        if (who == "other") return bearer(other_.token);
        if (who == "web") return web_;
        if (who == "forged") return Caller{"", web_.cookie, std::string(web_.csrf.size(), '0')};
        return std::nullopt;
    }

    // Well-formed requests on every route, with the world's ids.
    std::vector<std::string> seeds() const {
        const std::string some_change = std::string(31, 'f') + "9";
        return {
            "nobody GET /healthz\n",
            "nobody GET /metrics\n",
            "nobody POST /v1/auth/sign-in\n"
            R"({"username":"kita-visitor","password":"kita-visitor-password-1","device_name":"tablet"})",
            "nobody POST /v1/web/sign-in\n"
            R"({"username":"kita-supervisor","password":"kita-supervisor-password-1"})",
            "worker GET /v1/me\n",
            "worker POST /v1/me/password\n"
            R"({"current_password":"kita-visitor-password-1","password":"kita-visitor-password-1"})",
            "worker POST /v1/sync/push\n" + push_body_,
            "worker POST /v1/sync/pull\n" R"({"after":0,"limit":100,"held":{"client:)" + client_ + R"(":[")" +
                client_ + R"("]},"clock_offset":-1500})",
            "worker GET /v1/sync/pull?after=0&limit=10\n",
            "worker GET /v1/sync/schema\n",
            "worker GET /v1/sync/refused?status=open\n",
            "worker GET /v1/reports/indicators?fy=2025\n",
            "supervisor GET /v1/records?collection=home_visit&status=submitted&from=2025-04-01&to=2026-03-31\n",
            "supervisor GET /v1/records/" + visit_ + "\n",
            "supervisor POST /v1/records/" + visit_ + "/review\n" R"({"decision":"return","comment":"the date?"})",
            "supervisor POST /v1/records/" + visit_ + "/review\n" R"({"decision":"approve"})",
            "supervisor GET /v1/conflicts\n",
            "supervisor POST /v1/conflicts/resolve\n" R"({"record":")" + visit_ +
                R"(","field":"duration_min","value":45,"seen":")" + visit_version_ + R"("})",
            "supervisor GET /v1/refused?status=dismissed\n",
            "supervisor GET /v1/refused/" + some_change + "\n",
            "supervisor POST /v1/refused/" + some_change + "/dismiss\n" R"({"comment":"entered twice"})",
            "supervisor POST /v1/refused/" + some_change + "/apply\n{}",
            "supervisor GET /v1/reports/indicators?fy=2025&format=csv\n",
            "supervisor GET /v1/web/directory\n",
            "web GET /v1/web/session\n",
            "web GET /v1/web/directory\n",
            "web POST /v1/records/" + visit_ + "/review\n" R"({"decision":"return","comment":"from the page"})",
            "forged POST /v1/records/" + visit_ + "/review\n" R"({"decision":"approve"})",
            "forged POST /v1/conflicts/resolve\n" R"({"record":")" + visit_ + R"(","field":"date","value":"2025-06-11"})",
            "other GET /v1/records/" + visit_ + "\n",
            "admin GET /v1/admin/users\n",
            "admin POST /v1/admin/users\n" R"({"username":"new-staff","display_name":"新人","role":"staff","team_id":")" +
                kita_ + R"(","password":"a-password-1"})",
            "admin PATCH /v1/admin/users/" + other_.user_id + "\n" R"({"disabled":false})",
            "admin GET /v1/admin/teams\n",
            "admin POST /v1/admin/teams\n" R"({"name":"Higashi"})",
            "admin GET /v1/admin/clients/" + client_ + "/caseload\n",
            "admin PUT /v1/admin/clients/" + client_ + "/caseload\n" R"({"team_id":")" + kita_ +
                R"(","worker_ids":[")" + worker_.user_id + "\"]}",
            "admin GET /v1/admin/targets?fy=2025\n",
            "admin PUT /v1/admin/targets?fy=2025\n" R"({"targets":{"council_meetings":4,"peer_supporters_trained":12}})",
            "admin GET /v1/admin/devices\n",
            "admin POST /v1/admin/devices/" + other_.device_id + "/revoke\n{}",
            "admin POST /v1/admin/compact\n{}",
            "admin GET /v1/admin/backups\n",
            "admin GET /v1/admin/audit?limit=5\n",
            "admin GET /v1/admin/audit/verify\n",
        };
    }

  private:
    testing::TempDir dir_{"tsunagu-fuzz", scratch_base()};  // first: removed last
    // A long run keeps its web session.
    testing::InProcessServer server_{dir_, [](api::ServerConfig& c) { c.web_idle_seconds = 7 * 24 * 3600; }};
    Account admin_, supervisor_, worker_, other_;
    Caller web_;
    std::string kita_, client_, visit_, visit_version_, push_body_;
    int clock_ = 0;

    static json expect_ok(const api::HttpResponse& r) {
        if (r.status < 200 || r.status > 299) fail("setting the world up: " + std::to_string(r.status) + " " + r.body, "");
        return json::parse(r.body);
    }
    static json created(const api::HttpResponse& r) { return expect_ok(r); }

    Account sign_in(const std::string& username, const std::string& password) {
        const json answer = expect_ok(send("", "POST", "/v1/auth/sign-in",
                                           json{{"username", username}, {"password", password},
                                                {"device_name", username + "'s phone"}}.dump()));
        return {answer["token"], answer["user"]["id"], answer["device_id"]};
    }

    // The web page's session: the cookie the sign-in sets, and the CSRF token it answers.
    Caller web_sign_in(const std::string& username, const std::string& password) {
        const api::HttpResponse r = send("", "POST", "/v1/web/sign-in",
                                         json{{"username", username}, {"password", password}}.dump());
        const json answer = expect_ok(r);
        Caller web;
        for (const auto& [name, value] : r.headers) {
            if (name == "Set-Cookie") web.cookie = value.substr(0, value.find(';'));
        }
        web.csrf = answer["csrf_token"];
        if (web.cookie.empty() || web.csrf.empty()) fail("the web sign-in set no cookie or token", "");
        return web;
    }

    Account account(const std::string& username, const std::string& role, const std::string& team) {
        expect_ok(send(admin_.token, "POST", "/v1/admin/users",
                       json{{"username", username}, {"role", role}, {"team_id", team},
                            {"password", username + "-password-1"}, {"must_change_password", false}}.dump()));
        return sign_in(username, username + "-password-1");
    }

    json change(const std::string& collection, const std::string& record, json fields, int n) {
        return {{"id", std::string(31, 'a') + std::to_string(n)},
                {"collection", collection},
                {"record", record},
                {"hlc", "1750000000000-" + std::to_string(++clock_)},
                {"replica", worker_.device_id},
                {"user", worker_.user_id},
                {"schema", 1},
                {"create", true},
                {"set", std::move(fields)}};
    }

    json visit(bool submitted) const {
        return {{"client", client_},
                {"date", "2025-06-10"},
                {"duration_min", 40},
                {"purpose", "check_in"},
                {"observations", "眠れている。"},
                {"risk_flags", json::array({"isolation"})},
                {"review_status", submitted ? "submitted" : "draft"}};
    }
};

World& world() {
    static World w;
    return w;
}

void run(std::string_view input) {
    World& w = world();
    const std::size_t line_end = std::min(input.find('\n'), input.size());
    const std::string_view line = input.substr(0, line_end);
    const std::string body(input.substr(std::min(input.size(), line_end + 1)));
    const std::size_t first = line.find(' ');
    const std::size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
    if (second == std::string_view::npos) return;  // not a request line: nothing to send
    const auto caller = w.caller(line.substr(0, first));
    if (!caller) return;
    const std::string method(line.substr(first + 1, second - first - 1));
    const std::string target(line.substr(second + 1));

    const api::HttpResponse answer = w.send(*caller, method, target, body);
    check(answer.status >= 200 && answer.status < 500,
          "answered " + std::to_string(answer.status) + ": " + answer.body.substr(0, 300), input);
    if (answer.content_type.starts_with("application/json")) {
        json parsed;
        try {
            parsed = json::parse(answer.body);
        } catch (const json::exception&) {
            fail("a JSON answer that is not JSON: " + answer.body.substr(0, 300), input);
        }
        if (answer.status >= 400) {
            check(parsed.is_object() && parsed["error"].is_string() && parsed["message"].is_string() &&
                      !parsed["message"].get<std::string>().empty(),
                  "an error without {error, message}: " + answer.body.substr(0, 300), input);
        }
    } else {
        check(answer.status < 400, "an error that is not JSON: " + answer.content_type, input);
    }
    const std::string path = target.substr(0, target.find('?'));
    if (answer.status < 300 && !open_route(path)) {
        check(!(caller->token.empty() && caller->cookie.empty()),
              "answered " + std::to_string(answer.status) + " to a caller without a token", input);
        const bool forged = !caller->cookie.empty() && caller->csrf != w.caller("web")->csrf;
        check(!(forged && changes_state(method)),
              "answered " + std::to_string(answer.status) + " to a state change without the CSRF token", input);
    }
    check(w.send("", "GET", "/healthz", "").status == 200, "/healthz failed after this request", input);
}

std::vector<std::string> seeds() {
    return world().seeds();
}

}  // namespace

const Target& target() {
    static const Target t{"requests", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
