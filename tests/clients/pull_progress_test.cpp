// A pull page that says more records follow must move the cursor on: one that does not is refused
// as malformed, instead of being asked for again forever.
#include <atomic>

#include "field_org.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// Forwards to the real transport, and makes every pull answer say that more follow from where it
// began ("next" = "after"). Gives up after `max_pulls` pulls, so that a device that keeps asking
// ends (with an error of its own) rather than hangs the test.
class StuckPagesTransport final : public client::HttpTransport {
public:
    StuckPagesTransport(const std::string& url, std::shared_ptr<std::atomic<int>> pulls)
        : inner_(client::make_http_transport(url)), pulls_(std::move(pulls)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        if (path == "/v1/sync/pull" && ++*pulls_ > kMaxPulls) {
            return Status(ErrorCode::unavailable, "the test transport stopped answering pulls");
        }
        auto answer = inner_->send(method, path, body, headers);
        if (answer && answer->status == 200 && path == "/v1/sync/pull") {
            json page = json::parse(answer->body);
            page["more"] = true;
            page["next"] = page["after"];
            answer->body = page.dump();
        }
        return answer;
    }

    static constexpr int kMaxPulls = 50;

private:
    std::unique_ptr<client::HttpTransport> inner_;
    std::shared_ptr<std::atomic<int>> pulls_;
};

}  // namespace

TEST_CASE("a pull page that says more follow without moving the cursor is refused, not asked for forever") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    created(*aoi, "client", {{"pseudonym", "K-501"}, {"area", "kita"}});
    synced(*aoi);

    auto pulls = std::make_shared<std::atomic<int>>(0);
    auto options = test_options();
    options.transport = [pulls](const std::string& url) { return std::make_unique<StuckPagesTransport>(url, pulls); };
    auto sato = org.device("sato", options);
    auto stuck = sato->sync();
    REQUIRE_FALSE(stuck.is_ok());
    CHECK(stuck.status().code() == ErrorCode::unavailable);
    CHECK_THAT(stuck.status().message(), Catch::Contains("malformed") && Catch::Contains("does not move past"));
    CHECK(*pulls == 1);
    CHECK(sato->status()->cursor == 0);
    CHECK(sato->list("client")->empty());  // nothing of the page was applied
}
