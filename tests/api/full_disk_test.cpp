// A server whose disk fills up, on a real (small) file system: it says so, loses nothing, keeps
// serving what it can, and takes the phones' work once there is room again.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "api_client.h"
#include "support/mounted_dir.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "synced_device.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using json = nlohmann::json;

namespace {

// A tmpfs of `bytes` mounted on a temporary folder for the test.
class SmallDisk {
public:
    explicit SmallDisk(std::size_t bytes) : disk_(SmallTmpfs{bytes}) {}

    std::string file(const std::string& name) const { return disk_.file(name); }

    // Fills the disk but `leave` bytes with a file of its own.
    void fill_leaving(std::size_t leave) {
        const std::string path = file("filler");
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        REQUIRE(fd >= 0);
        const std::vector<char> block(64 * 1024, 'f');
        off_t written = 0;
        while (true) {
            const ssize_t n = ::write(fd, block.data(), block.size());
            if (n <= 0) break;  // ENOSPC: the disk is full
            written += n;
        }
        REQUIRE(::ftruncate(fd, std::max<off_t>(0, written - static_cast<off_t>(leave))) == 0);
        ::close(fd);
    }
    void free_filler() { std::filesystem::remove(file("filler")); }

private:
    MountedDir disk_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("a server whose disk fills answers 507 storage_full, loses nothing, and takes the work once there is room") {
    SmallDisk disk(32 * 1024 * 1024);
    TempDir dir{"tsunagu-full-disk"};
    ServerProcess server{TSUNAGU_SERVER_PATH, disk.file("data"), dir.file("server.log")};
    server.start();
    ApiClient admin(server.url());
    REQUIRE(admin.sign_in("admin", server.admin_password()).status == 200);
    const std::string team = admin.post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
    REQUIRE(admin.post("/v1/admin/users", {{"username", "aoi"}, {"role", "peer_supporter"}, {"team_id", team},
                                           {"password", "aoi-password-1"}, {"must_change_password", false}}).status == 201);
    REQUIRE(admin.post("/v1/admin/users", {{"username", "sato"}, {"role", "supervisor"}, {"team_id", team},
                                           {"password", "sato-password-1"}, {"must_change_password", false}}).status == 201);
    ApiClient supervisor(server.url());
    REQUIRE(supervisor.sign_in("sato", "sato-password-1").status == 200);
    SyncedDevice phone(server.url(), dir.file("phone.db"), "aoi", "aoi-password-1");
    const std::string client = phone.create("client", {{"pseudonym", "K-FULL"}, {"area", "kita"}});
    phone.sync();

    // A day of visits written while the server's disk has almost no room left.
    disk.fill_leaving(64 * 1024);
    const std::string marker = "MARKER-full-disk-notes ";
    std::vector<std::string> visits;
    for (int i = 0; i < 200; ++i) {
        std::string notes = marker;
        while (notes.size() < 3000) notes += std::to_string(i * 7919 + static_cast<int>(notes.size()));
        visits.push_back(phone.create("home_visit", {{"client", client}, {"date", "2020-06-01"}, {"duration_min", 30},
                                                     {"purpose", "check_in"}, {"observations", notes},
                                                     {"review_status", "submitted"}}));
    }
    auto batch = phone.device->prepare_push(200);
    REQUIRE(batch.is_ok());
    json wire = *batch;
    for (int attempt = 0; attempt < 2; ++attempt) {
        Reply refused = phone.client.post("/v1/sync/push", {{"changes", wire["changes"]}});
        INFO(refused.raw);
        CHECK(refused.status == 507);
        CHECK(refused.body["error"] == "storage_full");
    }
    // Its health says writes fail, and why (until a write commits again).
    Reply health = admin.get("/healthz");
    CHECK(health.status == 503);
    CHECK(health.body["error"] == "storage_full");
    // A supervisor's read of a care record is served only if its audit entry is written (a small
    // write may still fit in the log's space): a 507 carries none of the record.
    Reply during = supervisor.get("/v1/records/" + client);
    CHECK((during.status == 200 || during.status == 507));
    if (during.status != 200) CHECK(during.raw.find("K-FULL") == std::string::npos);
    // The server goes on answering what needs no room; its log says why, without content.
    CHECK(admin.get("/v1/admin/users").status == 200);
    const std::string log = read_file(dir.file("server.log"));
    CHECK(log.find("storage_full") != std::string::npos);
    CHECK(log.find(marker) == std::string::npos);

    // Room again: the phone's next sync takes everything, which another device then reads.
    disk.free_filler();
    phone.sync();
    CHECK(admin.get("/healthz").status == 200);
    SyncedDevice tablet(server.url(), dir.file("tablet.db"), "aoi", "aoi-password-1");
    tablet.sync();
    for (const auto& v : visits) CHECK(tablet.holds(v));
    // Every read served is on the trail, and only those.
    REQUIRE(supervisor.get("/v1/records/" + client).status == 200);
    int reads = 0;
    const Reply trail = admin.get("/v1/admin/audit?target=" + client);
    for (const auto& e : trail.body["entries"]) {
        if (e["action"] == "record.read") ++reads;
    }
    CHECK(reads == (during.status == 200 ? 2 : 1));

    // And the store the full disk hit is whole after a restart.
    const int port = server.port();
    server.stop(SIGTERM);
    server.start({}, port);
    SyncedDevice later(server.url(), dir.file("later.db"), "aoi", "aoi-password-1");
    later.sync();
    for (const auto& v : visits) CHECK(later.holds(v));
}

TEST_CASE("a key rotation without room for a sealed copy of the store is refused before it changes anything") {
    SmallDisk disk(16 * 1024 * 1024);
    TempDir dir{"tsunagu-full-disk"};
    const std::string data = disk.file("data");
    {
        ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
        server.start();
        ApiClient admin(server.url());
        REQUIRE(admin.sign_in("admin", server.admin_password()).status == 200);
        server.stop();
    }
    disk.fill_leaving(64 * 1024);  // less than the store takes
    const std::string out = dir.file("out");
    const std::string command = std::string(TSUNAGU_SERVER_PATH) + " rotate-key --data " + data +
                                " --new-key-file " + dir.file("new.key") + " >" + out + " 2>&1";
    CHECK(std::system(command.c_str()) != 0);
    const std::string said = read_file(out);
    INFO(said);
    CHECK(said.find("not enough free space") != std::string::npos);
    CHECK(said.find("nothing was changed") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(data + "/tsunagu.rotating"));

    // The server starts as before, on its old key file, with room or without.
    ServerProcess again{TSUNAGU_SERVER_PATH, data, dir.file("server-2.log")};
    again.start();
    again.stop();
    disk.free_filler();
    CHECK(std::system(command.c_str()) == 0);  // with room, the same command does it
}

TEST_CASE("a backup that fills the backup's disk names that disk and not the store's") {
    SmallDisk disk(1024 * 1024);
    TempDir dir{"tsunagu-full-disk"};
    const std::string data = dir.file("data");
    {
        ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
        server.start();
        server.stop();
    }
    disk.fill_leaving(16 * 1024);  // less than the store takes
    const std::string out = dir.file("out");
    const std::string command = std::string(TSUNAGU_SERVER_PATH) + " backup --data " + data + " --to " +
                                disk.file("b.backup") + " >" + out + " 2>&1";
    CHECK(std::system(command.c_str()) != 0);
    const std::string said = read_file(out);
    INFO(said);
    CHECK(said.find("free space in " + std::filesystem::path(disk.file("b.backup")).parent_path().string() + " ") !=
          std::string::npos);
    CHECK(said.find("disk full writing " + data) == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(disk.file("b.backup")));
}
