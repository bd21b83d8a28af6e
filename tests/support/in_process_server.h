// The whole server in process (ServerConfig::serve_in_process), for the fuzz targets that drive it
// and for tests that must see the very request the adapter hands the handler: its data in a
// folder of the caller's, its log lines in a file there rather than in the fuzzer's or the test's
// report, the cheapest Argon2id (sign-ins are fuzzed too), no compaction runs. Requests go
// straight to the handler the listener's workers would call. Stopped when destroyed.
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "api/server.h"
#include "api/src/observability.h"
#include "support/temp_dir.h"

namespace tsunagu::testing {

// A POST of `body` as JSON from loopback, as the adapter would hand it in; with a bearer `token`.
inline api::HttpRequest post_json(const std::string& path, const nlohmann::json& body, const std::string& token = "") {
    api::HttpRequest r;
    r.method = "POST";
    r.path = path;
    r.headers["content-type"] = "application/json";
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    r.body = body.dump();
    r.remote_address = "127.0.0.1";
    r.request_id = "test";
    return r;
}

class InProcessServer {
  public:
    // `tune` may change the configuration before the server starts.
    explicit InProcessServer(const TempDir& dir, const std::function<void(api::ServerConfig&)>& tune = {}) {
        log_ = std::fopen(dir.file("server.log").c_str(), "a");
        if (log_) api::set_log_output(log_);
        api::ServerConfig config;
        config.data_dir = dir.file("data");
        config.pwhash_ops = 1;
        config.pwhash_mem = 8192;
        config.log_requests = false;
        config.compact_every_seconds = 0;
        config.serve_in_process = [this](api::HttpHandler h) { handler_ = std::move(h); };
        // The administrator's password from a file: usable at once (a one-time one must be changed
        // before anything else).
        config.admin_password_file = dir.file("admin-password");
        {
            std::FILE* f = std::fopen(config.admin_password_file.c_str(), "w");
            if (!f) throw std::runtime_error("cannot write " + config.admin_password_file);
            std::fputs(kAdminPassword, f);
            std::fclose(f);
            ::chmod(config.admin_password_file.c_str(), 0600);
        }
        if (tune) tune(config);
        auto started = api::start_server(config);
        if (!started) throw std::runtime_error("the server did not start: " + started.status().message());
        server_ = std::move(started->server);
        first_admin_password_ = started->first_admin_password.value_or(kAdminPassword);
    }
    ~InProcessServer() {
        if (server_) server_->stop();
        api::set_log_output(nullptr);
        if (log_) std::fclose(log_);
    }
    InProcessServer(const InProcessServer&) = delete;
    InProcessServer& operator=(const InProcessServer&) = delete;

    // Handles `request`, from any thread, and leaves it as the handler left it.
    api::HttpResponse handle(api::HttpRequest& request) const { return handler_(request); }
    // The first administrator's password: the file's, or a one-time one when `tune` cleared
    // admin_password_file.
    const std::string& first_admin_password() const { return first_admin_password_; }

  private:
    static constexpr const char* kAdminPassword = "admin-password-of-the-tests";
    std::FILE* log_ = nullptr;
    std::unique_ptr<api::Server> server_;
    api::HttpHandler handler_;
    std::string first_admin_password_;
};

}  // namespace tsunagu::testing
