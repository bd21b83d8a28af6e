// What the server keeps of a password a request carries: nothing once it has been read. The
// password is taken into guarded memory (crypto/secret.h) and wiped from the request's text and
// from the parsed body, whatever the answer, so it does not linger in the server's heap (nor in a
// core dump) for as long as the buffer happens to live. The server runs in process here
// (ServerConfig::serve_in_process), so the test sees the very request the adapter would hand it.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "api/server.h"
#include "support/in_process_server.h"
#include "support/temp_dir.h"

using namespace tsunagu;
using nlohmann::json;

namespace {

// Sends `request` and checks what its text holds afterwards: not `password`, and the same number
// of bytes (wiped in place, not replaced by a fresh buffer beside a freed one).
json send_and_check_wiped(const testing::InProcessServer& server, api::HttpRequest request, const std::string& password,
                          int status) {
    const std::size_t size = request.body.size();
    REQUIRE(request.body.find(password) != std::string::npos);
    const api::HttpResponse answer = server.handle(request);
    INFO(request.path << " answered " << answer.status << ": " << answer.body);
    CHECK(answer.status == status);
    CHECK(request.body.find(password) == std::string::npos);
    CHECK(request.body.size() == size);
    CHECK(answer.body.find(password) == std::string::npos);
    return json::parse(answer.body, nullptr, false);
}

}  // namespace

TEST_CASE("a password a request carries is wiped from the request once read, whatever the answer") {
    testing::TempDir dir("tsunagu-password-memory");
    testing::InProcessServer server(dir);

    const json first = send_and_check_wiped(
        server, testing::post_json("/v1/auth/sign-in", {{"username", "admin"}, {"password", server.first_admin_password()}, {"device_name", "pc"}}),
        server.first_admin_password(), 200);
    // The one-time password is replaced at once, as the administrator must.
    const json first_change = {{"current_password", server.first_admin_password()}, {"password", "a new admin passphrase"}};
    send_and_check_wiped(server, testing::post_json("/v1/me/password", first_change, first.value("token", "")), "a new admin passphrase", 200);
    const json signed_in = send_and_check_wiped(
        server, testing::post_json("/v1/auth/sign-in", {{"username", "admin"}, {"password", "a new admin passphrase"}}),
        "a new admin passphrase", 200);
    const std::string token = signed_in.value("token", "");
    REQUIRE_FALSE(token.empty());

    SECTION("a wrong password at sign-in") {
        send_and_check_wiped(server,
                             testing::post_json("/v1/auth/sign-in", {{"username", "admin"}, {"password", "not the one, surely"}}),
                             "not the one, surely", 401);
    }
    SECTION("a wrong current password when changing one's own") {
        const json wrong = {{"current_password", "not the current one"}, {"password", "a third passphrase"}};
        send_and_check_wiped(server, testing::post_json("/v1/me/password", wrong, token), "not the current one", 403);
        send_and_check_wiped(server, testing::post_json("/v1/me/password", wrong, token), "a third passphrase", 403);
    }
    SECTION("a request refused for its shape or as malformed before its password was looked at") {
        send_and_check_wiped(server, testing::post_json("/v1/auth/sign-in", {{"username", 5}, {"password", "wrong type beside"}}),
                             "wrong type beside", 400);
        send_and_check_wiped(server,
                             testing::post_json("/v1/auth/sign-in", {{"username", "admin"}, {"password", "a field too many"}, {"x", 1}}),
                             "a field too many", 400);
        api::HttpRequest malformed = testing::post_json("/v1/auth/sign-in", json::object());
        malformed.body = R"({"username":"admin","password":"cut short here")";
        send_and_check_wiped(server, std::move(malformed), "cut short here", 400);
        send_and_check_wiped(server, testing::post_json("/v1/me/password", {{"current_password", "c u r r e n t"}, {"password", 7}}, token),
                             "c u r r e n t", 400);
        send_and_check_wiped(server,
                             testing::post_json("/v1/admin/users", {{"username", "x"}, {"role", "wizard"}, {"password", "bad role pw"}}, token),
                             "bad role pw", 400);
        api::HttpRequest as_text = testing::post_json("/v1/web/sign-in", {{"username", "admin"}, {"password", "sent as text"}});
        as_text.headers["content-type"] = "text/plain";
        send_and_check_wiped(server, std::move(as_text), "sent as text", 415);
        api::HttpRequest other_site = testing::post_json("/v1/web/sign-in", {{"username", "admin"}, {"password", "from elsewhere"}});
        other_site.headers["sec-fetch-site"] = "cross-site";
        send_and_check_wiped(server, std::move(other_site), "from elsewhere", 403);
    }
    SECTION("an account made with a password, then given another, then signing in to the page") {
        api::HttpRequest new_team = testing::post_json("/v1/admin/teams", {{"name", "Kita"}}, token);
        const api::HttpResponse team = server.handle(new_team);
        REQUIRE(team.status == 201);
        const json made = send_and_check_wiped(server,
                                               testing::post_json("/v1/admin/users",
                                                    {{"username", "kita.supervisor"},
                                                     {"role", "supervisor"},
                                                     {"team_id", json::parse(team.body)["team"]["id"]},
                                                     {"password", "first password of hers"}},
                                                    token),
                                               "first password of hers", 201);
        api::HttpRequest change = testing::post_json("/v1/admin/users/" + made["user"]["id"].get<std::string>(),
                                       {{"password", "second password of hers"}}, token);
        change.method = "PATCH";
        send_and_check_wiped(server, std::move(change), "second password of hers", 200);
        send_and_check_wiped(server,
                             testing::post_json("/v1/web/sign-in", {{"username", "kita.supervisor"}, {"password", "second password of hers"}}),
                             "second password of hers", 200);
    }
}
