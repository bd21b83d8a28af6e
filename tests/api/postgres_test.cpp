// The server on PostgreSQL, as a deployment beyond one machine runs it: several tsunagu-server
// processes on one database, one of them killed mid-sync, and a database whose dump shows no care
// data. (The server's whole integration suite also runs on PostgreSQL: tests/api/CMakeLists.txt.)
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "api_client.h"
#include "support/postgres_cluster.h"
#include "support/run_program.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "synced_device.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Servers sharing one PostgreSQL database and one key file; the first one started creates the
// first administrator.
struct Deployment {
    TempDir dir{"tsunagu-pg-servers"};
    PostgresCluster database;
    std::vector<std::unique_ptr<ServerProcess>> servers;
    std::unique_ptr<ApiClient> admin;
    std::string team;
    std::map<std::string, std::string> ids;

    explicit Deployment(int count) {
        for (int i = 0; i < count; ++i) {
            const std::string name = "server" + std::to_string(i);
            servers.push_back(std::make_unique<ServerProcess>(TSUNAGU_SERVER_PATH, dir.file(name), dir.file(name + ".log")));
            start(i);
        }
        admin = std::make_unique<ApiClient>(servers[0]->url());
        REQUIRE(admin->sign_in("admin", servers[0]->admin_password()).status == 200);
        team = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
    }
    // Starts (or restarts, on its old port) server i.
    void start(int i, int port = 0) {
        servers[static_cast<std::size_t>(i)]->start(
            {"--postgres", database.conninfo(), "--key-file", dir.file("tsunagu.key")}, port);
    }
    void add(const std::string& name, const std::string& role) {
        Reply r = admin->post("/v1/admin/users", {{"username", name}, {"role", role}, {"team_id", team},
                                                  {"password", name + "-password-1"}, {"must_change_password", false}});
        REQUIRE(r.status == 201);
        ids[name] = r.body["user"]["id"];
    }
    std::unique_ptr<SyncedDevice> device(const std::string& name, int server) {
        return std::make_unique<SyncedDevice>(servers[static_cast<std::size_t>(server)]->url(),
                                              dir.file(name + "-" + std::to_string(++devices) + ".db"), name,
                                              name + "-password-1");
    }
    int devices = 0;
};

// One sync through the device's server (SyncedDevice::try_sync).
bool try_sync(SyncedDevice& d) { return d.try_sync(); }

bool sync_until_done(SyncedDevice& d) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (try_sync(d)) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

// The data rows of `table` in pg_dump's plain SQL: what follows its COPY line, up to "\.".
std::string copied_rows(const std::string& dump, const std::string& table) {
    const std::size_t copy = dump.find("COPY public." + table + " (");
    if (copy == std::string::npos) return {};
    const std::size_t first = dump.find('\n', copy);
    const std::size_t end = dump.find("\n\\.\n", first);
    if (first == std::string::npos || end == std::string::npos) return {};
    return dump.substr(first + 1, end - first - 1);
}

std::size_t meetings_held(SyncedDevice& d) {
    auto list = d.device->list("meeting");
    REQUIRE(list.is_ok());
    return list->size();
}

}  // namespace

TEST_CASE("three servers on one PostgreSQL: devices syncing through different ones converge, "
          "with one server killed and restarted mid-sync") {
    Deployment deployment(3);
    constexpr int kWorkers = 6;
    for (int i = 0; i < kWorkers; ++i) deployment.add("w" + std::to_string(i), "home_visitor");
    deployment.add("sato", "supervisor");
    std::vector<std::unique_ptr<SyncedDevice>> phones;
    for (int i = 0; i < kWorkers; ++i) phones.push_back(deployment.device("w" + std::to_string(i), i % 3));
    // The supervisor pulls through the third server all along: a change committed with a number
    // below its cursor would be lost to it for good.
    auto supervisor = deployment.device("sato", 2);

    std::vector<std::vector<std::string>> created(kWorkers);
    std::atomic<bool> done{false}, workers_stop{false};
    std::atomic<int> failed_creates{0}, failed_syncs{0};
    std::vector<std::thread> workers;
    for (int i = 0; i < kWorkers; ++i) {
        workers.emplace_back([&, i] {
            SyncedDevice& phone = *phones[static_cast<std::size_t>(i)];
            // Until a second after the restart: server 1 dies under traffic.
            while (!workers_stop) {
                for (int k = 0; k < 5; ++k) {
                    auto id = phone.device->create(
                        "meeting", {{"kind", "case_conference"}, {"date", "2020-10-01"}, {"participants", k}});
                    if (!id) {
                        ++failed_creates;
                        return;
                    }
                    created[static_cast<std::size_t>(i)].push_back(*id);
                }
                if (!try_sync(phone)) ++failed_syncs;  // server 1 down: retried next round
            }
        });
    }
    std::thread puller([&] {
        while (!done) (void)try_sync(*supervisor);
    });

    std::this_thread::sleep_for(1000ms);
    const int port = deployment.servers[1]->port();
    deployment.servers[1]->stop(SIGKILL);  // mid-push or mid-pull for the phones on server 1
    std::this_thread::sleep_for(1000ms);
    deployment.start(1, port);
    std::this_thread::sleep_for(1000ms);
    workers_stop = true;
    for (auto& t : workers) t.join();
    done = true;
    puller.join();
    REQUIRE(failed_creates == 0);

    std::size_t total = 0;
    for (auto& phone : phones) REQUIRE(sync_until_done(*phone));
    REQUIRE(sync_until_done(*supervisor));
    for (const auto& ids : created) {
        total += ids.size();
        for (const auto& id : ids) REQUIRE(supervisor->holds(id));
    }
    INFO("records created: " << total << ", syncs cut by the kill: " << failed_syncs);
    CHECK(failed_syncs > 0);  // the kill did cut syncs short
    CHECK(total > 100);
    CHECK(meetings_held(*supervisor) == total);  // each record once
    // Every phone holds exactly its own records, each once.
    for (int i = 0; i < kWorkers; ++i) CHECK(meetings_held(*phones[static_cast<std::size_t>(i)]) == created[static_cast<std::size_t>(i)].size());
    // Nothing duplicated in the change log either: each record the phones of the killed server
    // made (phones 1 and 4) has the one change that made it, a push cut by the kill included.
    std::size_t made_twice = 0;
    for (const std::size_t phone : {1, 4}) {
        for (const auto& id : created[phone]) {
            Reply read = supervisor->client.get("/v1/records/" + id);
            REQUIRE(read.status == 200);
            if (read.body["history"].size() != 1) ++made_twice;
        }
    }
    CHECK(made_twice == 0);
}

TEST_CASE("no visit is lost while users are refused for a team that does not exist") {
    Deployment deployment(1);
    deployment.add("aoi", "home_visitor");
    auto phone = deployment.device("aoi", 0);
    const std::string client = phone->create("client", {{"pseudonym", "K-FK"}, {"area", "kita"}});
    std::atomic<bool> syncing{true};
    std::atomic<int> refused{0}, other{0};
    std::thread admin([&] {
        ApiClient office(deployment.servers[0]->url());
        office.token = deployment.admin->token;
        for (int i = 0; syncing; ++i) {
            Reply r = office.post("/v1/admin/users", {{"username", "stray" + std::to_string(i)}, {"role", "home_visitor"},
                                                      {"team_id", "no-such-team"}, {"password", "a-password-1"}});
            ++(r.status == 404 ? refused : other);
        }
    });
    std::vector<std::string> visits;
    bool synced = true;
    for (int i = 0; i < 15 && synced; ++i) {
        visits.push_back(phone->create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                                      {"purpose", "check_in"}, {"review_status", "submitted"}}));
        synced = try_sync(*phone);  // once acknowledged, the phone never sends a visit again
    }
    syncing = false;
    admin.join();
    REQUIRE(synced);
    CHECK(refused > 0);
    CHECK(other == 0);
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    for (const auto& id : visits) CHECK(second->holds(id));
}

TEST_CASE("a server whose PostgreSQL sessions were all ended connects anew within seconds and loses nothing acknowledged") {
    Deployment deployment(1);
    deployment.add("aoi", "home_visitor");
    auto phone = deployment.device("aoi", 0);
    const std::string client = phone->create("client", {{"pseudonym", "K-END"}, {"area", "kita"}});
    std::vector<std::string> visits;
    auto visit = [&] {
        visits.push_back(phone->create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                                      {"purpose", "check_in"}, {"review_status", "submitted"}}));
    };
    for (int i = 0; i < 3; ++i) visit();
    REQUIRE(sync_until_done(*phone));

    // As a restart of PostgreSQL does: every session on the server's database ends.
    deployment.database.load("postgres", "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                         "WHERE datname = 'postgres' AND pid <> pg_backend_pid()");
    for (int i = 0; i < 3; ++i) visit();
    const auto ended = std::chrono::steady_clock::now();
    bool synced = false;
    while (!synced && std::chrono::steady_clock::now() - ended < 5s) {
        synced = try_sync(*phone);
        if (!synced) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(synced);
    ApiClient health(deployment.servers[0]->url());
    int healthy = 0;
    for (int i = 0; i < 3 && healthy != 200; ++i) healthy = health.get("/healthz").status;
    CHECK(healthy == 200);
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    for (const auto& id : visits) CHECK(second->holds(id));
}

TEST_CASE("PostgreSQL holds no care data in clear: a dump shows neither notes nor conflicting values") {
    Deployment deployment(1);
    deployment.add("aoi", "home_visitor");
    deployment.add("sato", "supervisor");
    auto phone = deployment.device("aoi", 0);
    const std::string note = "MARKER-note-slept-badly-4c1d";
    const auto id = phone->create("meeting", {{"kind", "case_conference"}, {"date", "2020-10-01"}, {"notes", note}});
    REQUIRE(sync_until_done(*phone));
    // A conflict: the worker's second phone and the first edit the note offline.
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    REQUIRE(phone->device->update(id, {{"notes", "MARKER-first-phone-91ab"}}).is_ok());
    REQUIRE(second->device->update(id, {{"notes", "MARKER-second-phone-77e0"}}).is_ok());
    REQUIRE(sync_until_done(*phone));
    REQUIRE(sync_until_done(*second));

    // The contents are there, for those allowed to read them...
    auto sato = deployment.device("sato", 0);
    REQUIRE(sync_until_done(*sato));
    auto record = sato->device->get(id);
    REQUIRE(record.is_ok());
    REQUIRE(record->has_value());
    const std::string current = (**record).fields["notes"].get<std::string>();
    CHECK(current.starts_with("MARKER-"));
    auto conflicts = sato->client.get("/v1/conflicts");
    REQUIRE(conflicts.status == 200);
    CHECK(conflicts.raw.find("MARKER-") != std::string::npos);
    // A refused change (a date that does not exist) is kept for the supervisor, sealed too.
    const nlohmann::json refused = {
        {"id", tsunagu::sync::new_id()}, {"collection", "meeting"}, {"record", tsunagu::sync::new_id()},
        {"hlc", "1750000000000-0"}, {"replica", phone->client.device_id}, {"user", phone->user_id},
        {"schema", 1}, {"create", true},
        {"set", {{"kind", "case_conference"}, {"date", "2020-02-30"}, {"notes", "MARKER-refused-night-shift"}}}};
    Reply pushed = phone->client.post("/v1/sync/push", {{"changes", nlohmann::json::array({refused})}});
    REQUIRE(pushed.body["outcomes"][0]["status"] == "refused");
    Reply kept = sato->client.get("/v1/refused/" + refused["id"].get<std::string>());
    REQUIRE(kept.status == 200);
    CHECK(kept.body["refused"]["change"]["set"]["notes"] == "MARKER-refused-night-shift");

    // ...and nowhere in what the database administrator or a backup sees.
    const std::string dump = deployment.database.dump("postgres");
    CHECK(dump.find("sync_records") != std::string::npos);
    CHECK(dump.find("MARKER") == std::string::npos);
    CHECK(dump.find("slept-badly") == std::string::npos);
    CHECK(dump.find("first-phone") == std::string::npos);
    CHECK(dump.find("second-phone") == std::string::npos);
    CHECK(dump.find("refused_change") != std::string::npos);
    CHECK(dump.find("night-shift") == std::string::npos);
    // Nor which fields each change set: the change log's rows name none of them (the notes were
    // set three times).
    const std::string log_rows = copied_rows(dump, "sync_log");
    CHECK_FALSE(log_rows.empty());
    CHECK(log_rows.find("notes") == std::string::npos);
    CHECK(log_rows.find("date") == std::string::npos);
}

TEST_CASE("a database restored from a dump: phones miss nothing new and send again what the dump lacked") {
    Deployment deployment(1);
    deployment.add("aoi", "home_visitor");
    auto phone = deployment.device("aoi", 0);
    const std::string client = phone->create("client", {{"pseudonym", "K-301"}, {"area", "kita"}});
    std::vector<std::string> visits;
    auto visit = [&] {
        visits.push_back(phone->create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                                      {"purpose", "check_in"}, {"review_status", "submitted"}}));
    };
    for (int i = 0; i < 3; ++i) visit();
    REQUIRE(sync_until_done(*phone));
    const std::string dump = deployment.database.dump("postgres");  // the nightly backup
    for (int i = 0; i < 2; ++i) visit();
    REQUIRE(sync_until_done(*phone));  // acknowledged by the database about to be lost

    // The database is lost; the dump goes into a new one, marked restored, and served again.
    const int port = deployment.servers[0]->port();
    deployment.servers[0]->stop(SIGTERM);
    deployment.database.create_database("restored");
    deployment.database.load("restored", dump);
    const std::string restored = deployment.database.conninfo("restored");
    ProgramRun marked = run_program(TSUNAGU_SERVER_PATH, {"restore", "--postgres", restored, "--key-file",
                                                          deployment.dir.file("tsunagu.key")});
    INFO(marked.err);
    REQUIRE(marked.exit_code == 0);
    CHECK(marked.out.find("every session was ended") != std::string::npos);
    deployment.servers[0]->start({"--postgres", restored, "--key-file", deployment.dir.file("tsunagu.key")}, port);

    ApiClient reconnected(deployment.servers[0]->url());  // the phone's connection to the old server is gone
    // Its session ended with the restore (the dump cannot know of a revocation since): the worker
    // signs in again on the same device.
    reconnected.token = phone->client.token;
    CHECK(reconnected.get("/v1/me").status == 401);
    REQUIRE(reconnected.sign_in("aoi", "aoi-password-1", "phone", phone->client.device_id).status == 200);
    CHECK(reconnected.device_id == phone->client.device_id);
    phone->client = std::move(reconnected);
    REQUIRE(sync_until_done(*phone));  // hears the new epoch: its journal goes back to its outbox
    REQUIRE(sync_until_done(*phone));  // and is sent
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    for (const auto& id : visits) CHECK(second->holds(id));

    // Backups of a server on PostgreSQL are pg_dump's, as above: the server takes none itself.
    ApiClient admin(deployment.servers[0]->url());
    REQUIRE(admin.sign_in("admin", deployment.servers[0]->admin_password()).status == 200);
    Reply backups = admin.get("/v1/admin/backups");
    CHECK(backups.body["store"] == "postgres");
    CHECK(backups.body["enabled"] == false);
    Reply refused = admin.post("/v1/admin/backups", nlohmann::json::object());
    CHECK(refused.status == 409);
    CHECK(refused.body["message"].get<std::string>().find("pg_dump") != std::string::npos);
}

TEST_CASE("a server whose database went back in time under it writes nothing until the database is marked restored") {
    Deployment deployment(1);
    deployment.add("aoi", "home_visitor");
    auto phone = deployment.device("aoi", 0);
    const std::string client = phone->create("client", {{"pseudonym", "K-302"}, {"area", "kita"}});
    auto visit = [&] {
        return phone->create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                           {"purpose", "check_in"}, {"review_status", "submitted"}});
    };
    visit();
    visit();
    REQUIRE(sync_until_done(*phone));
    // Last night's dump loaded under the running server, without restore --postgres: the change
    // log ends earlier than what the server (and the phone) saw.
    deployment.database.load("postgres",
                             "UPDATE sync_meta SET value = (value::bigint - 2)::text WHERE key = 'sequence';");
    const std::string later = visit();
    CHECK_FALSE(try_sync(*phone));  // refused: numbers given again would be skipped by phones
    CHECK(phone->device->outbox()->size() == 1);  // kept on the phone
    std::ifstream log_file(deployment.dir.file("server0.log"));
    const std::string log{std::istreambuf_iterator<char>(log_file), std::istreambuf_iterator<char>()};
    CHECK(log.find("went back in time") != std::string::npos);

    // Marked restored (servers stopped), the database takes the phone's work again.
    const int port = deployment.servers[0]->port();
    deployment.servers[0]->stop(SIGTERM);
    ProgramRun marked = run_program(TSUNAGU_SERVER_PATH, {"restore", "--postgres", deployment.database.conninfo(),
                                                          "--key-file", deployment.dir.file("tsunagu.key")});
    INFO(marked.err);
    REQUIRE(marked.exit_code == 0);
    deployment.start(0, port);
    ApiClient reconnected(deployment.servers[0]->url());
    REQUIRE(reconnected.sign_in("aoi", "aoi-password-1", "phone", phone->client.device_id).status == 200);
    phone->client = std::move(reconnected);
    REQUIRE(sync_until_done(*phone));
    REQUIRE(sync_until_done(*phone));
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    CHECK(second->holds(later));
}

TEST_CASE("restore --postgres is refused while a server runs on the database, and changes nothing") {
    Deployment deployment(1);
    const std::string conninfo = deployment.database.conninfo();
    auto health = [&] { return deployment.admin->get("/healthz").status; };
    ProgramRun refused = run_program(TSUNAGU_SERVER_PATH, {"restore", "--postgres", conninfo, "--key-file",
                                                           deployment.dir.file("tsunagu.key")});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Catch::Contains("1 server(s) run") && Catch::Contains("stop every server"));
    CHECK(health() == 200);  // the server goes on
    deployment.servers[0]->stop(SIGTERM);
    ProgramRun marked = run_program(TSUNAGU_SERVER_PATH, {"restore", "--postgres", conninfo, "--key-file",
                                                          deployment.dir.file("tsunagu.key")});
    INFO(marked.err);
    CHECK(marked.exit_code == 0);
}

TEST_CASE("a server started on the database with another key file is refused") {
    Deployment deployment(1);
    TempDir other{"tsunagu-pg-other-key"};
    ServerProcess intruder{TSUNAGU_SERVER_PATH, other.file("data"), other.file("server.log")};
    CHECK_THROWS(intruder.start({"--postgres", deployment.database.conninfo()}));
    std::ifstream log(other.file("server.log"));
    const std::string said{std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()};
    CHECK_THAT(said, Catch::Contains("does not open the data key") && Catch::Contains("key file"));
    // The key file that start made seals nothing: it is not left to pass for the deployment's.
    CHECK_FALSE(std::filesystem::exists(other.file("data") + "/tsunagu.key"));
    // The deployment's own server still serves.
    CHECK(deployment.admin->get("/v1/admin/teams").status == 200);
}

TEST_CASE("the servers' key file is rotated on PostgreSQL with the servers stopped and every record is sealed anew") {
    Deployment deployment(2);
    deployment.add("aoi", "peer_supporter");
    auto phone = deployment.device("aoi", 1);
    const std::string client = phone->create("client", {{"pseudonym", "K-ROT"}, {"area", "kita"}});
    const std::string visit = phone->create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                                         {"purpose", "check_in"}, {"review_status", "submitted"}});
    REQUIRE(sync_until_done(*phone));

    const std::string old_key = deployment.dir.file("tsunagu.key");
    const std::string new_key = deployment.dir.file("2027.key");
    auto rotate = [&](const std::string& from, const std::string& to) {
        return run_program(TSUNAGU_SERVER_PATH, {"rotate-key", "--postgres", deployment.database.conninfo(),
                                                 "--key-file", from, "--new-key-file", to}, {}, 60s);
    };

    // Refused while servers run, naming them; nothing changes and they go on.
    const ProgramRun refused = rotate(old_key, new_key);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("2 server(s) run") != std::string::npos);
    CHECK(sync_until_done(*phone));

    for (auto& server : deployment.servers) server->stop(SIGTERM);
    const ProgramRun rotated = rotate(old_key, new_key);
    INFO(rotated.err);
    REQUIRE(rotated.exit_code == 0);
    CHECK(rotated.out.find("sealed under a new data key") != std::string::npos);
    CHECK(rotated.out.rfind("0 row(s)", 0) == std::string::npos);
    CHECK(fs::status(new_key).permissions() == (fs::perms::owner_read | fs::perms::owner_write));

    // A server started with the old key file is refused; with the new one it serves every record.
    TempDir other{"tsunagu-pg-old-key"};
    ServerProcess stale{TSUNAGU_SERVER_PATH, other.file("data"), other.file("server.log")};
    CHECK_THROWS(stale.start({"--postgres", deployment.database.conninfo(), "--key-file", old_key}));
    const int port = deployment.servers[0]->port();
    deployment.servers[0]->start({"--postgres", deployment.database.conninfo(), "--key-file", new_key}, port);
    auto second = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*second));
    CHECK(second->holds(client));
    CHECK(second->holds(visit));

    // Run again, it finds the work done; key files that open nothing change nothing.
    deployment.servers[0]->stop(SIGTERM);
    const ProgramRun again = rotate(old_key, new_key);
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("already") != std::string::npos);
    const std::string stranger = deployment.dir.file("stranger.key");
    std::ofstream(stranger, std::ios::binary) << std::string(32, 's');
    fs::permissions(stranger, fs::perms::owner_read | fs::perms::owner_write);
    const ProgramRun wrong = rotate(stranger, deployment.dir.file("other.key"));
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.err.find("nothing was changed") != std::string::npos);
    deployment.servers[0]->start({"--postgres", deployment.database.conninfo(), "--key-file", new_key}, port);
    auto third = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*third));
    CHECK(third->holds(visit));
}

TEST_CASE("a server that lost its hold on the database announces itself again, and writes nothing under a key rotated in between") {
    Deployment deployment(1);
    deployment.add("aoi", "peer_supporter");
    auto phone = deployment.device("aoi", 0);
    const std::string client = phone->create("client", {{"pseudonym", "K-LOST"}, {"area", "kita"}});
    REQUIRE(sync_until_done(*phone));

    const std::string new_key = deployment.dir.file("2027.key");
    auto rotate = [&](const std::string& to) {
        return run_program(TSUNAGU_SERVER_PATH, {"rotate-key", "--postgres", deployment.database.conninfo(),
                                                 "--key-file", deployment.dir.file("tsunagu.key"), "--new-key-file", to},
                           {}, 60s);
    };
    auto end_announcements = [&] {
        deployment.database.load("postgres",
                                 "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND mode = 'ShareLock' AND granted");
    };
    auto log_of_server = [&] {
        std::ifstream log_file(deployment.dir.file("server0.log"));
        return std::string((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
    };

    // The server's announcement ends (as an idle-session timeout or an administrator would end
    // it) while its pool's connections live on: within seconds the server announces itself
    // again, and a rotation is refused as before.
    end_announcements();
    bool renewed = false;
    for (int i = 0; i < 150 && !renewed; ++i) {
        renewed = log_of_server().find("\"event\":\"presence_renewed\"") != std::string::npos;
        if (!renewed) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(renewed);
    const ProgramRun refused = rotate(deployment.dir.file("refused.key"));
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("1 server(s) run") != std::string::npos);

    // A rotation in the moment before it does (tried until one lands there) finds no server.
    ProgramRun rotated;
    for (int attempt = 0; attempt < 20; ++attempt) {
        end_announcements();
        rotated = rotate(new_key);
        if (rotated.exit_code == 0) break;
    }
    INFO(rotated.err);
    REQUIRE(rotated.exit_code == 0);

    // The stale server refuses the write, which stays on the phone, and says why.
    const std::string visit = phone->create("home_visit", {{"client", client}, {"date", "2020-06-02"}, {"duration_min", 20},
                                                         {"purpose", "check_in"}, {"review_status", "submitted"}});
    CHECK_FALSE(try_sync(*phone));
    CHECK(log_of_server().find("was rotated (tsunagu-server rotate-key) since this server started") != std::string::npos);
    ApiClient health(deployment.servers[0]->url());
    Reply unhealthy = health.get("/healthz");
    CHECK(unhealthy.status == 503);
    CHECK(unhealthy.body["error"] == "key_rotated");

    // Restarted with the new key file, it takes the visit; another device reads it.
    const int port = deployment.servers[0]->port();
    deployment.servers[0]->stop(SIGTERM);
    deployment.servers[0]->start({"--postgres", deployment.database.conninfo(), "--key-file", new_key}, port);
    REQUIRE(sync_until_done(*phone));
    auto other = deployment.device("aoi", 0);
    REQUIRE(sync_until_done(*other));
    CHECK(other->holds(visit));
}
