// Push, pull, scopes, review and conflicts through the real server, with real device replicas.
#include <catch2/catch.hpp>

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/store.h"
#include "support/loopback_socket.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "synced_device.h"

using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// Two areas. Kita: supervisor sato, workers aoi and ben. Minami: supervisor mori, worker chie.
struct Organisation {
    TempDir dir{"tsunagu-sync-api"};
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    std::unique_ptr<ApiClient> admin;
    std::string kita, minami;
    std::map<std::string, std::string> ids;  // username -> user id

    explicit Organisation(const std::vector<std::string>& server_options = {}) {
        server.start(server_options);
        admin = std::make_unique<ApiClient>(server.url());
        REQUIRE(admin->sign_in("admin", server.admin_password()).status == 200);
        kita = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
        minami = admin->post("/v1/admin/teams", {{"name", "Minami"}}).body["team"]["id"];
        add("sato", "supervisor", kita);
        add("aoi", "peer_supporter", kita);
        add("ben", "home_visitor", kita);
        add("mori", "supervisor", minami);
        add("chie", "staff", minami);
    }
    void add(const std::string& name, const std::string& role, const std::string& team) {
        Reply r = admin->post("/v1/admin/users", {{"username", name}, {"role", role}, {"team_id", team},
                                                  {"password", name + "-password-1"}, {"must_change_password", false}});
        REQUIRE(r.status == 201);
        ids[name] = r.body["user"]["id"];
    }
    std::unique_ptr<SyncedDevice> device(const std::string& name) {
        return std::make_unique<SyncedDevice>(server.url(), dir.file(name + "-" + std::to_string(++devices) + ".db"),
                                              name, name + "-password-1");
    }
    void assign(const std::string& client, const std::string& team, std::vector<std::string> workers) {
        json ids_json = json::array();
        for (auto& w : workers) ids_json.push_back(ids[w]);
        Reply r = admin->raw("PUT", "/v1/admin/clients/" + client + "/caseload",
                             json{{"team_id", team}, {"worker_ids", ids_json}}.dump());
        REQUIRE(r.status == 200);
    }
    int devices = 0;
};

double metric(ApiClient& client, const std::string& name) { return client.metric(name); }

json visit(const std::string& client, const std::string& date = "2020-06-01") {
    return {{"client", client}, {"date", date}, {"duration_min", 45}, {"purpose", "check_in"},
            {"review_status", "submitted"}};
}

// `phone` syncs, then `supervisor`: it holds each of `records`, each made by one change (a push
// applied twice would show two in its history).
void sync_and_check_taken_once(SyncedDevice& phone, SyncedDevice& supervisor, const std::vector<std::string>& records) {
    phone.sync();
    supervisor.sync();
    for (const auto& id : records) {
        CHECK(supervisor.holds(id));
        CHECK(supervisor.client.get("/v1/records/" + id).body["history"].size() == 1);
    }
}

}  // namespace

TEST_CASE("a worker's new client and visits reach the server and the worker's second device") {
    Organisation org;
    auto phone = org.device("aoi");
    const auto client = phone->create("client", {{"pseudonym", "K-001"}, {"area", "kita"}});
    const auto v = phone->create("home_visit", visit(client));
    phone->sync();
    CHECK(org.admin->get("/v1/admin/clients/" + client + "/caseload").body["worker_ids"][0] == org.ids["aoi"]);
    auto tablet = org.device("aoi");
    tablet->sync();
    CHECK(tablet->holds(client));
    CHECK(tablet->holds(v));
    // The audit trail names the records each push and pull carried, as a JSON list of ids.
    std::vector<json> pushed, pulled;
    Reply audit = org.admin->get("/v1/admin/audit");
    INFO(audit.raw.substr(0, 2000));
    for (const auto& e : audit.body["entries"]) {
        if (e["action"] == "sync.push") pushed.push_back(json::parse(e["detail"].get<std::string>()));
        if (e["action"] == "sync.pull") pulled.push_back(json::parse(e["detail"].get<std::string>()));
    }
    REQUIRE(pushed.size() == 1);
    CHECK(pushed[0] == json::array({client, v}));
    REQUIRE_FALSE(pulled.empty());
    CHECK(std::find(pulled.back().begin(), pulled.back().end(), json(v)) != pulled.back().end());
}

TEST_CASE("a push repeated after a lost answer is harmless") {
    Organisation org;
    auto phone = org.device("aoi");
    const auto client = phone->create("client", {{"pseudonym", "K-002"}, {"area", "kita"}});
    auto batch = phone->device->prepare_push();
    REQUIRE(batch.is_ok());
    json wire = *batch;
    const double commits_before = metric(*org.admin, "tsunagu_store_commits_total");
    const double writes_before = metric(*org.admin, "tsunagu_store_committed_writes_total");
    Reply first = phone->client.post("/v1/sync/push", {{"changes", wire["changes"]}});
    Reply again = phone->client.post("/v1/sync/push", {{"changes", wire["changes"]}});
    REQUIRE(first.status == 200);
    REQUIRE(again.status == 200);
    // Each push was a write committed (alone or in a group), and /metrics counts both.
    CHECK(metric(*org.admin, "tsunagu_store_committed_writes_total") >= writes_before + 2);
    CHECK(metric(*org.admin, "tsunagu_store_commits_total") >= commits_before + 1);
    CHECK(first.body["outcomes"][0]["status"] == "accepted");
    CHECK(again.body["outcomes"][0]["status"] == "duplicate");
    CHECK(again.body["outcomes"][0]["seq"] == first.body["outcomes"][0]["seq"]);
    phone->sync();
    auto other = org.device("sato");
    other->sync();
    CHECK(other->holds(client));
}

TEST_CASE("scopes: workers hold their caseload, supervisors their area, admins no care records") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-003"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();

    auto ben = org.device("ben");    // same area, not assigned
    auto sato = org.device("sato");  // Kita's supervisor
    auto mori = org.device("mori");  // Minami's supervisor
    auto chie = org.device("chie");  // a worker of Minami
    for (auto* d : {ben.get(), sato.get(), mori.get(), chie.get()}) d->sync();
    CHECK_FALSE(ben->holds(v));
    CHECK(sato->holds(client));
    CHECK(sato->holds(v));
    CHECK_FALSE(mori->holds(v));
    CHECK_FALSE(chie->holds(client));

    SECTION("writing outside one's scope is refused, and the refusal is reported") {
        json forged = json::parse(aoi->last_push.dump());  // a shape to copy
        auto bens_visit = ben->create("home_visit", visit(client, "2020-07-01"));
        auto batch = ben->device->prepare_push();
        REQUIRE(batch.is_ok());
        json wire = *batch;
        Reply r = ben->client.post("/v1/sync/push", {{"changes", wire["changes"]}});
        REQUIRE(r.status == 200);
        CHECK(r.body["outcomes"][0]["status"] == "refused");
        CHECK(r.body["outcomes"][0]["code"] == "forbidden");
        sato->sync();
        CHECK_FALSE(sato->holds(bens_visit));
    }
    SECTION("supervisor endpoints follow the same scope; other roles are refused") {
        CHECK(sato->client.get("/v1/records/" + v).status == 200);
        CHECK(mori->client.get("/v1/records/" + v).status == 404);
        CHECK(aoi->client.get("/v1/records/" + v).status == 403);
        CHECK(org.admin->get("/v1/records/" + v).status == 403);
        CHECK(org.admin->post("/v1/sync/pull", {{"after", 0}}).status == 403);
        CHECK(org.admin->post("/v1/sync/push", {{"changes", json::array()}}).status == 403);
        json listed = sato->client.get("/v1/records?collection=home_visit").body["records"];
        REQUIRE(listed.size() == 1);
        CHECK(listed[0]["id"] == v);
        CHECK(listed[0].contains("observations") == false);
        CHECK(mori->client.get("/v1/records?collection=home_visit").body["records"].empty());
        // Lists show no content, but whose records of which clients: who listed what is on the
        // trail, as the directory of clients' pseudonyms is.
        REQUIRE(sato->client.get("/v1/web/directory").status == 200);
        REQUIRE(sato->client.get("/v1/refused").status == 200);
        bool listing = false, directory = false, refused = false;
        const json trail = org.admin->get("/v1/admin/audit?user_id=" + org.ids["sato"] + "&limit=1000").body["entries"];
        for (const json& e : trail) {
            const json detail = json::parse(e["detail"].get<std::string>(), nullptr, false);
            if (e["action"] == "records.list") {
                listing = listing || (detail["filters"]["collection"] == "home_visit" && detail["shown"] == 1);
            }
            if (e["action"] == "directory.read") {  // whose pseudonyms were read
                for (const json& id : detail.value("ids", json::array())) directory = directory || id == client;
            }
            refused = refused || (e["action"] == "refused.list" && detail["status"] == "open");
        }
        CHECK(listing);
        CHECK(directory);
        CHECK(refused);
    }
}

TEST_CASE("a push cut off in the middle of its body applies nothing and the same push sent whole is taken once") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-014"}, {"area", "kita"}});
    aoi->sync();
    std::vector<std::string> visits;
    for (int i = 0; i < 20; ++i) visits.push_back(aoi->create("home_visit", visit(client)));
    auto batch = aoi->device->prepare_push(200);
    REQUIRE(batch.is_ok());
    const std::string body = json{{"changes", json(*batch)["changes"]}}.dump();

    // The network drops while the phone is sending: half the body arrives, then the connection ends.
    {
        const tsunagu::UniqueFd cut = connect_loopback(org.server.port());
        send_all(cut, request_head(org.server.port(), "POST", "/v1/sync/push", aoi->client.token, body.size()) +
                          body.substr(0, body.size() / 2));
    }
    CHECK(org.admin->get("/healthz").status == 200);
    auto sato = org.device("sato");
    sato->sync();
    for (const auto& v : visits) CHECK_FALSE(sato->holds(v));

    // The phone sends it again, whole: every visit is taken, once.
    sync_and_check_taken_once(*aoi, *sato, visits);
}

TEST_CASE("reassigning a client moves its records on the next sync") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-004"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    auto ben = org.device("ben");
    ben->sync();
    CHECK_FALSE(ben->holds(v));

    org.assign(client, org.kita, {"ben"});
    // The trail says to whom: a client handed to a colluding worker shows there.
    const json trail = org.admin->get("/v1/admin/audit?target=" + client).body["entries"];
    REQUIRE_FALSE(trail.empty());
    CHECK(trail.back()["action"] == "admin.caseload_assigned");
    CHECK(json::parse(trail.back()["detail"].get<std::string>()) ==
          json{{"team_id", org.kita}, {"worker_ids", {org.ids["ben"]}}});
    // Reading who looks after the client, and reading the trail itself, are on the trail too.
    const std::string admin_id = org.admin->get("/v1/me").body["user"]["id"];
    REQUIRE(org.admin->get("/v1/admin/clients/" + client + "/caseload").status == 200);
    const json reads = org.admin->get("/v1/admin/audit?target=" + client).body["entries"];
    REQUIRE(reads.size() == trail.size() + 1);
    CHECK(reads.back()["action"] == "admin.caseload_read");
    CHECK(reads.back()["user_id"] == admin_id);
    bool trail_read = false;
    const json admins_steps = org.admin->get("/v1/admin/audit?user_id=" + admin_id + "&limit=1000").body["entries"];
    for (const json& e : admins_steps) {
        if (e["action"] != "admin.audit_read") continue;
        const json detail = json::parse(e["detail"].get<std::string>());
        trail_read = trail_read || (detail["filters"] == json{{"target", client}} && detail["shown"] == trail.size());
    }
    CHECK(trail_read);
    // Paging through the whole trail comes to an end: a page of nothing but readings of the
    // trail is not itself recorded.
    std::int64_t after = 0;
    int pages = 0;
    for (; pages < 50; ++pages) {
        const json page = org.admin->get("/v1/admin/audit?limit=1000&after=" + std::to_string(after)).body["entries"];
        if (page.empty()) break;
        after = page.back()["seq"];
    }
    CHECK(pages < 50);
    json page = aoi->sync();
    CHECK_FALSE(aoi->holds(client));
    CHECK_FALSE(aoi->holds(v));
    ben->sync();
    CHECK(ben->holds(client));
    CHECK(ben->holds(v));
}

namespace {

// A push of one create prepared on `phone`, renamed to `record`: what a hostile or broken device
// could send for a record it did not make.
Reply push_create_named(SyncedDevice& phone, const std::string& collection, const json& fields,
                        const std::string& record) {
    phone.create(collection, fields);
    auto batch = phone.device->prepare_push();
    REQUIRE(batch.is_ok());
    json changes = json(*batch)["changes"];
    REQUIRE(changes.size() == 1);
    changes[0]["record"] = record;
    return phone.client.post("/v1/sync/push", {{"changes", changes}});
}

}  // namespace

TEST_CASE("a create naming a client the server holds does not give it, or its records, to the pusher") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-010"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    org.assign(client, "", {});  // left unassigned, as the caseload page's "none" leaves it

    auto chie = org.device("chie");  // another area
    Reply r = push_create_named(*chie, "client", {{"pseudonym", "taken"}, {"area", "minami"}}, client);
    REQUIRE(r.status == 200);
    CHECK(r.body["outcomes"][0]["status"] == "refused");
    CHECK(r.body["outcomes"][0]["cause"] == "outside_scope");  // it says no more than that
    Reply caseload = org.admin->get("/v1/admin/clients/" + client + "/caseload");
    CHECK(caseload.body["team_id"] == "");
    CHECK(caseload.body["worker_ids"].empty());
    chie->sync();
    CHECK_FALSE(chie->holds(client));
    CHECK_FALSE(chie->holds(v));
}

TEST_CASE("a client adopted for a create the push refuses is given up again") {
    Organisation org;
    auto aoi = org.device("aoi");
    auto batch_phone = org.device("aoi");
    batch_phone->create("client", {{"pseudonym", "K-011"}, {"area", "kita"}});
    auto batch = batch_phone->device->prepare_push();
    REQUIRE(batch.is_ok());
    json changes = json(*batch)["changes"];
    const std::string client = changes[0]["record"];
    changes[0]["set"]["pseudonym"] = 42;  // a value the schema refuses
    Reply r = batch_phone->client.post("/v1/sync/push", {{"changes", changes}});
    REQUIRE(r.status == 200);
    CHECK(r.body["outcomes"][0]["status"] == "refused");
    Reply caseload = org.admin->get("/v1/admin/clients/" + client + "/caseload");
    CHECK(caseload.body["team_id"] == "");
    CHECK(caseload.body["worker_ids"].empty());
}

TEST_CASE("a push creating several clients gives each to its worker and area, and gives up the one refused") {
    Organisation org;
    auto phone = org.device("aoi");
    for (const char* pseudonym : {"K-021", "K-022", "K-023"}) phone->create("client", {{"pseudonym", pseudonym}, {"area", "kita"}});
    auto batch = phone->device->prepare_push();
    REQUIRE(batch.is_ok());
    json changes = json(*batch)["changes"];
    REQUIRE(changes.size() == 3);
    changes[2]["set"]["pseudonym"] = 42;  // a value the schema refuses
    Reply r = phone->client.post("/v1/sync/push", {{"changes", changes}});
    REQUIRE(r.status == 200);
    CHECK(r.body["outcomes"][0]["status"] == "accepted");
    CHECK(r.body["outcomes"][1]["status"] == "accepted");
    CHECK(r.body["outcomes"][2]["status"] == "refused");
    for (int i = 0; i < 2; ++i) {
        Reply caseload = org.admin->get("/v1/admin/clients/" + changes[i]["record"].get<std::string>() + "/caseload");
        CHECK(caseload.body["team_id"] == org.kita);
        CHECK(caseload.body["worker_ids"] == json::array({org.ids["aoi"]}));
    }
    Reply released = org.admin->get("/v1/admin/clients/" + changes[2]["record"].get<std::string>() + "/caseload");
    CHECK(released.body["team_id"] == "");
    CHECK(released.body["worker_ids"].empty());
    // Her supervisor's scope took both at once: both are in her list.
    std::set<std::string> listed;
    Reply list = org.device("sato")->client.get("/v1/records?collection=client");
    INFO(list.body.dump());
    for (const json& row : list.body["records"]) {
        listed.insert(row["id"].get<std::string>());
    }
    CHECK(listed.contains(changes[0]["record"].get<std::string>()));
    CHECK(listed.contains(changes[1]["record"].get<std::string>()));
}

TEST_CASE("a create naming a colleague's record is refused and the record keeps its owner") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-012"}, {"area", "kita"}});
    aoi->sync();
    org.assign(client, org.kita, {"aoi", "ben"});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();

    auto ben = org.device("ben");
    ben->sync();
    REQUIRE(ben->holds(v));
    Reply r = push_create_named(*ben, "home_visit", visit(client, "2020-06-02"), v);
    REQUIRE(r.status == 200);
    CHECK(r.body["outcomes"][0]["status"] == "refused");
    CHECK(r.body["outcomes"][0]["cause"] == "already_exists");
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    Reply record = sato.get("/v1/records/" + v);
    REQUIRE(record.status == 200);
    CHECK(record.body["record"]["owner"] == org.ids["aoi"]);
    CHECK(record.body["record"]["fields"]["date"] == "2020-06-01");
}

TEST_CASE("a record whose optional client was cleared stays listed and never breaks the supervisor's inbox") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-016"}, {"area", "kita"}});
    const auto dispatch = aoi->create("peer_support_dispatch", {{"date", "2020-06-05"},
                                                                {"duration_min", 60},
                                                                {"peer_supporters", json::array({aoi->user_id})},
                                                                {"format", "individual"},
                                                                {"request_source", "本人・在宅"},
                                                                {"client", client},
                                                                {"review_status", "submitted"}});
    aoi->sync();
    REQUIRE(aoi->device->update(dispatch, {{"client", nullptr}}).is_ok());
    aoi->sync();
    REQUIRE(aoi->last_push["outcomes"][0]["status"] == "accepted");

    auto sato = org.device("sato");
    for (const std::string query : {"", "?collection=peer_support_dispatch&from=2020-06-01&status=submitted"}) {
        Reply list = sato->client.get("/v1/records" + query);
        REQUIRE(list.status == 200);
        json row;
        for (const auto& r : list.body["records"]) {
            if (r["id"] == dispatch) row = r;
        }
        REQUIRE(row.is_object());
        CHECK(row["client"] == "");
        CHECK(row["date"] == "2020-06-05");
        CHECK(row["review_status"] == "submitted");
    }
}

TEST_CASE("a supervisor's own device cannot approve by sync: approving goes through the review and its checks") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-015"}, {"area", "kita"}});
    json draft = visit(client);
    draft["review_status"] = "draft";
    const auto visit_id = aoi->create("home_visit", draft);
    aoi->sync();
    auto sato = org.device("sato");
    sato->sync();
    REQUIRE(sato->holds(visit_id));

    // Approving a draft by sync would skip the review, which approves only submitted records.
    REQUIRE(sato->device->update(visit_id, {{"review_status", "approved"}}).is_ok());
    sato->sync();
    json outcome = sato->last_push["outcomes"][0];
    CHECK(outcome["status"] == "refused");
    CHECK(outcome["cause"] == "rule");
    CHECK_THAT(outcome["reason"].get<std::string>(), Catch::Contains("only a supervisor approves") &&
                                                         Catch::Contains("/review"));
    // So does a record created already approved, or a review comment written by sync.
    json approved_visit = visit(client, "2020-06-03");
    approved_visit["review_status"] = "approved";
    sato->create("home_visit", approved_visit);
    sato->sync();
    CHECK(sato->last_push["outcomes"][0]["status"] == "refused");
    Reply record = sato->client.get("/v1/records/" + visit_id);
    REQUIRE(record.status == 200);
    CHECK(record.body["record"]["fields"]["review_status"] == "draft");
    CHECK(sato->client.post("/v1/records/" + visit_id + "/review", {{"decision", "approve"}}).status == 409);

    // Once submitted, the review approves it, and the record is then locked for every sync.
    REQUIRE(aoi->device->update(visit_id, {{"review_status", "submitted"}}).is_ok());
    aoi->sync();
    CHECK(sato->client.post("/v1/records/" + visit_id + "/review", {{"decision", "approve"}}).status == 200);
    sato->sync();
    REQUIRE(sato->device->update(visit_id, {{"duration_min", 50}}).is_ok());
    sato->sync();
    outcome = sato->last_push["outcomes"][0];
    CHECK(outcome["status"] == "refused");
    CHECK_THAT(outcome["reason"].get<std::string>(), Catch::Contains("locked"));
}

TEST_CASE("a record is approved only with the numbers the yearly report adds up") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto meeting = aoi->create("meeting", {{"kind", "post_discharge_liaison"}, {"date", "2020-11-05"},
                                                 {"review_status", "submitted"}});
    aoi->sync();
    auto sato = org.device("sato");
    Reply refused = sato->client.post("/v1/records/" + meeting + "/review", {{"decision", "approve"}});
    CHECK(refused.status == 409);
    CHECK(refused.body["error"] == "incomplete_for_report");
    CHECK_THAT(refused.body["message"].get<std::string>(), Catch::Contains("organisations, participants"));
    // Returning it needs nothing more; once its author fills the numbers in, it is approved.
    REQUIRE(aoi->device->update(meeting, {{"organisations", 14}, {"participants", 28}}).is_ok());
    aoi->sync();
    CHECK(sato->client.post("/v1/records/" + meeting + "/review", {{"decision", "approve"}}).status == 200);
}

TEST_CASE("a training course is approved only once it has ended") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto course = aoi->create("training_course", {{"course", "ピアサポーター養成講座"},
                                                        {"course_kind", "peer_supporter_training"},
                                                        {"start_date", "2020-11-05"}, {"end_date", "2099-03-31"},
                                                        {"enrolled", 12}, {"completed", 10},
                                                        {"review_status", "submitted"}});
    aoi->sync();
    auto sato = org.device("sato");
    Reply refused = sato->client.post("/v1/records/" + course + "/review", {{"decision", "approve"}});
    CHECK(refused.status == 409);
    CHECK(refused.body["error"] == "incomplete_for_report");
    CHECK_THAT(refused.body["message"].get<std::string>(), Catch::Contains("end_date 2099-03-31 is after today"));
    REQUIRE(aoi->device->update(course, {{"end_date", "2020-12-15"}}).is_ok());
    aoi->sync();
    CHECK(sato->client.post("/v1/records/" + course + "/review", {{"decision", "approve"}}).status == 200);
}

TEST_CASE("a supervisor approves one record and returns another, and the worker's device sees both") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-005"}, {"area", "kita"}});
    const auto first = aoi->create("home_visit", visit(client, "2020-06-01"));
    const auto second = aoi->create("home_visit", visit(client, "2020-06-02"));
    aoi->sync();
    auto sato = org.device("sato");
    // The worker's phone syncs an edit while the supervisor reads the record: approving what she
    // read is refused, and approving what she then reads again is not.
    const std::string read_before = sato->client.get("/v1/records/" + first).body["version"];
    REQUIRE(aoi->device->update(first, {{"observations", "帰り際に追記"}}).is_ok());
    aoi->sync();
    Reply stale = sato->client.post("/v1/records/" + first + "/review", {{"decision", "approve"}, {"seen", read_before}});
    CHECK(stale.status == 409);
    CHECK(stale.body["error"] == "changed_since_read");
    Reply read_again = sato->client.get("/v1/records/" + first);
    CHECK(read_again.body["record"]["fields"]["review_status"] == "submitted");
    CHECK(read_again.body["version"] != read_before);
    CHECK(sato->client.post("/v1/records/" + first + "/review", {{"decision", "approve"}, {"seen", read_again.body["version"]}})
              .status == 200);
    Reply no_comment = sato->client.post("/v1/records/" + second + "/review", {{"decision", "return"}});
    CHECK(no_comment.status == 400);
    CHECK(sato->client.post("/v1/records/" + second + "/review",
                            {{"decision", "return"}, {"comment", "add the duration of the call"}})
              .status == 200);
    CHECK(sato->client.post("/v1/records/" + first + "/review", {{"decision", "approve"}}).status == 409);
    aoi->sync();
    auto approved = aoi->device->get(first);
    auto returned = aoi->device->get(second);
    REQUIRE(approved.is_ok());
    REQUIRE(returned.is_ok());
    CHECK((*approved)->fields["review_status"] == "approved");
    CHECK((*returned)->fields["review_status"] == "returned");
    CHECK((*returned)->fields["review_comment"] == "add the duration of the call");
    json history = sato->client.get("/v1/records/" + second).body["history"];
    CHECK(history.size() >= 2);
}

TEST_CASE("a read or a review the audit trail cannot record is refused, and the review is undone") {
    Organisation org;
    auto phone = org.device("aoi");
    const auto client = phone->create("client", {{"pseudonym", "K-AUDIT"}, {"area", "kita"}});
    const auto v = phone->create("home_visit", visit(client));
    phone->sync();
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);

    // The trail refuses these two actions from now on: a trigger put into the store (offline, for
    // the embedded store; on PostgreSQL, by its administrator).
    auto with_store = [&](const std::string& sqlite_sql, const std::string& postgres_sql) {
        if (testing_on_postgres()) {
            postgres_for(org.dir.file("data")).load("postgres", postgres_sql);
            return;
        }
        const int port = org.server.port();
        org.server.stop(SIGTERM);
        {
            auto key = tsunagu::KeySource::key_file(org.dir.file("data/tsunagu.key"));
            REQUIRE(key.is_ok());
            auto store = tsunagu::Store::open(org.dir.file("data/tsunagu.db"), *key);
            REQUIRE(store.is_ok());
            REQUIRE(store->exec(sqlite_sql).is_ok());
        }
        org.server.start({}, port);
    };
    with_store("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit WHEN NEW.action IN ('record.read', "
               "'record.review') BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
               "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.action IN "
               "('record.read', 'record.review') THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; "
               "END $$; CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION "
               "refuse_audit();");

    Reply read = sato.get("/v1/records/" + client);
    CHECK(read.status == 500);
    CHECK(read.raw.find("K-AUDIT") == std::string::npos);
    Reply reviewed = sato.post("/v1/records/" + v + "/review", {{"decision", "approve"}});
    CHECK(reviewed.status == 500);

    with_store("DROP TRIGGER refuse_audit", "DROP TRIGGER refuse_audit ON audit;");
    Reply after = sato.get("/v1/records/" + v);
    REQUIRE(after.status == 200);
    CHECK(after.body["record"]["fields"]["review_status"] == "submitted");  // the approval was undone
}

TEST_CASE("concurrent offline edits become a conflict the supervisor resolves, and devices converge") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-006"}, {"area", "kita"}});
    org.assign(client, org.kita, {"aoi", "ben"});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    org.assign(client, org.kita, {"aoi", "ben"});
    auto ben = org.device("ben");
    ben->sync();
    REQUIRE(ben->holds(v));

    REQUIRE(aoi->device->update(v, {{"duration_min", 60}}).is_ok());
    REQUIRE(ben->device->update(v, {{"duration_min", 90}}).is_ok());
    aoi->sync();
    ben->sync();
    aoi->sync();

    auto sato = org.device("sato");
    json conflicts = sato->client.get("/v1/conflicts").body["conflicts"];
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0]["field"] == "duration_min");
    // The list shows both values: a read of the record, audited as one.
    const json audit = org.admin->get("/v1/admin/audit").body["entries"];
    const auto listed = std::find_if(audit.begin(), audit.end(), [](const json& e) { return e["action"] == "conflicts.read"; });
    REQUIRE(listed != audit.end());
    CHECK((*listed)["user_id"] == org.ids["sato"]);
    CHECK(json::parse((*listed)["detail"].get<std::string>()) == json::array({v}));
    CHECK(org.device("mori")->client.get("/v1/conflicts").body["conflicts"].empty());
    // An edit synced after the list was read: a resolution sent with what the supervisor saw is
    // refused, and changes nothing, until she has read the record again.
    REQUIRE(ben->device->update(v, {{"observations", "電話で様子を確認"}}).is_ok());
    ben->sync();
    Reply stale = sato->client.post("/v1/conflicts/resolve", {{"record", v},
                                                              {"field", "duration_min"},
                                                              {"value", 75},
                                                              {"seen", conflicts[0]["record_version"]}});
    CHECK(stale.status == 409);
    CHECK(stale.body["error"] == "changed_since_read");
    conflicts = sato->client.get("/v1/conflicts").body["conflicts"];
    REQUIRE(conflicts.size() == 1);
    Reply resolved = sato->client.post("/v1/conflicts/resolve", {{"record", v},
                                                                 {"field", "duration_min"},
                                                                 {"value", 75},
                                                                 {"seen", conflicts[0]["record_version"]}});
    REQUIRE(resolved.status == 200);
    aoi->sync();
    ben->sync();
    CHECK((*aoi->device->get(v))->fields["duration_min"] == 75);
    CHECK((*ben->device->get(v))->fields["duration_min"] == 75);
    CHECK((*aoi->device->conflicts()).empty());
    CHECK(sato->client.get("/v1/conflicts").body["conflicts"].empty());
}

TEST_CASE("invalid change sets are refused naming the field, and oversized batches with 413") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-007"}, {"area", "kita"}});
    aoi->sync();
    auto batch_shape = aoi->last_push;
    json change = {{"id", tsunagu::sync::new_id()}, {"collection", "home_visit"},
                   {"record", tsunagu::sync::new_id()}, {"hlc", "1750000000000-0"},
                   {"replica", aoi->client.device_id}, {"user", aoi->user_id}, {"schema", 1},
                   {"create", true},
                   {"set", {{"client", client}, {"date", "2020-02-30"}, {"duration_min", 30},
                            {"purpose", "check_in"}}}};
    Reply r = aoi->client.post("/v1/sync/push", {{"changes", json::array({change})}});
    REQUIRE(r.status == 200);
    CHECK(r.body["outcomes"][0]["status"] == "refused");
    CHECK(r.body["outcomes"][0]["reason"].get<std::string>().find("date") != std::string::npos);

    Reply malformed = aoi->client.post("/v1/sync/push", {{"changes", json::array({{{"id", "nope"}}})}});
    CHECK(malformed.status == 400);
    json many = json::array();
    for (int i = 0; i < 1001; ++i) many.push_back(change);
    CHECK(aoi->client.post("/v1/sync/push", {{"changes", many}}).status == 413);
    CHECK(aoi->client.get("/v1/sync/pull?after=-1").status == 400);
    CHECK(aoi->client.get("/v1/sync/pull?after=0&limit=999999").status == 400);
    Reply floor = aoi->client.post("/v1/sync/pull", {{"after", 0}, {"outbox_floor", -1}});
    CHECK(floor.status == 400);
    CHECK(floor.body["message"].get<std::string>().find("outbox_floor") != std::string::npos);
}

TEST_CASE("malformed wrong-typed and oversized push bodies are refused whole and change nothing the server holds") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-015"}, {"area", "kita"}});
    const auto first = aoi->create("home_visit", visit(client));
    aoi->sync();
    std::vector<std::string> waiting;
    for (int i = 0; i < 5; ++i) waiting.push_back(aoi->create("home_visit", visit(client, "2020-06-0" + std::to_string(i + 2))));
    auto batch = aoi->device->prepare_push(200);
    REQUIRE(batch.is_ok());
    const json changes = json(*batch)["changes"];
    const std::string valid = json{{"changes", changes}}.dump();

    json wrong_type = changes;
    wrong_type[2]["schema"] = "one";
    json unknown_field = {{"changes", changes}, {"priority", "high"}};
    json bad_utf8 = changes;
    bad_utf8[1]["set"]["observations"] = "placeholder";
    std::string invalid_utf8 = json{{"changes", bad_utf8}}.dump();
    invalid_utf8.replace(invalid_utf8.find("placeholder"), 11, "bad \xff\xfe byte");
    std::string deep = "{\"changes\": [" + std::string(5000, '[') + std::string(5000, ']') + "]}";
    json many = json::array();
    for (int i = 0; i < 1001; ++i) many.push_back(changes[0]);
    const std::vector<std::pair<std::string, std::string>> bodies = {
        {"cut short", valid.substr(0, valid.size() / 2)},
        {"not JSON", "changes=" + valid},
        {"changes not a list", json{{"changes", "all of them"}}.dump()},
        {"a change's field of the wrong type", json{{"changes", wrong_type}}.dump()},
        {"an unknown field", unknown_field.dump()},
        {"invalid UTF-8", invalid_utf8},
        {"nested 5000 deep", deep},
        {"1001 changes", json{{"changes", many}}.dump()},
    };
    for (const auto& [what, body] : bodies) {
        INFO(what);
        Reply r = aoi->client.raw("POST", "/v1/sync/push", body);
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(r.body.contains("error"));
        CHECK_FALSE(r.body.value("message", "").empty());
    }

    // Nothing of them was taken, nor kept as refused: the server holds what it held.
    auto sato = org.device("sato");
    sato->sync();
    CHECK(sato->holds(first));
    for (const auto& v : waiting) CHECK_FALSE(sato->holds(v));
    CHECK(sato->client.get("/v1/refused").body["refused"].empty());
    CHECK(org.admin->get("/healthz").status == 200);
    // The phone's own push then goes through, once.
    sync_and_check_taken_once(*aoi, *sato, waiting);
}

TEST_CASE("a store altered while the server was stopped is refused where it was altered and says nothing of its insides") {
    if (testing_on_postgres()) return;  // the embedded store's file
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-016"}, {"area", "kita"}});
    for (int i = 0; i < 300; ++i) {
        json v = visit(client);
        v["observations"] = "MARKER-CONTENT " + std::string(300, 'o');
        aoi->create("home_visit", v);
    }
    aoi->sync();
    const int port = org.server.port();
    REQUIRE(WEXITSTATUS(org.server.stop(SIGTERM)) == 0);  // its last checkpoint: all in the main file

    // Someone with the disk (a stolen backup put back, a curious administrator) flips a byte in
    // the middle of the store's records: a page the records list reads (which one, the test
    // reads with the server's key: SQLite's page statistics).
    const std::string path = org.dir.file("data") + "/tsunagu.db";
    REQUIRE((!std::filesystem::exists(path + "-wal") || std::filesystem::file_size(path + "-wal") == 0));
    std::int64_t records_page = 0;
    {
        auto key = tsunagu::KeySource::key_file(org.dir.file("data") + "/tsunagu.key");
        REQUIRE(key);
        auto store = tsunagu::Store::open(path, *key);
        REQUIRE(store);
        std::vector<std::int64_t> pages;
        auto q = store->prepare("SELECT pageno FROM dbstat WHERE name = 'sync_records' AND pagetype = 'leaf' ORDER BY pageno");
        REQUIRE(q);
        while (*q->step()) pages.push_back(q->column_int(0));
        REQUIRE(pages.size() > 10);
        records_page = pages[pages.size() / 2];
    }
    REQUIRE((!std::filesystem::exists(path + "-wal") || std::filesystem::file_size(path + "-wal") == 0));
    {
        std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
        REQUIRE(file);
        const auto middle = static_cast<std::streamoff>(tsunagu::crypto_detail::kHeaderBytes +
                                                        (records_page - 1) * tsunagu::crypto_detail::kPageSize +
                                                        tsunagu::crypto_detail::kPageSize / 2);
        file.seekg(middle);
        const char byte = static_cast<char>(file.get());
        file.seekp(middle);
        file.put(static_cast<char>(~byte));
    }
    org.server.start({}, port);
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    Reply listed = sato.get("/v1/records?collection=home_visit");
    INFO(listed.raw);
    CHECK(listed.status == 500);
    CHECK(listed.body["error"] == "store_damaged");
    CHECK(listed.raw.find("MARKER-CONTENT") == std::string::npos);
    CHECK(listed.raw.find("tsunagu.db") == std::string::npos);
    CHECK(listed.raw.find("page") == std::string::npos);
    // The operator learns what happened and what to do from the log, which holds no content either.
    std::ifstream in(org.dir.file("server.log"));
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(log.find("store_damaged") != std::string::npos);
    CHECK(log.find("restore the latest backup") != std::string::npos);
    CHECK(log.find("MARKER-CONTENT") == std::string::npos);
}

TEST_CASE("a refused change is kept for the worker's supervisors until it is accepted and they read it and dismiss it") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-013"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    // Offline, aoi adds to her visit; meanwhile the client moves to ben, so the server refuses it.
    REQUIRE(aoi->device->update(v, {{"observations", "MARKER-REFUSED asked about the night shift"}}).is_ok());
    org.assign(client, org.kita, {"ben"});
    auto batch = aoi->device->prepare_push();
    REQUIRE(batch.is_ok());
    const json changes = json(*batch)["changes"];
    Reply refused = aoi->client.post("/v1/sync/push", {{"changes", changes}});
    REQUIRE(refused.status == 200);
    REQUIRE(refused.body["outcomes"][0]["status"] == "refused");
    const std::string change_id = changes[0]["id"];

    ApiClient sato(org.server.url()), mori(org.server.url()), worker(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    REQUIRE(mori.sign_in("mori", "mori-password-1").status == 200);
    REQUIRE(worker.sign_in("aoi", "aoi-password-1").status == 200);
    Reply listed = sato.get("/v1/refused");
    REQUIRE(listed.status == 200);
    REQUIRE(listed.body["refused"].size() == 1);
    const json entry = listed.body["refused"][0];
    CHECK(entry["change_id"] == change_id);
    CHECK(entry["record"] == v);
    CHECK(entry["worker"] == org.ids["aoi"]);
    CHECK(entry["device"] == aoi->client.device_id);
    CHECK(entry["code"] == "forbidden");
    CHECK(entry["cause"] == "outside_scope");
    CHECK(entry["times"] == 1);
    CHECK(entry["status"] == "open");
    CHECK_FALSE(entry.contains("change"));  // a list never shows content, nor a reason quoting it
    CHECK_FALSE(entry.contains("reason"));
    // Read whole by its team's supervisor only, and audited; another team's sees nothing.
    Reply whole = sato.get("/v1/refused/" + change_id);
    REQUIRE(whole.status == 200);
    CHECK(whole.body["refused"]["change"]["set"]["observations"] == "MARKER-REFUSED asked about the night shift");
    CHECK(whole.body["refused"]["reason"].get<std::string>().find("scope") != std::string::npos);
    CHECK(mori.get("/v1/refused").body["refused"].empty());
    CHECK(mori.get("/v1/refused/" + change_id).status == 404);
    CHECK(mori.post("/v1/refused/" + change_id + "/dismiss", {{"comment", "no"}}).status == 404);
    CHECK(worker.get("/v1/refused").status == 403);
    CHECK(org.admin->get("/v1/refused").status == 403);
    CHECK(sato.get("/v1/refused?status=everything").status == 400);
    CHECK(sato.get("/v1/refused?limit=0").status == 400);
    // A list cut at its limit says how many there are.
    CHECK(sato.get("/v1/refused").body["total"] == 1);
    CHECK(sato.get("/v1/refused?status=dismissed").body["total"] == 0);
    CHECK(org.admin->get("/v1/admin/audit").body.dump().find("refused.read") != std::string::npos);

    // Sent again (the device retries when its record changes): counted, still one entry.
    REQUIRE(aoi->client.post("/v1/sync/push", {{"changes", changes}}).body["outcomes"][0]["status"] == "refused");
    CHECK(sato.get("/v1/refused").body["refused"][0]["times"] == 2);
    CHECK(metric(*org.admin, "tsunagu_sync_refusals_kept_total") == 2);

    // Dismissed with a comment: it stays, listed as dismissed, and a retry hears the comment.
    CHECK(sato.post("/v1/refused/" + change_id + "/dismiss", json::object()).status == 400);
    CHECK(sato.post("/v1/refused/" + change_id + "/dismiss", {{"comment", "  \n"}}).status == 400);
    Reply dismissed = sato.post("/v1/refused/" + change_id + "/dismiss", {{"comment", "ben visits her now"}});
    REQUIRE(dismissed.status == 200);
    CHECK(sato.post("/v1/refused/" + change_id + "/dismiss", {{"comment", "again"}}).status == 409);
    CHECK(sato.get("/v1/refused").body["refused"].empty());
    REQUIRE(sato.get("/v1/refused?status=dismissed").body["refused"].size() == 1);
    CHECK(sato.get("/v1/refused/" + change_id).body["refused"]["comment"] == "ben visits her now");
    Reply retried = aoi->client.post("/v1/sync/push", {{"changes", changes}});
    CHECK(retried.body["outcomes"][0]["status"] == "refused");
    CHECK(retried.body["outcomes"][0]["reason"].get<std::string>().find("ben visits her now") != std::string::npos);
    CHECK(sato.get("/v1/refused?status=dismissed").body["refused"][0]["status"] == "dismissed");

    // The client comes back to aoi: the change is accepted, and no longer kept.
    org.assign(client, org.kita, {"aoi"});
    Reply accepted = aoi->client.post("/v1/sync/push", {{"changes", changes}});
    CHECK(accepted.body["outcomes"][0]["status"] == "accepted");
    CHECK(sato.get("/v1/refused?status=dismissed").body["refused"].empty());
    CHECK(sato.get("/v1/refused/" + change_id).status == 404);
    CHECK(sato.get("/v1/records/" + v).body["record"]["fields"]["observations"] ==
          "MARKER-REFUSED asked about the night shift");

    org.server.stop(SIGTERM);
    const std::string log = [&] {
        std::ifstream in(org.dir.file("server.log"));
        return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }();
    CHECK(log.find("MARKER") == std::string::npos);
    if (std::filesystem::exists(org.dir.file("data"))) {
        for (const auto& file : std::filesystem::recursive_directory_iterator(org.dir.file("data"))) {
            std::ifstream in(file.path(), std::ios::binary);
            const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            INFO(file.path().string());
            CHECK(bytes.find("MARKER") == std::string::npos);
        }
    }
}

TEST_CASE("a worker discards a refused change: her device takes the server's version, her supervisor still sees it") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-014"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    const auto other = aoi->create("home_visit", visit(client, "2020-06-03"));
    aoi->sync();
    org.assign(client, org.kita, {"aoi", "ben"});
    // Approved, so locked for aoi; her offline addition to it is refused, and kept.
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    REQUIRE(sato.post("/v1/records/" + v + "/review", {{"decision", "approve"}}).status == 200);
    REQUIRE(aoi->device->update(v, {{"observations", "written after the approval"}}).is_ok());
    REQUIRE(aoi->device->update(other, {{"duration_min", 50}}).is_ok());
    aoi->sync();  // refused; the pull then brings the approval, so it is due again once
    aoi->sync();  // refused again, and it stays so
    REQUIRE(aoi->device->outbox(tsunagu::sync::PendingState::refused)->size() == 1);
    CHECK(aoi->device->get(v)->value().fields["observations"] == "written after the approval");

    REQUIRE(*aoi->device->discard_refused(v) == 1);
    aoi->sync();
    CHECK(aoi->device->outbox()->empty());
    const json mine = aoi->device->get(v)->value().fields;
    const json server = sato.get("/v1/records/" + v).body["record"]["fields"];
    CHECK(mine == server);
    CHECK_FALSE(mine.contains("observations"));
    CHECK(mine["review_status"] == "approved");
    CHECK(sato.get("/v1/records/" + other).body["record"]["fields"]["duration_min"] == 50);
    // What she wrote is still on the server, for her supervisor.
    Reply kept = sato.get("/v1/refused");
    REQUIRE(kept.body["refused"].size() == 1);
    CHECK(kept.body["refused"][0]["record"] == v);
    CHECK(kept.body["refused"][0]["cause"] == "rule");  // the review workflow's lock
    // A pull naming something that is not a record id is refused, and the device syncs on.
    Reply bad = aoi->client.post("/v1/sync/pull", {{"after", 0}, {"refetch", json::array({"nope"})}});
    CHECK(bad.status == 400);
    CHECK(bad.body["message"].get<std::string>().find("refetch") != std::string::npos);
    // Another area's record, named by id, is not sent: it is evicted as absent.
    auto chie = org.device("chie");
    Reply foreign = chie->client.post("/v1/sync/pull", {{"after", 0}, {"refetch", json::array({v})}});
    REQUIRE(foreign.status == 200);
    CHECK(foreign.body["records"].empty());
    CHECK(foreign.body["evicted_records"] == json::array({v}));
}

TEST_CASE("a supervisor applies the refused work of a lost phone once the cause is removed") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-015"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    ApiClient sato(org.server.url()), mori(org.server.url()), worker(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    REQUIRE(mori.sign_in("mori", "mori-password-1").status == 200);
    REQUIRE(worker.sign_in("aoi", "aoi-password-1").status == 200);
    REQUIRE(sato.post("/v1/records/" + v + "/review", {{"decision", "approve"}}).status == 200);
    // Offline, aoi adds two things to the approved visit: the lock refuses the first, and the
    // second, which builds on it, is held behind it. Both are kept.
    REQUIRE(aoi->device->update(v, {{"observations", "slept better this week"}}).is_ok());
    REQUIRE(aoi->device->update(v, {{"duration_min", 70}}).is_ok());
    aoi->sync();
    json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 2);
    std::string held_behind;
    for (const auto& k : kept) {
        if (k["cause"] == "held_behind") held_behind = k["change_id"];
    }
    REQUIRE_FALSE(held_behind.empty());

    // While the record is locked, applying refuses with the reason and what to do, and changes nothing.
    Reply locked = sato.post("/v1/refused/" + held_behind + "/apply", json::object());
    CHECK(locked.status == 409);
    CHECK(locked.body["error"] == "still_refused");
    CHECK(locked.body["message"].get<std::string>().find("(rule)") != std::string::npos);
    CHECK(locked.body["message"].get<std::string>().find("Remove the cause first") != std::string::npos);
    CHECK(sato.get("/v1/refused").body["refused"].size() == 2);
    // Only the worker's own team's supervisors may apply it.
    CHECK(mori.post("/v1/refused/" + held_behind + "/apply", json::object()).status == 404);
    CHECK(worker.post("/v1/refused/" + held_behind + "/apply", json::object()).status == 403);
    CHECK(org.admin->post("/v1/refused/" + held_behind + "/apply", json::object()).status == 403);

    // The phone is lost and revoked. The supervisor returns the visit and applies aoi's work:
    // both changes, in the order she made them, as hers.
    REQUIRE(org.admin->post("/v1/admin/devices/" + aoi->client.device_id + "/revoke", json::object()).status == 200);
    REQUIRE(sato.post("/v1/records/" + v + "/review", {{"decision", "return"}, {"comment", "add what you noted"}})
                .status == 200);
    // Aoi, signed in on a new phone, learns what the lost one left on the server: her own
    // entries, with why, never the content; nobody else's.
    ApiClient new_phone(org.server.url());
    REQUIRE(new_phone.sign_in("aoi", "aoi-password-1", "new phone").status == 200);
    Reply own = new_phone.get("/v1/sync/refused");
    REQUIRE(own.status == 200);
    REQUIRE(own.body["refused"].size() == 2);
    for (const auto& k : own.body["refused"]) {
        CHECK(k["record"] == v);
        CHECK(k["this_device"] == false);
        CHECK(k["device"] == aoi->client.device_id);
        CHECK_FALSE(k["reason"].get<std::string>().empty());
        CHECK_FALSE(k.contains("change"));
    }
    ApiClient ben(org.server.url());
    REQUIRE(ben.sign_in("ben", "ben-password-1").status == 200);
    CHECK(ben.get("/v1/sync/refused").body["refused"].empty());
    // Her own count, not her team's: Ben, in the same team, has none.
    CHECK(own.body["total"] == 2);
    CHECK(ben.get("/v1/sync/refused").body["total"] == 0);
    CHECK(new_phone.get("/v1/sync/refused?limit=1").body["refused"].size() == 1);
    CHECK(new_phone.get("/v1/sync/refused?limit=1").body["total"] == 2);
    CHECK(org.admin->get("/v1/sync/refused").status == 403);
    CHECK(new_phone.get("/v1/sync/refused?status=all").status == 400);
    Reply applied = sato.post("/v1/refused/" + held_behind + "/apply", json::object());
    INFO(applied.raw);
    REQUIRE(applied.status == 200);
    CHECK(applied.body["applied"] == 2);
    CHECK(applied.body["refused"] == 0);
    CHECK(applied.body["outcomes"].size() == 2);
    CHECK(sato.get("/v1/refused").body["refused"].empty());
    const json fields = sato.get("/v1/records/" + v).body["record"]["fields"];
    CHECK(fields["observations"] == "slept better this week");
    CHECK(fields["duration_min"] == 70);
    CHECK(org.admin->get("/v1/admin/audit").body.dump().find("refused.apply") != std::string::npos);
    CHECK(sato.post("/v1/refused/" + held_behind + "/apply", json::object()).status == 404);  // taken: gone
    CHECK(new_phone.get("/v1/sync/refused").body["refused"].empty());

    // On her new phone, aoi finds her work.
    auto replacement = org.device("aoi");
    replacement->sync();
    auto mine = replacement->device->get(v);
    REQUIRE(mine.is_ok());
    CHECK((*mine)->fields["observations"] == "slept better this week");
}

TEST_CASE("refused work follows its worker to a new team, and a supervisor applies none outside her scope") {
    Organisation org;
    auto chie = org.device("chie");  // Minami
    const auto minami_client = chie->create("client", {{"pseudonym", "M-001"}, {"area", "minami"}});
    chie->sync();
    auto ben = org.device("ben");  // Kita: a visit for a client not his, refused and kept
    const auto v = ben->create("home_visit", visit(minami_client));
    ben->sync();
    ApiClient sato(org.server.url()), mori(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    REQUIRE(mori.sign_in("mori", "mori-password-1").status == 200);
    json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 1);
    const std::string change = kept[0]["change_id"];
    // Ben's supervisor sees it listed, but its content is about Minami's client: not hers to read.
    CHECK(kept[0]["readable"] == false);
    Reply unread = sato.get("/v1/refused/" + change);
    CHECK(unread.status == 403);
    CHECK(unread.raw.find("M-001") == std::string::npos);
    CHECK(unread.raw.find(minami_client) == std::string::npos);
    CHECK(unread.body["message"].get<std::string>().find("dismiss it") != std::string::npos);
    // Nor is it hers to apply: the push's answers would tell her of Minami's record.
    Reply blind = sato.post("/v1/refused/" + change + "/apply", json::object());
    CHECK(blind.status == 403);
    CHECK(blind.raw.find(minami_client) == std::string::npos);
    CHECK(blind.raw.find("caseload") == std::string::npos);

    SECTION("ben moves to Minami: its supervisors handle his kept work, Kita's no longer see it") {
        REQUIRE(org.admin->patch("/v1/admin/users/" + org.ids["ben"], {{"team_id", org.minami}}).status == 200);
        org.assign(minami_client, org.minami, {"chie", "ben"});
        CHECK(sato.get("/v1/refused").body["refused"].empty());
        CHECK(sato.get("/v1/refused/" + change).status == 404);
        CHECK(sato.post("/v1/refused/" + change + "/apply", json::object()).status == 404);
        REQUIRE(mori.get("/v1/refused").body["refused"].size() == 1);
        CHECK(mori.get("/v1/refused").body["refused"][0]["readable"] == true);
        CHECK(mori.get("/v1/refused/" + change).status == 200);
        Reply applied = mori.post("/v1/refused/" + change + "/apply", json::object());
        INFO(applied.raw);
        REQUIRE(applied.status == 200);
        CHECK(applied.body["applied"] == 1);
        CHECK(mori.get("/v1/records/" + v).status == 200);
    }
    SECTION("ben stays in Kita but is given the Minami client: Kita's supervisor cannot write into Minami") {
        org.assign(minami_client, org.minami, {"chie", "ben"});
        Reply refused = sato.post("/v1/refused/" + change + "/apply", json::object());
        INFO(refused.raw);
        CHECK(refused.status == 403);
        CHECK(refused.body["message"].get<std::string>().find("outside your team's scope") != std::string::npos);
        CHECK(mori.get("/v1/records/" + v).status == 404);  // nothing was written
        CHECK(sato.get("/v1/refused").body["refused"].size() == 1);  // still kept
        CHECK(sato.get("/v1/refused/" + change).status == 403);    // and still not hers to read
        // She may dismiss it, with a word for ben.
        CHECK(sato.post("/v1/refused/" + change + "/dismiss", {{"comment", "Minami's visit: see Mori"}}).status == 200);
    }
}

TEST_CASE("a kept edit of a record the server does not hold is read under its create's scope or not at all") {
    Organisation org;
    auto chie = org.device("chie");  // Minami
    const auto minami_client = chie->create("client", {{"pseudonym", "M-002"}, {"area", "minami"}});
    chie->sync();
    // Offline, ben (Kita) records a visit to Minami's client and then adds to its notes. The edit
    // does not name the client: alone, it would look like a record of ben's own.
    auto ben = org.device("ben");
    const auto v = ben->create("home_visit", visit(minami_client));
    REQUIRE(ben->device->update(v, {{"observations", "話していた転居の件"}}).is_ok());
    ben->sync();
    ApiClient sato(org.server.url()), mori(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    REQUIRE(mori.sign_in("mori", "mori-password-1").status == 200);
    const json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 2);
    for (const json& k : kept) {
        INFO(k.dump());
        CHECK(k["readable"] == false);  // both are about Minami's client
        Reply unread = sato.get("/v1/refused/" + k["change_id"].get<std::string>());
        CHECK(unread.status == 403);
        CHECK(unread.raw.find("転居") == std::string::npos);
    }

    std::string create, edit;
    for (const json& k : kept) (k["cause"] == "outside_scope" ? create : edit) = k["change_id"];
    REQUIRE_FALSE(create.empty());
    REQUIRE_FALSE(edit.empty());

    SECTION("ben moves to Minami: its supervisor reads both, the edit under its create's scope") {
        REQUIRE(org.admin->patch("/v1/admin/users/" + org.ids["ben"], {{"team_id", org.minami}}).status == 200);
        const json listed = mori.get("/v1/refused").body["refused"];
        REQUIRE(listed.size() == 2);
        for (const json& k : listed) CHECK(k["readable"] == true);
        Reply read = mori.get("/v1/refused/" + edit);
        CHECK(read.status == 200);
        CHECK(read.raw.find("転居") != std::string::npos);
    }
    SECTION("the create dismissed, nothing says whose the edit is: nobody reads it") {
        REQUIRE(sato.post("/v1/refused/" + create + "/dismiss", {{"comment", "Minami's client"}}).status == 200);
        REQUIRE(org.admin->patch("/v1/admin/users/" + org.ids["ben"], {{"team_id", org.minami}}).status == 200);
        Reply unread = mori.get("/v1/refused/" + edit);
        CHECK(unread.status == 403);
        CHECK(unread.raw.find("転居") == std::string::npos);
    }
}

TEST_CASE("a kept edit that moves its record to another client is read under that client's scope") {
    Organisation org;
    auto chie = org.device("chie");  // Minami
    const auto minami_client = chie->create("client", {{"pseudonym", "M-003"}, {"area", "minami"}});
    chie->sync();
    auto ben = org.device("ben");  // Kita
    const auto kita_client = ben->create("client", {{"pseudonym", "K-018"}, {"area", "kita"}});
    ben->sync();
    // A visit to ben's client the server refuses (a date that does not exist), then an edit of it
    // that moves it to Minami's client, with notes about her.
    const std::string v = tsunagu::sync::new_id();
    auto change = [&](bool create, json set, int n) {
        return json{{"id", tsunagu::sync::new_id()}, {"collection", "home_visit"}, {"record", v},
                    {"hlc", "175000000000" + std::to_string(n) + "-0"}, {"replica", ben->client.device_id},
                    {"user", ben->user_id}, {"schema", 1}, {"create", create}, {"set", std::move(set)}};
    };
    json bad_date = visit(kita_client);
    bad_date["date"] = "2020-02-30";
    Reply pushed = ben->client.post(
        "/v1/sync/push",
        {{"changes", json::array({change(true, bad_date, 1),
                                  change(false, {{"client", minami_client}, {"observations", "南区の転居の件"}}, 2)})}});
    REQUIRE(pushed.status == 200);
    REQUIRE(pushed.body["outcomes"][0]["status"] == "refused");
    REQUIRE(pushed.body["outcomes"][1]["status"] == "refused");
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    const json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 2);
    for (const json& k : kept) {
        INFO(k.dump());
        const bool the_create = k["change_id"] == pushed.body["outcomes"][0]["change"];
        CHECK(k["readable"] == the_create);  // the create is about Kita's client, the edit Minami's
        if (!the_create) CHECK(sato.get("/v1/refused/" + k["change_id"].get<std::string>()).raw.find("転居") == std::string::npos);
    }
}

TEST_CASE("a change the supervisor applied is known to the worker's phone when it syncs again and a dismissed one is not applied") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-016"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    // The client moves to ben while aoi, offline, adds to her visit: refused, outside her caseload.
    org.assign(client, org.kita, {"ben"});
    REQUIRE(aoi->device->update(v, {{"observations", "asked for a second visit"}}).is_ok());
    aoi->sync();
    REQUIRE(aoi->device->outbox(tsunagu::sync::PendingState::refused)->size() == 1);
    json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 1);
    const std::string change_id = kept[0]["change_id"];
    CHECK(kept[0]["cause"] == "outside_scope");

    // Assigned back to aoi, the supervisor applies it before aoi's phone retries.
    org.assign(client, org.kita, {"aoi", "ben"});
    Reply applied = sato.post("/v1/refused/" + change_id + "/apply", json::object());
    REQUIRE(applied.status == 200);
    CHECK(applied.body["outcomes"][0]["status"] == "accepted");
    aoi->sync();  // the record changed on the server: the phone sends it again, and hears it is known
    aoi->sync();
    CHECK(aoi->device->outbox()->empty());
    CHECK(aoi->device->get(v)->value().fields["observations"] == "asked for a second visit");

    // A dismissed change is not applied.
    auto ben = org.device("ben");
    auto chie = org.device("chie");
    const auto theirs = chie->create("client", {{"pseudonym", "M-001"}, {"area", "minami"}});
    chie->sync();
    REQUIRE(ben->device->create("home_visit", visit(theirs)).is_ok());
    ben->sync();
    json open = sato.get("/v1/refused").body["refused"];
    REQUIRE(open.size() == 1);
    const std::string bens = open[0]["change_id"];
    REQUIRE(sato.post("/v1/refused/" + bens + "/dismiss", {{"comment", "not our client"}}).status == 200);
    Reply dismissed = sato.post("/v1/refused/" + bens + "/apply", json::object());
    CHECK(dismissed.status == 409);
    CHECK(dismissed.body["message"].get<std::string>().find("dismissed") != std::string::npos);
}

TEST_CASE("a push says how wrong the phone's clock is and the administrator sees it") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-017"}, {"area", "kita"}});
    auto batch = aoi->device->prepare_push();
    REQUIRE(batch.is_ok());
    const json changes = json(*batch)["changes"];
    // Thirty days behind: more than 32 bits of milliseconds, on both backends.
    constexpr std::int64_t kThirtyDays = 30LL * 24 * 3'600'000;
    Reply bad = aoi->client.post("/v1/sync/push", {{"changes", changes}, {"clock_offset", "a month"}});
    CHECK(bad.status == 400);
    CHECK(bad.body["message"].get<std::string>().find("clock_offset") != std::string::npos);
    auto device_entry = [&] {
        const json devices = org.admin->get("/v1/admin/devices").body["devices"];
        for (const auto& d : devices) {
            if (d["id"] == aoi->client.device_id) return d;
        }
        FAIL("the device is not listed: " << devices.dump());
        return json();
    };
    CHECK(device_entry()["clock_read_at"] == 0);  // never read yet
    Reply pushed = aoi->client.post("/v1/sync/push", {{"changes", changes}, {"clock_offset", kThirtyDays}});
    REQUIRE(pushed.status == 200);
    CHECK(pushed.body["outcomes"][0]["status"] == "accepted");
    const json entry = device_entry();
    CHECK(entry["clock_ahead_ms"] == -kThirtyDays);  // the phone's clock is behind the server's
    CHECK(entry["clock_read_at"].get<std::int64_t>() > 0);
    (void)client;
}

TEST_CASE("a clock offset beyond a century either way is no clock's: the sync goes on, and the reading is not recorded") {
    // -2^63 has no negation, and the difference of two extreme readings overflows: undefined
    // behaviour a sanitizer build aborts the server on.
    Organisation org;
    auto aoi = org.device("aoi");
    aoi->create("client", {{"pseudonym", "K-018"}, {"area", "kita"}});
    auto batch = aoi->device->prepare_push();
    REQUIRE(batch.is_ok());
    const json changes = json(*batch)["changes"];
    for (const std::int64_t offset : {INT64_MIN, INT64_MAX, -INT64_MAX}) {
        INFO(offset);
        CHECK(aoi->client.post("/v1/sync/push", {{"changes", changes}, {"clock_offset", offset}}).status == 200);
        CHECK(aoi->client.post("/v1/sync/pull", {{"after", 0}, {"clock_offset", offset}}).status == 200);
    }
    const json devices = org.admin->get("/v1/admin/devices").body["devices"];
    bool listed = false;
    for (const auto& d : devices) {
        if (d["id"] != aoi->client.device_id) continue;
        listed = true;
        CHECK(d["clock_read_at"] == 0);  // never read: none of those is a clock's
    }
    CHECK(listed);
}

TEST_CASE("a phone that only pulls has its clock read too") {
    Organisation org;
    auto sato = org.device("sato");  // a supervisor's phone: it reads, and never pushes
    sato->sync();
    constexpr std::int64_t kTwoHours = 2LL * 3'600'000;
    Reply bad = sato->client.post("/v1/sync/pull", {{"after", 0}, {"clock_offset", "two hours"}});
    CHECK(bad.status == 400);
    CHECK(bad.body["message"].get<std::string>().find("clock_offset") != std::string::npos);
    // The server's clock is two hours ahead of the phone's, as the phone learnt at its last sync.
    Reply pulled = sato->client.post("/v1/sync/pull", {{"after", 0}, {"clock_offset", kTwoHours}});
    REQUIRE(pulled.status == 200);
    json entry;
    const json devices = org.admin->get("/v1/admin/devices").body["devices"];
    for (const auto& d : devices) {
        if (d["id"] == sato->client.device_id) entry = d;
    }
    REQUIRE(entry.is_object());
    CHECK(entry["clock_ahead_ms"] == -kTwoHours);
    CHECK(entry["clock_read_at"].get<std::int64_t>() > 0);
    CHECK(entry["synced_at"].get<std::int64_t>() > 0);
}

TEST_CASE("a device that has not synced for --stale-after is flagged to administrators until revoked") {
    // A short --stale-after (0.00004 days: 3.5 s) stands for the default 30 days: long enough for
    // the requests below to fit in it on a loaded machine.
    Organisation org({"--compact-every", "0", "--stale-after", "0.00004"});
    auto lost = org.device("aoi");  // her old phone: it synced once, then was lost
    lost->sync();
    auto aoi = org.device("aoi");
    std::this_thread::sleep_for(std::chrono::milliseconds(3'800));
    aoi->create("client", {{"pseudonym", "K-031"}, {"area", "kita"}});
    aoi->sync();  // her phone in use: it has synced just now

    auto listed = [&] {
        std::map<std::string, json> by_id;
        const Reply r = org.admin->get("/v1/admin/devices");
        REQUIRE(r.status == 200);
        CHECK(r.body["stale_after_days"] == Approx(0.00004));
        for (const auto& d : r.body["devices"]) by_id[d["id"]] = d;
        return by_id;
    };
    auto devices = listed();
    CHECK(devices[lost->client.device_id]["stale"] == true);
    CHECK(devices[lost->client.device_id]["synced_at"].get<std::int64_t>() > 0);
    CHECK(devices[aoi->client.device_id]["stale"] == false);
    CHECK(devices[aoi->client.device_id]["synced_at"] >= devices[lost->client.device_id]["synced_at"]);
    // The administrator's own session never syncs: never stale, never synced.
    CHECK(devices[org.admin->device_id]["synced_at"] == 0);
    CHECK(devices[org.admin->device_id]["stale"] == false);

    Reply compacted = org.admin->post("/v1/admin/compact", json::object());
    REQUIRE(compacted.status == 200);
    CHECK(compacted.body["stale_devices"] == 1);
    CHECK(metric(*org.admin, "tsunagu_devices_stale") == 1);
    std::ifstream log_file(org.dir.file("server.log"));
    const std::string log{std::istreambuf_iterator<char>(log_file), {}};
    CHECK(log.find("\"event\":\"stale_devices\"") != std::string::npos);  // a warning, with the count

    REQUIRE(org.admin->post("/v1/admin/devices/" + lost->client.device_id + "/revoke", json::object()).status == 200);
    devices = listed();
    CHECK(devices[lost->client.device_id]["revoked"] == true);
    CHECK(devices[lost->client.device_id]["stale"] == false);  // compaction no longer waits for it
    CHECK(devices[lost->client.device_id]["synced_at"] == 0);
    REQUIRE(org.admin->post("/v1/admin/compact", json::object()).body["stale_devices"] == 0);
    CHECK(metric(*org.admin, "tsunagu_devices_stale") == 0);
}

TEST_CASE("every endpoint checks the caller's role, as a matrix") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-008"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();

    std::map<std::string, std::unique_ptr<ApiClient>> callers;
    callers["anonymous"] = std::make_unique<ApiClient>(org.server.url());
    for (const std::string name : {"aoi", "ben", "chie", "sato"}) {
        callers[name] = std::make_unique<ApiClient>(org.server.url());
        REQUIRE(callers[name]->sign_in(name, name + "-password-1").status == 200);
    }
    callers["admin"] = std::make_unique<ApiClient>(org.server.url());
    REQUIRE(callers["admin"]->sign_in("admin", org.server.admin_password()).status == 200);

    struct Endpoint {
        std::string method, path, body;
    };
    const std::vector<Endpoint> endpoints = {
        {"POST", "/v1/sync/push", R"({"changes": []})"},
        {"POST", "/v1/sync/pull", R"({"after": 0})"},
        {"GET", "/v1/sync/schema", ""},
        {"GET", "/v1/records", ""},
        {"GET", "/v1/records/" + v, ""},
        {"GET", "/v1/conflicts", ""},
        {"GET", "/v1/admin/users", ""},
        {"GET", "/v1/admin/teams", ""},
        {"GET", "/v1/admin/clients/" + client + "/caseload", ""},
        {"GET", "/v1/admin/devices", ""},
        {"GET", "/v1/admin/audit", ""},
    };
    // Expected status per caller, endpoint by endpoint (aoi: peer supporter, ben: home visitor,
    // chie: staff of another area, sato: Kita's supervisor).
    const std::map<std::string, std::vector<int>> expected = {
        {"anonymous", {401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401}},
        {"aoi", {200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403}},
        {"ben", {200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403}},
        {"chie", {200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403}},
        {"sato", {200, 200, 200, 200, 200, 200, 403, 403, 403, 403, 403}},
        {"admin", {403, 403, 200, 403, 403, 403, 200, 200, 200, 200, 200}},
    };
    for (const auto& [caller, statuses] : expected) {
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            const auto& e = endpoints[i];
            Reply r = callers[caller]->raw(e.method, e.path, e.body);
            INFO(caller << " " << e.method << " " << e.path);
            CHECK(r.status == statuses[i]);
        }
    }
}

TEST_CASE("pushed care records are not readable anywhere in the server's data folder") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "MARKER-PSEUDONYM"}, {"area", "kita"}});
    json v = visit(client);
    v["observations"] = "MARKER-OBSERVATION slept badly, mentioned stopping medication";
    aoi->create("home_visit", v);
    aoi->sync();
    org.server.stop(SIGTERM);
    for (const auto& entry : std::filesystem::recursive_directory_iterator(org.dir.file("data"))) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        INFO(entry.path().string());
        CHECK(bytes.find("MARKER") == std::string::npos);
        CHECK(bytes.find("medication") == std::string::npos);
    }
    const std::string log = [&] {
        std::ifstream in(org.dir.file("server.log"));
        return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }();
    CHECK(log.find("MARKER") == std::string::npos);
}

TEST_CASE("a device's pull does not bring back what it just pushed, and malformed held lists are refused") {
    Organisation org;
    auto phone = org.device("aoi");
    const auto client = phone->create("client", {{"pseudonym", "K-003"}, {"area", "kita"}});
    const auto v = phone->create("home_visit", visit(client));
    json page = phone->sync();
    CHECK(page["records"].empty());
    REQUIRE(page["kept"].size() == 2);
    CHECK(page["kept"][0][0] == client);
    CHECK(page["kept"][1][0] == v);
    // The supervisor's device receives them whole.
    auto supervisor = org.device("sato");
    supervisor->sync();
    CHECK(supervisor->holds(v));

    const std::string key = "client:" + client;
    CHECK(phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", "all"}}).status == 400);
    CHECK(phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", json::array({v})}}).status == 400);
    Reply bad_id = phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", {{key, {"x"}}}}});
    CHECK(bad_id.status == 400);
    CHECK(bad_id.body["error"] == "invalid");
    CHECK(phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", {{key, v}}}}).status == 400);
    CHECK(phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", json::object()}}).status == 200);
    json many = json::array();
    for (int i = 0; i < 5001; ++i) many.push_back(v);
    Reply too_many = phone->client.post("/v1/sync/pull", {{"after", 0}, {"held", {{key, many}}}});
    CHECK(too_many.status == 400);
    CHECK(too_many.body["message"].get<std::string>().find("5000") != std::string::npos);
    // Naming a record does not reveal one outside the caller's scope: it is neither sent nor kept.
    auto other = org.device("chie");
    json foreign = other->client.post("/v1/sync/pull", {{"after", 0}, {"held", {{key, {v}}}}}).body;
    CHECK(foreign["records"].empty());
    CHECK_FALSE(foreign.contains("kept"));
}

TEST_CASE("an administrator compacts history every device has, and a lost phone holds it back until revoked") {
    Organisation org({"--compact-every", "0", "--keep-history", "0"});
    auto aoi = org.device("aoi");
    auto lost = org.device("aoi");  // her old phone: it pulled once, then was lost
    lost->sync();
    const auto client = aoi->create("client", {{"pseudonym", "K-011"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    for (int minutes : {50, 55}) {
        REQUIRE(aoi->device->update(v, {{"duration_min", minutes}}).is_ok());
        aoi->sync();
    }
    aoi->sync();  // a device's progress is known from its next pull
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    auto history = [&] { return sato.get("/v1/records/" + v).body["history"].size(); };
    REQUIRE(history() == 3);

    ApiClient worker(org.server.url());
    REQUIRE(worker.sign_in("aoi", "aoi-password-1").status == 200);
    CHECK(worker.post("/v1/admin/compact", json::object()).status == 403);
    CHECK(sato.post("/v1/admin/compact", json::object()).status == 403);

    Reply held = org.admin->post("/v1/admin/compact", json::object());
    REQUIRE(held.status == 200);
    CHECK(held.body["history_purged"] == 0);  // the lost phone has not pulled the edits
    CHECK(held.body["slices"] >= 2);
    CHECK(history() == 3);

    REQUIRE(org.admin->post("/v1/admin/devices/" + lost->client.device_id + "/revoke", json::object()).status == 200);
    Reply done = org.admin->post("/v1/admin/compact", json::object());
    REQUIRE(done.status == 200);
    CHECK(done.body["history_purged"] == 1);  // the 50 minutes, overwritten by the 55
    CHECK(history() == 2);
    CHECK(sato.get("/v1/records/" + v).body["record"]["fields"]["duration_min"] == 55);
    // Devices sync on as before, and a new one gets the record whole.
    auto second = org.device("aoi");
    second->sync();
    CHECK(second->holds(v));

    CHECK(metric(*org.admin, "tsunagu_compactions_total") == 2);
    CHECK(metric(*org.admin, "tsunagu_compaction_purged_total{what=\"history\"}") == 1);
    CHECK(done.body["dismissed_refusals_purged"] == 0);  // none dismissed, and kept 365 days by default
    CHECK(metric(*org.admin, "tsunagu_compaction_purged_total{what=\"dismissed_refusals\"}") == 0);
    const auto audit = org.admin->get("/v1/admin/audit").body.dump();
    CHECK(audit.find("admin.compacted") != std::string::npos);
}

TEST_CASE("a client deleted and purged is not adopted by a worker who pushes a create with its id") {
    Organisation org({"--compact-every", "0", "--keep-history", "0"});
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-013"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    // The client leaves the service: deleted, taken off every caseload; the visit stays for the
    // yearly report. Once every device has the deletion, compaction purges the client's tombstone.
    REQUIRE(aoi->device->remove(client).is_ok());
    aoi->sync();
    org.assign(client, "", {});
    aoi->sync();
    aoi->sync();  // its progress past the deletion is recorded
    Reply compacted = org.admin->post("/v1/admin/compact", json::object());
    REQUIRE(compacted.status == 200);
    REQUIRE(compacted.body["tombstones_purged"] >= 1);

    // Ben knows the id (he covered a visit once). A create with it would have made the client his,
    // and his next pull would have brought the visit.
    auto ben = org.device("ben");
    const json change = {{"id", tsunagu::sync::new_id()}, {"collection", "client"}, {"record", client},
                         {"hlc", "1750000000000-0"}, {"replica", ben->client.device_id},
                         {"user", ben->user_id}, {"schema", 1}, {"create", true},
                         {"set", {{"pseudonym", "K-013"}, {"area", "kita"}}}};
    Reply pushed = ben->client.post("/v1/sync/push", {{"changes", json::array({change})}});
    REQUIRE(pushed.status == 200);
    CHECK(pushed.body["outcomes"][0]["status"] == "refused");
    CHECK(pushed.body["outcomes"][0]["code"] == "forbidden");
    ben->sync();
    CHECK_FALSE(ben->holds(v));
    CHECK(org.admin->get("/v1/admin/clients/" + client + "/caseload").body["worker_ids"].empty());
}

TEST_CASE("a client whose create was refused but whose visits were taken stays on its worker's caseload") {
    Organisation org;
    auto aoi = org.device("aoi");
    aoi->sync();
    const std::string client = tsunagu::sync::new_id();
    auto change = [&](const std::string& collection, const std::string& record, json set, int n) {
        return json{{"id", tsunagu::sync::new_id()}, {"collection", collection}, {"record", record},
                    {"hlc", "175000000000" + std::to_string(n) + "-0"}, {"replica", aoi->client.device_id},
                    {"user", aoi->user_id}, {"schema", 1}, {"create", true}, {"set", std::move(set)}};
    };
    // A newer app's create the server cannot take yet, and a visit to that client it can.
    const json visit_change = change("home_visit", tsunagu::sync::new_id(), visit(client), 2);
    Reply first = aoi->client.post(
        "/v1/sync/push", {{"changes", json::array({change("client", client, {{"pseudonym", 12345}}, 1), visit_change})}});
    REQUIRE(first.status == 200);
    CHECK(first.body["outcomes"][0]["status"] == "refused");
    REQUIRE(first.body["outcomes"][1]["status"] == "accepted");
    CHECK(org.admin->get("/v1/admin/clients/" + client + "/caseload").body["worker_ids"] == json::array({org.ids["aoi"]}));
    // Mended, the create is sent again: it is hers to make.
    Reply again = aoi->client.post(
        "/v1/sync/push", {{"changes", json::array({change("client", client, {{"pseudonym", "K-017"}, {"area", "kita"}}, 3)})}});
    REQUIRE(again.status == 200);
    CHECK(again.body["outcomes"][0]["status"] == "accepted");
}

TEST_CASE("a supervisor reads her worker's kept create of a client new to the server, and may apply it") {
    Organisation org;
    auto aoi = org.device("aoi");
    aoi->sync();
    const std::string client = tsunagu::sync::new_id();
    const json create = {{"id", tsunagu::sync::new_id()}, {"collection", "client"}, {"record", client},
                         {"hlc", "1750000000001-0"}, {"replica", aoi->client.device_id}, {"user", aoi->user_id},
                         {"schema", 1}, {"create", true}, {"set", {{"pseudonym", 12345}}}};
    Reply pushed = aoi->client.post("/v1/sync/push", {{"changes", json::array({create})}});
    REQUIRE(pushed.status == 200);
    REQUIRE(pushed.body["outcomes"][0]["status"] == "refused");
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    const json kept = sato.get("/v1/refused").body["refused"];
    REQUIRE(kept.size() == 1);
    // Applied, the create would make the client Aoi's, in Sato's team: hers to read (before, no
    // one's: the client was in no team yet).
    CHECK(kept[0]["readable"] == true);
    CHECK(sato.get("/v1/refused/" + kept[0]["change_id"].get<std::string>()).status == 200);
    // Applying it is judged as Aoi's push, which still refuses the value; not as outside Sato's team.
    Reply again = sato.post("/v1/refused/" + kept[0]["change_id"].get<std::string>() + "/apply", json::object());
    CHECK(again.status == 409);
    CHECK(again.body["error"] == "still_refused");
    // A client Minami's supervisor could not read: Aoi is not in her team.
    ApiClient mori(org.server.url());
    REQUIRE(mori.sign_in("mori", "mori-password-1").status == 200);
    CHECK(mori.get("/v1/refused").body["refused"].empty());
}

TEST_CASE("a caseload naming a team that does not exist or a client id that is not one is refused and changes nothing") {
    Organisation org;
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-021"}, {"area", "kita"}});
    aoi->sync();
    Reply bogus = org.admin->raw("PUT", "/v1/admin/clients/" + client + "/caseload",
                                 json{{"team_id", "bogus"}, {"worker_ids", json::array({org.ids["aoi"]})}}.dump());
    CHECK(bogus.status == 404);
    CHECK(bogus.body["error"] == "not_found");
    CHECK_THAT(bogus.body["message"].get<std::string>(), Catch::Contains("no team"));
    Reply malformed = org.admin->raw("PUT", "/v1/admin/clients/not-a-client/caseload",
                                     json{{"team_id", org.kita}, {"worker_ids", json::array()}}.dump());
    CHECK(malformed.status == 400);
    const json caseload = org.admin->get("/v1/admin/clients/" + client + "/caseload").body;
    CHECK(caseload["team_id"] == org.kita);
    CHECK(caseload["worker_ids"] == json::array({org.ids["aoi"]}));
    // Its supervisor still reviews it.
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", "sato-password-1").status == 200);
    CHECK(sato.get("/v1/records/" + client).status == 200);
    // A display name has 100 characters at most.
    Reply long_name = org.admin->post("/v1/admin/users", {{"username", "kenji"}, {"role", "staff"},
                                                          {"team_id", org.kita}, {"password", "kenji-password-1"},
                                                          {"display_name", std::string(101, 'k')}});
    CHECK(long_name.status == 400);
    // Counted in characters, as the page's form counts them: a Japanese name of 100 is taken.
    std::string japanese;
    for (int i = 0; i < 100; ++i) japanese += "\u5c71";
    CHECK(org.admin->post("/v1/admin/users", {{"username", "yama"}, {"role", "staff"}, {"team_id", org.kita},
                                              {"password", "yama-password-1"}, {"display_name", japanese}})
              .status == 201);
    CHECK_THAT(long_name.body["message"].get<std::string>(), Catch::Contains("display_name"));
}

TEST_CASE("the server compacts on its own timer, between pushes") {
    Organisation org({"--compact-every", "1", "--keep-history", "0"});
    auto aoi = org.device("aoi");
    const auto client = aoi->create("client", {{"pseudonym", "K-012"}, {"area", "kita"}});
    const auto v = aoi->create("home_visit", visit(client));
    aoi->sync();
    REQUIRE(aoi->device->update(v, {{"duration_min", 50}}).is_ok());
    aoi->sync();
    REQUIRE(aoi->device->update(v, {{"duration_min", 55}}).is_ok());
    aoi->sync();
    aoi->sync();
    double purged = 0;
    for (int tries = 0; tries < 100 && purged < 1; ++tries) {
        (void)aoi->create("home_visit", visit(client, "2020-06-02"));  // pushes go on meanwhile
        aoi->sync();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        purged = metric(*org.admin, "tsunagu_compaction_purged_total{what=\"history\"}");
    }
    CHECK(purged == 1);
    CHECK(metric(*org.admin, "tsunagu_compactions_total") >= 1);
    CHECK(aoi->holds(v));
}
