// A push batch larger than the server takes (413: over its body limit, or too many changes) is
// sent again in halves, down to one change; a change too large alone is kept as refused and holds
// back nothing else. No change is lost or applied twice.
#include <atomic>
#include <set>

#include "field_org.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// Forwards to the real transport, except that a push body over `limit` bytes is answered 413 as
// the server (or nginx in front of it) does, unread. Counts the pushes it refused.
class LimitingTransport final : public client::HttpTransport {
public:
    LimitingTransport(const std::string& url, std::shared_ptr<std::atomic<std::size_t>> limit,
                      std::shared_ptr<std::atomic<int>> refused)
        : inner_(client::make_http_transport(url)), limit_(std::move(limit)), refused_(std::move(refused)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        if (path == "/v1/sync/push" && body.size() > limit_->load()) {
            ++*refused_;
            client::HttpAnswer answer;
            answer.status = 413;
            answer.body = json{{"error", "body_too_large"}, {"message", "the request body is too large"}}.dump();
            return answer;
        }
        return inner_->send(method, path, body, headers);
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::shared_ptr<std::atomic<std::size_t>> limit_;
    std::shared_ptr<std::atomic<int>> refused_;
};

struct Limited {
    std::shared_ptr<std::atomic<std::size_t>> limit = std::make_shared<std::atomic<std::size_t>>(0);
    std::shared_ptr<std::atomic<int>> refused = std::make_shared<std::atomic<int>>(0);

    explicit Limited(std::size_t bytes) { *limit = bytes; }
    client::DeviceOptions options() const {
        auto o = test_options();
        o.transport = [limit = limit, refused = refused](const std::string& url) {
            return std::make_unique<LimitingTransport>(url, limit, refused);
        };
        return o;
    }
};

std::set<std::string> ids_of(client::Device& device, const std::string& collection) {
    auto records = device.list(collection);
    REQUIRE(records.is_ok());
    std::set<std::string> ids;
    for (const auto& r : *records) ids.insert(r.id);
    return ids;
}

// Every visit reached the supervisor's device, and the worker's has nothing left over to send.
void check_all_reached_supervisor(FieldOrganisation& org, client::Device& worker, const std::set<std::string>& visits) {
    auto sato = org.device("sato");
    synced(*sato);
    CHECK(ids_of(*sato, "home_visit") == visits);
    CHECK(synced(worker).pushed == 0);  // nothing left over, nothing sent twice
}

}  // namespace

TEST_CASE("a push batch over the server's body limit is sent again in halves until the outbox drains") {
    FieldOrganisation org;
    Limited limited(24 * 1024);
    auto aoi = org.device("aoi", limited.options());
    const auto client = created(*aoi, "client", {{"pseudonym", "K-401"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 300; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));

    const auto report = synced(*aoi);
    CHECK(*limited.refused > 0);
    CHECK(report.pushed == 301);
    CHECK(report.refused.empty());
    CHECK(aoi->status()->pending == 0);
    CHECK(aoi->status()->refused == 0);

    check_all_reached_supervisor(org, *aoi, visits);
}

TEST_CASE("the real server's body limit halves a push batch until the outbox drains and keeps a change too large alone") {
    FieldOrganisation org({"--max-body", "8000"});
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-403"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 100; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    auto long_visit = visit(client);
    std::string notes;
    for (int i = 0; i < 4000; ++i) notes += "観";  // 12,000 bytes: alone over the limit
    long_visit["observations"] = notes;
    const auto large = created(*aoi, "home_visit", long_visit);

    // The server answers 413 from the Content-Length, before reading the body: the device must
    // hear that, not a connection reset, to halve the batch.
    const auto report = synced(*aoi);
    CHECK(report.pushed == 101);
    REQUIRE(report.refused.size() == 1);
    CHECK(report.refused[0].record == large);
    CHECK(report.refused[0].cause == "too_large");
    CHECK(aoi->status()->pending == 0);
    CHECK(aoi->status()->refused == 1);
    CHECK(holds(*aoi, large));

    check_all_reached_supervisor(org, *aoi, visits);
}

TEST_CASE("a pull over the server's body limit is asked again for smaller pages") {
    FieldOrganisation org({"--max-body", "3000"});
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-404"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 100; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    // Its pull names the 101 records it just pushed and holds (about 3,700 bytes): over the limit.
    const auto report = synced(*aoi);
    CHECK(report.pushed == 101);
    CHECK(aoi->status()->pending == 0);
    CHECK(ids_of(*aoi, "home_visit") == visits);
    check_all_reached_supervisor(org, *aoi, visits);
}

TEST_CASE("a change too large for the server alone is kept as refused, and the others go through") {
    FieldOrganisation org;
    Limited limited(3000);
    auto aoi = org.device("aoi", limited.options());
    const auto client = created(*aoi, "client", {{"pseudonym", "K-402"}, {"area", "kita"}});
    auto long_visit = visit(client);
    long_visit["observations"] = std::string(4000, 'o');
    const auto large = created(*aoi, "home_visit", long_visit);
    std::set<std::string> small;
    for (int i = 0; i < 20; ++i) small.insert(created(*aoi, "home_visit", visit(client, i)));

    const auto report = synced(*aoi);
    CHECK(report.pushed == 21);
    REQUIRE(report.refused.size() == 1);
    const auto& refused = report.refused[0];
    CHECK(refused.record == large);
    CHECK(refused.cause == "too_large");
    CHECK(refused.code == ErrorCode::invalid_argument);
    CHECK_THAT(refused.reason, Catch::Contains("larger than the server accepts") &&
                                   Catch::Contains("tsunagu retry") && Catch::Contains(large));
    CHECK(aoi->status()->pending == 0);
    CHECK(aoi->status()->refused == 1);
    CHECK(holds(*aoi, large));  // kept on this device

    // Once the server takes larger requests, the change goes as any refused one sent again.
    *limited.limit = 4 << 20;
    CHECK(*aoi->retry_refused() == 1);
    CHECK(synced(*aoi).pushed == 1);
    auto sato = org.device("sato");
    synced(*sato);
    small.insert(large);
    CHECK(ids_of(*sato, "home_visit") == small);
}
