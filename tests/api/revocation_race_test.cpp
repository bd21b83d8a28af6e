// A device revoked while its own requests are in flight: work those requests hand to the write
// group after the revocation (a pull's audit entry and progress) must not bring the device back.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/in_process_server.h"
#include "sync/change.h"
#include "support/temp_dir.h"

using namespace tsunagu;
using nlohmann::json;

namespace {

api::HttpRequest get_request(const std::string& path, const std::string& token) {
    api::HttpRequest r;
    r.method = "GET";
    r.path = path;
    r.headers["authorization"] = "Bearer " + token;
    r.remote_address = "127.0.0.1";
    r.request_id = "test";
    return r;
}

std::string signed_in(const testing::InProcessServer& server, const std::string& user, const std::string& password) {
    api::HttpRequest in = testing::post_json("/v1/auth/sign-in", {{"username", user}, {"password", password}, {"device_name", user + "-phone"}});
    const api::HttpResponse answer = server.handle(in);
    REQUIRE(answer.status == 200);
    return json::parse(answer.body)["token"];
}

// A team, and in it field workers signed in on a phone each, made through the administrator's routes.
struct Team {
    const testing::InProcessServer& server;
    std::string admin = signed_in(server, "admin", server.first_admin_password());
    std::string id = [this] {
        api::HttpRequest made = testing::post_json("/v1/admin/teams", {{"name", "Kita"}}, admin);
        return json::parse(server.handle(made).body)["team"]["id"].get<std::string>();
    }();

    struct Worker {
        std::string token, device, user;
    };
    Worker worker(const std::string& name, const std::string& role = "peer_supporter") {
        api::HttpRequest create = testing::post_json("/v1/admin/users", {{"username", name},
                                                                          {"role", role},
                                                                          {"team_id", id},
                                                                          {"password", name + "-password-1"},
                                                                          {"must_change_password", false}},
                                                      admin);
        REQUIRE(server.handle(create).status == 201);
        Worker w;
        w.token = signed_in(server, name, name + "-password-1");
        api::HttpRequest me = get_request("/v1/me", w.token);
        const json who = json::parse(server.handle(me).body);
        w.device = who["device_id"];
        w.user = who["user"]["id"];
        return w;
    }
};

// The push of one new client of `w`'s, the n-th of its phone's clock reading.
api::HttpRequest push_of_client(const Team::Worker& w, const std::string& pseudonym, int n) {
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const json change = {{"id", sync::new_id()}, {"collection", "client"}, {"record", sync::new_id()},
                         {"hlc", std::to_string(now_ms) + "-" + std::to_string(n)}, {"replica", w.device},
                         {"user", w.user}, {"schema", 1}, {"create", true},
                         {"set", {{"pseudonym", pseudonym}, {"area", "kita"}}}};
    return testing::post_json("/v1/sync/push", {{"changes", json::array({change})}}, w.token);
}

// What the audit trail holds of `device` after an administrator's entry (`marker` on `target`):
// how many entries of `action`.
struct AfterRevocation {
    bool revoked = false;
    int entries = 0;
};
AfterRevocation after_entry(const testing::InProcessServer& server, const std::string& admin, const std::string& marker,
                            const std::string& target, const std::string& device, const std::string& action) {
    AfterRevocation found;
    // The whole trail, page by page (earlier rounds wrote many entries).
    for (std::int64_t after = 0;;) {
        api::HttpRequest trail_request = get_request("/v1/admin/audit", admin);
        trail_request.query["limit"] = "1000";
        trail_request.query["after"] = std::to_string(after);
        const json trail = json::parse(server.handle(trail_request).body);
        if (trail["entries"].empty()) return found;
        for (const auto& e : trail["entries"]) {
            after = e["seq"].get<std::int64_t>();
            if (e["action"] == marker && e["target"] == target) found.revoked = true;
            else if (found.revoked && e["action"] == action && e["device_id"] == device) ++found.entries;
        }
    }
}
AfterRevocation after_revocation(const testing::InProcessServer& server, const std::string& admin,
                                 const std::string& device, const std::string& action) {
    return after_entry(server, admin, "admin.device_revoked", device, device, action);
}

// A stolen phone: two threads send `request(thread, n)` over and over, until answered 401; once
// each thread was answered 200, while both are sending, the administrator's `cut_off` request
// (a revocation, disabling the account) is made. Answers how many threads were answered 401
// with `error`, and how many met any other answer than 200.
struct StolenPhone {
    int wiped = 0;
    int other = 0;
};
StolenPhone cut_off_while_sending(const testing::InProcessServer& server, api::HttpRequest cut_off,
                                  const std::string& error,
                                  const std::function<api::HttpRequest(int thread, int n)>& request) {
    std::atomic<int> wiped{0}, other{0}, sending{0};
    std::atomic<bool> give_up{false};  // the cut-off failed: the threads stop, and the test fails
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 100000 && !give_up; ++i) {
                api::HttpRequest sent = request(t, i);
                const api::HttpResponse answer = server.handle(sent);
                if (i == 0 && answer.status == 200) ++sending;
                if (answer.status == 401) {
                    ++(json::parse(answer.body)["error"] == error ? wiped : other);
                    return;
                }
                if (answer.status != 200) ++other;
            }
        });
    }
    // Cut off while both are sending (each was answered once): not before either began.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sending < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // not a core spun
    }
    const int done = server.handle(cut_off).status;
    if (done != 200) give_up = true;
    for (auto& t : threads) t.join();
    REQUIRE(sending == 2);
    REQUIRE(done == 200);
    return {wiped.load(), other.load()};
}
StolenPhone revoked_while_sending(const testing::InProcessServer& server, const std::string& admin,
                                  const std::string& device,
                                  const std::function<api::HttpRequest(int thread, int n)>& request) {
    return cut_off_while_sending(
        server, testing::post_json("/v1/admin/devices/" + device + "/revoke", json::object(), admin), "wipe", request);
}

}  // namespace

TEST_CASE("a device revoked while its pulls are in flight stays forgotten and is told to wipe") {
    testing::TempDir dir("tsunagu-revocation-race");
    testing::InProcessServer server(dir);
    Team team{server};
    const std::string& admin = team.admin;

    for (int round = 0; round < 25; ++round) {
        const std::string name = "worker" + std::to_string(round);
        const Team::Worker worker = team.worker(name);
        const std::string& token = worker.token;
        const std::string& device = worker.device;
        // A client of hers, so that each pull page carries a record (and its audit entry).
        api::HttpRequest push = push_of_client(worker, "K-" + name, 0);
        const api::HttpResponse pushed = server.handle(push);
        REQUIRE(pushed.status == 200);
        REQUIRE(json::parse(pushed.body)["outcomes"][0]["status"] == "accepted");

        // The phone pulls over and over, on two connections, until it is told to wipe.
        const StolenPhone phone = revoked_while_sending(server, admin, device, [&](int, int) {
            return testing::post_json("/v1/sync/pull", {{"after", 0}}, token);
        });
        CHECK(phone.wiped == 2);
        CHECK(phone.other == 0);

        // Whatever the pulls handed to the group has landed (a write goes through it after them).
        api::HttpRequest flush = testing::post_json("/v1/admin/teams", {{"name", "Flush " + name}}, admin);
        REQUIRE(server.handle(flush).status == 201);
        api::HttpRequest devices = get_request("/v1/admin/devices", admin);
        bool seen = false;
        const json listed = json::parse(server.handle(devices).body);
        for (const auto& d : listed["devices"]) {
            if (d["id"] != device) continue;
            seen = true;
            INFO("round " << round);
            CHECK(d["revoked"] == true);
            CHECK(d["synced_at"] == 0);  // compaction does not wait for it
        }
        CHECK(seen);
        // No page was read on her behalf after the revocation was recorded.
        const AfterRevocation after = after_revocation(server, admin, device, "sync.pull");
        CHECK(after.revoked);
        CHECK(after.entries == 0);
    }
}

TEST_CASE("a supervisor's device revoked while it lists records is told to wipe and reads nothing after the revocation") {
    testing::TempDir dir("tsunagu-revocation-list-race");
    testing::InProcessServer server(dir);
    Team team{server};
    for (int round = 0; round < 10; ++round) {
        const std::string name = "sup" + std::to_string(round);
        const Team::Worker supervisor = team.worker(name, "supervisor");
        // The list is read outside the write group, its audit entry appended through it.
        const StolenPhone phone = revoked_while_sending(server, team.admin, supervisor.device, [&](int, int) {
            api::HttpRequest list = get_request("/v1/records", supervisor.token);
            list.query["collection"] = "client";
            return list;
        });
        CHECK(phone.wiped == 2);
        CHECK(phone.other == 0);
        api::HttpRequest flush = testing::post_json("/v1/admin/teams", {{"name", "Flush " + name}}, team.admin);
        REQUIRE(server.handle(flush).status == 201);
        const AfterRevocation after = after_revocation(server, team.admin, supervisor.device, "records.list");
        INFO("round " << round);
        CHECK(after.revoked);
        CHECK(after.entries == 0);
    }
}

TEST_CASE("a push waiting for the write group when its device is revoked writes nothing and is told to wipe") {
    testing::TempDir dir("tsunagu-revocation-push-race");
    testing::InProcessServer server(dir);
    Team team{server};

    for (int round = 0; round < 15; ++round) {
        const Team::Worker worker = team.worker("pusher" + std::to_string(round));
        // A stolen phone pushes over and over, on two connections, until it is told to wipe.
        const StolenPhone phone = revoked_while_sending(server, team.admin, worker.device, [&](int thread, int n) {
            return push_of_client(worker, "K-" + std::to_string(thread) + "-" + std::to_string(n), n);
        });
        CHECK(phone.wiped == 2);
        CHECK(phone.other == 0);
        // Nothing was written on the phone's behalf once the revocation was recorded.
        const AfterRevocation after = after_revocation(server, team.admin, worker.device, "sync.push");
        INFO("round " << round);
        CHECK(after.revoked);
        CHECK(after.entries == 0);
    }
}

TEST_CASE("a push waiting for the write group when its account is disabled writes nothing and is signed out") {
    testing::TempDir dir("tsunagu-disable-push-race");
    testing::InProcessServer server(dir);
    Team team{server};

    for (int round = 0; round < 10; ++round) {
        const Team::Worker worker = team.worker("leaver" + std::to_string(round));
        api::HttpRequest disable = testing::post_json("/v1/admin/users/" + worker.user, {{"disabled", true}}, team.admin);
        disable.method = "PATCH";
        const StolenPhone phone = cut_off_while_sending(server, disable, "unauthenticated", [&](int thread, int n) {
            return push_of_client(worker, "K-" + std::to_string(thread) + "-" + std::to_string(n), n);
        });
        CHECK(phone.wiped == 2);
        CHECK(phone.other == 0);
        const AfterRevocation after =
            after_entry(server, team.admin, "admin.user_updated", worker.user, worker.device, "sync.push");
        INFO("round " << round);
        CHECK(after.revoked);
        CHECK(after.entries == 0);
    }
}

TEST_CASE("pulls read beside pushes never take a commit newer than their snapshot for the database going back") {
    testing::TempDir dir("tsunagu-pulls-beside-pushes");
    testing::InProcessServer server(dir);
    Team team{server};
    const Team::Worker aoi = team.worker("aoi");

    // One thread pushes clients as fast as it can (each push a commit, noted as seen), three pull
    // (each page a read transaction whose snapshot may begin just before one of those commits).
    std::atomic<bool> stop{false};
    std::atomic<int> pushed{0}, pulled{0}, failed{0};
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
        for (int i = 0; !stop; ++i) {
            api::HttpRequest push = push_of_client(aoi, "K-" + std::to_string(i), i);
            ++(server.handle(push).status == 200 ? pushed : failed);
        }
    });
    for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&] {
            while (!stop) {
                api::HttpRequest pull = testing::post_json("/v1/sync/pull", {{"after", 0}, {"limit", 1}}, aoi.token);
                ++(server.handle(pull).status == 200 ? pulled : failed);
            }
        });
    }
    // Two seconds, and longer on a machine so loaded that fewer than a dozen of each got through.
    const auto started = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(2) ||
           ((pushed <= 10 || pulled <= 10) && std::chrono::steady_clock::now() - started < std::chrono::seconds(30))) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop = true;
    for (auto& t : threads) t.join();
    INFO(pushed << " pushes, " << pulled << " pulls");
    CHECK(pushed > 10);
    CHECK(pulled > 10);
    CHECK(failed == 0);
}
