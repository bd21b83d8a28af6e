// Who may call what: every endpoint against every role, and a shutdown that lets requests in
// flight finish and loses nothing that was acknowledged.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "api/src/server_core.h"
#include "api_client.h"
#include "synced_device.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu::testing;
using nlohmann::json;

namespace {

struct Team {
    TempDir dir{"tsunagu-access"};
    std::string data = dir.file("data");
    ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
    std::unique_ptr<ApiClient> admin;
    std::string team;

    Team() {
        server.start();
        admin = std::make_unique<ApiClient>(server.url());
        REQUIRE(admin->sign_in("admin", server.admin_password()).status == 200);
        team = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
        add("sato", "supervisor");
        add("aoi", "peer_supporter");
    }
    void add(const std::string& name, const std::string& role) {
        REQUIRE(admin->post("/v1/admin/users", {{"username", name}, {"role", role}, {"team_id", team},
                                                {"password", name + "-password-1"}, {"must_change_password", false}})
                    .status == 201);
    }
    std::unique_ptr<ApiClient> as(const std::string& name) {
        auto c = std::make_unique<ApiClient>(server.url());
        REQUIRE(c->sign_in(name, name + "-password-1").status == 200);
        return c;
    }
};

struct Call {
    const char* method;
    const char* path;
    const char* body;
    // Who gets past the gate: anonymous, field worker, supervisor, admin.
    bool anonymous, worker, supervisor, admin;
};

const Call kCalls[] = {
    {"GET", "/healthz", "", true, true, true, true},
    {"GET", "/", "", true, true, true, true},  // the page (its files: is_page_file)
    {"GET", "/metrics", "", true, true, true, true},  // from loopback only (see the proxy tests)
    {"POST", "/v1/auth/sign-in", "{}", true, true, true, true},
    {"POST", "/v1/web/sign-in", "{}", true, true, true, true},
    {"POST", "/v1/me/password", "{}", false, true, true, true},
    {"GET", "/v1/web/session", "", false, true, true, true},  // (then 400: for the page's cookie)
    {"GET", "/v1/me", "", false, true, true, true},
    {"GET", "/v1/sync/schema", "", false, true, true, true},
    {"GET", "/v1/sync/refused", "", false, true, true, false},
    {"POST", "/v1/sync/push", R"({"changes": []})", false, true, true, false},
    {"POST", "/v1/sync/pull", R"({"after": 0})", false, true, true, false},
    {"GET", "/v1/sync/pull?after=0", "", false, true, true, false},
    {"GET", "/v1/records", "", false, false, true, false},
    {"GET", "/v1/records/00000000000000000000000000000000", "", false, false, true, false},
    {"POST", "/v1/records/00000000000000000000000000000000/review", R"({"decision": "approve"})", false, false, true,
     false},
    {"GET", "/v1/conflicts", "", false, false, true, false},
    {"POST", "/v1/conflicts/resolve", R"({})", false, false, true, false},
    {"GET", "/v1/refused", "", false, false, true, false},
    {"GET", "/v1/refused/00000000000000000000000000000000", "", false, false, true, false},
    {"POST", "/v1/refused/00000000000000000000000000000000/dismiss", R"({"comment": "x"})", false, false, true, false},
    {"POST", "/v1/refused/00000000000000000000000000000000/apply", "{}", false, false, true, false},
    {"GET", "/v1/reports/indicators?fy=2020", "", false, false, true, true},
    {"GET", "/v1/web/directory", "", false, false, true, false},
    {"GET", "/v1/admin/users", "", false, false, false, true},
    {"POST", "/v1/admin/users", R"({})", false, false, false, true},
    {"PATCH", "/v1/admin/users/00000000000000000000000000000000", R"({})", false, false, false, true},
    {"GET", "/v1/admin/teams", "", false, false, false, true},
    {"POST", "/v1/admin/teams", R"({})", false, false, false, true},
    {"GET", "/v1/admin/clients/00000000000000000000000000000000/caseload", "", false, false, false, true},
    {"PUT", "/v1/admin/clients/00000000000000000000000000000000/caseload", R"({})", false, false, false, true},
    {"GET", "/v1/admin/targets?fy=2020", "", false, false, false, true},
    {"PUT", "/v1/admin/targets?fy=2020", R"({"targets": {}})", false, false, false, true},
    {"GET", "/v1/admin/devices", "", false, false, false, true},
    {"POST", "/v1/admin/devices/00000000000000000000000000000000/revoke", "", false, false, false, true},
    {"POST", "/v1/admin/compact", "", false, false, false, true},
    {"GET", "/v1/admin/backups", "", false, false, false, true},
    {"POST", "/v1/admin/backups", "", false, false, false, true},
    {"GET", "/v1/admin/audit", "", false, false, false, true},
    {"GET", "/v1/admin/audit/verify", "", false, false, false, true},
};

const std::set<std::string> kSignOuts = {"POST /v1/auth/sign-out", "POST /v1/web/sign-out"};

// The route table, as "METHOD /pattern" -> who may call it, from the server's own lists.
std::map<std::string, tsunagu::api::Access> route_table() {
    std::map<std::string, tsunagu::api::Access> routes;
    for (const auto& list : {tsunagu::api::operations_routes(), tsunagu::api::auth_routes(), tsunagu::api::admin_routes(),
                             tsunagu::api::sync_routes(), tsunagu::api::supervisor_routes(),
                             tsunagu::api::refused_routes(), tsunagu::api::report_routes(), tsunagu::api::web_routes()}) {
        for (const auto& r : list) routes.emplace(r.method + " " + r.pattern, r.access);
    }
    return routes;
}

// The web page's own files (its HTML, scripts, styles): open to anyone, as a browser loads them
// before anyone signs in; they hold no data.
bool is_page_file(const std::string& route) { return route == "GET /" || route.starts_with("GET /assets/"); }

// A call's route: its path without the query, with the placeholder id as "{id}".
std::string route_of(const Call& call) {
    std::string path = call.path;
    path = path.substr(0, path.find('?'));
    const std::string id(32, '0');
    if (auto at = path.find(id); at != std::string::npos) path.replace(at, id.size(), "{id}");
    return std::string(call.method) + " " + path;
}

}  // namespace

TEST_CASE("the role gate of every route in the route table admits exactly the roles it is for") {
    // Every route is in the matrix below (but the two sign-outs, which end the caller's session:
    // the next test; and the page's files, open to all), and the matrix names no route that is not.
    std::set<std::string> called;
    for (const Call& call : kCalls) called.insert(route_of(call));
    for (const auto& [route, access] : route_table()) {
        INFO(route);
        if (is_page_file(route)) {
            CHECK(access == tsunagu::api::Access::anyone);
            continue;
        }
        CHECK((called.count(route) == 1 || kSignOuts.count(route) == 1));
    }
    for (const std::string& route : called) {
        INFO(route);
        CHECK(route_table().count(route) == 1);
    }

    Team t;
    ApiClient anonymous(t.server.url());
    auto worker = t.as("aoi");
    auto supervisor = t.as("sato");
    for (const Call& call : kCalls) {
        const std::pair<ApiClient*, bool> callers[] = {
            {&anonymous, call.anonymous}, {worker.get(), call.worker}, {supervisor.get(), call.supervisor},
            {t.admin.get(), call.admin}};
        const char* names[] = {"anonymous", "worker", "supervisor", "admin"};
        for (std::size_t i = 0; i < 4; ++i) {
            INFO(call.method << " " << call.path << " as " << names[i]);
            Reply r = callers[i].first->raw(call.method, call.path, call.body);
            REQUIRE(r.status > 0);
            if (callers[i].second) {
                CHECK(r.status != 401);
                CHECK(r.status != 403);
            } else {
                CHECK(r.status == (i == 0 ? 401 : 403));
                CHECK(r.body.contains("error"));
            }
            CHECK(r.status < 500);
        }
    }
}

TEST_CASE("every role signs out its own session only, and no one signs out without one") {
    Team t;
    ApiClient anonymous(t.server.url());
    for (const std::string& route : kSignOuts) {
        const std::string path = route.substr(route.find(' ') + 1);
        INFO(path);
        Reply refused = anonymous.raw("POST", path, "");
        CHECK(refused.status == 401);
        CHECK(refused.body.contains("error"));
        for (const std::string name : {"aoi", "sato", "admin"}) {
            INFO(name);
            const std::string password = name == "admin" ? t.server.admin_password() : name + "-password-1";
            ApiClient leaving(t.server.url()), staying(t.server.url());
            REQUIRE(leaving.sign_in(name, password).status == 200);
            REQUIRE(staying.sign_in(name, password).status == 200);
            Reply out = leaving.raw("POST", path, "");
            CHECK(out.status == 200);
            CHECK(out.body["signed_out"] == true);
            CHECK(leaving.get("/v1/me").status == 401);  // the token is spent
            CHECK(leaving.raw("POST", path, "").status == 401);
            CHECK(staying.get("/v1/me").status == 200);  // the same user's other session goes on
        }
    }
    // Each is on the trail, by its device.
    ApiClient admin(t.server.url());
    REQUIRE(admin.sign_in("admin", t.server.admin_password()).status == 200);
    int sign_outs = 0;
    const Reply trail = admin.get("/v1/admin/audit?limit=1000");
    for (const auto& e : trail.body["entries"]) sign_outs += e["action"] == "auth.sign_out";
    CHECK(sign_outs == static_cast<int>(kSignOuts.size()) * 3);
}

TEST_CASE("SIGTERM lets requests in flight finish, and every acknowledged push survives the restart") {
    Team t;
    constexpr int kDevices = 4;
    constexpr int kBatch = 300;  // a push the server takes tens of milliseconds over
    using Clock = std::chrono::steady_clock;
    const auto since = [origin = Clock::now()] {
        return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - origin).count();
    };
    std::vector<std::unique_ptr<SyncedDevice>> devices;
    for (int i = 0; i < kDevices; ++i) {
        devices.push_back(std::make_unique<SyncedDevice>(t.server.url(), t.dir.file("phone" + std::to_string(i) + ".db"),
                                                         "aoi", "aoi-password-1"));
    }
    std::mutex lock;
    std::set<std::string> acknowledged, unanswered;
    // When each device's push on the wire was sent (microseconds; 0: none on the wire), and when
    // the signal went: a push sent well before it (25 ms) is on the server, and crosses the signal.
    std::vector<std::atomic<std::int64_t>> sent_at(kDevices);
    std::atomic<std::int64_t> signalled_at{std::numeric_limits<std::int64_t>::max()};
    constexpr std::int64_t kOnTheServer = 25'000;
    std::atomic<int> answered{0}, server_errors{0}, crossed{0}, cut{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kDevices; ++i) {
        threads.emplace_back([&, i] {
            SyncedDevice& d = *devices[static_cast<std::size_t>(i)];
            for (int round = 0; round < 400; ++round) {
                for (int k = 0; k < kBatch; ++k) {
                    if (!d.device->create("meeting", {{"kind", "case_conference"}, {"date", "2020-10-01"}}).is_ok()) return;
                }
                auto batch = d.device->prepare_push(kBatch);
                if (!batch.is_ok()) return;
                json wire = *batch;
                const std::int64_t sent = since();
                sent_at[static_cast<std::size_t>(i)] = sent;
                Reply r = d.client.post("/v1/sync/push", {{"changes", wire["changes"]}});
                const std::int64_t answered_at = since();
                sent_at[static_cast<std::size_t>(i)] = 0;
                const bool before_signal = sent + kOnTheServer <= signalled_at;
                if (before_signal && r.status > 0 && answered_at >= signalled_at) ++crossed;
                if (r.status <= 0) {
                    // Unanswered: the listener had it still (it closes with the shutdown) or the
                    // server dropped it. Either way it must not have been applied (checked below).
                    if (before_signal) ++cut;
                    std::lock_guard<std::mutex> g(lock);
                    for (const json& c : wire["changes"]) unanswered.insert(c["record"].get<std::string>());
                    return;
                }
                ++answered;
                // A request arriving once the shutdown began is turned away whole, with a retry hint;
                // anything else of 5xx would be a request cut or failed by the shutdown.
                if (r.status >= 500 && !(r.status == 503 && r.body.value("error", "") == "shutting_down")) {
                    ++server_errors;
                }
                if (r.status != 200) return;
                auto result = tsunagu::sync::parse_push_result(r.body);
                if (!result.is_ok() || !d.device->apply_push_result(*result).is_ok()) return;
                std::lock_guard<std::mutex> g(lock);
                for (const json& o : r.body["outcomes"]) {
                    if (o["status"] == "accepted") acknowledged.insert(o["record"].get<std::string>());
                }
                if (signalled_at != std::numeric_limits<std::int64_t>::max()) return;
            }
        });
    }
    // The signal goes once a few pushes were answered and one has been on the server for 25 ms.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    const auto one_on_the_server = [&] {
        for (const auto& at : sent_at) {
            const std::int64_t sent = at;
            if (sent != 0 && since() - sent >= kOnTheServer) return true;
        }
        return false;
    };
    while (Clock::now() < deadline && (answered < 4 || !one_on_the_server())) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // not a core spun
    }
    signalled_at = since();
    const int status = t.server.stop(SIGTERM);
    for (auto& th : threads) th.join();
    INFO("pushes on the server at the signal and answered after it: " << crossed << "; cut: " << cut);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(crossed >= 1);  // the signal did come while the server held a push
    CHECK(server_errors == 0);
    REQUIRE(acknowledged.size() >= 4 * kBatch);

    t.server.start();
    SyncedDevice fresh(t.server.url(), t.dir.file("fresh.db"), "aoi", "aoi-password-1");
    fresh.sync();
    std::size_t missing = 0;
    for (const auto& id : acknowledged) missing += fresh.holds(id) ? 0 : 1;
    CHECK(missing == 0);
    // A push left unanswered was never applied: the shutdown answers every push it applies (its
    // phone sends it again).
    std::size_t applied_unanswered = 0;
    for (const auto& id : unanswered) applied_unanswered += fresh.holds(id) ? 1 : 0;
    CHECK(applied_unanswered == 0);
}
