// A real server on loopback with one area (team Kita: supervisor sato, workers aoi and ben) and
// device-library replicas signed in to it, for the clients/ tests.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/api_client.h"
#include "clients/device.h"
#include "clients/src/http_transport.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "tests/crypto/store_files.h"

namespace tsunagu::testing {

// Test replicas: the cheapest Argon2id, and retries that do not really wait.
inline client::DeviceOptions test_options() {
    client::DeviceOptions o;
    o.kdf = KdfParams::fast_for_tests();
    o.retry.max_attempts = 3;
    o.retry.sleep = [](std::chrono::milliseconds) {};
    return o;
}

struct FieldOrganisation {
    TempDir dir{"tsunagu-clients"};
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    std::unique_ptr<ApiClient> admin;
    std::string kita;
    std::map<std::string, std::string> ids;  // username -> user id
    int homes = 0;

    // `server_args`: the server's options beyond its data folder and address (--max-body N).
    explicit FieldOrganisation(const std::vector<std::string>& server_args = {}) {
        server.start(server_args);
        admin = std::make_unique<ApiClient>(server.url());
        REQUIRE(admin->sign_in("admin", server.admin_password()).status == 200);
        kita = admin->post("/v1/admin/teams", {{"name", "Kita"}}).body["team"]["id"];
        add("sato", "supervisor");
        add("aoi", "peer_supporter");
        add("ben", "home_visitor");
    }
    static std::string password_of(const std::string& name) { return name + "-password-1"; }
    void add(const std::string& name, const std::string& role) {
        Reply r = admin->post("/v1/admin/users", {{"username", name}, {"role", role}, {"team_id", kita},
                                                  {"password", password_of(name)}, {"must_change_password", false}});
        REQUIRE(r.status == 201);
        ids[name] = r.body["user"]["id"];
    }
    void assign(const std::string& client, const std::vector<std::string>& workers) {
        nlohmann::json worker_ids = nlohmann::json::array();
        for (const auto& w : workers) worker_ids.push_back(ids[w]);
        Reply r = admin->raw("PUT", "/v1/admin/clients/" + client + "/caseload",
                             nlohmann::json{{"team_id", kita}, {"worker_ids", worker_ids}}.dump());
        REQUIRE(r.status == 200);
    }
    std::string new_home(const std::string& name) { return dir.file("home-" + name + "-" + std::to_string(++homes)); }

    // A fresh replica for `name`, signed in.
    std::unique_ptr<client::Device> device(const std::string& name, client::DeviceOptions options = test_options()) {
        auto opened = client::Device::open(new_home(name), name + " passphrase", std::move(options));
        INFO(opened.status().to_string());
        REQUIRE(opened.is_ok());
        auto d = std::make_unique<client::Device>(std::move(*opened));
        Status s = d->sign_in(server.url(), name, password_of(name), name + "'s phone");
        INFO(s.to_string());
        REQUIRE(s.is_ok());
        return d;
    }
};

inline client::SyncReport synced(client::Device& device, const client::ProgressCallback& progress = {}) {
    auto report = device.sync(progress);
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    return *report;
}

inline std::string created(client::Device& device, const std::string& collection, const nlohmann::json& fields) {
    auto id = device.create(collection, fields);
    INFO(id.status().to_string());
    REQUIRE(id.is_ok());
    return *id;
}

inline bool holds(client::Device& device, const std::string& record) {
    auto r = device.get(record);
    if (!r.is_ok()) {
        REQUIRE(r.status().code() == ErrorCode::not_found);
        return false;
    }
    return !r->deleted;
}

inline nlohmann::json visit(const std::string& client, int day = 1) {
    char date[16];
    std::snprintf(date, sizeof date, "2020-06-%02d", 1 + day % 28);
    return {{"client", client}, {"date", date}, {"duration_min", 45}, {"purpose", "check_in"},
            {"observations", "slept well; asked about the day centre"}};
}

// A copy of the open `device`'s replica in the new home folder `home`, as a phone switched off now
// leaves it: every commit synced to the WAL, none checkpointed into the main file. Then a byte of
// one frame that later transactions follow is damaged (see wal_frame_holding), so that open
// refuses the copy as corrupt. Returns its database file.
inline std::string damaged_copy(const client::Device& device, const std::string& home, FrameVersion damage) {
    std::filesystem::create_directories(home);
    const std::string db = home + "/replica.db";
    std::filesystem::copy_file(device.database_path(), db);
    std::filesystem::copy_file(device.database_path() + "-wal", db + "-wal");
    const auto frames = wal_frame_pages(db).size();
    const std::size_t victim = wal_frame_holding(db, damage, wal_frame_offset(frames * 3 / 4));
    REQUIRE(victim < frames);
    flip_byte(db + "-wal", wal_frame_offset(victim) + 24 + 500);
    return db;
}

// Aoi's replica, with a client she synced and a visit she did not, copied as a phone switched off
// leaves it and damaged (damaged_copy). Her own device is closed.
struct DamagedReplica {
    std::string home, client, visit;

    DamagedReplica(FieldOrganisation& org, FrameVersion damage) {
        auto aoi = org.device("aoi");
        client = created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});
        synced(*aoi);
        visit = created(*aoi, "home_visit", testing::visit(client));
        home = org.new_home("aoi-crashed");
        damaged_copy(*aoi, home, damage);
    }
};

}  // namespace tsunagu::testing
