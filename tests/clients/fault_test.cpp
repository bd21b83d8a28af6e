// Cuts: the server killed with SIGKILL in the middle of a device's push and of its pull, network
// failures retried with backoff and jitter. Nothing may be lost or applied twice.
#include <signal.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "field_org.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// Forwards to the real transport; on the n-th request to `path` it kills the server, either before
// the request leaves (it never arrives) or after the server answered (the answer is lost). Called
// from the sync's push threads (several pushes fly at once), so it counts atomically and makes no
// assertion there (Catch2's are not thread-safe): whether the answer it cut off was a success is
// kept in `answered`, for the test to check once the sync returned.
class KillingTransport final : public client::HttpTransport {
public:
    enum class When { before_request, after_answer };
    KillingTransport(const std::string& url, ServerProcess& server, std::string path, int n, When when,
                     std::shared_ptr<std::atomic<bool>> answered)
        : inner_(client::make_http_transport(url)),
          server_(server),
          path_(std::move(path)),
          n_(n),
          when_(when),
          answered_(std::move(answered)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        const bool kill_now = path == path_ && ++count_ == n_;
        if (kill_now && when_ == When::before_request) kill_once_earlier_answered();
        auto answer = inner_->send(method, path, body, headers);
        if (kill_now && when_ == When::after_answer) {
            *answered_ = answer.is_ok() && answer->status == 200;
            if (!*answered_) return answer;
            kill_once_earlier_answered();
            return Status(ErrorCode::unavailable, "connection reset (the server was killed)");
        }
        if (path == path_) ++answers_;
        return answer;
    }

private:
    // Several requests fly at once: the n-th may leave before the ones ahead of it were answered.
    // The kill waits for those (10 s at most), so that exactly n-1 requests were answered before it.
    void kill_once_earlier_answered() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (answers_ < n_ - 1 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        server_.stop(SIGKILL);
    }

    std::unique_ptr<client::HttpTransport> inner_;
    ServerProcess& server_;
    std::string path_;
    int n_;
    std::atomic<int> count_{0};
    std::atomic<int> answers_{0};
    When when_;
    std::shared_ptr<std::atomic<bool>> answered_;
};

// Device options whose transport kills the server at the n-th request to `path`; `answered` says,
// when it was killed after the answer, whether that answer was a success.
client::DeviceOptions killing(FieldOrganisation& org, const std::string& path, int n, KillingTransport::When when,
                              std::shared_ptr<std::atomic<bool>> answered) {
    auto options = test_options();
    options.transport = [&org, path, n, when, answered](const std::string& url) {
        return std::make_unique<KillingTransport>(url, org.server, path, n, when, answered);
    };
    return options;
}

std::set<std::string> ids_of(client::Device& device, const std::string& collection) {
    auto records = device.list(collection);
    REQUIRE(records.is_ok());
    std::set<std::string> ids;
    for (const auto& r : *records) ids.insert(r.id);
    CHECK(ids.size() == records->size());
    return ids;
}

}  // namespace

TEST_CASE("a server killed in the middle of a push loses and duplicates nothing once restarted") {
    FieldOrganisation org;
    const auto when = GENERATE(KillingTransport::When::before_request, KillingTransport::When::after_answer);
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto options = killing(org, "/v1/sync/push", 3, when, answered);
    options.push_batch = 50;
    auto aoi = org.device("aoi", options);
    const auto client = created(*aoi, "client", {{"pseudonym", "K-201"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 250; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));

    auto cut = aoi->sync();
    if (when == KillingTransport::When::after_answer) REQUIRE(*answered);  // the push was taken, its answer lost
    REQUIRE_FALSE(cut.is_ok());
    CHECK(cut.status().code() == ErrorCode::unavailable);
    CHECK(aoi->status()->pending == 251 - 100);  // two batches answered before the cut

    org.server.start({}, org.server.port());
    const auto resumed = synced(*aoi);
    CHECK(resumed.pushed == 151);
    CHECK(aoi->status()->pending == 0);
    CHECK(ids_of(*aoi, "home_visit") == visits);

    auto sato = org.device("sato");
    synced(*sato);
    CHECK(ids_of(*sato, "home_visit") == visits);
    CHECK(ids_of(*sato, "client").size() == 1);
    CHECK(sato->conflicts()->empty());
    ApiClient supervisor(org.server.url());
    REQUIRE(supervisor.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    CHECK(supervisor.get("/v1/conflicts").body["conflicts"].empty());
}

TEST_CASE("a server killed with SIGKILL while several devices push at once loses and duplicates nothing") {
    FieldOrganisation org;
    org.add("chie", "home_visitor");
    org.add("dai", "peer_supporter");
    const std::vector<std::string> workers{"aoi", "ben", "chie", "dai"};
    std::vector<std::unique_ptr<client::Device>> phones;
    std::vector<std::string> clients;
    for (const auto& name : workers) {
        phones.push_back(org.device(name));
        clients.push_back(created(*phones.back(), "client", {{"pseudonym", "K-" + name}, {"area", "kita"}}));
    }

    // Each phone records visits and syncs, over and over; the server is killed while at least two
    // of them are inside a sync (a push or a pull on the wire, or its commit under way).
    std::vector<std::set<std::string>> made(workers.size());
    std::atomic<int> syncing{0}, failed_creates{0}, cut_syncs{0};
    std::atomic<bool> stop{false}, killed{false};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < workers.size(); ++i) {
        threads.emplace_back([&, i] {
            client::Device& phone = *phones[i];
            for (int day = 0; !stop; ++day) {
                for (int k = 0; k < 10; ++k) {
                    auto id = phone.create("home_visit", visit(clients[i], day));
                    if (!id) {
                        ++failed_creates;
                        return;
                    }
                    made[i].insert(*id);
                }
                ++syncing;
                const bool before_kill = !killed;
                if (!phone.sync().is_ok() && before_kill) ++cut_syncs;  // one the kill cut short
                --syncing;
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (syncing < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // not a core spun
    }
    const int in_sync_at_kill = syncing;
    org.server.stop(SIGKILL);
    killed = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    org.server.start({}, org.server.port());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
    for (auto& t : threads) t.join();
    REQUIRE(failed_creates == 0);
    INFO("phones inside a sync at the kill: " << in_sync_at_kill << "; syncs cut: " << cut_syncs);
    CHECK(in_sync_at_kill >= 2);
    CHECK(cut_syncs >= 1);  // a sync the kill cut short (one inside its last local step may finish)

    // Once every phone has synced again, the supervisor holds every visit once, each with the one
    // change that made it (a push applied twice would show two), and no conflict.
    for (auto& phone : phones) {
        synced(*phone);
        CHECK(phone->status()->pending == 0);
    }
    auto sato = org.device("sato");
    synced(*sato);
    std::set<std::string> all;
    for (std::size_t i = 0; i < workers.size(); ++i) {
        CHECK(ids_of(*phones[i], "home_visit") == made[i]);
        all.insert(made[i].begin(), made[i].end());
    }
    CHECK(ids_of(*sato, "home_visit") == all);
    CHECK(sato->conflicts()->empty());
    ApiClient supervisor(org.server.url());
    REQUIRE(supervisor.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    std::size_t made_twice = 0;
    for (const auto& id : all) {
        Reply read = supervisor.get("/v1/records/" + id);
        REQUIRE(read.status == 200);
        if (read.body["history"].size() != 1) ++made_twice;
    }
    CHECK(made_twice == 0);
}

TEST_CASE("a server killed in the middle of a pull loses and duplicates nothing once restarted") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-202"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 400; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    synced(*aoi);

    const auto when = GENERATE(KillingTransport::When::before_request, KillingTransport::When::after_answer);
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto options = killing(org, "/v1/sync/pull", 3, when, answered);
    options.pull_page = 100;
    auto sato = org.device("sato", options);
    auto cut = sato->sync();
    if (when == KillingTransport::When::after_answer) REQUIRE(*answered);  // the page was served, then lost
    REQUIRE_FALSE(cut.is_ok());
    CHECK(cut.status().code() == ErrorCode::unavailable);
    const auto partial = ids_of(*sato, "home_visit").size();
    CHECK(partial > 0);
    CHECK(partial < 400);

    org.server.start({}, org.server.port());
    const auto resumed = synced(*sato);
    CHECK(resumed.pulled + partial + 1 >= 401);
    CHECK(ids_of(*sato, "home_visit") == visits);
    CHECK(ids_of(*sato, "client").size() == 1);
    CHECK(synced(*sato).pulled == 0);
}

// Forwards to the real transport, and cuts the body of the n-th pull answer in half (a proxy or
// a network that damaged it): the answer is still HTTP 200.
class DamagingTransport final : public client::HttpTransport {
public:
    DamagingTransport(const std::string& url, int n) : inner_(client::make_http_transport(url)), n_(n) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        auto answer = inner_->send(method, path, body, headers);
        if (answer && path == "/v1/sync/pull" && ++count_ == n_) answer->body.resize(answer->body.size() / 2);
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    int n_;
    std::atomic<int> count_{0};
};

TEST_CASE("a damaged pull answer is reported as malformed, applies nothing, and the next sync completes") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-202"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 250; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    synced(*aoi);

    auto options = test_options();
    options.pull_page = 100;
    options.transport = [](const std::string& url) { return std::make_unique<DamagingTransport>(url, 2); };
    auto sato = org.device("sato", options);
    auto damaged = sato->sync();
    REQUIRE_FALSE(damaged.is_ok());
    CHECK(damaged.status().code() == ErrorCode::unavailable);
    CHECK_THAT(damaged.status().message(), Catch::Contains("malformed"));
    const auto first_page = ids_of(*sato, "home_visit").size() + ids_of(*sato, "client").size();
    CHECK(first_page == 100);  // the first page only: the damaged second one applied nothing

    const auto resumed = synced(*sato);  // the transport damages only the second pull
    CHECK(resumed.pulled == 151);
    CHECK(ids_of(*sato, "home_visit") == visits);
}

namespace {

// Forwards to the real transport, and cuts every pull answer just after the first occurrence of
// `marker` (a proxy that dropped the connection there): the answer is still HTTP 200.
class CuttingTransport final : public client::HttpTransport {
public:
    CuttingTransport(const std::string& url, std::string marker)
        : inner_(client::make_http_transport(url)), marker_(std::move(marker)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        auto answer = inner_->send(method, path, body, headers);
        if (!answer || path != "/v1/sync/pull") return answer;
        if (const auto at = answer->body.find(marker_); at != std::string::npos) {
            answer->body.resize(at + marker_.size());
        }
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::string marker_;
};

}  // namespace

TEST_CASE("a pull answer cut inside a record's fields is refused without quoting the record") {
    FieldOrganisation org;
    const std::string note = "worried about the rent, slept badly";
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-205"}, {"area", "kita"}});
    auto with_note = visit(client);
    with_note["observations"] = note;
    created(*aoi, "home_visit", with_note);
    synced(*aoi);

    auto options = test_options();
    options.transport = [](const std::string& url) { return std::make_unique<CuttingTransport>(url, "worried about"); };
    auto sato = org.device("sato", options);
    auto cut = sato->sync();
    REQUIRE_FALSE(cut.is_ok());
    const std::string& message = cut.status().message();
    INFO(message);
    CHECK_THAT(message, Catch::Contains("malformed") && Catch::Contains("at byte") &&
                            Catch::Contains("member \"fields\""));
    CHECK_THAT(message, !Catch::Contains("worried") && !Catch::Contains("rent") && !Catch::Contains("slept") &&
                            !Catch::Contains("last read"));
}

TEST_CASE("a sync rides out a server restart by retrying with backoff") {
    FieldOrganisation org;
    auto options = test_options();
    std::vector<std::chrono::milliseconds> waits;
    options.retry.max_attempts = 6;
    options.retry.sleep = [&](std::chrono::milliseconds d) {
        waits.push_back(d);
        if (waits.size() == 2) org.server.start({}, org.server.port());
    };
    auto aoi = org.device("aoi", options);
    const auto client = created(*aoi, "client", {{"pseudonym", "K-203"}, {"area", "kita"}});
    org.server.stop(SIGKILL);
    const auto report = synced(*aoi);
    CHECK(report.retries == 2);
    CHECK(report.pushed == 1);
    CHECK(waits.size() == 2);
    CHECK(holds(*aoi, client));
}

TEST_CASE("retries back off exponentially with jitter and give up after the policy's attempts") {
    FieldOrganisation org;
    auto options = test_options();
    std::vector<std::int64_t> waits;
    double next_random = 0.0;
    options.retry.max_attempts = 5;
    options.retry.initial_delay = std::chrono::milliseconds(100);
    options.retry.max_delay = std::chrono::milliseconds(300);
    options.retry.random = [&] { return next_random; };
    options.retry.sleep = [&](std::chrono::milliseconds d) {
        waits.push_back(d.count());
        next_random = 1.0;
    };
    auto aoi = org.device("aoi", options);
    created(*aoi, "client", {{"pseudonym", "K-204"}, {"area", "kita"}});
    org.server.stop(SIGKILL);
    auto failed = aoi->sync();
    REQUIRE_FALSE(failed.is_ok());
    CHECK(failed.status().code() == ErrorCode::unavailable);
    CHECK(failed.status().message().find("sync again") != std::string::npos);
    // First wait with jitter 0 (half of 100 ms), then 200 and 300 (capped) with jitter 1.
    CHECK(waits == std::vector<std::int64_t>{50, 200, 300, 300});
    CHECK(aoi->status()->pending == 1);
}

namespace {

// Answers the first requests to `path` itself, each with 503 and the Retry-After header it is
// given (a proxy in front of a server at capacity), then forwards to the real transport.
class BusyTransport final : public client::HttpTransport {
public:
    BusyTransport(const std::string& url, std::string path, std::vector<std::string> retry_after)
        : inner_(client::make_http_transport(url)), path_(std::move(path)), retry_after_(std::move(retry_after)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        {
            std::lock_guard lock(mutex_);
            if (path.starts_with(path_) && answered_ < retry_after_.size()) {
                client::HttpAnswer busy;
                busy.status = 503;
                busy.body = R"({"error":"busy","message":"the server is at capacity; retry after a short wait"})";
                busy.headers["retry-after"] = retry_after_[answered_++];
                return busy;
            }
        }
        return inner_->send(method, path, body, headers);
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::string path_;
    std::vector<std::string> retry_after_;
    std::mutex mutex_;
    std::size_t answered_ = 0;
};

}  // namespace

namespace {

// Forwards to the real transport, and loses the answer to the first request to `path`: the server
// did the work, the device heard nothing (a connection cut on the way back).
class LosingTransport final : public client::HttpTransport {
public:
    LosingTransport(const std::string& url, std::string path)
        : inner_(client::make_http_transport(url)), path_(std::move(path)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        auto answer = inner_->send(method, path, body, headers);
        if (path == path_ && !lost_.exchange(true)) return Status(ErrorCode::unavailable, "connection reset");
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::string path_;
    std::atomic<bool> lost_{false};
};

}  // namespace

TEST_CASE("a password change whose answer was lost is not reported as a wrong password with nothing changed") {
    FieldOrganisation org;
    auto options = test_options();
    options.retry.sleep = [](std::chrono::milliseconds) {};
    options.transport = [](const std::string& url) { return std::make_unique<LosingTransport>(url, "/v1/me/password"); };
    auto aoi = org.device("aoi", options);
    Status changed = aoi->change_password(FieldOrganisation::password_of("aoi"), "aoi-chosen-password-2");
    REQUIRE_FALSE(changed.is_ok());
    INFO(changed.message());
    CHECK(changed.code() == ErrorCode::unavailable);
    CHECK_THAT(changed.message(), Catch::Contains("probably made") && !Catch::Contains("nothing was changed"));
    // It was: the new password opens the account.
    ApiClient check(org.server.url());
    CHECK(check.sign_in("aoi", "aoi-chosen-password-2").status == 200);
}

TEST_CASE("a retry waits as long as a busy server asks and no longer than the policy's longest wait") {
    FieldOrganisation org;
    auto options = test_options();
    std::vector<std::int64_t> waits;
    options.retry.max_attempts = 5;
    options.retry.initial_delay = std::chrono::milliseconds(100);
    options.retry.max_delay = std::chrono::milliseconds(8000);
    options.retry.random = [] { return 0.0; };
    options.retry.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d.count()); };
    options.transport = [&](const std::string& url) {
        return std::make_unique<BusyTransport>(url, "/v1/sync/push",
                                               std::vector<std::string>{"3", "3600", "soon", "-1"});
    };
    auto aoi = org.device("aoi", options);
    const auto client = created(*aoi, "client", {{"pseudonym", "K-205"}, {"area", "kita"}});
    const auto report = synced(*aoi);
    CHECK(report.pushed == 1);
    CHECK(holds(*aoi, client));
    // 3 s as asked; an hour capped at 8 s; a header that is no number of seconds leaves the
    // backoff's own wait (half of 400 and of 800 ms, with jitter 0).
    CHECK(waits == std::vector<std::int64_t>{3000, 8000, 200, 400});
}

namespace {

// Forwards to the real transport, and replaces the body of every 200 answer to `path` with `body`:
// a server of another version, or a proxy answering in its place.
class ReplacingTransport final : public client::HttpTransport {
public:
    ReplacingTransport(const std::string& url, std::string path, std::string body)
        : inner_(client::make_http_transport(url)), path_(std::move(path)), body_(std::move(body)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        auto answer = inner_->send(method, path, body, headers);
        if (answer && answer->status == 200 && path.starts_with(path_)) answer->body = body_;
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::string path_, body_;
};

}  // namespace

TEST_CASE("a sign-in answer with members of the wrong type is refused as malformed, never thrown") {
    // Found by the fuzz target device_server: get<std::string>() threw out of Device::sign_in.
    FieldOrganisation org;
    for (const char* answer : {R"({"token":7,"device_id":"d","user":{"id":"u"}})",
                               R"({"token":"t","device_id":[],"user":{"id":"u"}})",
                               R"({"token":"t","device_id":"d","user":"aoi"})",
                               R"({"token":"t","device_id":"d","user":{"id":5}})",
                               R"({"token":"t","device_id":"d","user":{"id":"u","role":false}})",
                               R"({"token":"","device_id":"d","user":{"id":"u"}})", "[]", "<html>portal</html>"}) {
        INFO(answer);
        auto options = test_options();
        options.transport = [answer](const std::string& url) {
            return std::make_unique<ReplacingTransport>(url, "/v1/auth/sign-in", answer);
        };
        auto opened = client::Device::open(org.dir.file(std::string("home-") + std::to_string(std::hash<std::string>{}(answer))),
                                           "aoi passphrase", options);
        REQUIRE(opened.is_ok());
        const Status signed_in = opened->sign_in(org.server.url(), "aoi", FieldOrganisation::password_of("aoi"));
        CHECK(signed_in.code() == ErrorCode::unavailable);
        CHECK_THAT(signed_in.message(), Catch::Contains("sign-in answer is malformed"));
        CHECK_FALSE(opened->status()->signed_in);
    }
}

TEST_CASE("a refused change listed with optional members of the wrong type is read without them, never thrown") {
    FieldOrganisation org;
    auto options = test_options();
    options.transport = [](const std::string& url) {
        return std::make_unique<ReplacingTransport>(
            url, "/v1/sync/refused",
            R"({"refused":[{"change_id":"c","record":"r","collection":"home_visit","device":"d","code":"forbidden",)"
            R"("status":"open","last_refused_at":1,"this_device":"yes","reason":5,"comment":[],"times":"twice"}]})");
    };
    auto aoi = org.device("aoi", options);
    auto listed = aoi->refused_on_server();
    INFO(listed.status().to_string());
    REQUIRE(listed.is_ok());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].change_id == "c");
    CHECK_FALSE((*listed)[0].this_device);
    CHECK((*listed)[0].reason.empty());
    CHECK((*listed)[0].times == 1);
}

TEST_CASE("a refusal that came in a sync whose pull was then cut is reported by the next sync that finishes") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-208"}, {"area", "kita"}});
    synced(*aoi);
    // Ben (not in this client's caseload) records a visit; the server refuses it, then goes down
    // before his sync's pull: the sync fails, and its report, refusal and all, never reaches him.
    // (A phone that has not synced yet learns the server's time first, with a pull: it is the
    // second pull that meets the server down.)
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto ben = org.device("ben", killing(org, "/v1/sync/pull", 2, KillingTransport::When::before_request, answered));
    const auto v = created(*ben, "home_visit", visit(client));
    auto cut = ben->sync();
    REQUIRE_FALSE(cut.is_ok());
    CHECK(cut.status().code() == ErrorCode::unavailable);
    CHECK(ben->status()->refused == 1);

    org.server.start({}, org.server.port());
    const auto report = synced(*ben);
    REQUIRE(report.refused.size() == 1);
    CHECK(report.refused[0].record == v);
    CHECK(report.refused[0].cause == "outside_scope");
    CHECK(synced(*ben).refused.empty());  // told once
}

TEST_CASE("a password change a busy server refused unread and then found wrong is reported as wrong, nothing changed") {
    FieldOrganisation org;
    auto options = test_options();
    options.transport = [](const std::string& url) {
        return std::make_unique<BusyTransport>(url, "/v1/me/password", std::vector<std::string>{"1"});
    };
    auto aoi = org.device("aoi", options);
    Status changed = aoi->change_password("not her password at all", "aoi-chosen-password-3");
    REQUIRE_FALSE(changed.is_ok());
    INFO(changed.message());
    CHECK(changed.code() == ErrorCode::forbidden);
    CHECK_THAT(changed.message(), Catch::Contains("nothing was changed"));
}
