// The cpprestsdk transport against a real listener on loopback: it never follows a redirect (the
// session token goes to the configured server only), it refuses an answer larger than it reads
// without holding it, a URL the library refuses is an answer, never an exception, and it notes when
// an answer's headers arrived (the age of the server's clock reading).
// (The one test file that includes cpprestsdk: its listener plays the server.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cpprest/http_listener.h>
#include <cpprest/producerconsumerstream.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "clients/device.h"
#include "clients/src/http_transport.h"
#include "crypto/unique_fd.h"
#include "support/run_program.h"
#include "support/temp_dir.h"
#include "sync/hlc.h"

using namespace tsunagu;
using namespace tsunagu::testing;
namespace http = web::http;

namespace {

// A loopback port nothing listens on now.
int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(s);
    return ntohs(address.sin_port);
}

// A listener on loopback that answers each path as told, and remembers the paths asked for.
class Listener {
public:
    using Answer = std::function<void(http::http_request)>;

    Listener() : url_("http://127.0.0.1:" + std::to_string(free_port())), listener_(url_) {
        listener_.support([this](http::http_request request) {
            const std::string path = request.relative_uri().path();
            Answer answer;
            {
                std::lock_guard lock(mutex_);
                asked_.push_back(path);
                auto it = answers_.find(path);
                if (it != answers_.end()) answer = it->second;
            }
            if (answer) {
                answer(request);
            } else {
                request.reply(http::status_codes::NotFound);
            }
        });
        listener_.open().wait();
    }
    ~Listener() { listener_.close().wait(); }

    void on(const std::string& path, Answer answer) {
        std::lock_guard lock(mutex_);
        answers_[path] = std::move(answer);
    }
    std::vector<std::string> asked() {
        std::lock_guard lock(mutex_);
        return asked_;
    }
    const std::string& url() const { return url_; }

private:
    std::string url_;
    http::experimental::listener::http_listener listener_;
    std::mutex mutex_;
    std::map<std::string, Answer> answers_;
    std::vector<std::string> asked_;
};

const std::map<std::string, std::string> kToken = {{"Authorization", "Bearer session-token"}};

// Replicas for these tests: the cheapest Argon2id, retries that do not wait.
client::DeviceOptions test_options() {
    client::DeviceOptions o;
    o.kdf = KdfParams::fast_for_tests();
    o.retry.sleep = [](std::chrono::milliseconds) {};
    return o;
}

}  // namespace

TEST_CASE("a redirect is refused, never followed, so the session token goes nowhere else") {
    Listener server;
    for (int status : {301, 302, 307, 308}) {
        INFO("HTTP " << status);
        server.on("/v1/sync/pull", [&](http::http_request request) {
            http::http_response response(static_cast<http::status_code>(status));
            response.headers().add("Location", server.url() + "/elsewhere");
            request.reply(response);
        });
        auto transport = client::make_http_transport(server.url());
        auto answer = transport->send("POST", "/v1/sync/pull", "{}", kToken);
        REQUIRE_FALSE(answer.is_ok());
        CHECK(answer.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(answer.status().message(), Catch::Contains("redirect") && Catch::Contains("/elsewhere") &&
                                                  Catch::Contains("does not follow"));
    }
    for (const auto& path : server.asked()) CHECK(path == "/v1/sync/pull");
}

TEST_CASE("a sign-in redirected elsewhere is refused at once, not retried as a network failure") {
    Listener server;
    server.on("/v1/auth/sign-in", [&](http::http_request request) {
        http::http_response response(http::status_codes::MovedPermanently);
        response.headers().add("Location", "https://elsewhere.example.org/v1/auth/sign-in");
        request.reply(response);
    });
    TempDir dir("tsunagu-transport");
    auto device = client::Device::open(dir.file("home"), "aoi passphrase", test_options());
    REQUIRE(device.is_ok());
    const Status signed_in = device->sign_in(server.url(), "aoi", "aoi-password-1");
    CHECK(signed_in.code() == ErrorCode::invalid_argument);
    CHECK_THAT(signed_in.message(), Catch::Contains("redirect"));
    CHECK(server.asked().size() == 1);
    CHECK_FALSE(device->status()->signed_in);
}

TEST_CASE("an answer larger than the transport reads is refused, with or without its length said first") {
    Listener server;
    const std::size_t limit = 1 << 20;
    const std::string small(limit / 2, 's'), large(limit + 1, 'l');
    server.on("/small", [&](http::http_request request) { request.reply(http::status_codes::OK, small); });
    server.on("/large", [&](http::http_request request) { request.reply(http::status_codes::OK, large); });
    server.on("/large-chunked", [&](http::http_request request) {
        // No Content-Length: the body is sent in chunks, and only counting tells its size.
        concurrency::streams::producer_consumer_buffer<std::uint8_t> body;
        http::http_response response(http::status_codes::OK);
        response.set_body(concurrency::streams::istream(body), "application/json");
        request.reply(response);
        const std::string part(64 * 1024, 'c');
        for (std::size_t sent = 0; sent <= 4 * limit; sent += part.size()) {
            if (body.putn_nocopy(reinterpret_cast<const std::uint8_t*>(part.data()), part.size()).get() == 0) break;
        }
        body.close(std::ios_base::out).wait();
    });
    client::TransportOptions options;
    options.max_answer_bytes = limit;
    auto transport = client::make_http_transport(server.url(), options);

    auto read = transport->send("GET", "/small", "", {});
    REQUIRE(read.is_ok());
    CHECK(read->status == 200);
    CHECK(read->body == small);
    for (const char* path : {"/large", "/large-chunked"}) {
        INFO(path);
        auto refused = transport->send("GET", path, "", {});
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(refused.status().message(), Catch::Contains("larger than this device reads"));
    }
}

TEST_CASE("an answer too large is refused without a second pool thread and leaves nothing running at exit") {
    // cpprestsdk closes a stream buffer whose write failed by waiting, on its pool thread, for work
    // it schedules on the pool: with every other pool thread busy (or gone at exit) it would wait
    // for ever. A device given one pool thread shows it; so would the command line at its exit.
    for (const char* how : {"chunked", "length"}) {
        INFO(how);
        const ProgramRun run =
            run_program(TSUNAGU_TRANSPORT_ONE_THREAD_PATH, {how}, {}, std::chrono::seconds(20));
        INFO(run.err);
        CHECK(run.exit_code == 0);
    }
}

TEST_CASE("a server URL the HTTP library refuses is an invalid argument, never an exception") {
    TempDir dir("tsunagu-sign-in");
    auto opened = client::Device::open(dir.file("home"), "aoi passphrase", test_options());
    REQUIRE(opened.is_ok());
    Status signed_in;
    REQUIRE_NOTHROW(signed_in = opened->sign_in("https://bad host", "aoi", "aoi-password-1"));
    CHECK(signed_in.code() == ErrorCode::invalid_argument);
    CHECK_THAT(signed_in.message(), Catch::Contains("not a valid URL"));
    CHECK(opened->status()->server_url.empty());
    CHECK_FALSE(opened->status()->signed_in);
}

namespace {

// A server that takes one connection on loopback, reads the request's head, sends `answer` (the
// bytes of an answer, cut where the network cut it) and closes the connection.
class CuttingServer {
public:
    explicit CuttingServer(std::string answer) : answer_(std::move(answer)) {
        listener_.reset(::socket(AF_INET, SOCK_STREAM, 0));
        REQUIRE(listener_);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
        REQUIRE(::listen(listener_.get(), 1) == 0);
        url_ = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
        thread_ = std::thread([this] {
            UniqueFd connection(::accept(listener_.get(), nullptr, nullptr));
            if (!connection) return;
            std::string head;
            char c;
            while (head.find("\r\n\r\n") == std::string::npos && ::recv(connection.get(), &c, 1, 0) == 1) head += c;
            for (std::size_t sent = 0; sent < answer_.size();) {
                const ssize_t n = ::send(connection.get(), answer_.data() + sent, answer_.size() - sent, MSG_NOSIGNAL);
                if (n <= 0) break;
                sent += static_cast<std::size_t>(n);
            }
        });
    }
    ~CuttingServer() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        if (thread_.joinable()) thread_.join();
    }
    const std::string& url() const { return url_; }

private:
    std::string answer_;
    UniqueFd listener_;
    std::string url_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("an answer the network cut short is a network failure and never a short success") {
    const std::string body(1000, 'x');
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    for (const std::string& answer : {std::string(), head.substr(0, 20), head, head + body.substr(0, 300)}) {
        INFO("the connection closed after " << answer.size() << " bytes of the answer");
        CuttingServer server(answer);
        auto transport = client::make_http_transport(server.url());
        auto got = transport->send("POST", "/v1/sync/pull", "{}", kToken);
        REQUIRE_FALSE(got.is_ok());
        CHECK(got.status().code() == ErrorCode::unavailable);
    }
}

TEST_CASE("a pull answer whose body comes seconds after its headers does not set a right clock back") {
    // The server reads its clock, sends the answer's headers, and the page follows 2 s later (a
    // poor line). The device counts the reading's age from the headers (HttpAnswer::headers_at,
    // through the sync loop to learn_time): its right clock stays right. Taken as the time the
    // page was applied, the reading would set it 2 s back, past the engine's 1 s of slack.
    using namespace std::chrono;
    constexpr auto kBodyLate = milliseconds(2000);
    Listener server;
    server.on("/v1/auth/sign-in", [](http::http_request request) {
        const nlohmann::json answer = {{"token", "tsu_session.secret"},
                                       {"device_id", "0123456789abcdef0123456789abcdef"},
                                       {"user", {{"id", "u-aoi"}, {"username", "aoi"}, {"role", "peer_supporter"}}}};
        request.reply(http::status_codes::OK, answer.dump(), "application/json");
    });
    std::atomic<int> pulls{0};
    server.on("/v1/sync/pull", [&](http::http_request request) {
        ++pulls;
        const auto read_at = system_clock::now();
        concurrency::streams::producer_consumer_buffer<std::uint8_t> body;
        http::http_response response(http::status_codes::OK);
        response.set_body(concurrency::streams::istream(body), "application/json");
        request.reply(response);
        std::this_thread::sleep_for(kBodyLate);
        const sync::Hlc upstream{duration_cast<milliseconds>(read_at.time_since_epoch()).count(), 0};
        const std::string page = nlohmann::json{{"after", 0}, {"next", 0}, {"more", false},
                                                {"upstream_time", upstream.to_string()},
                                                {"records", nlohmann::json::array()}}
                                     .dump();
        body.putn_nocopy(reinterpret_cast<const std::uint8_t*>(page.data()), page.size()).wait();
        body.close(std::ios_base::out).wait();
    });
    TempDir dir("tsunagu-late-body");
    auto device = client::Device::open(dir.file("home"), "aoi passphrase", test_options());
    REQUIRE(device.is_ok());
    REQUIRE(device->sign_in(server.url(), "aoi", "aoi-password-1").is_ok());

    auto synced = device->sync();
    REQUIRE(synced.is_ok());
    CHECK(pulls.load() >= 1);
    auto status = device->status();
    REQUIRE(status.is_ok());
    REQUIRE(status->clock_offset_ms.has_value());
    INFO("the clock offset the device learnt: " << *status->clock_offset_ms << " ms");
    CHECK(std::llabs(*status->clock_offset_ms) < 1000);
}
