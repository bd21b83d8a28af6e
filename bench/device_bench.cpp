// device_bench: how fast does a device push its offline work and a fresh device pull it, over
// loopback against the real tsunagu-server, into and out of encrypted replicas? And can a
// supervisor's fresh replica pull 100,000 records with memory staying flat?
//
// In one run:
//  1. a worker's device records N home visits offline (about ten fields, about 500 bytes each),
//     then pushes them: push_s (the push phase of sync(), until the first pull request), and
//     sync_s, the whole sync (its pull names the pushed visits as held: they come back as kept
//     record ids, not whole);
//  2. another worker sharing the client syncs a fresh replica: pull_s (in a child process, whose
//     peak RSS is pull_rss_mb);
//  3. the worker records and pushes more, up to BIG records; the supervisor's fresh replica pulls
//     them all: pull100k_s and pull100k_rss_mb (child process peak RSS, from wait4).
// The server's own time per phase comes from its /metrics (tsunagu_request_seconds_sum), to show
// which side is the bottleneck. Reference: PouchDB/CouchDB, 4.5 s each way for 10,000 records;
// *_vs_couchdb_ratio is how many times faster than that (per record).
//
// Usage: device_bench [--json] [--records N] [--big N]
//        device_bench --pull-child URL USER PASSWORD HOME   (internal: one fresh replica's sync)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api_client.h"
#include "clients/device.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace tsunagu;

namespace {

constexpr double kCouchdbSeconds = 4.5;  // 10,000 records each way, PouchDB 9 <-> express-pouchdb
constexpr double kCouchdbRecords = 10000;

std::string g_server_log;  // for failure reports

std::string log_tail() {
    std::FILE* f = std::fopen(g_server_log.c_str(), "r");
    if (!f) return {};
    std::string text;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

client::DeviceOptions bench_options() {
    client::DeviceOptions o;
    o.kdf = KdfParams::fast_for_tests();  // the pages are encrypted the same; only unlocking is cheaper
    o.push_batch = 1000;
    if (std::getenv("DEVICE_BENCH_ROLLBACK")) o.journal_mode = JournalMode::rollback;
    o.pull_page = 1000;  // see the report: a 5,000-record page corrupts the WAL (crypto)
    return o;
}

std::string log_tail();

[[noreturn]] void die(const std::string& what, const Status& s) {
    std::fprintf(stderr, "device_bench: %s: %s\n", what.c_str(), s.to_string().c_str());
    if (s.code() == ErrorCode::unavailable) std::fprintf(stderr, "the server's log ends:\n%s\n", log_tail().c_str());
    std::exit(1);
}

json visit(const std::string& client, const std::string& visitor, int i) {
    char date[16];
    std::snprintf(date, sizeof date, "20%02d-%02d-%02d", 20 + i % 5, 1 + i % 12, 1 + i % 28);
    return {{"client", client},
            {"visitor", visitor},
            {"date", date},
            {"duration_min", 15 + i % 120},
            {"purpose", i % 3 == 0 ? "post_discharge_support" : i % 3 == 1 ? "crisis_follow_up" : "check_in"},
            {"observations",
             "Visited at home; slept better this week, eating regularly, talked about returning to the day "
             "centre. Mentioned worry about rent next month; agreed to call the housing desk together. "
             "Medication taken as prescribed. Visit " + std::to_string(i) + "."},
            {"risk_flags", i % 2 ? json::array({"housing"}) : json::array({"isolation", "medication"})},
            {"next_visit", "2026-12-01"},
            {"review_status", "submitted"}};
}

// The server's cumulative seconds per route, from its loopback-only /metrics.
std::map<std::string, double> server_seconds(testing::ApiClient& api) {
    std::map<std::string, double> out;
    testing::Reply r = api.get("/metrics");
    std::istringstream lines(r.raw);
    std::string line;
    const std::string prefix = "tsunagu_request_seconds_sum{route=\"";
    while (std::getline(lines, line)) {
        if (line.rfind(prefix, 0) != 0) continue;
        const auto end = line.find('"', prefix.size());
        out[line.substr(prefix.size(), end - prefix.size())] = std::stod(line.substr(line.rfind(' ') + 1));
    }
    return out;
}

double delta(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
             const std::string& route) {
    auto a = after.count(route) ? after.at(route) : 0.0;
    auto b = before.count(route) ? before.at(route) : 0.0;
    return a - b;
}

// The internal child mode: a fresh replica signs in and syncs; prints {"seconds","records"}.
int pull_child(const std::string& url, const std::string& user, const std::string& password, const std::string& home) {
    auto device = client::Device::open(home, "bench passphrase", bench_options());
    if (!device) die("open", device.status());
    if (Status s = device->sign_in(url, user, password, "bench"); !s) die("sign in", s);
    const auto start = Clock::now();
    std::size_t last_shown = 0;
    auto report = device->sync([&](const client::SyncProgress& p) {
        if (p.phase == client::SyncProgress::Phase::pull && p.done >= last_shown + 20000) {
            last_shown = p.done;
            std::fprintf(stderr, "  ... %zu records pulled\n", p.done);
        }
    });
    const double seconds = since(start);
    if (!report) die("sync", report.status());
    std::printf("%s\n", json{{"seconds", seconds}, {"records", report->pulled}}.dump().c_str());
    return 0;
}

struct ChildRun {
    double seconds = 0;
    std::size_t records = 0;
    double rss_mb = 0;
};

ChildRun run_pull_child(const char* self, const std::string& url, const std::string& user,
                        const std::string& password, const std::string& home) {
    int out[2];
    if (::pipe(out) != 0) std::exit(1);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::close(out[0]);
        ::execl(self, self, "--pull-child", url.c_str(), user.c_str(), password.c_str(), home.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    std::string text;
    char buf[512];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    json j = json::parse(text, nullptr, false);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || j.is_discarded()) {
        std::fprintf(stderr, "device_bench: the pull child failed; the server's log ends:\n%s\n",
                     log_tail().c_str());
        std::exit(1);
    }
    return {j["seconds"], j["records"], static_cast<double>(usage.ru_maxrss) / 1024.0};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 6 && std::strcmp(argv[1], "--pull-child") == 0) return pull_child(argv[2], argv[3], argv[4], argv[5]);
    bool as_json = false;
    int records = 10000;
    int big = 100000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--json") == 0) as_json = true;
        else if (std::strcmp(argv[i], "--records") == 0 && i + 1 < argc) records = std::atoi(argv[++i]);
        else if (std::strcmp(argv[i], "--big") == 0 && i + 1 < argc) big = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: device_bench [--json] [--records N] [--big N]\n");
            return 2;
        }
    }

    testing::TempDir dir("tsunagu-device-bench");
    testing::ServerProcess server(TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log"));
    g_server_log = dir.file("server.log");
    server.start();
    testing::ApiClient admin(server.url());
    if (admin.sign_in("admin", server.admin_password()).status != 200) die("admin sign-in", Status());
    const std::string team = admin.post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
    std::map<std::string, std::string> ids;
    for (const auto& [name, role] : std::map<std::string, std::string>{
             {"aoi", "peer_supporter"}, {"ben", "home_visitor"}, {"sato", "supervisor"}}) {
        auto r = admin.post("/v1/admin/users",
                            {{"username", name}, {"role", role}, {"team_id", team}, {"password", name + "-password-1"},
                             {"must_change_password", false}});
        ids[name] = r.body["user"]["id"];
    }

    // 1. Offline work, then the push.
    auto aoi = client::Device::open(dir.file("aoi"), "bench passphrase", bench_options());
    if (!aoi) die("open", aoi.status());
    if (Status s = aoi->sign_in(server.url(), "aoi", "aoi-password-1"); !s) die("sign in", s);
    auto client = aoi->create("client", {{"pseudonym", "K-900"}, {"area", "kita"}});
    if (!client) die("create", client.status());
    if (auto first = aoi->sync(); !first) die("sync", first.status());
    auto record_offline = [&](int from, int to) {
        const auto start = Clock::now();
        for (int i = from; i < to; ++i) {
            auto id = aoi->create("home_visit", visit(*client, ids["aoi"], i));
            if (!id) die("create", id.status());
        }
        return since(start);
    };
    const double record_s = record_offline(0, records);
    const std::size_t record_bytes = visit(*client, ids["aoi"], 1).dump().size();

    testing::ApiClient metrics(server.url());
    auto m0 = server_seconds(metrics);
    const auto push_start = Clock::now();
    double push_s = 0;
    auto pushed = aoi->sync([&](const client::SyncProgress& p) {
        if (p.phase == client::SyncProgress::Phase::pull && push_s == 0) push_s = since(push_start);
    });
    const double sync_s = since(push_start);
    if (!pushed) die("push", pushed.status());
    auto m1 = server_seconds(metrics);
    const double push_server_s = delta(m0, m1, "/v1/sync/push");

    // 2. A fresh replica of another worker sharing the client pulls them.
    testing::Reply assigned = admin.raw("PUT", "/v1/admin/clients/" + *client + "/caseload",
                                        json{{"team_id", team}, {"worker_ids", {ids["aoi"], ids["ben"]}}}.dump());
    if (assigned.status != 200) die("assign", Status(ErrorCode::internal, assigned.raw));
    const ChildRun pull = run_pull_child(argv[0], server.url(), "ben", "ben-password-1", dir.file("ben"));
    auto m2 = server_seconds(metrics);
    const double pull_server_s = delta(m1, m2, "/v1/sync/pull");

    // 3. Up to BIG records, pulled by the supervisor's fresh replica.
    double big_record_s = 0;
    if (big > records) {
        big_record_s = record_offline(records, big - 1);  // the client record is one of them
        if (auto more = aoi->sync(); !more) die("push", more.status());
    }
    auto m3 = server_seconds(metrics);
    const ChildRun big_pull = run_pull_child(argv[0], server.url(), "sato", "sato-password-1", dir.file("sato"));
    auto m4 = server_seconds(metrics);
    const double big_server_s = delta(m3, m4, "/v1/sync/pull");

    const double push_rate = records / push_s;
    const double pull_rate = static_cast<double>(pull.records) / pull.seconds;
    const double couch_rate = kCouchdbRecords / kCouchdbSeconds;
    std::printf("records: %d home visits of about %zu bytes (%.2f s to record them offline)\n", records, record_bytes,
                record_s);
    std::printf("push: %.3f s, %.0f records/s (server time %.3f s); whole sync incl. pulling them back %.3f s\n",
                push_s, push_rate, push_server_s, sync_s);
    std::printf("pull into a fresh replica: %.3f s for %zu records, %.0f records/s (server time %.3f s), peak RSS %.1f MB\n",
                pull.seconds, pull.records, pull_rate, pull_server_s, pull.rss_mb);
    std::printf("supervisor's fresh replica: %.3f s for %zu records, %.0f records/s (server time %.3f s), peak RSS %.1f MB"
                " (recording the extra records offline took %.1f s)\n",
                big_pull.seconds, big_pull.records, static_cast<double>(big_pull.records) / big_pull.seconds,
                big_server_s, big_pull.rss_mb, big_record_s);
    std::printf("vs CouchDB/PouchDB (4.5 s per 10,000, %.0f records/s): push %.1fx, pull %.1fx faster\n", couch_rate,
                push_rate / couch_rate, pull_rate / couch_rate);
    std::printf("targets: push < 0.5 s %s, pull < 0.5 s %s, 100k pull < 10 s %s\n", push_s < 0.5 ? "met" : "NOT met",
                pull.seconds < 0.5 ? "met" : "NOT met", big_pull.seconds < 10 ? "met" : "NOT met");
    if (as_json) {
        json out = {{"records", records},
                    {"push_s", push_s},
                    {"pull_s", pull.seconds},
                    {"sync_s", sync_s},
                    {"push_records_per_s", push_rate},
                    {"pull_records_per_s", pull_rate},
                    {"push_server_s", push_server_s},
                    {"pull_server_s", pull_server_s},
                    {"pull_rss_mb", pull.rss_mb},
                    {"pull100k_records", big_pull.records},
                    {"pull100k_s", big_pull.seconds},
                    {"pull100k_server_s", big_server_s},
                    {"pull100k_rss_mb", big_pull.rss_mb},
                    {"push_vs_couchdb_ratio", push_rate / couch_rate},
                    {"pull_vs_couchdb_ratio", pull_rate / couch_rate}};
        std::printf("%s\n", out.dump().c_str());
    }
    return 0;
}
