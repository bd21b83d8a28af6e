// A password the device sends leaves no copy in memory it frees: the request's text is wiped,
// and no smaller buffer it outgrew is let go with the password's bytes in it.
//
// This file replaces the program's operator delete: while armed, each block freed is searched for
// the markers before it goes back to malloc.
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "fake_server.h"

namespace {

std::atomic<bool> armed{false};
std::atomic<bool> marker_freed{false};
const char* markers[2] = {nullptr, nullptr};

void look_and_free(void* block) noexcept {
    if (block != nullptr && armed.load(std::memory_order_relaxed)) {
        const std::size_t size = malloc_usable_size(block);
        for (const char* marker : markers) {
            if (marker != nullptr && ::memmem(block, size, marker, std::strlen(marker)) != nullptr) {
                marker_freed.store(true);
            }
        }
    }
    std::free(block);
}

}  // namespace

void operator delete(void* block) noexcept { look_and_free(block); }
void operator delete(void* block, std::size_t) noexcept { look_and_free(block); }

using namespace tsunagu;
using namespace tsunagu::testing;

namespace {

// Forwards to the real server, except the password change: answered here, its body read where
// it lies and never copied (a real transport's buffers are the HTTP library's, out of reach).
class AnsweringPasswordChange final : public client::HttpTransport {
public:
    explicit AnsweringPasswordChange(const std::string& url) : inner_(client::make_http_transport(url)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        if (path != "/v1/me/password") return inner_->send(method, path, body, headers);
        client::HttpAnswer answer;
        answer.status = body.find(markers[0]) != std::string::npos ? 200 : 400;
        answer.body = "{\"changed\":true}";
        return answer;
    }

private:
    std::unique_ptr<client::HttpTransport> inner_;
};

}  // namespace

TEST_CASE("a password change frees no buffer holding either password") {
    FieldOrganisation org;
    auto options = test_options();
    options.transport = [](const std::string& url) { return std::make_unique<AnsweringPasswordChange>(url); };
    auto aoi = org.device("aoi", options);
    // Long enough that the request's text, written into a string that grows, would outgrow a
    // buffer or two holding the first of them.
    const std::string current = "current-password-marker-" + std::string(40, 'c');
    const std::string replacement = "replacement-password-marker-" + std::string(40, 'r');
    markers[0] = current.c_str();
    markers[1] = replacement.c_str();
    marker_freed = false;
    armed = true;
    const Status changed = aoi->change_password(current, replacement);
    armed = false;
    markers[0] = markers[1] = nullptr;
    INFO(changed.to_string());
    REQUIRE(changed.is_ok());
    CHECK_FALSE(marker_freed.load());
}
