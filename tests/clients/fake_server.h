// Fakes for the device library's tests that need a server to say something the real one never
// does (or another server beside it): a transport that logs each request, and a fake server.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "field_org.h"

namespace tsunagu::testing {

// Every request a device made: to which server, where, and with which Authorization header.
struct RequestLog {
    struct Entry {
        std::string url, path, authorization;
    };
    std::mutex mutex;
    std::vector<Entry> entries;

    void add(const std::string& url, const std::string& path, const std::map<std::string, std::string>& headers) {
        const auto auth = headers.find("Authorization");
        std::lock_guard lock(mutex);
        entries.push_back({url, path, auth == headers.end() ? "" : auth->second});
    }
    std::vector<Entry> taken() {
        std::lock_guard lock(mutex);
        return std::exchange(entries, {});
    }
};

// Forwards to the real transport, logging each request.
class RecordingTransport final : public client::HttpTransport {
public:
    RecordingTransport(const std::string& url, std::shared_ptr<RequestLog> log)
        : url_(url), inner_(client::make_http_transport(url)), log_(std::move(log)) {}

    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        log_->add(url_, path, headers);
        return inner_->send(method, path, body, headers);
    }

private:
    std::string url_;
    std::unique_ptr<client::HttpTransport> inner_;
    std::shared_ptr<RequestLog> log_;
};

// A server of its own, with no network: answers the sign-in with `sign_in_status` and
// `sign_in_body`, and every other request with `other_status` (an error body), logging each.
class FakeServer final : public client::HttpTransport {
public:
    FakeServer(std::string url, std::shared_ptr<RequestLog> log, int sign_in_status, nlohmann::json sign_in_body,
               int other_status = 404)
        : url_(std::move(url)),
          log_(std::move(log)),
          sign_in_status_(sign_in_status),
          sign_in_body_(std::move(sign_in_body)),
          other_status_(other_status) {}

    Result<client::HttpAnswer> send(const std::string&, const std::string& path, const std::string&,
                                    const std::map<std::string, std::string>& headers) override {
        if (log_) log_->add(url_, path, headers);
        client::HttpAnswer answer;
        if (path == "/v1/auth/sign-in") {
            answer.status = sign_in_status_;
            answer.body = sign_in_body_.dump();
        } else {
            answer.status = other_status_;
            answer.body = nlohmann::json{{"error", "some_error"}, {"message", "the fake server says no"}}.dump();
        }
        return answer;
    }

private:
    std::string url_;
    std::shared_ptr<RequestLog> log_;
    int sign_in_status_;
    nlohmann::json sign_in_body_;
    int other_status_;
};

inline nlohmann::json sign_in_answer(const std::string& user_id, const std::string& device_id) {
    return {{"token", "token-of-the-other-server"},
            {"device_id", device_id},
            {"user", {{"id", user_id}, {"username", "aoi"}, {"role", "peer_supporter"}}}};
}

inline nlohmann::json error_body(const std::string& error) { return {{"error", error}, {"message", "the fake server says no"}}; }

// A replica opened in `dir` whose every server is `server`.
inline client::Device open_with(const TempDir& dir, std::function<std::unique_ptr<client::HttpTransport>()> server) {
    auto options = test_options();
    options.transport = [server](const std::string&) { return server(); };
    auto opened = client::Device::open(dir.file("home"), "aoi passphrase", options);
    INFO(opened.status().to_string());
    REQUIRE(opened.is_ok());
    return std::move(*opened);
}

}  // namespace tsunagu::testing
