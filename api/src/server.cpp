// Server start-up: data folder, key file, store schema, first administrator, listener.
#include "api/server.h"

#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>

#include "api/src/audit.h"
#include "api/src/caseload.h"
#include "domain/care_schema.h"
#include "api/src/http_server.h"
#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

constexpr const char* kStoreFile = "tsunagu.db";

std::string host_of(const std::string& url) {
    auto scheme_end = url.find("://");
    std::string rest = scheme_end == std::string::npos ? url : url.substr(scheme_end + 3);
    rest = rest.substr(0, rest.find('/'));
    if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
    return rest.substr(0, rest.find(':'));
}

std::string one_time_password() {
    // 16 characters from an alphabet without look-alikes, about 80 bits.
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    std::string out;
    for (int i = 0; i < 16; ++i) out += alphabet[randombytes_uniform(sizeof alphabet - 1)];
    return out;
}

class RunningServer final : public Server {
public:
    RunningServer(std::string url, std::unique_ptr<ConnectionPool> pool, std::unique_ptr<ServerCore> core)
        : url_(std::move(url)), pool_(std::move(pool)), core_(std::move(core)) {}
    ~RunningServer() override { stop(); }

    void attach(std::unique_ptr<HttpServer> http) { http_ = std::move(http); }

    void stop() override {
        if (http_) http_->stop();
        http_.reset();
        if (pool_) pool_->close_all();
    }
    const std::string& url() const override { return url_; }
    HttpServer* http() { return http_.get(); }

private:
    std::string url_;
    std::unique_ptr<ConnectionPool> pool_;
    std::unique_ptr<ServerCore> core_;
    std::unique_ptr<HttpServer> http_;
};

}  // namespace

bool is_loopback_url(const std::string& url) {
    const std::string host = host_of(url);
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Result<StartedServer> start_server(const ServerConfig& config) {
    ensure_sodium();
    if (config.listen_url.rfind("http://", 0) == 0 && !is_loopback_url(config.listen_url)) {
        return Status(ErrorCode::invalid_argument,
                      "plain HTTP is only allowed on loopback (127.0.0.1, ::1); for " +
                          config.listen_url + " use https:// with --tls-cert and --tls-key, or put "
                          "nginx in front (deploy/nginx.conf)");
    }
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create data folder " + config.data_dir + ": " + ec.message());
    ::chmod(config.data_dir.c_str(), 0700);

    const std::string store_path = (std::filesystem::path(config.data_dir) / kStoreFile).string();
    const std::string key_path = config.key_file.empty()
                                     ? (std::filesystem::path(config.data_dir) / "tsunagu.key").string()
                                     : config.key_file;
    const bool fresh = !std::filesystem::exists(store_path);
    if (!std::filesystem::exists(key_path)) {
        if (!fresh) {
            return Status(ErrorCode::not_found, "the store " + store_path + " exists but its key file " +
                                                    key_path + " is missing; pass --key-file");
        }
        TSUNAGU_TRY(create_key_file(key_path));
    }
    auto key_source = [key_path]() { return KeySource::key_file(key_path); };

    SignInPolicy policy;
    policy.pwhash_ops = config.pwhash_ops;
    policy.pwhash_mem = config.pwhash_mem;
    policy.lock_after = std::max(1, config.lock_after);
    policy.free_attempts = std::min(policy.free_attempts, policy.lock_after - 1);

    StartedServer started;
    {
        auto key = key_source();
        if (!key) return key.status();
        auto store = Store::open(store_path, *key);
        if (!store) return store.status();
        TSUNAGU_TRY(Accounts::create_schema(*store));
        TSUNAGU_TRY(AuditLog::create_schema(*store));
        TSUNAGU_TRY(Caseloads::create_schema(*store));
        TSUNAGU_TRY(WebSessions::create_schema(*store));
        auto upstream = sync::Upstream::open(*store, domain::care_schema());
        if (!upstream) return upstream.status();
        Accounts accounts(*store, policy);
        if (!accounts.any_admin()) {
            std::string password = one_time_password();
            auto admin = accounts.create_user("admin", "Administrator", Role::admin, "", password);
            if (!admin) return admin.status();
            auto& flag = store->cached("UPDATE account SET must_change_password = 1 WHERE id = ?1");
            flag.bind(1, admin->id);
            TSUNAGU_TRY(flag.run());
            started.first_admin_password = password;
        }
    }

    auto pool = std::make_unique<ConnectionPool>(
        [store_path, key_source]() -> Result<std::unique_ptr<ServerConnection>> {
            auto key = key_source();
            if (!key) return key.status();
            auto store = Store::open(store_path, *key);
            if (!store) return store.status();
            auto connection = std::make_unique<ServerConnection>(std::move(*store));
            auto upstream = sync::Upstream::open(connection->store, domain::care_schema());
            if (!upstream) return upstream.status();
            connection->upstream.emplace(std::move(*upstream));
            return connection;
        });
    auto core = std::make_unique<ServerCore>(*pool, policy);
    core->add_routes(operations_routes());
    core->add_routes(auth_routes());
    core->add_routes(admin_routes());
    core->add_routes(sync_routes());
    core->add_routes(supervisor_routes());
    core->add_routes(web_routes());
    core->web_sessions.idle_seconds = std::max<std::int64_t>(1, config.web_idle_seconds);
    core->log_requests = config.log_requests;
    ServerCore* core_ptr = core.get();
    auto running = std::make_unique<RunningServer>(config.listen_url, std::move(pool), std::move(core));

    auto http = start_http_server(config.listen_url, config.tls, config.limits,
                                  [core_ptr](HttpRequest& r) { return core_ptr->handle(r); },
                                  [](const HttpRequest& r) { return r.path == "/v1/sync/pull"; });
    if (!http) return http.status();
    HttpServer* http_ptr = http->get();
    core_ptr->load_gauges = [http_ptr] {
        return std::pair<std::size_t, std::size_t>{http_ptr->in_flight(), http_ptr->queue_depth()};
    };
    running->attach(std::move(*http));
    started.server = std::move(running);
    return started;
}

}  // namespace tsunagu::api
