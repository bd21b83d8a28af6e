// Signing in: the session (server URL, token, link) changes only once a sign-in succeeded, and
// every refusal says whether trying again later can help.
#include <limits>

#include "fake_server.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

TEST_CASE("a sign-in refused by another server leaves every later request, and the token, with the first") {
    FieldOrganisation org;
    auto log = std::make_shared<RequestLog>();
    const std::string other = "https://other.example.org";
    // 0: the other server signs in another user; 1: this user, but as a new device.
    const int refusal = GENERATE(0, 1);
    const json answer = refusal == 0 ? sign_in_answer(std::string(32, 'e'), std::string(32, 'd'))
                                     : sign_in_answer(org.ids["aoi"], std::string(32, 'd'));
    auto options = test_options();
    options.transport = [log, other, answer](const std::string& url) -> std::unique_ptr<client::HttpTransport> {
        if (url == other) return std::make_unique<FakeServer>(url, log, 200, answer);
        return std::make_unique<RecordingTransport>(url, log);
    };
    auto aoi = org.device("aoi", options);
    created(*aoi, "client", {{"pseudonym", "K-301"}, {"area", "kita"}});
    log->taken();

    const Status signed_in = aoi->sign_in(other, "aoi", FieldOrganisation::password_of("aoi"));
    REQUIRE_FALSE(signed_in.is_ok());
    CHECK(signed_in.code() == (refusal == 0 ? ErrorCode::forbidden : ErrorCode::conflict));
    CHECK(aoi->status()->server_url == org.server.url());

    const auto report = synced(*aoi);
    CHECK(report.pushed == 1);
    const auto requests = log->taken();
    REQUIRE(requests.size() >= 3);  // the refused sign-in, then the sync's push and pull
    CHECK(requests.front().url == other);
    CHECK(requests.front().authorization.empty());
    for (std::size_t i = 1; i < requests.size(); ++i) {
        INFO(requests[i].url << " " << requests[i].path);
        CHECK(requests[i].url == org.server.url());
        CHECK_FALSE(requests[i].authorization.empty());
    }
}

TEST_CASE("a sign-in answered 400, 404 or 413 is a mistake to fix, and only a server error is worth waiting out") {
    struct Case {
        int status;
        ErrorCode code;
    };
    for (const Case c : {Case{400, ErrorCode::invalid_argument}, Case{404, ErrorCode::invalid_argument},
                         Case{413, ErrorCode::invalid_argument}, Case{410, ErrorCode::invalid_argument},
                         Case{500, ErrorCode::unavailable}, Case{507, ErrorCode::unavailable},
                         Case{429, ErrorCode::forbidden}}) {
        INFO("HTTP " << c.status);
        TempDir dir("tsunagu-sign-in");
        auto device = open_with(dir, [&] { return std::make_unique<FakeServer>("", nullptr, c.status, error_body("x")); });
        const Status signed_in = device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1");
        CHECK(signed_in.code() == c.code);
        CHECK_THAT(signed_in.message(), Catch::Contains(std::to_string(c.status)) || Catch::Contains("refused"));
        if (c.code == ErrorCode::invalid_argument) {
            CHECK_THAT(signed_in.message(), Catch::Contains("repeating it will not help"));
            CHECK_THAT(signed_in.message(), !Catch::Contains("later"));
        }
        CHECK_FALSE(device.status()->signed_in);
    }
}

TEST_CASE("a push answered 404 is a mistake to fix and keeps the change, and a 500 is worth waiting out") {
    const int status = GENERATE(404, 500);
    TempDir dir("tsunagu-push-status");
    auto device = open_with(dir, [&] {
        return std::make_unique<FakeServer>("", nullptr, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')),
                                            status);
    });
    REQUIRE(device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1").is_ok());
    created(device, "client", {{"pseudonym", "K-302"}, {"area", "kita"}});
    auto failed = device.sync();
    REQUIRE_FALSE(failed.is_ok());
    CHECK(failed.status().code() == (status == 404 ? ErrorCode::invalid_argument : ErrorCode::unavailable));
    CHECK_THAT(failed.status().message(), Catch::Contains("HTTP " + std::to_string(status)));
    CHECK(device.status()->pending == 1);
}

namespace {

// Forwards to the real server, and loses the answers to the first `to_lose` sign-ins after the
// server gave them (a connection cut on the way back): the device cannot know whether it registered.
class LosingSignInAnswers final : public client::HttpTransport {
public:
    LosingSignInAnswers(const std::string& url, int to_lose) : inner_(client::make_http_transport(url)), to_lose_(to_lose) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        auto answer = inner_->send(method, path, body, headers);
        if (path == "/v1/auth/sign-in" && to_lose_ > 0 && answer.is_ok() && answer->status == 200) {
            --to_lose_;
            return Status(ErrorCode::unavailable, "connection reset (the answer was lost)");
        }
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    int to_lose_;
};

}  // namespace

TEST_CASE("a first sign-in whose answer was lost registers one device, not one per attempt") {
    FieldOrganisation org;
    auto options = test_options();
    options.transport = [](const std::string& url) { return std::make_unique<LosingSignInAnswers>(url, 1); };
    auto aoi = org.device("aoi", options);  // signed in on the retry
    const Reply devices = org.admin->get("/v1/admin/devices?user_id=" + org.ids["aoi"]);
    REQUIRE(devices.status == 200);
    REQUIRE(devices.body["devices"].size() == 1);
    CHECK(devices.body["devices"][0]["id"] == aoi->status()->device_id);
    // And its work goes under that one registration.
    created(*aoi, "client", {{"pseudonym", "K-302"}, {"area", "kita"}});
    CHECK(synced(*aoi).pushed == 1);
}

TEST_CASE("a first sign-in whose answers were all lost, tried again after the app was reopened, registers one device") {
    FieldOrganisation org;
    const std::string home = org.new_home("aoi");
    {
        auto options = test_options();
        // Every answer lost (the network keeps cutting on the way back): the device gives up.
        options.transport = [](const std::string& url) {
            return std::make_unique<LosingSignInAnswers>(url, std::numeric_limits<int>::max());
        };
        auto device = client::Device::open(home, "aoi passphrase", std::move(options));
        REQUIRE(device.is_ok());
        CHECK_FALSE(device->sign_in(org.server.url(), "aoi", FieldOrganisation::password_of("aoi"), "aoi's phone").is_ok());
    }  // the app is closed
    auto device = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(device.is_ok());
    Status signed_in = device->sign_in(org.server.url(), "aoi", FieldOrganisation::password_of("aoi"), "aoi's phone");
    INFO(signed_in.to_string());
    REQUIRE(signed_in.is_ok());
    const Reply devices = org.admin->get("/v1/admin/devices?user_id=" + org.ids["aoi"]);
    REQUIRE(devices.status == 200);
    REQUIRE(devices.body["devices"].size() == 1);
    CHECK(devices.body["devices"][0]["id"] == device->status()->device_id);
}

TEST_CASE("a password an administrator set opens nothing on the phone until the worker chooses her own there") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    created(*aoi, "client", {{"pseudonym", "K-303"}, {"area", "kita"}});
    REQUIRE(org.admin->patch("/v1/admin/users/" + org.ids["aoi"], {{"password", "aoi one-time 2020"}}).status == 200);
    // The reset ended her session: she signs in with what her administrator told her.
    REQUIRE(aoi->sign_in(org.server.url(), "aoi", "aoi one-time 2020").is_ok());
    auto refused = aoi->sync();
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::forbidden);
    CHECK_THAT(refused.status().message(), Catch::Contains("choose your own (tsunagu password"));
    CHECK(aoi->status()->pending == 1);  // nothing lost meanwhile
    const Status wrong = aoi->change_password("not the one she was told", "aoi-password-2");
    CHECK(wrong.code() == ErrorCode::forbidden);
    CHECK_THAT(wrong.message(), Catch::Contains("current password is wrong"));
    REQUIRE(aoi->change_password("aoi one-time 2020", "aoi-password-2").is_ok());
    CHECK(synced(*aoi).pushed == 1);
    ApiClient again(org.server.url());
    CHECK(again.sign_in("aoi", "aoi-password-2").status == 200);
}

TEST_CASE("a sign-in over plain HTTP to another machine is refused before the password leaves") {
    for (const char* url : {"http://192.0.2.10:8080", "http://127.lan:8080", "http://127.0.0.1@192.0.2.10:8080",
                            "http://tsunagu.example.org"}) {
        INFO(url);
        TempDir dir("tsunagu-sign-in");
        auto log = std::make_shared<RequestLog>();
        auto device = open_with(dir, [&] {
            return std::make_unique<FakeServer>("", log, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')));
        });
        const Status signed_in = device.sign_in(url, "aoi", "aoi-password-1");
        CHECK(signed_in.code() == ErrorCode::invalid_argument);
        CHECK_THAT(signed_in.message(), Catch::Contains("https://"));
        CHECK(log->taken().empty());  // nothing was sent
        CHECK_FALSE(device.status()->signed_in);
    }
    TempDir dir("tsunagu-sign-in");
    auto device = open_with(dir, [&] {
        return std::make_unique<FakeServer>("", nullptr, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')));
    });
    CHECK(device.sign_in("http://127.0.0.1:8080", "aoi", "aoi-password-1").is_ok());  // this machine: allowed
}

TEST_CASE("a session an older build kept with a plain-HTTP server on another machine sends nothing until signed in again") {
    TempDir dir("tsunagu-sign-in");
    auto log = std::make_shared<RequestLog>();
    auto server = [&] {
        return std::make_unique<FakeServer>("", log, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')), 500);
    };
    {
        auto device = open_with(dir, server);
        REQUIRE(device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1").is_ok());
        created(device, "client", {{"pseudonym", "K-302"}, {"area", "kita"}});
    }
    {   // As an older build, which took any URL, stored it.
        auto store = Store::open(dir.file("home") + "/replica.db",
                                 KeySource::passphrase("aoi passphrase", KdfParams::fast_for_tests()));
        REQUIRE(store.is_ok());
        REQUIRE(store->exec("UPDATE client_session SET value = 'http://192.0.2.10:8080' WHERE name = 'server_url'"));
    }
    log->taken();  // forget the sign-in
    auto device = open_with(dir, server);
    auto synced = device.sync();
    REQUIRE_FALSE(synced.is_ok());
    CHECK(synced.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(synced.status().message(), Catch::Contains("https://") && Catch::Contains("nothing was sent"));
    CHECK(device.change_password("aoi-password-1", "aoi-password-2").code() == ErrorCode::invalid_argument);
    CHECK(device.refused_on_server(false).status().code() == ErrorCode::invalid_argument);
    CHECK(log->taken().empty());  // the token never left
    CHECK(device.status()->pending == 1);  // and the work is kept

    REQUIRE(device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1").is_ok());
    auto again = device.sync();  // now sent: the fake server answers 500, worth waiting out
    CHECK(again.status().code() == ErrorCode::unavailable);
    CHECK_FALSE(log->taken().empty());
}
