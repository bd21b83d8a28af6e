// The care domain through the real server: the demo organisation, its FY2020 indicators (API,
// CSV and the offline report command), the review lock, and the scope rules as a matrix.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>

#include "api_client.h"
#include "synced_device.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// A server over a fresh data folder with the demo organisation, and its accounts' passwords.
struct Demo {
    TempDir dir{"tsunagu-demo"};
    std::string data = dir.file("data");
    ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
    std::map<std::string, std::string> passwords;

    Demo() {
        server.start({"--demo"});
        const std::regex line(R"(\n  (\S+) +\S+ +(?:one-time )?password (\S+))");
        const std::string& out = server.startup_output();
        for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) {
            passwords[(*it)[1]] = (*it)[2];
        }
        REQUIRE(passwords.size() == 30);  // the demo's people; the administrator's is the file's
        CHECK(out.find("admin                        admin          (its password is in the file") != std::string::npos);
        passwords["admin"] = server.admin_password();
    }
    std::unique_ptr<ApiClient> sign_in(const std::string& user) {
        auto c = std::make_unique<ApiClient>(server.url());
        REQUIRE(c->sign_in(user, passwords.at(user), "office-pc").status == 200);
        return c;
    }
    std::unique_ptr<SyncedDevice> device(const std::string& user) {
        return std::make_unique<SyncedDevice>(server.url(), dir.file(user + std::to_string(++devices) + ".db"), user,
                                              passwords.at(user));
    }
    int devices = 0;
};

// A home visit `device` holds in review status `status`, with no open conflict; "" when none.
std::string visit_in_status(SyncedDevice& device, const std::string& status) {
    auto visits = device.device->list("home_visit");
    REQUIRE(visits.is_ok());
    for (const auto& r : *visits) {
        if (r.fields.value("review_status", "") == status && r.conflicts.empty()) return r.id;
    }
    return "";
}

// The FY2020 table of ../shared/DOMAIN.md (and its breakdowns): id -> {target, actual}; -1 = none.
const std::map<std::string, std::pair<int, int>> kFy2020 = {
    {"subcommittee_meetings", {10, 10}},
    {"practitioner_liaison_meetings", {-1, 1}},
    {"working_group_meetings", {15, 25}},
    {"council_meetings", {1, 1}},
    {"peer_supporters_trained", {20, 8}},
    {"dispatch_requests", {88, 56}},
    {"dispatch_requests_medical", {-1, 16}},
    {"dispatch_requests_provider", {-1, 18}},
    {"dispatch_requests_home", {-1, 22}},
    {"dispatch_group", {-1, 12}},
    {"dispatch_individual", {-1, 36}},
    {"dispatch_online", {-1, 8}},
    {"community_transition", {6, 7}},
    {"post_discharge_liaison_meetings", {1, 1}},
    {"post_discharge_liaison_organisations", {-1, 14}},
    {"post_discharge_liaison_participants", {-1, 28}},
    {"regional_liaison_meetings", {10, 10}},
};

void check_fy2020_rows(const json& rows) {
    REQUIRE(rows.size() == kFy2020.size());
    for (const json& row : rows) {
        INFO(row.dump());
        const auto& [target, actual] = kFy2020.at(row["id"]);
        CHECK(row["actual"] == actual);
        if (target < 0) {
            CHECK(row["target"].is_null());
            CHECK(row["rate"].is_null());
        } else {
            CHECK(row["target"] == target);
            CHECK(row["rate"].get<double>() == Approx(double(actual) / target));
            CHECK(row["rate_text"].get<std::string>().back() == '%');
        }
        CHECK(row["in_conflict"] == 0);  // the demo's conflicts are on visits awaiting review
        CHECK_FALSE(row["label_ja"].get<std::string>().empty());
        CHECK_FALSE(row["label_en"].get<std::string>().empty());
    }
}

// The indicator report's breakdown by area for a fiscal year, as `reader` gets it.
json areas_of_year(ApiClient& reader, int fiscal_year) {
    Reply report = reader.get("/v1/reports/indicators?fy=" + std::to_string(fiscal_year));
    REQUIRE(report.status == 200);
    return report.body["areas"];
}

// Runs a command, returning its exit status and standard output.
std::pair<int, std::string> run(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("the demo organisation's indicators equal the FY2020 table, target and actual, row for row") {
    Demo demo;
    auto supervisor = demo.sign_in("kita-chuo.supervisor");
    Reply report = supervisor->get("/v1/reports/indicators?fy=2020");
    REQUIRE(report.status == 200);
    check_fy2020_rows(report.body["rows"]);
    CHECK(report.body["from"] == "2020-04-01");
    CHECK(report.body["to"] == "2021-03-31");
    CHECK(report.body["areas"].size() == 6);
    CHECK(report.body["months"].size() == 12);
    int by_area = 0, by_month = 0;
    for (const json& a : report.body["areas"]) by_area += a["values"]["dispatch_requests"].get<int>();
    for (const json& m : report.body["months"]) by_month += m["values"]["dispatch_requests"].get<int>();
    CHECK(by_area == 56);
    CHECK(by_month == 56);
    // Administrators prepare the report too; field workers do not read it.
    auto admin = demo.sign_in("admin");
    CHECK(admin->get("/v1/reports/indicators?fy=2020").status == 200);
    CHECK(demo.sign_in("naka.visitor")->get("/v1/reports/indicators?fy=2020").status == 403);
    // Each reading is on the audit trail, with the year and the format.
    int reads = 0;
    const json trail = admin->get("/v1/admin/audit?target=fy2020").body;
    for (const json& e : trail["entries"]) {
        if (e["action"] == "report.read" && e["detail"] == "json") ++reads;
    }
    CHECK(reads == 2);
    CHECK(supervisor->get("/v1/reports/indicators?fy=20x0").status == 400);
    CHECK(supervisor->get("/v1/reports/indicators?fy=2020&format=xml").status == 400);
    // Another year has no approved records in the demo beyond its edges.
    Reply fy2021 = supervisor->get("/v1/reports/indicators?fy=2021");
    REQUIRE(fy2021.status == 200);
    CHECK(fy2021.body["rows"][5]["actual"] == 1);  // the dispatch of April 1, 2021
}

TEST_CASE("clients moved to another area keep last year's figures in the area they were in then") {
    Demo demo;
    auto admin = demo.sign_in("admin");
    const json fy2020 = areas_of_year(*admin, 2020);
    auto kita = demo.sign_in("kita-chuo.supervisor");
    const json kita_team = kita->get("/v1/web/directory").body["team"];
    std::string naka_team;
    const json teams = admin->get("/v1/admin/teams").body["teams"];
    for (const json& team : teams) {
        if (team["id"] != kita_team["id"] && naka_team.empty()) naka_team = team["id"].get<std::string>();
    }
    REQUIRE_FALSE(naka_team.empty());
    // Every client of kita-chuo moves, workers and all, to another area today.
    const json clients = kita->get("/v1/web/directory").body["clients"];
    REQUIRE(clients.size() == 50);
    for (const json& client : clients) {
        const std::string path = "/v1/admin/clients/" + client["id"].get<std::string>() + "/caseload";
        const json caseload = admin->get(path).body;
        REQUIRE(caseload["team_id"] == kita_team["id"]);
        REQUIRE(admin->raw("PUT", path, json{{"team_id", naka_team}, {"worker_ids", caseload["worker_ids"]}}.dump()).status == 200);
    }
    CHECK(kita->get("/v1/web/directory").body["clients"].empty());  // the supervisor's scope moved
    CHECK(areas_of_year(*admin, 2020) == fy2020);
}

TEST_CASE("a worker moved to another team keeps the meetings they recorded last year in their old area") {
    Demo demo;
    auto admin = demo.sign_in("admin");
    const json fy2020 = areas_of_year(*admin, 2020);
    // kita-chuo's health-centre staff recorded regional liaison meetings, which count by area.
    std::string staff_id, staff_team, other_team;
    const json users = admin->get("/v1/admin/users").body["users"];
    for (const json& user : users) {
        if (user["username"] == "kita-chuo.staff") {
            staff_id = user["id"].get<std::string>();
            staff_team = user["team_id"].get<std::string>();
        }
    }
    REQUIRE_FALSE(staff_id.empty());
    const json teams = admin->get("/v1/admin/teams").body["teams"];
    for (const json& team : teams) {
        if (team["id"] != staff_team && other_team.empty()) other_team = team["id"].get<std::string>();
    }
    REQUIRE(admin->raw("PATCH", "/v1/admin/users/" + staff_id, json{{"team_id", other_team}}.dump()).status == 200);
    CHECK(areas_of_year(*admin, 2020) == fy2020);
}

TEST_CASE("the indicator CSV from the API starts with a BOM, names the columns in Japanese and holds the same figures") {
    Demo demo;
    Reply csv = demo.sign_in("kita-chuo.supervisor")->get("/v1/reports/indicators?fy=2020&format=csv");
    REQUIRE(csv.status == 200);
    CHECK(csv.headers["content-type"].rfind("text/csv", 0) == 0);
    CHECK(csv.headers["content-disposition"].find("indicators-FY2020.csv") != std::string::npos);
    REQUIRE(csv.raw.rfind("\xEF\xBB\xBF" "id,指標,Indicator,目標,実績,達成率,未解決の競合,", 0) == 0);
    CHECK(csv.raw.find("\r\ndispatch_requests,ピアサポーター派遣依頼件数,Peer-support dispatch requests,88,56,63.6%,0,") !=
          std::string::npos);
    CHECK(csv.raw.find("\r\npeer_supporters_trained,ピアサポーター養成者数,Peer supporters trained,20,8,40.0%,0,") !=
          std::string::npos);
}

TEST_CASE("tsunagu-server report prints the same table without a server, as JSON rows or CSV") {
    Demo demo;
    demo.server.stop();
    auto [status, out] = run(std::string(TSUNAGU_SERVER_PATH) + " report --data " + demo.data + postgres_option(demo.data) + " --fy 2020 --json");
    REQUIRE(status == 0);
    check_fy2020_rows(json::parse(out));
    auto [csv_status, csv] = run(std::string(TSUNAGU_SERVER_PATH) + " report --data " + demo.data + postgres_option(demo.data) + " --fy 2020 --csv");
    CHECK(csv_status == 0);
    CHECK(csv.rfind("\xEF\xBB\xBF", 0) == 0);
    auto [text_status, text] = run(std::string(TSUNAGU_SERVER_PATH) + " report --data " + demo.data + postgres_option(demo.data) + " --fy 2020");
    CHECK(text_status == 0);
    CHECK(text.find("63.6%") != std::string::npos);
    // Mistakes say what to do.
    auto [no_year, _] = run(std::string(TSUNAGU_SERVER_PATH) + " report --data " + demo.data + " 2>&1");
    CHECK(no_year == 2);
    auto [missing, message] = run(std::string(TSUNAGU_SERVER_PATH) + " report --data " + demo.dir.file("none") +
                                  " --fy 2020 2>&1");
    CHECK(missing == 1);
    CHECK(message.find("no store in") != std::string::npos);
}

TEST_CASE("demo mode refuses a data folder that holds another organisation, and serves its own demo again") {
    Demo demo;
    demo.server.stop();
    demo.server.start({"--demo"});  // the same demo again: served as it is
    CHECK(demo.server.startup_output().find("demo-accounts.txt") != std::string::npos);
    demo.server.stop();
    TempDir other{"tsunagu-demo-other"};
    ServerProcess plain{TSUNAGU_SERVER_PATH, other.file("data"), other.file("server.log")};
    plain.start();
    ApiClient admin(plain.url());
    REQUIRE(admin.sign_in("admin", plain.admin_password()).status == 200);
    REQUIRE(admin.post("/v1/admin/teams", {{"name", "Kita"}}).status == 201);
    plain.stop();
    auto [status, out] = run(std::string(TSUNAGU_SERVER_PATH) + " --data " + other.file("data") +
                             postgres_option(other.file("data")) + " --listen http://127.0.0.1:1 --demo 2>&1");
    CHECK(status == 1);
    CHECK(out.find("needs a new data folder") != std::string::npos);
}

TEST_CASE("the demo has records awaiting review, conflicting offline edits and a refused change for supervisors") {
    Demo demo;
    auto supervisor = demo.sign_in("kita-chuo.supervisor");
    Reply waiting = supervisor->get("/v1/records?status=submitted");
    REQUIRE(waiting.status == 200);
    CHECK(waiting.body["records"].size() >= 2);
    CHECK(waiting.body["counts"]["approved"].get<int>() > 50);
    Reply conflicts = supervisor->get("/v1/conflicts");
    REQUIRE(conflicts.status == 200);
    CHECK(conflicts.body["conflicts"].size() == 1);  // one in each of three areas
    // The visitor's addition to an approved visit, refused (locked) and kept for the supervisor.
    Reply refused = supervisor->get("/v1/refused");
    REQUIRE(refused.status == 200);
    REQUIRE(refused.body["refused"].size() == 1);
    CHECK(refused.body["refused"][0]["cause"] == "rule");
    CHECK(refused.body["refused"][0]["collection"] == "home_visit");
    CHECK(demo.sign_in("naka.supervisor")->get("/v1/refused").body["refused"].empty());
    CHECK(demo.server.startup_output().find("1 refused change waiting for review") != std::string::npos);
}

TEST_CASE("an approved record is locked for its worker: the change is refused with the reason and kept, until the supervisor returns it") {
    Demo demo;
    auto visitor = demo.device("naka.visitor");
    visitor->sync();
    const std::string approved = visit_in_status(*visitor, "approved");
    REQUIRE_FALSE(approved.empty());
    auto visits = visitor->device->list("home_visit");
    REQUIRE(visits.is_ok());
    REQUIRE(visitor->device->update(approved, {{"observations", "書き足し"}}).is_ok());
    visitor->sync();
    const json outcome = visitor->last_push["outcomes"][0];
    CHECK(outcome["status"] == "refused");
    CHECK(outcome["reason"].get<std::string>().find("locked") != std::string::npos);
    auto outbox = visitor->device->outbox();
    REQUIRE(outbox.is_ok());
    REQUIRE(outbox->size() == 1);
    CHECK(outbox->front().state == tsunagu::sync::PendingState::refused);
    // Workers never approve, not even their own new records.
    const std::string client = (*visits)[0].fields["client"];
    visitor->create("home_visit", {{"client", client}, {"visitor", visitor->user_id}, {"date", "2021-03-01"}, {"duration_min", 30},
                                   {"purpose", "check_in"}, {"review_status", "approved"}});
    visitor->sync();
    CHECK(visitor->last_push["outcomes"][0]["reason"].get<std::string>().find("only a supervisor") != std::string::npos);

    // The supervisor reopens the record; the worker's kept change then goes through on its own:
    // the record changed upstream, so its refused change is due again.
    auto supervisor = demo.sign_in("naka.supervisor");
    Reply reopened = supervisor->post("/v1/records/" + approved + "/review",
                                      {{"decision", "return"}, {"comment", "追記してください"}});
    REQUIRE(reopened.status == 200);
    visitor->sync();  // pulls the returned record: the change is due again
    visitor->sync();  // and pushed
    auto left = visitor->device->outbox();
    REQUIRE(left.is_ok());
    CHECK(left->size() == 1);  // the new visit marked approved: refused again, for its own reason
    CHECK(left->front().change.record != approved);
    Reply record = supervisor->get("/v1/records/" + approved);
    REQUIRE(record.status == 200);
    CHECK(record.body["record"]["fields"]["observations"] == "書き足し");
    CHECK(record.body["record"]["fields"]["review_status"] == "returned");
    // Free text (notes, review comments) never reaches the server's log.
    std::ifstream log(demo.dir.file("server.log"));
    const std::string logged{std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()};
    CHECK_FALSE(logged.empty());
    CHECK(logged.find("書き足し") == std::string::npos);
    CHECK(logged.find("追記してください") == std::string::npos);
}

TEST_CASE("scopes as a matrix: who holds and reads which records") {
    Demo demo;
    auto admin = demo.sign_in("admin");
    auto naka = demo.sign_in("naka.supervisor");
    auto kita = demo.sign_in("kita-chuo.supervisor");
    // A home visit about a naka client assigned to the home visitor only, and a staff meeting.
    std::string visit_only_visitor, staff_meeting;
    const json visits = naka->get("/v1/records?collection=home_visit").body["records"];
    for (const json& r : visits) {
        Reply caseload = admin->get("/v1/admin/clients/" + r["client"].get<std::string>() + "/caseload");
        REQUIRE(caseload.status == 200);
        if (caseload.body["worker_ids"].size() == 1) visit_only_visitor = r["id"];
    }
    const json meetings = naka->get("/v1/records?collection=meeting").body["records"];
    REQUIRE(meetings.size() > 0);
    staff_meeting = meetings[0]["id"];
    REQUIRE_FALSE(visit_only_visitor.empty());
    std::string kita_record = kita->get("/v1/records?collection=home_visit").body["records"][0]["id"];

    struct Expect {
        std::string user;
        bool visit, meeting, other_area;
    };
    // Field workers: their clients' records and their own; supervisors: their team's.
    for (const Expect& e : {Expect{"naka.visitor", true, false, false}, Expect{"naka.peer1", false, false, false},
                            Expect{"naka.staff", false, true, false}}) {
        INFO(e.user);
        auto device = demo.device(e.user);
        device->sync();
        CHECK(device->holds(visit_only_visitor) == e.visit);
        CHECK(device->holds(staff_meeting) == e.meeting);
        CHECK(device->holds(kita_record) == e.other_area);
        CHECK(device->client.get("/v1/records/" + visit_only_visitor).status == 403);  // supervisors' route
    }
    CHECK(naka->get("/v1/records/" + visit_only_visitor).status == 200);
    CHECK(naka->get("/v1/records/" + staff_meeting).status == 200);
    CHECK(naka->get("/v1/records/" + kita_record).status == 404);
    CHECK(kita->get("/v1/records/" + visit_only_visitor).status == 404);
    CHECK(kita->get("/v1/records/" + kita_record).status == 200);
    CHECK(admin->get("/v1/records/" + kita_record).status == 403);
    CHECK(admin->post("/v1/sync/pull", {{"after", 0}}).status == 403);
    // Another team's supervisor neither lists, reviews, nor sees or resolves the conflicts of a
    // record outside her team: answered as for a record that does not exist, and nothing changes.
    for (const json& r : naka->get("/v1/records?collection=home_visit").body["records"]) CHECK(r["id"] != kita_record);
    const json before = kita->get("/v1/records/" + kita_record).body["record"];
    Reply reviewed = naka->post("/v1/records/" + kita_record + "/review", {{"decision", "return"}, {"comment", "x"}});
    CHECK(reviewed.status == 404);
    CHECK(kita->get("/v1/records/" + kita_record).body["record"] == before);
    const json kita_conflicts = kita->get("/v1/conflicts").body["conflicts"];
    REQUIRE(kita_conflicts.size() >= 1);
    const std::string conflicted = kita_conflicts[0]["record"];
    const std::string field = kita_conflicts[0]["field"];
    for (const json& c : naka->get("/v1/conflicts").body["conflicts"]) CHECK(c["record"] != conflicted);
    Reply resolved = naka->post("/v1/conflicts/resolve", {{"record", conflicted}, {"field", field}, {"value", "x"}});
    CHECK(resolved.status == 404);
    CHECK(kita->get("/v1/conflicts").body["conflicts"] == kita_conflicts);
    // Writing outside the scope is refused too.
    auto peer = demo.device("naka.peer1");
    peer->sync();
    tsunagu::sync::ChangeSet foreign;
    foreign.id = tsunagu::sync::new_id();
    foreign.collection = "home_visit";
    foreign.record = visit_only_visitor;
    foreign.hlc = tsunagu::sync::Hlc{1'700'000'000'000, 0};
    foreign.replica = peer->client.device_id;
    foreign.user = peer->user_id;
    foreign.schema_version = 1;
    foreign.set = {{"observations", "not mine"}};
    Reply pushed = peer->client.post("/v1/sync/push", {{"changes", json::array({json(foreign)})}});
    REQUIRE(pushed.status == 200);
    CHECK(pushed.body["outcomes"][0]["status"] == "refused");
    CHECK(pushed.body["outcomes"][0]["reason"].get<std::string>().find("outside") != std::string::npos);
    CHECK(naka->get("/v1/records/" + visit_only_visitor).body["record"]["fields"].value("observations", "") != "not mine");
}

TEST_CASE("a record with open conflicts cannot be approved: 409 says to resolve them first") {
    Demo demo;
    auto supervisor = demo.sign_in("kita-chuo.supervisor");
    Reply conflicts = supervisor->get("/v1/conflicts");
    REQUIRE(conflicts.status == 200);
    REQUIRE(conflicts.body["conflicts"].size() == 1);
    const std::string record = conflicts.body["conflicts"][0]["record"];
    Reply refused = supervisor->post("/v1/records/" + record + "/review", {{"decision", "approve"}});
    CHECK(refused.status == 409);
    CHECK(refused.body["error"] == "open_conflicts");
    CHECK_THAT(refused.body["message"].get<std::string>(),
               Catch::Contains("observations") && Catch::Contains("resolve them first"));
    CHECK(supervisor->get("/v1/records/" + record).body["record"]["fields"]["review_status"] == "submitted");
    // A resolution says which reading it settles; without it, it is refused and changes nothing.
    Reply unread = supervisor->post("/v1/conflicts/resolve",
                                    {{"record", record}, {"field", "observations"}, {"value", "両方の記録を確認した。"}});
    CHECK(unread.status == 400);
    CHECK_THAT(unread.body["message"].get<std::string>(), Catch::Contains("\"seen\": required"));
    CHECK(supervisor->get("/v1/conflicts").body["conflicts"].size() == 1);
    REQUIRE(supervisor->post("/v1/conflicts/resolve", {{"record", record},
                                                       {"field", "observations"},
                                                       {"value", "両方の記録を確認した。"},
                                                       {"seen", conflicts.body["conflicts"][0]["record_version"]}})
                .status == 200);
    CHECK(supervisor->post("/v1/records/" + record + "/review", {{"decision", "approve"}}).status == 200);
}

TEST_CASE("a review status in conflict is never resolved to approved: the review approves") {
    Demo demo;
    auto visitor = demo.device("naka.visitor");
    visitor->sync();
    const std::string submitted = visit_in_status(*visitor, "submitted");
    REQUIRE_FALSE(submitted.empty());
    // Offline, the worker withdraws the visit to change it; meanwhile her supervisor returns it.
    REQUIRE(visitor->device->update(submitted, {{"review_status", "draft"}}).is_ok());
    auto supervisor = demo.sign_in("naka.supervisor");
    REQUIRE(supervisor->post("/v1/records/" + submitted + "/review", {{"decision", "return"}, {"comment", "日付を確認"}})
                .status == 200);
    visitor->sync();
    Reply conflicts = supervisor->get("/v1/conflicts");
    REQUIRE(conflicts.status == 200);
    json conflict;
    for (const auto& c : conflicts.body["conflicts"]) {
        if (c["record"] == submitted) conflict = c;
    }
    REQUIRE(conflict.value("field", "") == "review_status");

    // Approving by resolving would skip the review's checks (other conflicts, the report's numbers).
    Reply refused = supervisor->post("/v1/conflicts/resolve", {{"record", submitted},
                                                               {"field", "review_status"},
                                                               {"value", "approved"},
                                                               {"seen", conflict["record_version"]}});
    CHECK(refused.status == 409);
    CHECK(refused.body["error"] == "approve_by_review");
    CHECK_THAT(refused.body["message"].get<std::string>(), Catch::Contains("/review"));
    Reply record = supervisor->get("/v1/records/" + submitted);
    CHECK(record.body["record"]["fields"]["review_status"] != "approved");
    CHECK(record.body["record"]["conflicts"].size() == 1);
    // Nor is a review status merged into a third value.
    Reply merged = supervisor->post("/v1/conflicts/resolve", {{"record", submitted},
                                                              {"field", "review_status"},
                                                              {"value", "submitted"},
                                                              {"seen", record.body["version"]}});
    CHECK(merged.status == 409);
    CHECK(merged.body["error"] == "approve_by_review");

    // Keeping either side resolves it; the review can then approve.
    REQUIRE(supervisor->post("/v1/conflicts/resolve", {{"record", submitted},
                                                       {"field", "review_status"},
                                                       {"value", "returned"},
                                                       {"seen", record.body["version"]}})
                .status == 200);
    record = supervisor->get("/v1/records/" + submitted);
    CHECK(record.body["record"]["fields"]["review_status"] == "returned");
    CHECK(record.body["record"]["conflicts"].empty());
}

namespace {

// A change set a device of `user` would push, written by hand.
tsunagu::sync::ChangeSet hand_made(SyncedDevice& device, const std::string& collection, json set, int schema) {
    tsunagu::sync::ChangeSet c;
    c.id = tsunagu::sync::new_id();
    c.collection = collection;
    c.record = tsunagu::sync::new_id();
    c.hlc = tsunagu::sync::Hlc{1'700'000'000'000, 0};
    c.replica = device.client.device_id;
    c.user = device.user_id;
    c.schema_version = schema;
    c.create = true;
    c.set = std::move(set);
    return c;
}

}  // namespace

TEST_CASE("a dispatch returned, corrected, resubmitted and approved counts once, with the values it was approved with") {
    Demo demo;
    auto supervisor = demo.sign_in("naka.supervisor");
    auto figures = [&] {
        std::map<std::string, int> actual;
        Reply report = supervisor->get("/v1/reports/indicators?fy=2020");
        REQUIRE(report.status == 200);
        for (const json& row : report.body["rows"]) {
            if (row["actual"].is_number()) actual[row["id"]] = row["actual"];
        }
        return actual;
    };
    const auto before = figures();
    REQUIRE(before.count("dispatch_requests_home") == 1);
    auto peer = demo.device("naka.peer1");
    peer->sync();
    const std::string id = peer->create("peer_support_dispatch",
                                        {{"date", "2020-06-10"}, {"duration_min", 60}, {"format", "group"},
                                         {"request_source", "医療機関"}, {"peer_supporters", {peer->user_id}},
                                         {"review_status", "submitted"}});
    peer->sync();
    REQUIRE(supervisor->post("/v1/records/" + id + "/review", {{"decision", "return"}, {"comment", "依頼元を確認"}})
                .status == 200);
    CHECK(figures() == before);  // returned: not counted
    peer->sync();
    REQUIRE(peer->device->update(id, {{"request_source", "本人・在宅"}, {"format", "individual"},
                                      {"review_status", "submitted"}})
                .is_ok());
    peer->sync();
    CHECK(figures() == before);  // resubmitted: not yet
    REQUIRE(supervisor->post("/v1/records/" + id + "/review", {{"decision", "approve"}}).status == 200);
    auto expected = before;
    for (const char* row : {"dispatch_requests", "dispatch_requests_home", "dispatch_individual"}) ++expected[row];
    CHECK(figures() == expected);  // once, as corrected: not under 医療機関 or group, which it was first
}

TEST_CASE("the server refuses a push claiming schema 0 and a dispatch dated after tomorrow in Japan") {
    Demo demo;
    auto peer = demo.device("naka.peer1");
    peer->sync();
    const json bare = {{"date", "2020-05-01"}, {"duration_min", 60}, {"review_status", "submitted"}};
    json future = {{"date", "2099-12-31"}, {"duration_min", 60}, {"format", "group"},
                   {"request_source", "医療機関"}, {"peer_supporters", {peer->user_id}}, {"review_status", "submitted"}};
    json today = future;
    today["date"] = "2020-05-01";
    Reply pushed = peer->client.post(
        "/v1/sync/push", {{"changes", json::array({json(hand_made(*peer, "peer_support_dispatch", bare, 0)),
                                                   json(hand_made(*peer, "peer_support_dispatch", future, 2)),
                                                   json(hand_made(*peer, "peer_support_dispatch", today, 2))})}});
    REQUIRE(pushed.status == 200);
    const json& outcomes = pushed.body["outcomes"];
    CHECK(outcomes[0]["status"] == "refused");
    CHECK_THAT(outcomes[0]["reason"].get<std::string>(), Catch::Contains("\"schema\" is 0"));
    CHECK(outcomes[1]["status"] == "refused");
    CHECK_THAT(outcomes[1]["reason"].get<std::string>(),
               Catch::Contains("\"date\" (派遣日 / Date): must not be after"));
    CHECK(outcomes[2]["status"] == "accepted");
}

