// A device replica (the sync engine's Device over a real encrypted store) that syncs with the
// real server over HTTP, as the device library does: for the server's integration tests.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "api_client.h"
#include "crypto/store.h"
#include "domain/care_schema.h"
#include "sync/engine.h"
#include "sync/protocol.h"

namespace tsunagu::testing {

class SyncedDevice {
public:
    // Signs `user` in from a new replica stored at `path`.
    SyncedDevice(const std::string& url, const std::string& path, const std::string& user,
                 const std::string& password)
        : client(url) {
        auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x42));
        auto opened = Store::open(path, *key);
        REQUIRE(opened.is_ok());
        store = std::make_unique<Store>(std::move(*opened));
        // The server registers the device; the new replica takes the id it was registered under.
        Reply r = client.post("/v1/auth/sign-in", {{"username", user}, {"password", password},
                                                   {"device_name", "phone"}});
        REQUIRE(r.status == 200);
        client.token = r.body["token"];
        client.device_id = r.body["device_id"];
        user_id = r.body["user"]["id"];
        sync::DeviceOptions options;
        options.user = user_id;
        options.replica_id = client.device_id;
        auto device_or = sync::Device::open(*store, domain::care_schema(), options);
        INFO(device_or.status().to_string());
        REQUIRE(device_or.is_ok());
        device = std::make_unique<sync::Device>(std::move(*device_or));
        REQUIRE(device->replica_id() == client.device_id);
    }

    // Pushes the whole outbox, then pulls until up to date. Returns the last pull page's JSON.
    nlohmann::json sync() {
        while (true) {
            auto batch = device->prepare_push(200);
            REQUIRE(batch.is_ok());
            if (batch->changes.empty()) break;
            nlohmann::json wire = *batch;
            Reply r = client.post("/v1/sync/push", {{"changes", wire["changes"]}});
            REQUIRE(r.status == 200);
            auto result = sync::parse_push_result(r.body);
            REQUIRE(result.is_ok());
            REQUIRE(device->apply_push_result(*result).is_ok());
            last_push = r.body;
        }
        nlohmann::json page_json;
        while (true) {
            auto request = device->prepare_pull(500);
            REQUIRE(request.is_ok());
            nlohmann::json wire = *request;
            wire.erase("replica");
            wire.erase("user");
            Reply r = client.post("/v1/sync/pull", wire);
            REQUIRE(r.status == 200);
            auto page = sync::parse_pull_page(r.body);
            REQUIRE(page.is_ok());
            REQUIRE(device->apply_pull(*page).is_ok());
            page_json = r.body;
            if (!page->more) break;
        }
        return page_json;
    }

    // One sync, asserting nothing (for threads: Catch2's assertions are not thread-safe): false
    // when a step failed or a request got no 200 (the server was down or went down), leaving the
    // outbox and cursor for the next try, as the device library does.
    bool try_sync() {
        while (true) {
            auto batch = device->prepare_push(50);
            if (!batch) return false;
            if (batch->changes.empty()) break;
            nlohmann::json wire = *batch;
            Reply r = client.post("/v1/sync/push", {{"changes", wire["changes"]}});
            if (r.status != 200) return false;
            auto result = sync::parse_push_result(r.body);
            if (!result || !device->apply_push_result(*result)) return false;
        }
        while (true) {
            auto request = device->prepare_pull(200);
            if (!request) return false;
            nlohmann::json wire = *request;
            wire.erase("replica");
            wire.erase("user");
            Reply r = client.post("/v1/sync/pull", wire);
            if (r.status != 200) return false;
            auto page = sync::parse_pull_page(r.body);
            if (!page || !device->apply_pull(*page)) return false;
            if (!page->more) return true;
        }
    }

    std::string create(const std::string& collection, const nlohmann::json& fields) {
        auto id = device->create(collection, fields);
        INFO(id.status().to_string());
        REQUIRE(id.is_ok());
        return *id;
    }

    bool holds(const std::string& record) {
        auto r = device->get(record);
        REQUIRE(r.is_ok());
        return r->has_value() && !(*r)->deleted;
    }

    ApiClient client;
    std::unique_ptr<Store> store;
    std::unique_ptr<sync::Device> device;
    std::string user_id;
    nlohmann::json last_push;
};

}  // namespace tsunagu::testing
