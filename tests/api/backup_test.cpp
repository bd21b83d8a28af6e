// tsunagu-server backup / restore: a consistent encrypted copy of a running server's store, and
// a restore into a new folder that a server then runs on, with the real binary and real files.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "api/server.h"
#include "backup_office.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu::testing;
using nlohmann::json;
namespace fs = std::filesystem;


TEST_CASE("a backup taken while a worker pushes restores what it held, the phones send again what came after, and none of it is readable") {
    Office office;
    ApiClient lost_phone(office.server.url());  // Aoi's second phone, lost after the backup
    REQUIRE(lost_phone.sign_in("aoi", "aoi-password-1", "aoi-second-phone").status == 200);
    std::set<std::string> taken_before;  // visits the server acknowledged before the backup began
    {
        auto listed = office.phone->device->list("home_visit");
        REQUIRE(listed.is_ok());
        for (const auto& r : *listed) taken_before.insert(r.id);
    }
    REQUIRE(taken_before.size() == 20);

    // The worker goes on syncing while the backup is taken.
    // (No assertion in the thread: Catch2's are not thread-safe; failures are counted instead.)
    std::atomic<bool> done{false};
    std::atomic<int> failed{0};
    std::thread pushing([&] {
        for (int i = 20; !done && i < 200; ++i) {
            if (!office.phone->device->create("home_visit", visit(office.client, i)) || !office.phone->try_sync()) ++failed;
        }
    });
    const std::string backup = office.dir.file("tsunagu-backup.db");
    const ProgramRun run = server_command({"backup", "--data", office.data, "--to", backup});
    done = true;
    pushing.join();
    CHECK(failed == 0);
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    CHECK(run.out.find("read back whole") != std::string::npos);
    CHECK_FALSE(fs::exists(backup + ".partial"));

    const std::string copy = bytes_of(backup);
    CHECK(copy.size() > 4096);

    // A drill: the backup reads whole and says what it holds, and is only read.
    const ProgramRun verified = server_command({"verify-backup", "--from", backup, "--data", office.data});
    INFO(verified.err);
    CHECK(verified.exit_code == 0);
    CHECK(verified.out.find("is whole") != std::string::npos);
    CHECK(verified.out.find("client 1") != std::string::npos);
    CHECK(verified.out.find("2 account(s)") != std::string::npos);
    // Where and when it comes from: a backup swapped for an older one, or another office's, shows.
    CHECK(verified.out.find(" UTC, from installation ") != std::string::npos);
    auto last_change_of = [](const std::string& out) {
        const auto at = out.find("its last change is #");
        return at == std::string::npos ? -1LL : std::stoll(out.substr(at + 20));
    };
    const long long backup_seq = last_change_of(verified.out);
    CHECK(backup_seq > 0);
    CHECK(verified.out.find("MARKER") == std::string::npos);
    CHECK(bytes_of(backup) == copy);
    CHECK(copy.find("MARKER") == std::string::npos);
    CHECK(copy.find("aoi-password") == std::string::npos);
    CHECK(copy.find("SQLite format") == std::string::npos);

    // Visits the server takes after the backup: the server that took them is about to be lost.
    std::vector<std::string> after_backup;
    for (int i = 300; i < 303; ++i) after_backup.push_back(office.phone->create("home_visit", visit(office.client, i)));
    office.phone->sync();
    const std::string later = office.dir.file("later.backup");
    REQUIRE(server_command({"backup", "--data", office.data, "--to", later}).exit_code == 0);
    const ProgramRun later_verified = server_command({"verify-backup", "--from", later, "--data", office.data});
    INFO(verified.out << later_verified.out);
    // The older one is told apart, and the later one holds all that came after: taking a backup
    // left the server's WAL where it was (another process that deleted it, its close finding no
    // lock of the server's, would have sent every later commit to a file nobody else can see).
    CHECK(last_change_of(later_verified.out) >= backup_seq + 3);
    CHECK(fs::exists(office.data + "/tsunagu.db-wal"));

    // The office's machine is gone; a new folder is restored from the backup and the key file.
    const std::string admin_password = office.server.admin_password();
    office.server.stop(SIGTERM);
    const std::string restored = office.dir.file("restored");
    const ProgramRun restore =
        server_command({"restore", "--from", backup, "--data", restored, "--key-file", office.key_file()});
    INFO(restore.err);
    REQUIRE(restore.exit_code == 0);
    CHECK(restore.out.find("start the server on it") != std::string::npos);
    CHECK(restore.out.find("every session was ended") != std::string::npos);
    CHECK(bytes_of(backup) == copy);  // the backup is only read
    CHECK(bytes_of(restored + "/tsunagu.db").find("MARKER") == std::string::npos);

    // Served again at the same address: the phones know no other.
    ServerProcess again{TSUNAGU_SERVER_PATH, restored, office.dir.file("restored.log")};
    again.start({"--key-file", office.key_file()}, office.server.port());
    ApiClient admin(again.url());
    CHECK(admin.sign_in("admin", admin_password).status == 200);  // the accounts came back too
    SyncedDevice new_phone(again.url(), office.dir.file("new-phone.db"), "aoi", "aoi-password-1");
    new_phone.sync();
    for (const auto& id : taken_before) CHECK(new_phone.holds(id));
    CHECK(new_phone.holds(office.client));
    for (const auto& id : after_backup) CHECK_FALSE(new_phone.holds(id));  // not in the backup

    // The old phone pulled beyond the backup from the lost server; it still gets what is new, and
    // hearing that the server was restored, it sends again what the server had acknowledged.
    const std::string after_restore = new_phone.create("home_visit", visit(office.client, 500));
    new_phone.sync();
    ApiClient reconnected(again.url());  // its connection to the lost server is gone
    // Its session ended with the restore (the backup cannot know of a revocation since): the
    // token it had opens nothing, and the worker signs in again on the same device.
    reconnected.token = office.phone->client.token;
    CHECK(reconnected.get("/v1/me").status == 401);
    // A phone the backup knew and that was lost since: the revocation redone after the restore
    // reaches it through its ended session.
    ApiClient lost(again.url());
    lost.token = lost_phone.token;
    CHECK(lost.get("/v1/me").body["error"] == "unauthenticated");
    REQUIRE(admin.post("/v1/admin/devices/" + lost_phone.device_id + "/revoke", json::object()).status == 200);
    CHECK(lost.get("/v1/me").body["error"] == "wipe");
    REQUIRE(reconnected.sign_in("aoi", "aoi-password-1", "phone", office.phone->client.device_id).status == 200);
    CHECK(reconnected.device_id == office.phone->client.device_id);
    office.phone->client = std::move(reconnected);
    office.phone->sync();  // the pull hears the new epoch: the journal goes back to the outbox
    office.phone->sync();  // and is pushed (duplicates for what the backup held)
    CHECK(office.phone->holds(after_restore));
    new_phone.sync();
    for (const auto& id : after_backup) CHECK(new_phone.holds(id));
    auto everything = office.phone->device->list("home_visit");
    REQUIRE(everything.is_ok());
    for (const auto& r : *everything) CHECK(new_phone.holds(r.id));  // nothing the worker did is lost
}

TEST_CASE("a salvage that falls back to older pages ends every session, and says to redo what may be undone") {
    // A page that fell back may have held a device's revocation, an account's disabling or a
    // password reset: a token from before must not open the salvaged server.
    Office office;
    ApiClient other_phone(office.server.url());
    REQUIRE(other_phone.sign_in("aoi", "aoi-password-1").status == 200);
    office.server.stop(SIGKILL);
    const std::string db = office.data + "/tsunagu.db";
    fs::remove(db + "-shm");
    const auto frames = wal_frame_pages(db).size();
    const std::size_t victim = wal_frame_holding(db, FrameVersion::last_with_older, wal_frame_offset(frames));
    REQUIRE(victim < frames);
    flip_byte(db + "-wal", wal_frame_offset(victim) + 24 + 500);

    const std::string salvaged_dir = office.dir.file("salvaged");
    const ProgramRun salvaged = server_command({"salvage", "--data", office.data, "--to", salvaged_dir});
    INFO(salvaged.out << salvaged.err);
    REQUIRE(salvaged.exit_code == 0);
    CHECK(salvaged.out.find("nothing was lost") == std::string::npos);
    CHECK(salvaged.out.find("every session was ended") != std::string::npos);
    CHECK(salvaged.out.find("do those again") != std::string::npos);

    ServerProcess server{TSUNAGU_SERVER_PATH, salvaged_dir, office.dir.file("salvaged.log")};
    server.start();
    for (ApiClient* before : {&office.phone->client, &other_phone}) {
        ApiClient reconnected(server.url());
        reconnected.token = before->token;
        CHECK(reconnected.get("/v1/me").status == 401);
    }
}

TEST_CASE("a backup or restore that cannot be done is refused with what to do, and changes nothing") {
    Office office;
    const std::string backup = office.dir.file("good.db");
    REQUIRE(server_command({"backup", "--data", office.data, "--to", backup}).exit_code == 0);
    const std::string good = bytes_of(backup);

    SECTION("a backup over an existing file") {
        const ProgramRun run = server_command({"backup", "--data", office.data, "--to", backup});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("already exists") != std::string::npos);
        CHECK(bytes_of(backup) == good);
    }
    SECTION("a backup with the wrong key file") {
        const std::string wrong_key = wrong_key_file(office.dir);
        const ProgramRun run =
            server_command({"backup", "--data", office.data, "--to", office.dir.file("b.db"), "--key-file", wrong_key});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("wrong key") != std::string::npos);
        CHECK_FALSE(fs::exists(office.dir.file("b.db")));
        CHECK_FALSE(fs::exists(office.dir.file("b.db.partial")));
    }
    SECTION("a backup of a folder without a store, or without naming the file") {
        const ProgramRun none = server_command({"backup", "--data", office.dir.file("empty"), "--to", office.dir.file("b.db")});
        CHECK(none.exit_code == 1);
        CHECK(none.err.find("no store in") != std::string::npos);
        const ProgramRun unnamed = server_command({"backup", "--data", office.data});
        CHECK(unnamed.exit_code == 2);
        CHECK(unnamed.err.find("--to") != std::string::npos);
    }
    SECTION("a restore with the wrong key file, or none") {
        const std::string wrong_key = wrong_key_file(office.dir);
        const std::string target = office.dir.file("restored");
        const ProgramRun run = server_command({"restore", "--from", backup, "--data", target, "--key-file", wrong_key});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("wrong key") != std::string::npos);
        CHECK_FALSE(fs::exists(target + "/tsunagu.db"));
        CHECK_FALSE(fs::exists(target + "/tsunagu.db.restoring"));
        const ProgramRun keyless = server_command({"restore", "--from", backup, "--data", office.dir.file("other")});
        CHECK(keyless.exit_code == 1);
        CHECK(keyless.err.find("--key-file") != std::string::npos);
    }
    SECTION("a drill on a tampered backup, or with the wrong key file, fails and says so") {
        std::string tampered = good;
        tampered[tampered.size() / 2] ^= 0x01;
        std::ofstream(office.dir.file("tampered.db"), std::ios::binary) << tampered;
        const ProgramRun damaged =
            server_command({"verify-backup", "--from", office.dir.file("tampered.db"), "--data", office.data});
        CHECK(damaged.exit_code == 1);
        CHECK(damaged.err.find("not whole") != std::string::npos);
        const ProgramRun wrong = server_command(
            {"verify-backup", "--from", backup, "--data", office.data, "--key-file", wrong_key_file(office.dir)});
        CHECK(wrong.exit_code == 1);
        CHECK(wrong.err.find("wrong key") != std::string::npos);
        CHECK(wrong.err.find(backup) != std::string::npos);  // the backup named, not a temporary copy
        CHECK(wrong.err.find("not whole") == std::string::npos);  // a wrong key is not damage
        CHECK(bytes_of(backup) == good);
    }
    SECTION("a drill never writes through a folder someone else prepared in the shared temporary folder") {
        // The folder a drill of this process would once have used, made by another user ahead of
        // time, with its copy's name pointing at a file the drill must not touch.
        const fs::path trap = fs::temp_directory_path() / ("tsunagu-verify-" + std::to_string(::getpid()));
        fs::create_directories(trap);
        const std::string victim = office.dir.file("victim");
        std::ofstream(victim) << "a file of someone else's";
        fs::create_symlink(victim, trap / "backup.db");
        auto contents = tsunagu::api::verify_backup(backup, office.data, "");
        fs::remove_all(trap);
        INFO(contents.status().to_string());
        CHECK(contents.is_ok());
        CHECK(bytes_of(victim) == "a file of someone else's");
    }
    SECTION("a restore of a tampered, a truncated or a foreign file") {
        std::string tampered = good;
        tampered[tampered.size() / 2] ^= 0x01;
        std::ofstream(office.dir.file("tampered.db"), std::ios::binary) << tampered;
        std::ofstream(office.dir.file("truncated.db"), std::ios::binary) << good.substr(0, good.size() / 2);
        std::ofstream(office.dir.file("notes.txt"), std::ios::binary) << "not a backup";
        for (const std::string name : {"tampered.db", "truncated.db", "notes.txt"}) {
            const std::string target = office.dir.file("restored-" + name);
            const ProgramRun run = server_command(
                {"restore", "--from", office.dir.file(name), "--data", target, "--key-file", office.key_file()});
            INFO(name << ": " << run.err);
            CHECK(run.exit_code == 1);
            CHECK(run.err.find("cannot be restored") != std::string::npos);
            CHECK_FALSE(fs::exists(target + "/tsunagu.db"));
            CHECK_FALSE(fs::exists(target + "/tsunagu.db.restoring"));
        }
    }
    SECTION("a restore into a folder a server holds (starting there, its store not made yet)") {
        const std::string target = office.dir.file("being-started");
        fs::create_directories(target);
        const int fd = ::open((target + "/tsunagu.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(::flock(fd, LOCK_SH | LOCK_NB) == 0);  // as a server holds it
        const ProgramRun run =
            server_command({"restore", "--from", backup, "--data", target, "--key-file", office.key_file()});
        ::close(fd);
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("stop it first") != std::string::npos);
        CHECK_FALSE(fs::exists(target + "/tsunagu.db"));
    }
    SECTION("a restore over a store") {
        const std::string live = bytes_of(office.data + "/tsunagu.db");
        const ProgramRun run = server_command({"restore", "--from", backup, "--data", office.data});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("never overwrites") != std::string::npos);
        CHECK(bytes_of(office.data + "/tsunagu.db") == live);
    }
}

TEST_CASE("a backup sealed with a passphrase restores on a new machine from the backup and the passphrase alone") {
    Office office;
    const std::string passphrase = office.dir.file("backup-passphrase");
    std::ofstream(passphrase) << "correct horse battery staple\n";
    const std::string backup = office.dir.file("offsite.db");
    SECTION("the passphrase file must be its owner's only") {
        fs::permissions(passphrase, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
        const ProgramRun run =
            server_command({"backup", "--data", office.data, "--to", backup, "--passphrase-file", passphrase});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("chmod 600") != std::string::npos);
        CHECK_FALSE(fs::exists(backup));
    }
    SECTION("the passphrase file must be the user's own") {
        fs::permissions(passphrase, fs::perms::owner_read | fs::perms::owner_write);
        if (::geteuid() == 0) {
            REQUIRE(::chown(passphrase.c_str(), 65534, 65534) == 0);
            const ProgramRun run =
                server_command({"backup", "--data", office.data, "--to", backup, "--passphrase-file", passphrase});
            CHECK(run.exit_code == 1);
            CHECK(run.err.find("belongs to another user") != std::string::npos);
            CHECK_FALSE(fs::exists(backup));
        } else {
            WARN("not root: a passphrase file of another user cannot be made here");
        }
    }
    SECTION("written under the passphrase, restored without the old key file") {
        fs::permissions(passphrase, fs::perms::owner_read | fs::perms::owner_write);
        const ProgramRun run =
            server_command({"backup", "--data", office.data, "--to", backup, "--passphrase-file", passphrase});
        INFO(run.err);
        REQUIRE(run.exit_code == 0);
        CHECK(run.out.find("under the passphrase") != std::string::npos);

        // The key file alone opens nothing: the backup is the passphrase's.
        const ProgramRun keyed = server_command(
            {"restore", "--from", backup, "--data", office.dir.file("keyed"), "--key-file", office.key_file()});
        CHECK(keyed.exit_code == 1);
        CHECK(keyed.err.find("passphrase") != std::string::npos);
        // Nor does another passphrase.
        const std::string wrong = office.dir.file("wrong-passphrase");
        std::ofstream(wrong) << "incorrect horse battery staple\n";
        fs::permissions(wrong, fs::perms::owner_read | fs::perms::owner_write);
        const ProgramRun guessed =
            server_command({"restore", "--from", backup, "--data", office.dir.file("guessed"), "--passphrase-file", wrong});
        CHECK(guessed.exit_code == 1);
        CHECK(guessed.err.find("wrong key") != std::string::npos);
        CHECK_FALSE(fs::exists(office.dir.file("guessed") + "/tsunagu.db"));

        // The office burnt down with its key file: a new machine, the backup and the passphrase.
        const std::string admin_password = office.server.admin_password();
        office.server.stop(SIGTERM);
        const std::string fresh = office.dir.file("new-machine");
        const ProgramRun restore =
            server_command({"restore", "--from", backup, "--data", fresh, "--passphrase-file", passphrase});
        INFO(restore.err);
        REQUIRE(restore.exit_code == 0);
        REQUIRE(fs::exists(fresh + "/tsunagu.key"));  // a new key file, 0600, now seals the store
        CHECK((fs::status(fresh + "/tsunagu.key").permissions() & fs::perms::group_all) == fs::perms::none);
        CHECK(bytes_of(fresh + "/tsunagu.key") != bytes_of(office.key_file()));
        ServerProcess again{TSUNAGU_SERVER_PATH, fresh, office.dir.file("new-machine.log")};
        again.start();
        ApiClient admin(again.url());
        CHECK(admin.sign_in("admin", admin_password).status == 200);
        SyncedDevice phone(again.url(), office.dir.file("phone-2.db"), "aoi", "aoi-password-1");
        phone.sync();
        CHECK(phone.holds(office.client));
    }
}

TEST_CASE("a backup or a restore killed part way leaves nothing that passes for one, and the next one succeeds") {
    Office office;
    const std::string backup = office.dir.file("nightly.db");
    const std::string restored = office.dir.file("restored");
    // How long each takes on this machine today, whole: the kills land at fractions of that.
    const auto timed = [](const std::vector<std::string>& args) {
        const auto started = std::chrono::steady_clock::now();
        REQUIRE(server_command(args).exit_code == 0);
        return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    };
    const auto backup_takes = timed({"backup", "--data", office.data, "--to", backup});
    const auto restore_takes = timed({"restore", "--from", backup, "--data", restored, "--key-file", office.key_file()});
    fs::remove(backup);
    fs::remove_all(restored);
    // Killed before, during or after the copy. Whatever the moment, what is at the target
    // afterwards is complete (it restores, or the server starts on it) or absent; both are seen.
    const auto run_killed = [](const std::vector<std::string>& command, std::chrono::microseconds after) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            std::freopen("/dev/null", "w", stdout);
            std::freopen("/dev/null", "w", stderr);
            exec_or_exit(command);
        }
        std::this_thread::sleep_for(after);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    };
    const auto at = [](double fraction, std::chrono::microseconds whole) {
        return std::chrono::microseconds(static_cast<std::int64_t>(fraction * static_cast<double>(whole.count())));
    };
    const std::vector<double> fractions{0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 3.0};
    int backups_absent = 0, backups_complete = 0;
    for (double fraction : fractions) {
        INFO("a backup killed at " << fraction << " of its time");
        run_killed({TSUNAGU_SERVER_PATH, "backup", "--data", office.data, "--to", backup}, at(fraction, backup_takes));
        if (fs::exists(backup)) {
            ++backups_complete;
            const std::string check = office.dir.file("check-" + std::to_string(backups_complete));
            CHECK(server_command({"restore", "--from", backup, "--data", check, "--key-file", office.key_file()})
                      .exit_code == 0);
        } else {
            ++backups_absent;
        }
        fs::remove(backup);
    }
    REQUIRE(server_command({"backup", "--data", office.data, "--to", backup}).exit_code == 0);
    int restores_absent = 0, restores_complete = 0;
    for (double fraction : fractions) {
        INFO("a restore killed at " << fraction << " of its time");
        run_killed({TSUNAGU_SERVER_PATH, "restore", "--from", backup, "--data", restored, "--key-file",
                    office.key_file()},
                   at(fraction, restore_takes));
        if (fs::exists(restored + "/tsunagu.db")) {
            ++restores_complete;
            ServerProcess started{TSUNAGU_SERVER_PATH, restored, office.dir.file("restored.log")};
            started.start({"--key-file", office.key_file()});
            started.stop(SIGTERM);
        } else {
            ++restores_absent;
        }
        fs::remove_all(restored);
    }
    fs::remove(backup);
    INFO("backups: " << backups_absent << " absent, " << backups_complete << " complete; restores: "
                     << restores_absent << " absent, " << restores_complete << " complete");
    CHECK(backups_absent > 0);
    CHECK(backups_complete > 0);
    CHECK(restores_absent > 0);
    CHECK(restores_complete > 0);
    // The next backup and restore replace whatever the killed ones left.
    REQUIRE(server_command({"backup", "--data", office.data, "--to", backup}).exit_code == 0);
    CHECK_FALSE(fs::exists(backup + ".partial"));
    REQUIRE(server_command({"restore", "--from", backup, "--data", restored, "--key-file", office.key_file()})
                .exit_code == 0);
    CHECK_FALSE(fs::exists(restored + "/tsunagu.db.restoring"));
}

TEST_CASE(
    "a store the server refuses as damaged is salvaged into a new folder with every commit its files "
    "hold, and the server runs on it") {
    Office office;
    // As a power cut leaves it: the commits in the WAL, not checkpointed, no shared-memory index.
    office.server.stop(SIGKILL);
    const std::string db = office.data + "/tsunagu.db";
    fs::remove(db + "-shm");
    const auto frames = wal_frame_pages(db).size();
    const std::size_t victim = wal_frame_holding(db, FrameVersion::superseded, wal_frame_offset(frames / 2));
    REQUIRE(victim < frames);
    flip_byte(db + "-wal", wal_frame_offset(victim) + 24 + 500);
    const std::string damaged_wal = bytes_of(db + "-wal");

    const ProgramRun refused = run_program(
        TSUNAGU_SERVER_PATH, {"--data", office.data, "--listen", "http://127.0.0.1:" + std::to_string(free_port())});
    INFO(refused.err);
    CHECK(refused.exit_code != 0);
    CHECK(refused.err.find("tsunagu-server salvage --data " + office.data) != std::string::npos);

    const std::string salvaged_dir = office.dir.file("salvaged");
    const ProgramRun salvaged = server_command({"salvage", "--data", office.data, "--to", salvaged_dir});
    INFO(salvaged.out << salvaged.err);
    REQUIRE(salvaged.exit_code == 0);
    CHECK(salvaged.out.find("nothing was lost") != std::string::npos);
    CHECK(bytes_of(db + "-wal") == damaged_wal);  // only read
    CHECK((fs::status(salvaged_dir + "/tsunagu.key").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(bytes_of(salvaged_dir + "/tsunagu.key") == bytes_of(office.key_file()));

    const ProgramRun again = server_command({"salvage", "--data", office.data, "--to", salvaged_dir});
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("already holds a store") != std::string::npos);

    ServerProcess server{TSUNAGU_SERVER_PATH, salvaged_dir, office.dir.file("salvaged.log")};
    server.start();
    SyncedDevice phone(server.url(), office.dir.file("new-phone.db"), "aoi", "aoi-password-1");
    phone.sync();
    auto visits = phone.device->list("home_visit");
    REQUIRE(visits.is_ok());
    CHECK(visits->size() == 20);
}
