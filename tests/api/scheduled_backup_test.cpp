// The server's own backups (--backup-dir): on a schedule kept across restarts, the newest few
// kept, taken when an administrator asks, and refused or retried, never silently skipped, when
// they cannot be taken. The real binary, real files, and real restores of what it wrote.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "backup_office.h"

using namespace tsunagu::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The backups a schedule wrote in `folder` (names it gives), oldest first.
std::vector<std::string> backups_in(const std::string& folder) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("tsunagu-", 0) == 0 && name.size() > 7 && name.substr(name.size() - 7) == ".backup") {
            names.push_back(name);
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

// Waits up to `seconds` for `done`; answers whether it came.
bool within(double seconds, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

// A server started with `args` that is expected to refuse to start; killed after 20 s otherwise.
ProgramRun refused_start(const TempDir& dir, std::vector<std::string> args) {
    std::vector<std::string> all = {"--data", dir.file("refused-data"), "--listen",
                                    "http://127.0.0.1:" + std::to_string(free_port())};
    all.insert(all.end(), args.begin(), args.end());
    return run_program(TSUNAGU_SERVER_PATH, all, {}, std::chrono::seconds(20));
}

constexpr const char* kTaken = "tsunagu_backups_total{result=\"taken\"}";
constexpr const char* kFailed = "tsunagu_backups_total{result=\"failed\"}";
constexpr const char* kUnchanged = "tsunagu_backups_total{result=\"unchanged\"}";

// The worker syncs one more visit (`n` tells them apart), then the schedule's next backup is
// awaited: it is taken, as something was written.
// Then a later run that found nothing written is awaited too: a sync writes more than once (its
// pull records the phone's progress after the push), and a backup taken between two of its writes
// is followed by one more. So once this answers, the newest backup holds the whole sync. Answers
// whether each came within 15 s.
bool next_backup_after_a_write(Office& office, int n) {
    const double taken = office.admin->metric(kTaken);
    office.phone->create("home_visit", visit(office.client, n));
    office.phone->sync();
    if (!within(15, [&] { return office.admin->metric(kTaken) > taken; })) return false;
    const double unchanged = office.admin->metric(kUnchanged);
    return within(15, [&] { return office.admin->metric(kUnchanged) > unchanged; });
}

}  // namespace

TEST_CASE("the server backs itself up on its schedule, keeps the newest, and each backup restores what it held") {
    TempDir elsewhere("tsunagu-backups");  // another disk, in production
    const std::string folder = elsewhere.file("backups");
    // Every 1.8 s, keeping 2.
    Office office({"--backup-dir", folder, "--backup-every", "0.0005", "--backup-keep", "2"});
    ApiClient& admin = *office.admin;

    // The first comes at start; after two more, each after a write, the oldest has been removed.
    REQUIRE(within(15, [&] { return admin.metric(kTaken) >= 1; }));
    REQUIRE(next_backup_after_a_write(office, 50));
    REQUIRE(next_backup_after_a_write(office, 51));
    const std::vector<std::string> kept = backups_in(folder);
    CHECK(kept.size() == 2);
    CHECK(admin.metric(kFailed) == 0);
    CHECK(admin.metric("tsunagu_backup_last_taken_timestamp_seconds") > 1.7e9);
    CHECK(fs::status(folder).permissions() == fs::perms::owner_all);
    // Both disks are watched: a full one stops pushes or backups.
    CHECK(admin.metric("tsunagu_disk_free_bytes{folder=\"backups\"}") > 0);
    CHECK(admin.metric("tsunagu_disk_free_bytes{folder=\"data\"}") > 0);
    CHECK(admin.metric("tsunagu_disk_total_bytes{folder=\"data\"}") >=
          admin.metric("tsunagu_disk_free_bytes{folder=\"data\"}"));

    Reply listed = admin.get("/v1/admin/backups");
    REQUIRE(listed.status == 200);
    CHECK(listed.body["enabled"] == true);
    CHECK(listed.body["keep"] == 2);
    CHECK(listed.body["sealed_with"] == "key_file");
    REQUIRE(listed.body["backups"].size() >= 2);
    CHECK(listed.body["backups"][0]["file"].get<std::string>() > listed.body["backups"][1]["file"].get<std::string>());
    CHECK(listed.body["backups"][0]["bytes"].get<std::int64_t>() > 4096);
    CHECK_FALSE(listed.body.contains("last_failure"));

    // Visits synced now are in the backup an administrator takes next.
    std::vector<std::string> visits;
    for (int i = 100; i < 105; ++i) visits.push_back(office.phone->create("home_visit", visit(office.client, i)));
    office.phone->sync();
    Reply taken = admin.post("/v1/admin/backups", json::object());
    REQUIRE(taken.status == 201);
    const std::string file = folder + "/" + taken.body["file"].get<std::string>();
    REQUIRE(fs::exists(file));
    CHECK(taken.body["bytes"].get<std::uintmax_t>() == fs::file_size(file));
    const std::string copy = bytes_of(file);
    CHECK(copy.find("MARKER") == std::string::npos);
    CHECK(copy.find("SQLite format") == std::string::npos);
    CHECK(admin.get("/v1/admin/audit?limit=1000").raw.find("admin.backed_up") != std::string::npos);
    const std::string log = slurp(office.dir.file("server.log"));
    CHECK(log.find("\"event\":\"backup\"") != std::string::npos);
    CHECK(log.find("MARKER") == std::string::npos);

    // It restores, on a server at another address, with every visit the worker had synced.
    const ProgramRun restore =
        server_command({"restore", "--from", file, "--data", office.dir.file("restored"), "--key-file", office.key_file()});
    INFO(restore.err);
    REQUIRE(restore.exit_code == 0);
    ServerProcess restored{TSUNAGU_SERVER_PATH, office.dir.file("restored"), office.dir.file("restored.log")};
    restored.start({"--key-file", office.key_file()});
    SyncedDevice new_phone(restored.url(), office.dir.file("new-phone.db"), "aoi", "aoi-password-1");
    new_phone.sync();
    for (const auto& id : visits) CHECK(new_phone.holds(id));
}

TEST_CASE("a backup folder belongs to one installation: another is refused at start, and a restore of its backups takes it back") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    Office office({"--backup-dir", folder, "--backup-every", "0.0005", "--backup-keep", "1"});
    REQUIRE(within(15, [&] { return office.admin->metric(kTaken) >= 1; }));
    REQUIRE(fs::exists(folder + "/.tsunagu-installation"));

    // A second installation pointed at the same folder (a copied service file, a shared mount)
    // would rotate the first one's backups away: it does not start.
    const ProgramRun second = refused_start(elsewhere, {"--backup-dir", folder, "--backup-keep", "1"});
    INFO(second.err);
    CHECK(second.exit_code == 1);
    CHECK(second.err.find("another installation") != std::string::npos);
    CHECK(second.err.find("--backup-dir") != std::string::npos);
    const std::vector<std::string> before = backups_in(folder);
    CHECK(before.size() == 1);

    // The same installation restarts on its folder, and so does its restore on a new machine.
    Reply taken = office.admin->post("/v1/admin/backups", json::object());
    REQUIRE(taken.status == 201);
    const std::string file = folder + "/" + taken.body["file"].get<std::string>();
    const ProgramRun restore =
        server_command({"restore", "--from", file, "--data", office.dir.file("restored"), "--key-file", office.key_file()});
    INFO(restore.err);
    REQUIRE(restore.exit_code == 0);
    // The restored copy, started beside the server it came from, would rotate its backups too.
    const ProgramRun beside = run_program(
        TSUNAGU_SERVER_PATH,
        {"--data", office.dir.file("restored"), "--listen", "http://127.0.0.1:" + std::to_string(free_port()),
         "--key-file", office.key_file(), "--backup-dir", folder, "--backup-keep", "1"},
        {}, std::chrono::seconds(20));
    INFO(beside.err);
    CHECK(beside.exit_code == 1);
    CHECK(beside.err.find("another server of this installation") != std::string::npos);
    REQUIRE(office.server.stop() == 0);
    ServerProcess restored{TSUNAGU_SERVER_PATH, office.dir.file("restored"), office.dir.file("restored.log")};
    restored.start({"--key-file", office.key_file(), "--backup-dir", folder, "--backup-keep", "1"});
    ApiClient admin(restored.url());
    REQUIRE(admin.sign_in("admin", office.server.admin_password()).status == 200);
    Reply listed = admin.get("/v1/admin/backups");
    REQUIRE(listed.status == 200);
    CHECK(listed.body["backups"].size() >= 1);
}

TEST_CASE("a backup folder whose claim names no installation is refused at start with what to do") {
    // A server on a file system without hard links creates the claim, then writes it: one that
    // stopped in between leaves it empty. Another server waits a moment for the writer, then
    // says what the file is, rather than taking the folder or calling it unreadable.
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    fs::create_directories(folder);
    { std::ofstream(folder + "/.tsunagu-installation"); }
    const auto started = std::chrono::steady_clock::now();
    const ProgramRun refused = refused_start(elsewhere, {"--backup-dir", folder, "--backup-keep", "1"});
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("names no installation") != std::string::npos);
    CHECK(refused.err.find("remove it") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(1500));
    CHECK(fs::file_size(folder + "/.tsunagu-installation") == 0);
}

TEST_CASE("a scheduled backup is not taken when nothing was written since the newest, so that the backups kept are different states") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    // Every 1.1 s, keeping 2: a quiet weekend, in seconds.
    Office office({"--backup-dir", folder, "--backup-every", "0.0003", "--backup-keep", "2"});
    ApiClient& admin = *office.admin;
    REQUIRE(within(15, [&] { return admin.metric(kTaken) >= 1; }));
    REQUIRE(next_backup_after_a_write(office, 50));
    const std::vector<std::string> before = backups_in(folder);
    REQUIRE(before.size() == 2);

    // Nothing written: runs come and go, and take nothing. The administrator's reads of the
    // backups and of the metrics write nothing either.
    const double taken = admin.metric(kTaken);
    REQUIRE(within(15, [&] { return admin.metric(kUnchanged) >= 3; }));
    CHECK(admin.metric(kTaken) == taken);
    CHECK(backups_in(folder) == before);  // both states still there, the older not rotated away
    Reply listed = admin.get("/v1/admin/backups");
    REQUIRE(listed.status == 200);
    CHECK(listed.body["unchanged"]["backup"] == before.back());
    CHECK(listed.body["unchanged"]["at"].get<std::int64_t>() >= listed.body["backups"][0]["taken_at"].get<std::int64_t>());
    CHECK(admin.metric("tsunagu_backup_current_timestamp_seconds") >
          admin.metric("tsunagu_backup_last_taken_timestamp_seconds"));
    CHECK(slurp(office.dir.file("server.log")).find("\"event\":\"backup_unchanged\"") != std::string::npos);

    // One visit synced: the next run takes a backup, which holds it.
    const std::string late = office.phone->create("home_visit", visit(office.client, 60));
    office.phone->sync();
    REQUIRE(within(15, [&] { return admin.metric(kTaken) > taken; }));
    const std::string newest = backups_in(folder).back();
    CHECK(newest > before.back());
    const ProgramRun verified = server_command(
        {"verify-backup", "--from", folder + "/" + newest, "--data", office.data, "--key-file", office.key_file()});
    INFO(verified.err);
    CHECK(verified.exit_code == 0);
    CHECK(verified.out.find("home_visit 22") != std::string::npos);  // 20 at the start, 50 and 60
    CHECK_FALSE(admin.get("/v1/admin/backups").body.contains("unchanged"));

    // The newest backup removed by hand: the next run takes one, though nothing was written.
    REQUIRE(within(15, [&] { return admin.metric(kUnchanged) >= 4; }));
    const double unchanged = admin.metric(kUnchanged);
    fs::remove(folder + "/" + backups_in(folder).back());
    const double taken_now = admin.metric(kTaken);
    REQUIRE(within(15, [&] { return admin.metric(kTaken) > taken_now; }));
    CHECK(admin.metric(kUnchanged) <= unchanged + 1);

    // An administrator who asks for one gets one, written or not.
    REQUIRE(admin.post("/v1/admin/backups", json::object()).status == 201);
}

TEST_CASE("a rotation also keeps the newest backup of each recent week and month, and says why each is kept") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    fs::create_directories(folder);
    // Ten backups of earlier weeks, exactly a week apart (so each in a week of its own), as the
    // schedule names them.
    const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
    auto name_at = [](std::int64_t s) {
        const std::time_t t = static_cast<std::time_t>(s);
        std::tm utc{};
        ::gmtime_r(&t, &utc);
        char name[64];
        std::strftime(name, sizeof name, "tsunagu-%Y%m%d-%H%M%S-000.backup", &utc);
        return std::string(name);
    };
    auto month_of = [](std::int64_t s) {
        const std::time_t t = static_cast<std::time_t>(s);
        std::tm utc{};
        ::gmtime_r(&t, &utc);
        return utc.tm_year * 12 + utc.tm_mon;
    };
    std::vector<std::string> weeks_ago(11);
    std::string last_month;  // the newest of them in the month before this one
    for (int k = 1; k <= 10; ++k) {
        const std::int64_t s = now_s - k * 7LL * 24 * 3600;
        weeks_ago[static_cast<std::size_t>(k)] = name_at(s);
        std::ofstream(folder + "/" + name_at(s)) << "an old backup";
        if (last_month.empty() && month_of(s) == month_of(now_s) - 1) last_month = name_at(s);
    }
    REQUIRE_FALSE(last_month.empty());

    // The first backup comes at start (the newest is a week old), and its rotation runs.
    Office office({"--backup-dir", folder, "--backup-keep", "1", "--backup-keep-weekly", "3",
                   "--backup-keep-monthly", "2"});
    REQUIRE(within(15, [&] { return office.admin->metric(kTaken) >= 1; }));
    Reply listed = office.admin->get("/v1/admin/backups");
    REQUIRE(listed.status == 200);
    CHECK(listed.body["keep_weekly"] == 3);
    CHECK(listed.body["keep_monthly"] == 2);
    std::map<std::string, json> kept;
    for (const auto& b : listed.body["backups"]) kept[b["file"]] = b["kept_as"];

    const std::string newest = listed.body["backups"][0]["file"];
    CHECK(kept[newest] == json({"newest", "weekly", "monthly"}));
    CHECK(kept[weeks_ago[1]].dump().find("weekly") != std::string::npos);
    CHECK(kept[weeks_ago[2]].dump().find("weekly") != std::string::npos);
    CHECK(kept[last_month].dump().find("monthly") != std::string::npos);
    CHECK(kept.count(weeks_ago[3]) == (weeks_ago[3] == last_month ? 1u : 0u));
    CHECK(kept.count(weeks_ago[10]) == 0);
    // What the answer lists is what the folder holds: everything else was removed.
    std::vector<std::string> listed_names;
    for (const auto& [name, why] : kept) {
        CHECK_FALSE(why.empty());
        listed_names.push_back(name);
    }
    CHECK(backups_in(folder) == listed_names);
    CHECK(listed_names.size() == (weeks_ago[1] == last_month || weeks_ago[2] == last_month ? 3u : 4u));
}

TEST_CASE("a report or a backup run beside a server that backs itself up leaves its WAL, and its later work, in place") {
    TempDir elsewhere("tsunagu-backups");
    Office office({"--backup-dir", elsewhere.file("backups")});
    REQUIRE(within(15, [&] { return office.admin->metric(kTaken) >= 1; }));  // its own backup, in process
    office.phone->create("home_visit", visit(office.client, 71));
    office.phone->sync();
    // Another process opens the store and closes it as its last connection: it must find the
    // server's locks (a backup the server took in process once dropped them all).
    REQUIRE(server_command({"report", "--data", office.data, "--fy", "2020"}).exit_code == 0);
    CHECK(fs::exists(office.data + "/tsunagu.db-wal"));
    const std::string copy = elsewhere.file("beside.backup");
    REQUIRE(server_command({"backup", "--data", office.data, "--to", copy}).exit_code == 0);
    CHECK(fs::exists(office.data + "/tsunagu.db-wal"));
    // What the server takes next survives its restart.
    const std::string later = office.phone->create("home_visit", visit(office.client, 72));
    office.phone->sync();
    office.server.stop(SIGTERM);
    office.server.start();
    SyncedDevice fresh(office.server.url(), elsewhere.file("fresh.db"), "aoi", "aoi-password-1");
    fresh.sync();
    CHECK(fresh.holds(later));
}

TEST_CASE("a backup named years ahead of the clock is set apart and the schedule rotates by the clock") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    fs::create_directories(folder);
    // Taken under a clock set to 2099: it would pass for the newest until then.
    const std::string ahead = "tsunagu-20991231-030000-000.backup";
    std::ofstream(folder + "/" + ahead) << "a backup taken under a wrong clock";
    Office office({"--backup-dir", folder, "--backup-every", "0.0005", "--backup-keep", "2", "--backup-keep-weekly", "0"});
    REQUIRE(within(15, [&] { return office.admin->metric(kTaken) >= 1; }));
    REQUIRE(next_backup_after_a_write(office, 60));
    REQUIRE(next_backup_after_a_write(office, 61));
    const std::vector<std::string> names = backups_in(folder);
    REQUIRE(names.size() == 3);  // the two newest by the clock, and the one set apart
    CHECK(names.back() == ahead);
    for (std::size_t i = 0; i + 1 < names.size(); ++i) CHECK(names[i].rfind("tsunagu-2099", 0) != 0);  // named by the clock
    CHECK(office.admin->metric("tsunagu_backup_last_taken_timestamp_seconds") < 4e9);  // not 2099
    Reply listed = office.admin->get("/v1/admin/backups");
    REQUIRE(listed.status == 200);
    REQUIRE(listed.body["backups"].size() == 3);
    CHECK(listed.body["backups"][0]["kept_as"] == json({"newest"}));
    CHECK(listed.body["backups"][2]["file"] == ahead);
    CHECK(listed.body["backups"][2]["kept_as"] == json({"named_ahead"}));
}

TEST_CASE("scheduled backups sealed under a passphrase restore on a new machine from the backup and the passphrase alone") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    const std::string passphrase = elsewhere.file("backup-passphrase");
    std::ofstream(passphrase) << "a passphrase kept in the safe\n";
    fs::permissions(passphrase, fs::perms::owner_read | fs::perms::owner_write);
    Office office({"--backup-dir", folder, "--backup-passphrase-file", passphrase});
    Reply taken = office.admin->post("/v1/admin/backups", json::object());
    REQUIRE(taken.status == 201);
    CHECK(office.admin->get("/v1/admin/backups").body["sealed_with"] == "passphrase");
    const std::string file = folder + "/" + taken.body["file"].get<std::string>();

    // The old machine's key file opens nothing; on a new machine the passphrase restores it.
    const ProgramRun with_key = server_command(
        {"restore", "--from", file, "--data", elsewhere.file("with-key"), "--key-file", office.key_file()});
    CHECK(with_key.exit_code == 1);
    const std::string new_machine = elsewhere.file("new-machine");
    const ProgramRun restored =
        server_command({"restore", "--from", file, "--data", new_machine, "--passphrase-file", passphrase});
    INFO(restored.err);
    REQUIRE(restored.exit_code == 0);
    ServerProcess again{TSUNAGU_SERVER_PATH, new_machine, elsewhere.file("new-machine.log")};
    again.start();
    SyncedDevice new_phone(again.url(), elsewhere.file("new-phone.db"), "aoi", "aoi-password-1");
    new_phone.sync();
    CHECK(new_phone.holds(office.client));
}

TEST_CASE("the backup schedule carries over a restart: no backup is taken early, and none is skipped") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups");
    Office office({"--backup-dir", folder, "--backup-every", "1"});
    REQUIRE(within(10, [&] { return backups_in(folder).size() == 1; }));  // the first, at start
    const std::string first = backups_in(folder).front();
    const std::int64_t next_at = office.admin->get("/v1/admin/backups").body["next_at"];

    // Restarted within the hour, the server waits for the hour to end.
    office.server.stop(SIGTERM);
    office.server.start({"--backup-dir", folder, "--backup-every", "1"});
    ApiClient admin(office.server.url());
    REQUIRE(admin.sign_in("admin", office.server.admin_password()).status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(backups_in(folder) == std::vector<std::string>{first});
    Reply listed = admin.get("/v1/admin/backups");
    CHECK(listed.body["next_at"].get<std::int64_t>() >= next_at - 1);
    CHECK(listed.body["next_at"].get<std::int64_t>() <= next_at + 1);

    // Restarted with a shorter period already over, it takes one at once.
    office.server.stop(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    office.server.start({"--backup-dir", folder, "--backup-every", "0.0003"});
    CHECK(within(10, [&] { return backups_in(folder).size() >= 2; }));
}

TEST_CASE("scheduled backups that cannot be taken are refused at start, or logged, counted and retried while the server goes on") {
    TempDir elsewhere("tsunagu-backups");

    SECTION("a start with a backup folder that cannot be one, or with wrong settings, is refused with what to fix") {
        const std::string not_a_folder = elsewhere.file("a-file");
        std::ofstream(not_a_folder) << "x";
        const std::string loose_passphrase = elsewhere.file("passphrase");
        std::ofstream(loose_passphrase) << "correct horse battery staple\n";
        fs::permissions(loose_passphrase, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
        const std::string folder = elsewhere.file("backups");
        const std::pair<std::vector<std::string>, std::string> cases[] = {
            {{"--backup-dir", not_a_folder}, "as the backup folder"},
            {{"--backup-dir", folder, "--backup-keep", "0"}, "--backup-keep"},
            {{"--backup-dir", folder, "--backup-keep-weekly", "20000"}, "--backup-keep-weekly"},
            {{"--backup-dir", folder, "--backup-keep-monthly", "-1"}, "--backup-keep-monthly"},
            {{"--backup-dir", folder, "--backup-every", "0"}, "--backup-every"},
            {{"--backup-dir", folder, "--backup-every", "-3"}, "--backup-every"},
            {{"--backup-dir", folder, "--backup-passphrase-file", loose_passphrase}, "chmod 600"},
            {{"--backup-dir", folder, "--postgres", "host=/nonexistent dbname=none"}, "pg_dump"},
        };
        for (const auto& [args, says] : cases) {
            const ProgramRun run = refused_start(elsewhere, args);
            INFO(args[args.size() - 1] << ": " << run.err);
            CHECK(run.exit_code == 1);
            CHECK(run.err.find(says) != std::string::npos);
        }
        CHECK(std::ifstream(not_a_folder).get() == 'x');
    }

    SECTION("a server without a backup folder says how to get one") {
        Office office;
        Reply listed = office.admin->get("/v1/admin/backups");
        REQUIRE(listed.status == 200);
        CHECK(listed.body["enabled"] == false);
        CHECK(listed.body["backups"].empty());
        Reply refused = office.admin->post("/v1/admin/backups", json::object());
        CHECK(refused.status == 409);
        CHECK(refused.body["message"].get<std::string>().find("--backup-dir") != std::string::npos);
    }

    SECTION("what a killed backup left is removed at start, and files the schedule did not name are never touched") {
        const std::string folder = elsewhere.file("backups");
        fs::create_directories(folder);
        std::ofstream(folder + "/tsunagu-20200101-000000-000.backup.partial") << "half a backup";
        std::ofstream(folder + "/tsunagu-20200102-000000-000.backup.partial.erasing") << "half erased";
        std::ofstream(folder + "/notes.txt") << "the operator's";
        std::ofstream(folder + "/tsunagu-old-copy.backup") << "renamed by hand";
        Office office({"--backup-dir", folder, "--backup-every", "0.0003", "--backup-keep", "1"});
        REQUIRE(within(15, [&] { return office.admin->metric(kTaken) >= 1; }));
        REQUIRE(next_backup_after_a_write(office, 50));
        REQUIRE(next_backup_after_a_write(office, 51));
        CHECK_FALSE(fs::exists(folder + "/tsunagu-20200101-000000-000.backup.partial"));
        CHECK_FALSE(fs::exists(folder + "/tsunagu-20200102-000000-000.backup.partial.erasing"));
        CHECK(fs::exists(folder + "/notes.txt"));
        CHECK(fs::exists(folder + "/tsunagu-old-copy.backup"));
        CHECK(backups_in(folder).size() == 2);  // the newest, and the one renamed by hand
    }

    SECTION("after the wall clock stepped back, a new backup still sorts newest, and is never the one rotated away") {
        const std::string folder = elsewhere.file("backups");
        fs::create_directories(folder);
        // Taken before the clock stepped back two hours (an NTP correction). One named over a day
        // ahead is another matter: set apart, as a wrong clock's (the test below).
        const std::time_t two_hours_on = std::time(nullptr) + 2 * 3600;
        std::tm utc{};
        ::gmtime_r(&two_hours_on, &utc);
        char future_name[64];
        std::strftime(future_name, sizeof future_name, "tsunagu-%Y%m%d-%H%M%S-000.backup", &utc);
        const std::string future = future_name;
        std::ofstream(folder + "/" + future) << "from the future";
        Office office({"--backup-dir", folder, "--backup-every", "1", "--backup-keep", "2"});
        Reply listed = office.admin->get("/v1/admin/backups");
        CHECK(listed.body["next_at"].get<std::int64_t>() < 4'000'000'000);  // not 2099 plus an hour
        for (int i = 0; i < 2; ++i) {
            Reply taken = office.admin->post("/v1/admin/backups", json::object());
            REQUIRE(taken.status == 201);
            const std::string name = taken.body["file"];
            CHECK(name > future);
            CHECK(fs::exists(folder + "/" + name));
        }
        CHECK_FALSE(fs::exists(folder + "/" + future));  // the oldest of three, with two kept
    }

    SECTION("a backup that fails is logged, counted and shown; syncing goes on; the next one succeeds") {
        const std::string folder = elsewhere.file("backups");
        Office office({"--backup-dir", folder, "--backup-every", "1"});
        ApiClient& admin = *office.admin;
        REQUIRE(within(10, [&] { return admin.metric(kTaken) == 1; }));

        // The backup disk goes away: a file where the folder was.
        fs::remove_all(folder);
        std::ofstream(folder) << "not a folder";
        Reply failed = admin.post("/v1/admin/backups", json::object());
        CHECK(failed.status == 500);
        CHECK(failed.body["error"] == "backup_failed");
        CHECK(failed.body["message"].get<std::string>().find(folder) != std::string::npos);
        CHECK(admin.metric(kFailed) == 1);
        Reply listed = admin.get("/v1/admin/backups");
        REQUIRE(listed.status == 200);
        CHECK(listed.body["last_failure"]["reason"].get<std::string>().find(folder) != std::string::npos);
        CHECK(listed.body.contains("folder_error"));

        // The phones go on syncing meanwhile.
        office.phone->create("home_visit", visit(office.client, 7));
        office.phone->sync();

        fs::remove(folder);
        fs::create_directories(folder);
        CHECK(admin.post("/v1/admin/backups", json::object()).status == 201);
        listed = admin.get("/v1/admin/backups");
        REQUIRE(listed.status == 200);
        CHECK_FALSE(listed.body.contains("last_failure"));
        CHECK(admin.metric(kTaken) == 2);
        const std::string log = slurp(office.dir.file("server.log"));
        CHECK(log.find("\"event\":\"backup_failed\"") != std::string::npos);
        CHECK(log.find("MARKER") == std::string::npos);
    }
}

TEST_CASE("each new backup is copied off the machine by the operator's command, which never holds the server up") {
    TempDir elsewhere("tsunagu-backups");
    const std::string folder = elsewhere.file("backups"), offsite = elsewhere.file("offsite");
    fs::create_directories(offsite);
    constexpr const char* kCopied = "tsunagu_backup_copies_total{result=\"copied\"}";
    constexpr const char* kCopyFailed = "tsunagu_backup_copies_total{result=\"failed\"}";

    SECTION("copied: the off-site file is the backup, and it verifies there") {
        Office office({"--backup-dir", folder, "--backup-copy-command", "cp \"$1\" '" + offsite + "/'"});
        ApiClient& admin = *office.admin;
        Reply taken = admin.post("/v1/admin/backups", json::object());
        REQUIRE(taken.status == 201);
        const std::string name = taken.body["file"];
        REQUIRE(within(15, [&] { return fs::exists(offsite + "/" + name) && admin.metric(kCopied) >= 2; }));
        CHECK(bytes_of(offsite + "/" + name) == bytes_of(folder + "/" + name));
        const ProgramRun verified = server_command({"verify-backup", "--from", offsite + "/" + name, "--data",
                                                    office.data, "--key-file", office.key_file()});
        INFO(verified.err);
        CHECK(verified.exit_code == 0);
        Reply listed = admin.get("/v1/admin/backups");
        CHECK(listed.body["copy"]["last_copied"] == name);
        CHECK(listed.body["copy"]["waiting"] == 0);
        CHECK_FALSE(listed.body["copy"].contains("last_failure"));
        CHECK(listed.raw.find("offsite") == std::string::npos);  // the command is not shown
        CHECK(admin.metric(kCopyFailed) == 0);
        CHECK(slurp(office.dir.file("server.log")).find("\"event\":\"backup_copied\"") != std::string::npos);
    }
    SECTION("failed: logged, counted and shown in the command's own words; the backup stays") {
        Office office({"--backup-dir", folder, "--backup-copy-command", "echo 'remote: quota exceeded' >&2; exit 3"});
        ApiClient& admin = *office.admin;
        REQUIRE(within(15, [&] { return admin.metric(kCopyFailed) >= 1; }));
        Reply listed = admin.get("/v1/admin/backups");
        const std::string reason = listed.body["copy"]["last_failure"]["reason"];
        CHECK(reason == "exit 3: remote: quota exceeded");
        CHECK(listed.body["backups"].size() == 1);
        const std::string log = slurp(office.dir.file("server.log"));
        CHECK(log.find("\"event\":\"backup_copy_failed\"") != std::string::npos);
        CHECK(log.find("quota exceeded") != std::string::npos);
    }
    SECTION("failed, then nothing written: the next run takes no backup, and copies the newest again") {
        const std::string reachable = elsewhere.file("network-is-back");
        Office office({"--backup-dir", folder, "--backup-every", "0.0003", "--backup-copy-command",
                       "test -e '" + reachable + "' || { echo 'no route to host' >&2; exit 1; }; cp \"$1\" '" +
                           offsite + "/'"});
        ApiClient& admin = *office.admin;
        // Once the office's set-up is backed up and a run has found nothing new since.
        REQUIRE(within(15, [&] { return admin.metric(kUnchanged) >= 1 && admin.metric(kCopyFailed) >= 1; }));
        const double taken = admin.metric(kTaken);
        CHECK(admin.metric(kCopied) == 0);
        std::ofstream(reachable) << "up";
        REQUIRE(within(15, [&] { return admin.metric(kCopied) >= 1; }));
        const std::string newest = backups_in(folder).back();
        CHECK(fs::exists(offsite + "/" + newest));
        CHECK(admin.metric(kTaken) == taken);  // copied again, not taken again
        Reply listed = admin.get("/v1/admin/backups");
        CHECK(listed.body["copy"]["last_copied"] == newest);
        CHECK_FALSE(listed.body["copy"].contains("last_failure"));
    }
    SECTION("too slow: killed with everything it started, at its timeout; the server stops at once") {
        const std::string pid_file = elsewhere.file("copy.pid");
        Office office({"--backup-dir", folder, "--backup-copy-timeout", "1", "--backup-copy-command",
                       "echo $$ > '" + pid_file + "'; sleep 60"});
        ApiClient& admin = *office.admin;
        REQUIRE(within(15, [&] { return admin.metric(kCopyFailed) >= 1; }));
        Reply listed = admin.get("/v1/admin/backups");
        CHECK(listed.body["copy"]["last_failure"]["reason"].get<std::string>().find("timed out") != std::string::npos);
        const std::string shell = slurp(pid_file);
        REQUIRE_FALSE(shell.empty());
        CHECK_FALSE(fs::exists("/proc/" + shell.substr(0, shell.find('\n'))));

        // A copy in progress when the server is told to stop is killed, not waited for.
        Reply taken = admin.post("/v1/admin/backups", json::object());
        REQUIRE(taken.status == 201);  // answered without waiting for the copy
        const auto stopping = std::chrono::steady_clock::now();
        office.server.stop(SIGTERM);
        CHECK(std::chrono::steady_clock::now() - stopping < std::chrono::seconds(5));
    }
    SECTION("refused at start without a folder, or with a timeout out of range") {
        const ProgramRun no_folder = refused_start(elsewhere, {"--backup-copy-command", "true"});
        CHECK(no_folder.exit_code != 0);
        CHECK(no_folder.err.find("--backup-dir") != std::string::npos);
        const ProgramRun bad_timeout = refused_start(
            elsewhere, {"--backup-dir", folder, "--backup-copy-command", "true", "--backup-copy-timeout", "0"});
        CHECK(bad_timeout.exit_code != 0);
        CHECK(bad_timeout.err.find("--backup-copy-timeout") != std::string::npos);
    }
}
