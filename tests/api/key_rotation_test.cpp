// tsunagu-server rotate-key: the embedded store sealed under a new key file and a new data key, so
// that whoever kept the old key file (an administrator who left) can open nothing it holds; never
// under a running server; taken up again when killed part way. The real binary and real files.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backup_office.h"

using namespace tsunagu::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// How many of the two files' 4096-byte pages are byte for byte the same.
std::size_t same_pages(const std::string& a, const std::string& b) {
    std::size_t same = 0;
    for (std::size_t at = 0; at + 4096 <= std::min(a.size(), b.size()); at += 4096) {
        if (a.compare(at, 4096, b, at, 4096) == 0) ++same;
    }
    return same;
}

ProgramRun rotate(const Office& office, const std::string& new_key) {
    return server_command({"rotate-key", "--data", office.data, "--new-key-file", new_key});
}

}  // namespace

TEST_CASE("a rotated store opens with the new key file only, under a new data key, with all its work") {
    Office office;
    const std::string admin_password = office.server.admin_password();
    const std::string backup = office.dir.file("before-rotation.backup");
    REQUIRE(server_command({"backup", "--data", office.data, "--to", backup}).exit_code == 0);

    // Never under a running server: it would go on writing pages under the old data key.
    const std::string new_key = office.dir.file("keys/2027.key");
    fs::create_directories(office.dir.file("keys"));
    const ProgramRun refused = rotate(office, new_key);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("stop it first") != std::string::npos);
    CHECK_FALSE(fs::exists(new_key));
    office.phone->sync();  // the server goes on

    office.server.stop(SIGTERM);
    const std::string sealed_before = bytes_of(office.data + "/tsunagu.db");
    const ProgramRun run = rotate(office, new_key);
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    CHECK(run.out.find("--key-file " + new_key) != std::string::npos);
    CHECK(fs::status(new_key).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
    const std::string sealed_after = bytes_of(office.data + "/tsunagu.db");
    CHECK(sealed_after.find("MARKER") == std::string::npos);
    // Every page sealed again: none is left as it was (the header aside, which the key slots change too).
    CHECK(same_pages(sealed_before, sealed_after) == 0);

    // The old key file no longer starts the server, and says what to do.
    const ProgramRun old_key = run_program(
        TSUNAGU_SERVER_PATH,
        {"--data", office.data, "--listen", "http://127.0.0.1:" + std::to_string(free_port())}, {},
        std::chrono::seconds(20));
    CHECK(old_key.exit_code == 1);
    CHECK(old_key.err.find("rotate-key") != std::string::npos);

    // The new one does, with the accounts, the sessions and every record.
    office.server.start({"--key-file", new_key}, office.server.port());
    ApiClient admin(office.server.url());
    CHECK(admin.sign_in("admin", admin_password).status == 200);
    ApiClient reconnected(office.server.url());  // the phone's connection to the stopped server is gone
    reconnected.token = office.phone->client.token;
    reconnected.device_id = office.phone->client.device_id;
    office.phone->client = std::move(reconnected);
    const std::string later = office.phone->create("home_visit", visit(office.client, 40));
    office.phone->sync();  // its session and cursor were kept
    SyncedDevice new_phone(office.server.url(), office.dir.file("new-phone.db"), "aoi", "aoi-password-1");
    new_phone.sync();
    CHECK(new_phone.holds(office.client));
    CHECK(new_phone.holds(later));

    // A backup from before still restores, with the key file it was taken under.
    const ProgramRun restored = server_command(
        {"restore", "--from", backup, "--data", office.dir.file("restored"), "--key-file", office.key_file()});
    INFO(restored.err);
    CHECK(restored.exit_code == 0);
}

TEST_CASE("a key rotation that cannot be done is refused with what to do, and changes nothing") {
    Office office;
    office.server.stop(SIGTERM);
    const std::string before = bytes_of(office.data + "/tsunagu.db");

    SECTION("without a new key file, or with the one in use") {
        const ProgramRun unnamed = server_command({"rotate-key", "--data", office.data});
        CHECK(unnamed.exit_code == 2);
        CHECK(unnamed.err.find("--new-key-file") != std::string::npos);
        const ProgramRun same = rotate(office, office.key_file());
        CHECK(same.exit_code == 1);
        CHECK(same.err.find("the key file in use") != std::string::npos);
    }
    SECTION("with a key file that does not open the store") {
        const ProgramRun run = server_command({"rotate-key", "--data", office.data, "--key-file",
                                               wrong_key_file(office.dir), "--new-key-file", office.dir.file("n.key")});
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("nothing was changed") != std::string::npos);
    }
    SECTION("with a PostgreSQL that cannot be reached, or a folder without a store") {
        const ProgramRun pg = server_command({"rotate-key", "--postgres", "host=/nonexistent dbname=none", "--key-file",
                                              office.key_file(), "--new-key-file", office.dir.file("n.key")});
        CHECK(pg.exit_code == 1);
        CHECK(pg.err.find("/nonexistent") != std::string::npos);
        CHECK_FALSE(fs::exists(office.dir.file("n.key")));
        const ProgramRun none = server_command(
            {"rotate-key", "--data", office.dir.file("empty"), "--new-key-file", office.dir.file("n.key")});
        CHECK(none.exit_code == 1);
        CHECK(none.err.find("no store in") != std::string::npos);
    }
    SECTION("a server does not start while a rotation rewrites the store") {
        const int fd = ::open((office.data + "/tsunagu.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);  // as rotate-key holds it
        const ProgramRun run = run_program(
            TSUNAGU_SERVER_PATH, {"--data", office.data, "--listen", "http://127.0.0.1:" + std::to_string(free_port())},
            {}, std::chrono::seconds(20));
        ::close(fd);
        CHECK(run.exit_code == 1);
        CHECK(run.err.find("being rewritten") != std::string::npos);
    }
    SECTION("neither a backup nor a report opens the store while a rotation rewrites it") {
        const int fd = ::open((office.data + "/tsunagu.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);  // as rotate-key holds it
        const ProgramRun backup = server_command({"backup", "--data", office.data, "--to", office.dir.file("b.backup")});
        const ProgramRun report = server_command({"report", "--data", office.data, "--fy", "2020"});
        ::close(fd);
        CHECK(backup.exit_code == 1);
        CHECK(backup.err.find("being rewritten") != std::string::npos);
        CHECK(backup.err.find("take the backup once that has finished") != std::string::npos);
        CHECK_FALSE(fs::exists(office.dir.file("b.backup")));
        CHECK(report.exit_code == 1);
        CHECK(report.err.find("print the report once that has finished") != std::string::npos);
    }
    CHECK(bytes_of(office.data + "/tsunagu.db") == before);
    office.server.start();  // the old key file still opens it
    CHECK(ApiClient(office.server.url()).sign_in("admin", office.server.admin_password()).status == 200);
}

TEST_CASE("a key rotation killed part way leaves a store one of the two key files opens, and running it again finishes it") {
    Office office;
    const std::string admin_password = office.server.admin_password();
    office.server.stop(SIGTERM);
    // Kill points spread over the run: before, during and after the new key wraps the data key and
    // the pages are sealed again (a whole rotation of this store takes a few tens of milliseconds).
    for (int delay_ms : {0, 2, 5, 10, 20, 40}) {
        INFO("killed after " << delay_ms << " ms");
        const std::string new_key = office.dir.file("key-" + std::to_string(delay_ms));
        const pid_t pid = ::fork();
        if (pid == 0) {
            std::freopen("/dev/null", "w", stdout);
            exec_or_exit({TSUNAGU_SERVER_PATH, "rotate-key", "--data", office.data, "--key-file", office.key_file(),
                          "--new-key-file", new_key});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        const ProgramRun again = server_command(
            {"rotate-key", "--data", office.data, "--key-file", office.key_file(), "--new-key-file", new_key});
        INFO(again.err);
        REQUIRE(again.exit_code == 0);
        // The next round rotates from this key file.
        fs::remove(office.key_file());
        fs::copy_file(new_key, office.key_file());
        fs::permissions(office.key_file(), fs::perms::owner_read | fs::perms::owner_write);
    }
    // Run again once finished, a rotation takes itself up and seals the pages once more.
    const ProgramRun twice = server_command({"rotate-key", "--data", office.data, "--key-file", office.dir.file("key-0"),
                                             "--new-key-file", office.key_file()});
    INFO(twice.err);
    REQUIRE(twice.exit_code == 0);
    CHECK(twice.out.find("taken up again") != std::string::npos);
    office.server.start();
    ApiClient admin(office.server.url());
    CHECK(admin.sign_in("admin", admin_password).status == 200);
    SyncedDevice new_phone(office.server.url(), office.dir.file("new-phone.db"), "aoi", "aoi-password-1");
    new_phone.sync();
    CHECK(new_phone.holds(office.client));
}

TEST_CASE("a key rotation stopped after the new key file wraps the data key keeps every server off the folder until it is finished") {
    Office office;
    const std::string admin_password = office.server.admin_password();
    office.server.stop(SIGTERM);
    const std::string store = office.data + "/tsunagu.db";
    const std::string marker = office.data + "/tsunagu.rotating";
    const std::string new_key = office.dir.file("new.key");
    const fs::path kept = office.dir.file("before");
    fs::copy(office.data, kept);
    // The key header (the data key, wrapped under the key file), and the pages sealed under it.
    auto header = [&] {  // read alone, not with the whole file: the loop below polls it
        std::string head(8192, '\0');
        std::ifstream in(store, std::ios::binary);
        in.read(head.data(), static_cast<std::streamsize>(head.size()));
        head.resize(static_cast<std::size_t>(in.gcount()));
        return head;
    };
    auto pages = [&] { return bytes_of(store).substr(8192); };
    const std::string header_before = header(), pages_before = pages();
    // Killed the moment the key header changes: the new key file opens the store, but the pages are
    // still sealed under the data key the old key file wrapped. The window is short; a rotation
    // that finished before the kill is put back and tried again.
    bool caught = false;
    for (int attempt = 0; attempt < 50 && !caught; ++attempt) {
        fs::remove_all(office.data);
        fs::copy(kept, office.data);
        fs::remove(new_key);
        const pid_t pid = ::fork();
        if (pid == 0) {
            std::freopen("/dev/null", "w", stdout);
            exec_or_exit({TSUNAGU_SERVER_PATH, "rotate-key", "--data", office.data, "--new-key-file", new_key});
        }
        while (::waitpid(pid, nullptr, WNOHANG) == 0) {
            if (header() != header_before) {
                ::kill(pid, SIGKILL);
                break;
            }
        }
        ::waitpid(pid, nullptr, 0);
        caught = header() != header_before && pages() == pages_before;
    }
    REQUIRE(caught);
    // Neither a server nor a backup runs on it, and both say what to run.
    const ProgramRun started = run_program(TSUNAGU_SERVER_PATH,
                                           {"--data", office.data, "--listen", "http://127.0.0.1:0", "--key-file", new_key},
                                           {}, std::chrono::seconds(20));
    CHECK(started.exit_code == 1);
    CHECK(started.err.find("stopped part way") != std::string::npos);
    CHECK(started.err.find("rotate-key --data " + office.data + " --new-key-file " + new_key) != std::string::npos);
    const ProgramRun backed_up =
        server_command({"backup", "--data", office.data, "--key-file", new_key, "--to", office.dir.file("b.backup")});
    CHECK(backed_up.exit_code == 1);
    CHECK(backed_up.err.find("stopped part way") != std::string::npos);
    // Run again, it finishes, and the server starts with the new key file and all its work.
    const ProgramRun again = server_command({"rotate-key", "--data", office.data, "--new-key-file", new_key});
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK_FALSE(fs::exists(marker));
    fs::remove(office.key_file());
    fs::copy_file(new_key, office.key_file());
    fs::permissions(office.key_file(), fs::perms::owner_read | fs::perms::owner_write);
    office.server.start();
    ApiClient admin(office.server.url());
    CHECK(admin.sign_in("admin", admin_password).status == 200);
}
