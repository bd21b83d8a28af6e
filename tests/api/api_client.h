// A small JSON client over the device library's transport, for the server's integration tests.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "clients/src/http_transport.h"

namespace tsunagu::testing {

struct Reply {
    int status = 0;
    nlohmann::json body;
    std::string raw;
    std::map<std::string, std::string> headers;
};

class ApiClient {
public:
    explicit ApiClient(const std::string& url, bool verify_tls = true)
        : transport_(client::make_http_transport(url, client::TransportOptions{std::chrono::seconds(30), verify_tls})) {}

    Reply raw(const std::string& method, const std::string& path, const std::string& body = "",
              std::map<std::string, std::string> headers = {}) {
        if (!token.empty()) headers["Authorization"] = "Bearer " + token;
        auto answer = transport_->send(method, path, body, headers);
        Reply r;
        if (!answer.is_ok()) {
            r.status = -1;
            r.raw = answer.status().message();
            return r;
        }
        r.status = answer->status;
        r.raw = answer->body;
        r.headers = answer->headers;
        r.body = nlohmann::json::parse(r.raw, nullptr, false);
        return r;
    }
    Reply get(const std::string& path) { return raw("GET", path); }
    Reply post(const std::string& path, const nlohmann::json& body) { return raw("POST", path, body.dump()); }
    Reply patch(const std::string& path, const nlohmann::json& body) { return raw("PATCH", path, body.dump()); }

    // Signs in and keeps the token; returns the reply.
    // Signs in as a device named `device`; with `again_as` (a device id), as that device again (a phone whose
    // session ended), which the server takes while the device is the user's and not revoked.
    Reply sign_in(const std::string& user, const std::string& password, const std::string& device = "test",
                  const std::string& again_as = "") {
        token.clear();
        nlohmann::json body = {{"username", user}, {"password", password}, {"device_name", device}};
        if (!again_as.empty()) body["device_id"] = again_as;
        Reply r = post("/v1/auth/sign-in", body);
        if (r.status == 200) {
            token = r.body["token"];
            device_id = r.body["device_id"];
        }
        return r;
    }

    // A sample's value in the server's /metrics text, `name` with its labels as written there
    // (tsunagu_backups_total{result="taken"}); -1 when absent.
    double metric(const std::string& name) {
        const std::string text = get("/metrics").raw;
        const auto at = text.find("\n" + name + " ");
        return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
    }

    std::string token;
    std::string device_id;

private:
    std::unique_ptr<client::HttpTransport> transport_;
};

}  // namespace tsunagu::testing
