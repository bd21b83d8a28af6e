// The server's request handling in plain C++: routing, authentication, role checks, JSON errors,
// metrics and logs. The HTTP adapter hands requests in on worker threads; each worker borrows one
// Store connection from the pool for the request.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"
#include "api/src/accounts.h"
#include "api/src/json_input.h"
#include "api/src/observability.h"
#include "crypto/store.h"

namespace tsunagu::api {

class ServerCore;

// Everything a route handler needs for one request.
struct RequestContext {
    HttpRequest& request;
    Store& store;                       // this worker's connection, for this request only
    Accounts& accounts;
    std::optional<Principal> principal;  // set for routes that require sign-in
    std::map<std::string, std::string> params;  // path parameters, e.g. {"id": "..."}
    std::int64_t now = 0;               // unix seconds
    ServerCore& core;

    const Principal& who() const { return *principal; }
};

enum class Access {
    anyone,      // no token needed
    signed_in,   // any valid session
    supervisor,  // supervisors (and admins who read no care records unless also supervisors)
    admin,       // administrators
};

using RouteHandler = std::function<HttpResponse(RequestContext&)>;

struct Route {
    std::string method;
    std::string pattern;  // "/v1/admin/devices/{id}/revoke"
    Access access;
    RouteHandler handler;
};

// A pool of open Store connections to the server's database, one borrowed per request.
class StorePool {
public:
    StorePool(std::string path, std::function<Result<KeySource>()> key, StoreOptions options);
    class Lease {
    public:
        Lease(StorePool& pool, std::unique_ptr<Store> store) : pool_(&pool), store_(std::move(store)) {}
        Lease(Lease&&) = default;
        ~Lease() {
            if (store_) pool_->give_back(std::move(store_));
        }
        Store& operator*() { return *store_; }

    private:
        StorePool* pool_;
        std::unique_ptr<Store> store_;
    };
    Result<Lease> borrow();
    void close_all();

private:
    void give_back(std::unique_ptr<Store> store);
    std::string path_;
    std::function<Result<KeySource>()> key_;
    StoreOptions options_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Store>> idle_;
};

// Maps a Status to the HTTP answer a client can act on.
HttpResponse error_response(const Status& status);
HttpResponse json_response(int status, const Json& body);

class ServerCore {
public:
    ServerCore(StorePool& pool, SignInPolicy policy);
    void add_routes(std::vector<Route> routes);
    // The adapter's entry point: never throws, always answers.
    HttpResponse handle(HttpRequest& request);

    Metrics& metrics() { return metrics_; }
    const SignInPolicy& sign_in_policy() const { return policy_; }
    // Set by the server once the adapter runs, for /metrics gauges.
    std::function<std::pair<std::size_t, std::size_t>()> load_gauges;
    // Whether successful requests are logged (errors always are).
    bool log_requests = true;

private:
    const Route* match(const HttpRequest& request, std::map<std::string, std::string>& params,
                       bool& path_known) const;
    StorePool& pool_;
    SignInPolicy policy_;
    std::vector<Route> routes_;
    Metrics metrics_;
};

// Route tables, one per concern.
std::vector<Route> operations_routes();
std::vector<Route> auth_routes();
std::vector<Route> admin_routes();

}  // namespace tsunagu::api
