// The backup suites' office: a server with one team and one worker whose phone has synced a
// client and its visits, and helpers for backup files (api_backup_tests).
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "support/exec.h"
#include "support/run_program.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "synced_device.h"

namespace tsunagu::testing {

// A key file of 32 bytes, 0600, that is not the one sealing the data.
inline std::string wrong_key_file(const TempDir& dir) {
    const std::string path = dir.file("wrong.key");
    std::ofstream(path, std::ios::binary) << std::string(32, 'k');
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
}

inline std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline ProgramRun server_command(const std::vector<std::string>& args) { return run_program(TSUNAGU_SERVER_PATH, args); }

inline nlohmann::json visit(const std::string& client, int i) {
    return {{"client", client},         {"date", "2020-06-" + std::to_string(10 + i % 18)},
            {"duration_min", 30 + i},   {"purpose", "check_in"},
            {"observations", "MARKER-OBSERVATION " + std::to_string(i)}, {"review_status", "submitted"}};
}

// A server with one team and one worker, Aoi, whose phone has synced a client and its visits.
struct Office {
    TempDir dir{"tsunagu-backup"};
    std::string data = dir.file("data");
    ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
    std::unique_ptr<ApiClient> admin;
    std::unique_ptr<SyncedDevice> phone;
    std::string client;

    // `server_args`: more of the server's options (--backup-dir ...).
    explicit Office(const std::vector<std::string>& server_args = {}) {
        server.start(server_args);
        admin = std::make_unique<ApiClient>(server.url());
        REQUIRE(admin->sign_in("admin", server.admin_password()).status == 200);
        const std::string team = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
        REQUIRE(admin->post("/v1/admin/users", {{"username", "aoi"}, {"role", "peer_supporter"}, {"team_id", team},
                                                {"password", "aoi-password-1"}, {"must_change_password", false}})
                    .status == 201);
        phone = std::make_unique<SyncedDevice>(server.url(), dir.file("phone.db"), "aoi", "aoi-password-1");
        client = phone->create("client", {{"pseudonym", "MARKER-PSEUDONYM"}, {"area", "kita"}});
        for (int i = 0; i < 20; ++i) phone->create("home_visit", visit(client, i));
        phone->sync();
    }
    std::string key_file() const { return data + "/tsunagu.key"; }
};

}  // namespace tsunagu::testing
