// tsunagu-server, started for real on a loopback port and driven over HTTP.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "api_client.h"
#include "support/certificates.h"
#include "support/loopback_socket.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu::testing;
using nlohmann::json;

namespace {

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A temp folder, a running server in it, and an administrator client signed in.
struct Fixture {
    TempDir dir{"tsunagu-api"};
    std::string data = dir.file("data");
    std::string log = dir.file("server.log");
    ServerProcess server{TSUNAGU_SERVER_PATH, data, log};
    std::unique_ptr<ApiClient> admin;

    explicit Fixture(std::vector<std::string> extra = {}) {
        server.start(extra);
        admin = std::make_unique<ApiClient>(server.url());
        Reply r = admin->sign_in("admin", server.admin_password(), "office-pc");
        REQUIRE(r.status == 200);
    }

    // Creates a user and returns a client signed in as them. A field worker without a team named
    // joins the fixture's own team (every field worker has one).
    std::unique_ptr<ApiClient> user(const std::string& name, const std::string& role,
                                    std::string team_id = "") {
        json body = {{"username", name}, {"role", role}, {"password", name + "-password-1"},
                     {"must_change_password", false}};
        if (team_id.empty() && role != "supervisor" && role != "admin") team_id = default_team();
        if (!team_id.empty()) body["team_id"] = team_id;
        Reply created = admin->post("/v1/admin/users", body);
        REQUIRE(created.status == 201);
        auto client = std::make_unique<ApiClient>(server.url());
        REQUIRE(client->sign_in(name, name + "-password-1", name + "-phone").status == 200);
        return client;
    }
    const std::string& default_team() {
        if (team.empty()) team = admin->post("/v1/admin/teams", {{"name", "Honcho"}}).body["team"]["id"];
        return team;
    }
    std::string team;
};

// A loopback port this process listens on (and never answers), until released. Not inherited by
// the programs the test starts.
struct HeldPort {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = 0;
    HeldPort() {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(fd, 1) == 0);
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port = ntohs(address.sin_port);
    }
    HeldPort(const HeldPort&) = delete;
    HeldPort& operator=(const HeldPort&) = delete;
    ~HeldPort() { release(); }
    void release() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

}  // namespace

TEST_CASE("first start creates an encrypted store, a 0600 key file and the administrator from a password file") {
    Fixture f;
    const auto key = std::filesystem::path(f.data) / "tsunagu.key";
    CHECK(std::filesystem::file_size(key) == 32);
    CHECK((std::filesystem::status(key).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    CHECK(f.server.startup_output().find("created with the password in " + f.data + ".admin-password") !=
          std::string::npos);
    Reply health = f.admin->get("/healthz");
    CHECK(health.status == 200);
    CHECK(health.body["status"] == "ok");
    CHECK(f.admin->get("/v1/me").body["user"]["role"] == "admin");
    CHECK(f.admin->get("/v1/admin/users").status == 200);  // the operator's own password: usable at once
}

TEST_CASE("without a password file, the first administrator's one-time password opens nothing but its own change") {
    TempDir dir{"tsunagu-api"};
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    server.one_time_admin_password = true;
    server.start();
    CHECK(server.admin_password().size() == 16);
    CHECK(server.startup_output().find("(shown once; sign in and change it)") != std::string::npos);
    ApiClient admin(server.url());
    Reply signed_in = admin.sign_in("admin", server.admin_password());
    REQUIRE(signed_in.status == 200);
    CHECK(signed_in.body["must_change_password"] == true);
    // Whoever reads it where it was printed (a terminal, the system journal) can do nothing else.
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/v1/admin/users"}, {"GET", "/v1/admin/audit"}, {"POST", "/v1/admin/teams"},
             {"GET", "/v1/records"}, {"GET", "/v1/sync/pull?after=0"}}) {
        Reply refused = admin.raw(method, path, method == "POST" ? R"({"name":"Kita"})" : "");
        INFO(method << " " << path << ": " << refused.raw);
        CHECK(refused.status == 403);
        CHECK(refused.body["error"] == "password_change_required");
    }
    CHECK(admin.get("/v1/me").status == 200);
    REQUIRE(admin.post("/v1/me/password", {{"current_password", server.admin_password()},
                                           {"password", "the administrator's own one"}})
                .status == 200);
    CHECK(admin.get("/v1/admin/users").status == 200);
    ApiClient again(server.url());
    CHECK(again.sign_in("admin", "the administrator's own one").body["must_change_password"] == false);
}

TEST_CASE("sign-in refuses wrong passwords and unknown users alike") {
    Fixture f;
    ApiClient c(f.server.url());
    Reply wrong = c.sign_in("admin", "not-the-password");
    CHECK(wrong.status == 401);
    CHECK(wrong.body["error"] == "bad_credentials");
    Reply nobody = c.sign_in("nobody", "whatever-password");
    CHECK(nobody.status == 401);
    CHECK(nobody.body["error"] == "bad_credentials");
    CHECK(c.get("/v1/me").status == 401);
}

TEST_CASE("a first start that fails after making the administrator leaves a new one-time password to the next") {
    // On PostgreSQL, where servers start side by side, only a password file is taken again.
    const bool on_postgres = testing_on_postgres();
    TempDir dir{"tsunagu-api"};
    const std::string data = dir.file("data");
    // The first start: its port is taken, so it makes the store and the administrator, then fails
    // before anything is printed.
    HeldPort taken;
    const std::string first_file = dir.file("first-password");
    std::ofstream(first_file) << "the first start's password";
    std::filesystem::permissions(first_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
    const std::string command = std::string(TSUNAGU_SERVER_PATH) + " --data " + data + " --listen http://127.0.0.1:" +
                                std::to_string(taken.port) + postgres_option(data) +
                                (on_postgres ? " --admin-password-file " + first_file : "") + " >" + dir.file("out") +
                                " 2>&1";
    CHECK(std::system(command.c_str()) != 0);
    taken.release();
    CHECK(read_file(dir.file("out")).find("one-time password") == std::string::npos);

    ServerProcess server{TSUNAGU_SERVER_PATH, data, dir.file("server.log")};
    server.one_time_admin_password = !on_postgres;  // else the fixture's own file, another password
    server.start();
    CHECK(server.startup_output().find(on_postgres ? "has not signed in since the first start: password set from"
                                                   : "has not signed in since the first start: new one-time password") !=
          std::string::npos);
    const std::string password = server.admin_password();
    ApiClient admin(server.url());
    Reply signed_in = admin.sign_in("admin", password);
    REQUIRE(signed_in.status == 200);
    CHECK(signed_in.body["must_change_password"] == !on_postgres);

    // Once someone has signed in as them, a start no longer touches their password.
    server.stop();
    server.start();
    CHECK(server.startup_output().find("has not signed in") == std::string::npos);
    CHECK(ApiClient(server.url()).sign_in("admin", password).status == 200);
}

TEST_CASE("a server that cannot start says why, and the tests' servers say it too") {
    // The tests choose a free port before the server binds it; a start that fails shows the
    // server's exit and its log's last words, so a port someone took in between is recognised
    // (and tried again on another port) rather than reported as a bare "exited".
    TempDir dir{"tsunagu-api"};
    HeldPort taken;
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    try {
        server.start({}, taken.port);
        FAIL("the server started on a port another process listens on");
    } catch (const std::runtime_error& e) {
        const std::string why = e.what();
        CHECK(why.find("exit code 1") != std::string::npos);
        CHECK(why.find("cannot listen on http://127.0.0.1:" + std::to_string(taken.port)) != std::string::npos);
        CHECK(why.find("Address already in use") != std::string::npos);
    }
    taken.release();
    server.start({}, taken.port);
    CHECK(ApiClient(server.url()).sign_in("admin", server.admin_password()).status == 200);
}

TEST_CASE("repeated failed sign-ins are slowed, then the account locks") {
    // Argon2id at its floor: each attempt must land inside a one-second wait, however busy the
    // machine (the waits, not the hashing, are what this checks).
    Fixture f({"--lock-after", "4", "--weak-password-hashing-for-benchmarks"});
    f.user("akiko", "peer_supporter");
    ApiClient c(f.server.url());
    CHECK(c.sign_in("akiko", "wrong-1-password").status == 401);
    CHECK(c.sign_in("akiko", "wrong-2-password").status == 401);
    // The server counts waits in whole seconds: the third failure comes early in a second, so
    // that the next attempt falls inside its one-second wait however the clock ticks.
    const auto into_second = std::chrono::system_clock::now().time_since_epoch() % std::chrono::seconds(1);
    std::this_thread::sleep_for(std::chrono::seconds(1) - into_second + std::chrono::milliseconds(20));
    CHECK(c.sign_in("akiko", "wrong-3-password").status == 401);  // now each attempt must wait
    Reply slowed = c.sign_in("akiko", "akiko-password-1");
    CHECK(slowed.status == 429);  // even the right password waits its turn
    CHECK(slowed.headers.count("retry-after") == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    Reply locked = c.sign_in("akiko", "wrong-4-password");
    CHECK(locked.status == 423);
    CHECK(c.sign_in("akiko", "akiko-password-1").status == 423);
}

TEST_CASE("a name no account has is answered as a real one, status, Retry-After and body, on both sign-in routes") {
    Fixture f({"--lock-after", "4", "--weak-password-hashing-for-benchmarks"});
    f.user("akiko", "peer_supporter");
    f.user("sato", "supervisor");
    ApiClient c(f.server.url());
    for (const auto& [route, name] : {std::pair<std::string, std::string>{"/v1/auth/sign-in", "akiko"},
                                      std::pair<std::string, std::string>{"/v1/web/sign-in", "sato"}}) {
        INFO(route);
        // Each step under the real name and under an unknown one, in the same second.
        auto both = [&](const std::string& password) {
            Reply real = c.raw("POST", route, json{{"username", name}, {"password", password}}.dump(),
                               {{"Content-Type", "application/json"}});
            Reply other = c.raw("POST", route, json{{"username", name + "-san"}, {"password", password}}.dump(),
                                {{"Content-Type", "application/json"}});
            CHECK(other.status == real.status);
            CHECK(other.body == real.body);
            CHECK(other.headers.count("retry-after") == real.headers.count("retry-after"));
            if (real.headers.count("retry-after") && other.headers.count("retry-after")) {
                CHECK(other.headers.at("retry-after") == real.headers.at("retry-after"));
            }
            CHECK(other.headers.count("set-cookie") == 0);
            return real.status;
        };
        CHECK(both("wrong-1-password") == 401);
        CHECK(both("wrong-2-password") == 401);
        const auto into_second = std::chrono::system_clock::now().time_since_epoch() % std::chrono::seconds(1);
        std::this_thread::sleep_for(std::chrono::seconds(1) - into_second + std::chrono::milliseconds(20));
        CHECK(both("wrong-3-password") == 401);  // from now on each attempt must wait
        CHECK(both(name + "-password-1") == 429);
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        CHECK(both("wrong-4-password") == 423);
        CHECK(both(name + "-password-1") == 423);
    }
}

TEST_CASE("a crowd of sign-ins waits for its password checks without holding up anyone else's requests") {
    Fixture f;
    // One check of a real password (Argon2id, as the server runs it), for scale.
    ApiClient probe(f.server.url());
    auto started = std::chrono::steady_clock::now();
    REQUIRE(probe.sign_in("admin", f.server.admin_password(), "probe").status == 200);
    const double one_check_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    // Three times as many callers as the server has workers keep trying names no account has.
    std::atomic<bool> stop{false};
    std::atomic<int> refused{0}, other{0};
    std::vector<std::thread> crowd;
    for (int g = 0; g < 24; ++g) {
        crowd.emplace_back([&, g] {
            ApiClient guesser(f.server.url());
            for (int i = 0; !stop; ++i) {
                const Reply r = guesser.sign_in("nobody-" + std::to_string(g) + "-" + std::to_string(i), "a guess of theirs");
                ++(r.status == 401 ? refused : other);
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(0.2, 2 * one_check_s)));
    // Meanwhile the administrator reads and writes: each waits for a worker, not for the checks.
    double slowest_s = 0;
    for (int i = 0; i < 5; ++i) {
        started = std::chrono::steady_clock::now();
        CHECK(f.admin->post("/v1/admin/teams", {{"name", "Team " + std::to_string(i)}}).status == 201);
        CHECK(f.admin->get("/v1/me").status == 200);
        slowest_s = std::max(slowest_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    const int refused_meanwhile = refused;  // (not counting the guesses that end after the stop)
    stop = true;
    for (auto& g : crowd) g.join();
    INFO("one password check " << one_check_s << " s; slowest write and read among the crowd " << slowest_s << " s");
    CHECK(refused_meanwhile > 0);
    CHECK(other == 0);
    // Queued behind the crowd's checks (one at a time), a request would wait for about 16 of them
    // or more (35 checks' time, measured, when sign-ins shared the others' lane).
    CHECK(slowest_s < 8 * one_check_s);
}

TEST_CASE("a password that cannot be checked for want of memory is a 503 and never counts against the account") {
    Fixture f({"--lock-after", "2"});
    f.user("mio", "peer_supporter");
    // The server's address space capped just above what it has mapped: Argon2id's 19 MiB cannot be had.
    const std::string status = read_file("/proc/" + std::to_string(f.server.pid()) + "/status");
    const std::size_t at = status.find("VmSize:");
    REQUIRE(at != std::string::npos);
    const rlim_t mapped = std::stoull(status.substr(at + 7)) * 1024;
    rlimit unlimited{};
    REQUIRE(::prlimit(f.server.pid(), RLIMIT_AS, nullptr, &unlimited) == 0);
    const rlimit tight{mapped + (6u << 20), unlimited.rlim_max};  // the soft limit: it can be lifted again
    REQUIRE(::prlimit(f.server.pid(), RLIMIT_AS, &tight, nullptr) == 0);
    ApiClient c(f.server.url());
    for (int attempt = 0; attempt < 3; ++attempt) {
        Reply refused = c.sign_in("mio", "mio-password-1");
        CHECK(refused.status == 503);
    }
    REQUIRE(::prlimit(f.server.pid(), RLIMIT_AS, &unlimited, nullptr) == 0);
    CHECK(c.sign_in("mio", "mio-password-1").status == 200);  // neither slowed nor locked
    CHECK(read_file(f.log).find("\"event\":\"password_check_failed\"") != std::string::npos);
}

namespace {

// The audit entries of one action, as the administrator reads them.
std::vector<json> audited(ApiClient& admin, const std::string& action) {
    std::vector<json> found;
    Reply all = admin.get("/v1/admin/audit?limit=1000");
    REQUIRE(all.status == 200);
    for (const auto& e : all.body["entries"]) {
        if (e["action"] == action) found.push_back(e);
    }
    return found;
}

}  // namespace

TEST_CASE("changing one's password needs the current one and signs the account out everywhere else") {
    Fixture f;
    auto phone = f.user("hana", "home_visitor");
    ApiClient stolen(f.server.url());  // a token someone else got hold of
    REQUIRE(stolen.sign_in("hana", "hana-password-1", "lost-tablet").status == 200);

    Reply bare = stolen.post("/v1/me/password", {{"password", "thief-password-4"}});
    CHECK(bare.status == 400);
    CHECK(bare.body["message"].get<std::string>().find("current_password") != std::string::npos);
    Reply guessed = stolen.post("/v1/me/password", {{"current_password", "a-guess-1"}, {"password", "thief-password-4"}});
    CHECK(guessed.status == 403);
    CHECK(guessed.body["error"] == "wrong_password");

    Reply changed = phone->post("/v1/me/password", {{"current_password", "hana-password-1"}, {"password", "hana-password-2"}});
    REQUIRE(changed.status == 200);
    CHECK(phone->get("/v1/me").status == 200);  // the session that changed it goes on
    CHECK(stolen.get("/v1/me").status == 401);   // every other one ended
    ApiClient again(f.server.url());
    CHECK(again.sign_in("hana", "hana-password-1").status == 401);
    Reply signed_in = again.sign_in("hana", "hana-password-2");
    REQUIRE(signed_in.status == 200);
    CHECK(signed_in.body["must_change_password"] == false);

    const std::string hana = phone->get("/v1/me").body["user"]["id"];
    auto done = audited(*f.admin, "auth.password_changed");
    REQUIRE(done.size() == 1);
    CHECK(done[0]["target"] == hana);
    auto refused = audited(*f.admin, "auth.password_change_failed");
    REQUIRE(refused.size() == 1);
    CHECK(refused[0]["target"] == hana);
}

TEST_CASE("a wrong current password counts as a failed sign-in") {
    // The first failure makes the next attempt wait a second; Argon2id at its floor, as above.
    Fixture f({"--lock-after", "2", "--weak-password-hashing-for-benchmarks"});
    auto phone = f.user("riku", "staff");
    const json right = {{"current_password", "riku-password-1"}, {"password", "riku-password-2"}};
    // The server counts waits in whole seconds: the failure comes early in a second, so that the
    // next attempt falls inside its one-second wait however long the check takes on a busy machine.
    const auto into_second = std::chrono::system_clock::now().time_since_epoch() % std::chrono::seconds(1);
    std::this_thread::sleep_for(std::chrono::seconds(1) - into_second + std::chrono::milliseconds(20));
    CHECK(phone->post("/v1/me/password", {{"current_password", "wrong-1-pass"}, {"password", "riku-password-2"}}).status == 403);
    // At once, the next attempt is told how long to wait, as at sign-in.
    Reply slowed = phone->post("/v1/me/password", right);
    CHECK(slowed.status == 429);
    CHECK(slowed.headers.count("retry-after") == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    Reply locked = phone->post("/v1/me/password", {{"current_password", "wrong-2-pass"}, {"password", "riku-password-2"}});
    CHECK(locked.status == 423);
    CHECK(locked.headers.count("retry-after") == 1);
    // Locked: even the right one is refused, here and at sign-in.
    CHECK(phone->post("/v1/me/password", right).status == 423);
    ApiClient c(f.server.url());
    CHECK(c.sign_in("riku", "riku-password-1").status == 423);
}

TEST_CASE("an account an administrator makes opens nothing until its owner has chosen her own password") {
    Fixture f;
    const std::string team = f.default_team();
    Reply made = f.admin->post("/v1/admin/users", {{"username", "hana"}, {"role", "peer_supporter"},
                                                   {"team_id", team}, {"password", "handed-over-on-paper"}});
    REQUIRE(made.status == 201);
    ApiClient hana(f.server.url());
    Reply first = hana.sign_in("hana", "handed-over-on-paper");
    REQUIRE(first.status == 200);
    CHECK(first.body["must_change_password"] == true);
    Reply pull = hana.post("/v1/sync/pull", {{"after", 0}});
    CHECK(pull.status == 403);
    CHECK(pull.body["error"] == "password_change_required");
    REQUIRE(hana.post("/v1/me/password", {{"current_password", "handed-over-on-paper"}, {"password", "hana's own password"}})
                .status == 200);
    CHECK(hana.post("/v1/sync/pull", {{"after", 0}}).status == 200);
    // A provisioning script handing over passwords their owners chose says so.
    REQUIRE(f.admin->post("/v1/admin/users", {{"username", "kei"}, {"role", "peer_supporter"}, {"team_id", team},
                                              {"password", "kei's own password"}, {"must_change_password", false}})
                .status == 201);
    CHECK(ApiClient(f.server.url()).sign_in("kei", "kei's own password").body["must_change_password"] == false);
}

TEST_CASE("a password an administrator sets signs the account out and must be changed by its owner") {
    Fixture f;
    auto phone = f.user("sora", "peer_supporter");
    const std::string sora = phone->get("/v1/me").body["user"]["id"];
    REQUIRE(f.admin->patch("/v1/admin/users/" + sora, {{"password", "admin-chosen-pw-9"}}).status == 200);
    CHECK(phone->get("/v1/me").status == 401);
    ApiClient c(f.server.url());
    Reply first = c.sign_in("sora", "admin-chosen-pw-9");
    REQUIRE(first.status == 200);
    CHECK(first.body["must_change_password"] == true);
    REQUIRE(c.post("/v1/me/password", {{"current_password", "admin-chosen-pw-9"}, {"password", "sora-own-password"}}).status == 200);
    CHECK(c.sign_in("sora", "sora-own-password").body["must_change_password"] == false);

    // An administrator's own password is not set here: a token alone must not replace it (whoever
    // took it would lock the administrator out). Their own goes through /v1/me/password.
    const std::string admin = f.admin->get("/v1/me").body["user"]["id"];
    Reply own = f.admin->patch("/v1/admin/users/" + admin, {{"password", "admin-new-password-1"}});
    CHECK(own.status == 400);
    CHECK(own.body["message"].get<std::string>().find("/v1/me/password") != std::string::npos);
    CHECK(ApiClient(f.server.url()).sign_in("admin", "admin-new-password-1").status == 401);
    CHECK(ApiClient(f.server.url()).sign_in("admin", f.server.admin_password()).status == 200);
}

TEST_CASE("a refused sign-in is audited by account id, and an unknown name is not written down") {
    Fixture f;
    auto worker = f.user("yui", "staff");
    const std::string yui = worker->get("/v1/me").body["user"]["id"];
    ApiClient c(f.server.url());
    CHECK(c.sign_in("yui", "not-yui-password").status == 401);
    CHECK(c.sign_in("yui-password-typed-here", "x-password").status == 401);  // a password in the name field
    // A disabled account's right password, on the phones' door as on the web page's.
    REQUIRE(f.admin->patch("/v1/admin/users/" + yui, {{"disabled", true}}).status == 200);
    CHECK(c.sign_in("yui", "yui-password-1").status == 403);
    auto failed = audited(*f.admin, "auth.sign_in_failed");
    REQUIRE(failed.size() == 3);
    CHECK(failed[0]["target"] == yui);
    CHECK(failed[1]["target"] == "(unknown user)");
    CHECK(failed[2]["target"] == yui);
    CHECK(f.admin->get("/v1/admin/audit?limit=1000").raw.find("yui-password-typed-here") == std::string::npos);
}

TEST_CASE("a disabled account's sessions stay ended when it is enabled again, and the last administrator stays") {
    Fixture f;
    auto mei = f.user("mei", "staff");
    const std::string id = mei->get("/v1/me").body["user"]["id"];
    REQUIRE(f.admin->patch("/v1/admin/users/" + id, {{"disabled", true}}).status == 200);
    CHECK(mei->get("/v1/me").status == 401);
    REQUIRE(f.admin->patch("/v1/admin/users/" + id, {{"disabled", false}}).status == 200);
    CHECK(mei->get("/v1/me").status == 401);  // signing in again is needed
    CHECK(ApiClient(f.server.url()).sign_in("mei", "mei-password-1").status == 200);

    const std::string admin = f.admin->get("/v1/me").body["user"]["id"];
    Reply last = f.admin->patch("/v1/admin/users/" + admin, {{"disabled", true}});
    CHECK(last.status == 409);
    CHECK(last.body["message"].get<std::string>().find("last administrator") != std::string::npos);
    CHECK(f.admin->get("/v1/me").status == 200);
    f.user("kiyo", "admin");
    CHECK(f.admin->patch("/v1/admin/users/" + admin, {{"disabled", true}}).status == 200);
}

TEST_CASE("metrics are served on loopback only, never to a request a proxy forwarded") {
    Fixture f;
    ApiClient anyone(f.server.url());
    CHECK(anyone.get("/metrics").status == 200);
    CHECK(anyone.raw("GET", "/metrics", "", {{"X-Forwarded-For", "203.0.113.7"}}).status == 403);
    CHECK(anyone.raw("GET", "/metrics", "", {{"Forwarded", "for=203.0.113.7"}}).status == 403);
    CHECK(anyone.raw("GET", "/metrics/", "", {{"Forwarded", "for=203.0.113.7"}}).status == 404);  // no such spelling
}

TEST_CASE("a device cannot take the server's own replica id") {
    Fixture f;
    auto supervisor = f.user("kaede", "supervisor", f.default_team());
    const std::string server_replica = supervisor->get("/v1/web/directory").body["server_replica"];
    REQUIRE(server_replica.size() == 32);
    f.user("nao", "home_visitor");
    ApiClient c(f.server.url());
    Reply r = c.post("/v1/auth/sign-in", {{"username", "nao"}, {"password", "nao-password-1"}, {"device_id", server_replica}});
    REQUIRE(r.status == 200);
    CHECK(r.body["device_id"] != server_replica);
    CHECK(r.body["device_id"].get<std::string>().size() == 32);
}

TEST_CASE("a device cannot take the name the web page registers its sign-ins under") {
    Fixture f;
    f.user("kaede", "supervisor", f.default_team());
    ApiClient c(f.server.url());
    Reply r = c.post("/v1/auth/sign-in", {{"username", "kaede"}, {"password", "kaede-password-1"}, {"device_name", "web page"}});
    CHECK(r.status == 400);
    CHECK(r.body["error"] == "invalid");
    CHECK(r.body["message"].get<std::string>().find("device_name") != std::string::npos);
    Reply phone = c.post("/v1/auth/sign-in", {{"username", "kaede"}, {"password", "kaede-password-1"}, {"device_name", "web page 2"}});
    CHECK(phone.status == 200);
}

TEST_CASE("bad input gets a clear 4xx JSON error and leaves the server unaffected") {
    Fixture f;
    ApiClient c(f.server.url());
    struct Case {
        std::string body;
        std::string mentions;
    };
    const std::vector<Case> cases = {
        {"{\"username\": \"admin\", \"password\": ", "not valid JSON"},
        {"[1, 2, 3]", "must be a JSON object"},
        {"{\"username\": 42, \"password\": \"x\"}", "\"username\": must be a string"},
        {"{\"username\": \"a\", \"password\": \"b\", \"colour\": \"red\"}", "unknown field \"colour\""},
        {"{\"password\": \"b\"}", "\"username\": required"},
        {"{\"username\": \"admin\", \"username\": \"aoi\", \"password\": \"b\"}", "\"username\" appears twice"},
        {std::string("{\"username\": \"\xff\xfe\", \"password\": \"b\"}"), "UTF-8"},
        {std::string(100, '[') + std::string(100, ']'), "deeper than"},
        // Too large for a double: answered 500 until the fuzz target push_body found it.
        {"{\"username\": \"admin\", \"password\": 1e999}", "not valid JSON (at byte"},
    };
    for (const auto& bad : cases) {
        Reply r = c.raw("POST", "/v1/auth/sign-in", bad.body);
        INFO(bad.body.substr(0, 60));
        CHECK(r.status == 400);
        CHECK(r.body["error"] == "invalid");
        CHECK(r.body["message"].get<std::string>().find(bad.mentions) != std::string::npos);
    }
    CHECK(c.get("/v1/nothing-here").status == 404);
    // A path that decodes to bytes that are not UTF-8, quoted in the answer: a 404, not a 500
    // (found by the fuzz target requests).
    Reply not_utf8 = c.get("/v1/%F6%FF/x");
    CHECK(not_utf8.status == 404);
    CHECK(not_utf8.body["error"] == "not_found");
    // A NUL in the address (an id, a filter) is refused before any route reads it.
    for (const char* address : {"/v1/records/abc%00def", "/healthz?x=a%00b"}) {
        Reply nul = c.get(address);
        INFO(address);
        CHECK(nul.status == 400);
        CHECK(nul.body["message"].get<std::string>().find("NUL") != std::string::npos);
    }
    Reply wrong_method = c.raw("DELETE", "/v1/auth/sign-in");
    CHECK(wrong_method.status == 405);
    CHECK(wrong_method.body["error"] == "method_not_allowed");
    CHECK(c.get("/healthz").status == 200);
}

TEST_CASE("a token or an address holding bytes that are not UTF-8 is refused as such, never a server error") {
    // PostgreSQL's text refuses such bytes as an error of its own: they never reach the store.
    Fixture f;
    ApiClient forged(f.server.url());
    forged.token = std::string("tsn_\xF6\xFF.secret");
    Reply unknown = forged.get("/v1/me");
    CHECK(unknown.status == 401);
    CHECK(unknown.body["error"] == "unauthenticated");
    std::unique_ptr<ApiClient> supervisor = f.user("sato", "supervisor");
    for (auto [client, address] : {std::pair{supervisor.get(), "/v1/records/%F6"},
                                   std::pair{supervisor.get(), "/v1/records?worker=%F6%FF"},
                                   std::pair{f.admin.get(), "/v1/admin/audit?target=%F6"}}) {
        INFO(address);
        Reply bad = client->get(address);
        CHECK(bad.status == 400);
        CHECK_THAT(bad.body["message"].get<std::string>(), Catch::Contains("not UTF-8"));
    }
    CHECK(f.admin->get("/v1/me").status == 200);
    CHECK(f.admin->get("/v1/admin/audit?target=%E6%97%A5").status == 200);  // UTF-8 escaped: read as text
}

TEST_CASE("a body over the limit is refused with 413 before it is read") {
    Fixture f({"--max-body", "65536"});
    ApiClient c(f.server.url());
    Reply r = c.raw("POST", "/v1/auth/sign-in", std::string(200000, ' '));
    CHECK(r.status == 413);
    CHECK(r.body["error"] == "body_too_large");
    CHECK(c.get("/healthz").status == 200);
}

TEST_CASE("admin endpoints refuse anonymous callers and every other role") {
    Fixture f;
    ApiClient anonymous(f.server.url());
    CHECK(anonymous.get("/v1/admin/users").status == 401);
    for (const std::string role : {"peer_supporter", "home_visitor", "staff", "supervisor"}) {
        auto c = f.user("u-" + role, role);
        INFO(role);
        CHECK(c->get("/v1/admin/users").status == 403);
        CHECK(c->post("/v1/admin/teams", {{"name", "x"}}).status == 403);
        CHECK(c->post("/v1/admin/devices/" + c->device_id + "/revoke", json::object()).status == 403);
        CHECK(c->post("/v1/admin/compact", json::object()).status == 403);
        CHECK(c->get("/v1/admin/audit").status == 403);
    }
    CHECK(f.admin->get("/v1/admin/users").body["users"].size() == 5);
}

TEST_CASE("every field worker has a team, whose supervisors see her work") {
    Fixture f;
    for (const std::string role : {"peer_supporter", "home_visitor", "staff"}) {
        Reply teamless = f.admin->post("/v1/admin/users",
                                       {{"username", "x-" + role}, {"role", role}, {"password", "a-password-1"}});
        CHECK(teamless.status == 400);
        CHECK(teamless.body["message"].get<std::string>().find("team_id") != std::string::npos);
    }
    // Supervisors and administrators need none.
    f.user("kei", "supervisor");
    f.user("root2", "admin");
    f.user("hiro", "home_visitor");
    std::string hiro;
    const json users = f.admin->get("/v1/admin/users").body["users"];
    for (const auto& u : users) {
        if (u["username"] == "hiro") hiro = u["id"];
    }
    REQUIRE_FALSE(hiro.empty());
    // Taking her team away is refused; moving her to another team is not.
    Reply removed = f.admin->patch("/v1/admin/users/" + hiro, {{"team_id", ""}});
    CHECK(removed.status == 400);
    CHECK(removed.body["message"].get<std::string>().find("team_id") != std::string::npos);
    const std::string minami = f.admin->post("/v1/admin/teams", {{"name", "Minami"}}).body["team"]["id"];
    Reply moved = f.admin->patch("/v1/admin/users/" + hiro, {{"team_id", minami}});
    REQUIRE(moved.status == 200);
    CHECK(moved.body["user"]["team_id"] == minami);
}

TEST_CASE("a team that does not exist is refused with 404 naming it and nothing is written") {
    Fixture f;
    Reply created = f.admin->post("/v1/admin/users", {{"username", "stray"}, {"role", "home_visitor"},
                                                      {"team_id", "no-such-team"}, {"password", "a-password-1"}});
    CHECK(created.status == 404);
    CHECK(created.body["message"].get<std::string>().find("no-such-team") != std::string::npos);
    f.user("hiro", "home_visitor");
    std::string hiro;
    const json users = f.admin->get("/v1/admin/users").body["users"];
    for (const auto& u : users) {
        CHECK(u["username"] != "stray");
        if (u["username"] == "hiro") hiro = u["id"];
    }
    REQUIRE_FALSE(hiro.empty());
    Reply moved = f.admin->patch("/v1/admin/users/" + hiro, {{"team_id", "no-such-team"}});
    CHECK(moved.status == 404);
    CHECK(moved.body["message"].get<std::string>().find("no-such-team") != std::string::npos);
    // The server writes on as before.
    f.user("aoi", "home_visitor");
}

TEST_CASE("a revoked device is told to wipe on its next request") {
    Fixture f;
    auto worker = f.user("hiro", "home_visitor");
    CHECK(worker->get("/v1/me").status == 200);
    Reply revoked = f.admin->post("/v1/admin/devices/" + worker->device_id + "/revoke", json::object());
    REQUIRE(revoked.status == 200);
    Reply next = worker->get("/v1/me");
    CHECK(next.status == 401);
    CHECK(next.body["error"] == "wipe");
}

TEST_CASE("a lost phone is told to wipe even when its session had ended with a password change or a disabled account") {
    Fixture f;
    auto lost = f.user("hiro", "home_visitor");
    ApiClient kept(f.server.url());
    REQUIRE(kept.sign_in("hiro", "hiro-password-1", "hiro-new-phone").status == 200);
    const std::string hiro = kept.get("/v1/me").body["user"]["id"];

    // The usual advice after a loss: change the password. The lost phone's session ends with it...
    REQUIRE(kept.post("/v1/me/password", {{"current_password", "hiro-password-1"}, {"password", "hiro-password-2"}})
                .status == 200);
    Reply ended = lost->get("/v1/me");
    CHECK(ended.status == 401);
    CHECK(ended.body["error"] == "unauthenticated");
    // ...and the revocation made afterwards still reaches it, as does one after a disable.
    REQUIRE(f.admin->post("/v1/admin/devices/" + lost->device_id + "/revoke", json::object()).status == 200);
    Reply told = lost->get("/v1/me");
    CHECK(told.status == 401);
    CHECK(told.body["error"] == "wipe");
    REQUIRE(f.admin->patch("/v1/admin/users/" + hiro, {{"disabled", true}}).status == 200);
    CHECK(lost->get("/v1/me").body["error"] == "wipe");
    CHECK(kept.get("/v1/me").body["error"] == "unauthenticated");
    REQUIRE(f.admin->patch("/v1/admin/users/" + hiro, {{"disabled", false}}).status == 200);
    CHECK(kept.get("/v1/me").status == 401);  // ended sessions stay ended
    CHECK(kept.sign_in("hiro", "hiro-password-2", "hiro-new-phone").status == 200);
    CHECK(lost->get("/v1/me").body["error"] == "wipe");
}

TEST_CASE("accounts survive a restart and the data folder holds no plaintext") {
    TempDir dir{"tsunagu-api"};
    const std::string data = dir.file("data");
    std::string password;
    {
        ServerProcess server(TSUNAGU_SERVER_PATH, data, dir.file("log"));
        server.start();
        password = server.admin_password();
        ApiClient admin(server.url());
        REQUIRE(admin.sign_in("admin", password).status == 200);
        const Reply team = admin.post("/v1/admin/teams", {{"name", "Kita-ku MARKER-TEAM"}});
        REQUIRE(team.status == 201);
        REQUIRE(admin.post("/v1/admin/users", {{"username", "marker-user-sachiko"},
                                               {"display_name", "MARKER Sachiko"},
                                               {"role", "staff"},
                                               {"team_id", team.body["team"]["id"]},
                                               {"password", "sachiko-password"}})
                    .status == 201);
        CHECK(server.stop(SIGTERM) == 0);
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data)) {
        const std::string bytes = read_file(entry.path());
        INFO(entry.path().string());
        CHECK(bytes.find("MARKER") == std::string::npos);
        CHECK(bytes.find("marker-user-sachiko") == std::string::npos);
        CHECK(bytes.find("SQLite format 3") == std::string::npos);
    }
    ServerProcess again(TSUNAGU_SERVER_PATH, data, dir.file("log"));
    again.start();
    CHECK(again.startup_output().find("administrator \"admin\" created") == std::string::npos);  // first start only
    ApiClient admin(again.url());
    REQUIRE(admin.sign_in("admin", password).status == 200);
    CHECK(admin.get("/v1/admin/teams").body["teams"][0]["name"] == "Kita-ku MARKER-TEAM");
    ApiClient sachiko(again.url());
    CHECK(sachiko.sign_in("marker-user-sachiko", "sachiko-password").status == 200);
}

TEST_CASE("logs carry request ids but never passwords or tokens") {
    Fixture f;
    auto worker = f.user("kenji", "peer_supporter");
    ApiClient c(f.server.url());
    c.sign_in("kenji", "a-wrong-password-that-must-not-be-logged");
    worker->get("/v1/me");
    f.server.stop(SIGTERM);
    const std::string log = read_file(f.log);
    CHECK(log.find("\"request_id\"") != std::string::npos);
    CHECK(log.find("a-wrong-password-that-must-not-be-logged") == std::string::npos);
    CHECK(log.find("kenji-password-1") == std::string::npos);
    CHECK(log.find(worker->token.substr(4, 20)) == std::string::npos);
    CHECK(log.find(f.server.admin_password()) == std::string::npos);
}

TEST_CASE("the audit trail is hash-chained and lists sign-ins") {
    Fixture f;
    f.user("mika", "staff");
    Reply audit = f.admin->get("/v1/admin/audit");
    REQUIRE(audit.status == 200);
    bool saw_sign_in = false;
    for (const auto& e : audit.body["entries"]) saw_sign_in |= e["action"] == "auth.sign_in";
    CHECK(saw_sign_in);
    Reply verified = f.admin->get("/v1/admin/audit/verify");
    CHECK(verified.body["intact"] == true);
    // With a head recorded elsewhere (the log's audit_head lines): the trail still holds it, and
    // one it does not hold (as if entries were cut from its end) is found.
    const std::string seq = std::to_string(verified.body["head"]["seq"].get<std::int64_t>());
    const std::string hash = verified.body["head"]["hash"];
    CHECK(f.admin->get("/v1/admin/audit/verify?seq=" + seq + "&hash=" + hash).body["intact"] == true);
    Reply cut = f.admin->get("/v1/admin/audit/verify?seq=999999&hash=" + hash);
    CHECK(cut.body["intact"] == false);
    CHECK(cut.body["message"].get<std::string>().find("shortened") != std::string::npos);
    CHECK(f.admin->get("/v1/admin/audit/verify?seq=1").status == 400);
    // Paged by sequence number; a malformed or out-of-range page is refused, naming the parameter.
    const auto first = audit.body["entries"][0]["seq"].get<std::int64_t>();
    Reply after = f.admin->get("/v1/admin/audit?after=" + std::to_string(first) + "&limit=1");
    REQUIRE(after.status == 200);
    REQUIRE(after.body["entries"].size() == 1);
    CHECK(after.body["entries"][0]["seq"] == first + 1);
    for (const std::string bad : {"after=12abc", "after=-1", "limit=0", "limit=1001", "limit=x"}) {
        Reply refused = f.admin->get("/v1/admin/audit?" + bad);
        INFO(bad);
        CHECK(refused.status == 400);
        CHECK(refused.body["message"].get<std::string>().find("query parameter") != std::string::npos);
    }
    // The head goes to the log at start and at stop, where the store's keys do not reach.
    f.server.stop(SIGTERM);
    const std::string log = read_file(f.log);
    CHECK(log.find("\"audit_head\"") != std::string::npos);
}

TEST_CASE("an administrator's changes to accounts are on the trail with what changed and never a password") {
    Fixture f;
    const std::string team = f.admin->post("/v1/admin/teams", {{"name", "Minami"}}).body["team"]["id"];
    Reply created = f.admin->post("/v1/admin/users", {{"username", "rin"}, {"role", "staff"}, {"team_id", team},
                                                      {"password", "first-password-1"}});
    REQUIRE(created.status == 201);
    const std::string id = created.body["user"]["id"];
    REQUIRE(f.admin->patch("/v1/admin/users/" + id, {{"password", "reset-password-2"}}).status == 200);
    REQUIRE(f.admin->patch("/v1/admin/users/" + id, {{"disabled", true}}).status == 200);
    // The new account can sign in with the password set in the same request that made it.
    REQUIRE(f.admin->patch("/v1/admin/users/" + id, {{"disabled", false}}).status == 200);
    ApiClient rin(f.server.url());
    CHECK(rin.sign_in("rin", "reset-password-2").status == 200);

    Reply audit = f.admin->get("/v1/admin/audit?target=" + id);
    REQUIRE(audit.status == 200);
    std::vector<json> details;
    for (const auto& e : audit.body["entries"]) {
        if (e["action"] == "admin.user_created" || e["action"] == "admin.user_updated") {
            details.push_back(json::parse(e["detail"].get<std::string>()));
        }
    }
    REQUIRE(details.size() == 4);
    CHECK(details[0] == json{{"role", "staff"}, {"team_id", team}});
    CHECK(details[1] == json{{"password_reset", true}});
    CHECK(details[2] == json{{"disabled", true}});
    CHECK(details[3] == json{{"disabled", false}});
    CHECK(audit.raw.find("password-") == std::string::npos);
}

TEST_CASE("connections that send nothing do not pin the server") {
    Fixture f;
    std::vector<tsunagu::UniqueFd> idle;
    for (int i = 0; i < 200; ++i) idle.push_back(connect_loopback(f.server.port()));
    const auto started = std::chrono::steady_clock::now();
    CHECK(f.admin->get("/healthz").status == 200);
    // Pinned, it would never answer (the client gives up after its own timeout); a loaded
    // machine may take a while.
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}

TEST_CASE("SIGTERM while an upload stalls part way stops the server cleanly once its grace has passed") {
    Fixture f;
    // A phone that lost its signal mid-push: the head and part of the body, then nothing.
    const tsunagu::UniqueFd stalled = connect_loopback(f.server.port(), 30);
    send_all(stalled, request_head(f.server.port(), "POST", "/v1/sync/push", "", 1000) + std::string(100, ' '));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto signalled = std::chrono::steady_clock::now();
    const int status = f.server.stop(SIGTERM);
    // It waits for requests in flight (10 s), then closes: the stalled upload's continuation runs
    // after that, against a server that is going, and must not bring it down.
    CHECK(std::chrono::steady_clock::now() - signalled < std::chrono::seconds(20));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    const std::string answer = read_all(stalled);
    INFO(answer);
    CHECK((answer.empty() || answer.find(" 503 ") != std::string::npos));
}

TEST_CASE("plain HTTP on an address other than loopback is refused at start") {
    TempDir dir{"tsunagu-api"};
    const std::string command = std::string(TSUNAGU_SERVER_PATH) + " --data " + dir.file("d") +
                                " --listen http://0.0.0.0:18999 2>" + dir.file("err");
    CHECK(std::system(command.c_str()) != 0);
    CHECK(read_file(dir.file("err")).find("plain HTTP is only allowed on loopback") != std::string::npos);
}

TEST_CASE("a password inside --postgres is refused before anything connects since every local user reads the command line") {
    TempDir dir{"tsunagu-api"};
    for (const char* conninfo :
         {"host=127.0.0.1 dbname=tsunagu user=tsunagu password=hunter2-on-argv",
          "postgresql://tsunagu:hunter2-on-argv@127.0.0.1/tsunagu",
          "host=127.0.0.1 dbname=tsunagu sslkey=/etc/tsunagu/db.key sslpassword=hunter2-on-argv"}) {
        for (const std::string& command : {" --data " + dir.file("d") + " --listen http://127.0.0.1:18998",
                                           " report --data " + dir.file("d") + " --fy 2020",
                                           " rotate-key --data " + dir.file("d") + " --new-key-file " + dir.file("k")}) {
            INFO(command << " with " << conninfo);
            const std::string line = std::string(TSUNAGU_SERVER_PATH) + command + " --postgres '" + conninfo +
                                     "' >" + dir.file("out") + " 2>&1";
            CHECK(WEXITSTATUS(std::system(line.c_str())) == 2);
            const std::string said = read_file(dir.file("out"));
            CHECK(said.find("--postgres holds a password") != std::string::npos);
            CHECK(said.find("hunter2") == std::string::npos);
        }
    }
    CHECK_FALSE(std::filesystem::exists(dir.file("d")));
}

TEST_CASE("a --postgres reaching another machine without checking its certificate is refused before anything connects") {
    TempDir dir{"tsunagu-api"};
    for (const char* conninfo : {"host=db.internal dbname=tsunagu", "postgresql://db.internal/tsunagu?sslmode=require",
                                 "host=/run/postgresql,10.0.0.5 dbname=tsunagu"}) {
        INFO(conninfo);
        const std::string line = std::string(TSUNAGU_SERVER_PATH) + " --data " + dir.file("d") +
                                 " --listen http://127.0.0.1:18998 --postgres '" + conninfo + "' >" + dir.file("out") +
                                 " 2>&1";
        CHECK(WEXITSTATUS(std::system(line.c_str())) == 2);
        const std::string said = read_file(dir.file("out"));
        CHECK(said.find("without checking who answers") != std::string::npos);
        CHECK(said.find("sslmode=verify-full") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(dir.file("d")));
}

TEST_CASE("the server speaks HTTPS itself with a given certificate") {
    TempDir dir{"tsunagu-api"};
    const auto cert = make_self_signed_certificate(dir.path().string());
    ServerProcess server(TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("log"));
    server.start({"--tls-cert", cert.certificate, "--tls-key", cert.private_key}, 0, /*https=*/true);
    ApiClient admin(server.url(), /*verify_tls=*/false);
    REQUIRE(admin.sign_in("admin", server.admin_password()).status == 200);
    CHECK(admin.get("/v1/me").body["user"]["role"] == "admin");
    ApiClient strict(server.url());  // verifies certificates: a self-signed one is refused
    CHECK(strict.get("/healthz").status == -1);
}

TEST_CASE("admins set yearly targets per indicator and fiscal year") {
    Fixture f;
    Reply set = f.admin->raw("PUT", "/v1/admin/targets?fy=2020",
                             json{{"targets", {{"dispatch_requests", 88}, {"peer_supporters_trained", 20}}}}.dump());
    REQUIRE(set.status == 200);
    CHECK(set.body["targets"]["dispatch_requests"] == 88);
    f.admin->raw("PUT", "/v1/admin/targets?fy=2020", json{{"targets", {{"dispatch_requests", 90}}}}.dump());
    Reply got = f.admin->get("/v1/admin/targets?fy=2020");
    CHECK(got.body["targets"]["dispatch_requests"] == 90);
    CHECK(got.body["targets"]["peer_supporters_trained"] == 20);
    // A target set by mistake is removed with null, and each change is audited with its values.
    Reply removed = f.admin->raw("PUT", "/v1/admin/targets?fy=2020", json{{"targets", {{"peer_supporters_trained", nullptr}}}}.dump());
    CHECK(removed.status == 200);
    CHECK_FALSE(removed.body["targets"].contains("peer_supporters_trained"));
    CHECK(removed.body["targets"]["dispatch_requests"] == 90);
    const json trail = f.admin->get("/v1/admin/audit").body["entries"];
    std::vector<json> changes;
    for (const auto& e : trail) {
        if (e["action"] == "admin.targets_set") changes.push_back(json::parse(e["detail"].get<std::string>()));
    }
    REQUIRE(changes.size() == 3);
    const auto has = [&](const json& change) { return std::find(changes.begin(), changes.end(), change) != changes.end(); };
    CHECK(has(json{{"dispatch_requests", {{"from", nullptr}, {"to", 88}}}, {"peer_supporters_trained", {{"from", nullptr}, {"to", 20}}}}));
    CHECK(has(json{{"dispatch_requests", {{"from", 88}, {"to", 90}}}}));
    CHECK(has(json{{"peer_supporters_trained", {{"from", 20}, {"to", nullptr}}}}));
    CHECK(f.admin->get("/v1/admin/targets?fy=2021").body["targets"].empty());
    CHECK(f.admin->get("/v1/admin/targets?fy=twenty").status == 400);
    CHECK(f.admin->raw("PUT", "/v1/admin/targets?fy=2020", json{{"targets", {{"x", -1}}}}.dump()).status == 400);
    auto supervisor = f.user("kei", "supervisor");
    CHECK(supervisor->get("/v1/admin/targets?fy=2020").status == 403);
}
