// Server start-up: data folder, key file, store schema, first administrator, listener.
#include "api/server.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "pg/pg.h"
#include "pg/pg_store.h"
#include "pg/presence.h"
#include "api/src/audit.h"
#include "api/src/caseload.h"
#include "api/src/backups.h"
#include "api/src/data_folder.h"
#include "api/src/secret_file.h"
#include "api/src/demo_org.h"
#include "api/src/refused_changes.h"
#include "api/src/reports.h"
#include "domain/care_schema.h"
#include "sync/protocol.h"
#include "api/src/http_server.h"
#include "api/src/periodic.h"
#include "api/src/server_core.h"
#include "api/src/server_schema.h"

namespace tsunagu::api {
namespace {

// Opens one connection to the server's database: the encrypted SQLite store, or PostgreSQL.
using StoreOpener = std::function<Result<Store>()>;

// A database made ready: how to open connections to it, and, on PostgreSQL, this process's
// announcement to the other servers and tools (pg/presence.h), held for as long as it is used.
struct ReadyDatabase {
    StoreOpener open;
    std::optional<pg::ServerPresence> presence;
};


class RunningServer final : public Server {
public:
    RunningServer(std::string url, std::optional<DataFolderLock> lock, std::optional<pg::ServerPresence> presence,
                  std::unique_ptr<ConnectionPool> pool, std::unique_ptr<ServerCore> core)
        : lock_(std::move(lock)),
          presence_(std::move(presence)),
          url_(std::move(url)),
          pool_(std::move(pool)),
          core_(std::move(core)) {
        if (presence_) presence_renewal_.start(kRenewPresenceEvery, [this] { return renew_presence(); });
        audit_heads_.start(std::chrono::milliseconds(0), [this] {
            log_audit_head();
            return std::chrono::milliseconds(kLogAuditHeadEvery);
        });
    }
    ~RunningServer() override { stop(); }

    void attach(std::unique_ptr<HttpServer> http) { http_ = std::move(http); }

    void stop() override {
        presence_renewal_.stop();
        audit_heads_.stop();
        const bool serving = http_ != nullptr;
        if (core_) core_->compactor().stop();  // first: a run in a request ends after its slice
        if (core_) core_->backups().stop();    // after the backup in progress, if any
        if (http_) http_->stop();
        http_.reset();
        if (core_) core_->commit_group().close();
        if (serving && pool_) log_audit_head();  // the last entry, once no request is left
        if (pool_) pool_->close_all();
    }
    const std::string& url() const override { return url_; }
    HttpServer* http() { return http_.get(); }

private:
    static constexpr std::chrono::milliseconds kRenewPresenceEvery{5000};

    static constexpr std::chrono::hours kLogAuditHeadEvery{1};

    // Logs the trail's newest entry (audit_head: seq and hash), at start, hourly and at stop: an
    // anchor outside the store, for GET /v1/admin/audit/verify?seq=&hash= to show later that no
    // entry was cut from the trail's end (which its chain alone cannot show).
    void log_audit_head() {
        auto lease = pool_->borrow();
        if (!lease) return;
        auto head = AuditLog::head((*lease)->store);
        if (!head) {
            log_event("error", "audit_head_unread", {{"error", head.status().message()}});
            return;
        }
        log_event("info", "audit_head", {{"seq", std::to_string(head->seq)}, {"hash", head->hash}});
    }

    // Announces this server again when its announcement's connection was ended (a restart of
    // PostgreSQL, an idle-session timeout), so that a key rotation keeps seeing it.
    std::chrono::milliseconds renew_presence() {
        auto renewed = presence_->renew();
        if (!renewed) {
            log_event("error", "presence_lost",
                      {{"error", renewed.status().message()},
                       {"hint", "a key rotation could run under this server; its writes stop if the key changes"}});
        } else if (*renewed) {
            log_event("info", "presence_renewed", {});
        }
        return kRenewPresenceEvery;
    }

    // First: released last, once the store is closed.
    std::optional<DataFolderLock> lock_;            // the embedded store's folder
    std::optional<pg::ServerPresence> presence_;    // on PostgreSQL
    std::string url_;
    std::unique_ptr<ConnectionPool> pool_;
    std::unique_ptr<ServerCore> core_;
    std::unique_ptr<HttpServer> http_;
    Periodic presence_renewal_;  // last: stopped (in stop()) before anything it uses goes
    Periodic audit_heads_;
};

// Creates the demo organisation in a new store and writes how to sign in to it, once, to
// DIR/demo-accounts.txt (0600: demo passwords, pseudonymous data, still not for others' eyes).
Status prepare_demo(Store& store, Accounts& accounts, const std::string& data_dir, StartedServer& started) {
    const std::string guide_path = (std::filesystem::path(data_dir) / "demo-accounts.txt").string();
    started.demo_accounts_file = guide_path;
    auto held = holds_demo_organisation(store);
    if (!held) return held.status();
    if (*held) return Status::ok();
    auto demo = create_demo_organisation(store, accounts, (std::filesystem::path(data_dir) / "demo-devices.tmp").string());
    if (!demo) return demo.status();
    std::string guide = "Demo organisation: 6 areas, " + std::to_string(demo->clients) + " clients, " +
                        std::to_string(demo->records) + " records (fiscal year 2020 and its edges), " +
                        std::to_string(demo->conflicts) + " conflicts and " + std::to_string(demo->refused) +
                        " refused change waiting for review.\n";
    if (started.first_admin_password) {
        guide += "  admin                        admin          one-time password " + *started.first_admin_password +
                 " (change it at first sign-in)\n";
    } else if (started.first_admin_from_file) {
        guide += "  admin                        admin          (its password is in the file given at first start)\n";
    }
    for (const auto& a : demo->accounts) {
        std::string line = "  " + a.username;
        line.resize(std::max<std::size_t>(line.size() + 1, 31), ' ');
        line += a.role;
        line.resize(std::max<std::size_t>(line.size() + 1, 46), ' ');
        guide += line + "password " + a.password + "\n";
    }
    guide += "Sign in as a supervisor: kita-chuo.supervisor; as a field worker: kita-chuo.visitor "
             "(passwords above).\n";
    TSUNAGU_TRY(write_private_file(guide_path, guide));
    started.demo_guide = std::move(guide);
    return Status::ok();
}


// Readies the server's database with `create_schema`, run once on a connection to it: the
// encrypted SQLite store at `store_path`, or, with `postgres` set, that PostgreSQL database's
// `tenant` (announced first, then under the start-up lock several servers share).
Result<ReadyDatabase> ready_database(const std::string& store_path, const std::function<Result<KeySource>()>& key_source,
                                     const std::string& postgres, const std::string& tenant,
                                     const std::function<Status(Store&)>& create_schema) {
    if (!postgres.empty()) {
        // Before the tenant's key is read: no rotation changes it from here on.
        auto presence = pg::ServerPresence::announce(postgres, tenant);
        if (!presence) return presence.status();
        auto key = key_source();
        if (!key) return key.status();
        auto options = pg::prepare_database(postgres, tenant, key->material(), create_schema);
        if (!options) return options.status();
        return ReadyDatabase{[options = std::move(*options)]() { return pg::open_store(options); },
                             std::move(*presence)};
    }
    StoreOpener open_store = [store_path, key_source]() -> Result<Store> {
        auto key = key_source();
        if (!key) return key.status();
        return Store::open(store_path, *key);
    };
    auto store = open_store();
    if (!store) {
        if (store.status().code() != ErrorCode::corrupt) return store.status();
        // The store's own advice names the backup; the commits since it need not be given up.
        const std::string data_dir = std::filesystem::path(store_path).parent_path().string();
        return Status(ErrorCode::corrupt, store.status().message() +
                                              "; or keep every commit its files still hold: tsunagu-server salvage "
                                              "--data " + data_dir + " --to NEWDIR");
    }
    TSUNAGU_TRY(create_schema(*store));
    return ReadyDatabase{std::move(open_store), std::nullopt};
}

}  // namespace

Result<domain::IndicatorReport> read_indicator_report(const std::string& data_dir, const std::string& key_file,
                                                      int fiscal_year, const std::string& postgres,
                                                      const std::string& tenant) {
    ensure_sodium();
    const std::string store_path = store_path_in(data_dir);
    if (postgres.empty() && !std::filesystem::exists(store_path)) {
        return Status(ErrorCode::not_found, "no store in " + data_dir + " (expected " + store_path + ")");
    }
    // Shared, as a running server holds it: a rotation, restore or salvage waits for the report.
    auto folder = share_data_folder(data_dir, "print the report");
    TSUNAGU_TRY(folder);
    const std::string key_path = key_path_for(data_dir, key_file);
    auto opener = ready_database(store_path, [key_path]() { return KeySource::key_file(key_path); }, postgres,
                                 tenant, [](Store& store) { return Targets::create_schema(store); });
    if (!opener) return opener.status();
    auto store = opener->open();
    if (!store) return store.status();
    auto upstream = sync::Upstream::open(*store, domain::care_schema());
    if (!upstream) return upstream.status();
    return indicator_report(*store, *upstream, fiscal_year);
}

Status mark_restored_database(const std::string& postgres, const std::string& tenant, const std::string& data_dir,
                              const std::string& key_file) {
    ensure_sodium();
    const std::string key_path = key_path_for(data_dir, key_file);
    // The database to this command alone, as for a key rotation, until it returns: a server
    // running meanwhile would go on numbering changes in the life the restore ends.
    auto alone = pg::Connection::open(postgres);
    TSUNAGU_TRY(alone);
    TSUNAGU_TRY(pg::ServerPresence::take_alone(*alone, tenant));
    auto key = KeySource::key_file(key_path);
    TSUNAGU_TRY(key);
    auto options = pg::prepare_database(postgres, tenant, key->material(), [](Store&) { return Status::ok(); });
    TSUNAGU_TRY(options);
    auto store = pg::open_store(*options);
    TSUNAGU_TRY(store);
    auto upstream = sync::Upstream::open(*store, domain::care_schema());
    TSUNAGU_TRY(upstream);
    TSUNAGU_TRY(upstream->after_restore());
    return end_every_session(*store);  // as a restore from a file does (backup.cpp)
}

Status check_postgres_option(const std::string& conninfo) {
    if (pg::conninfo_has_password(conninfo)) {
        return Status(ErrorCode::invalid_argument,
                      "--postgres holds a password, which every user of this machine can read on the command "
                      "line: remove it and put it in the password file of the server's user (~/.pgpass, mode "
                      "0600, or the file PGPASSFILE names), or use peer authentication over the Unix socket; "
                      "an sslpassword goes too: keep the client's TLS key readable by the server's user only "
                      "(mode 0600) instead");
    }
    if (const std::string host = pg::conninfo_unverified_host(conninfo); !host.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "--postgres reaches " + host + " over the network without checking who answers: add "
                      "sslmode=verify-full (and sslrootcert=FILE, the certificate authority that signed the "
                      "database's certificate), or reach PostgreSQL over its Unix socket on this machine");
    }
    return Status::ok();
}

Result<StartedServer> start_server(const ServerConfig& config) {
    ensure_sodium();
    if (config.listen_url.rfind("http://", 0) == 0 && !sync::is_loopback_url(config.listen_url)) {
        return Status(ErrorCode::invalid_argument,
                      "plain HTTP is only allowed on loopback, written as an address (127.0.0.1, [::1]) or localhost; for " +
                          config.listen_url + " use https:// with --tls-cert and --tls-key, or put "
                          "nginx in front (deploy/nginx.conf)");
    }
    if (!config.backups.copy_command.empty() && config.backups.folder.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "--backup-copy-command copies the server's own backups: give --backup-dir too");
    }
    if (!(config.backups.copy_timeout_seconds >= 1 && config.backups.copy_timeout_seconds <= 7 * 24 * 3600)) {
        return Status(ErrorCode::invalid_argument, "--backup-copy-timeout takes seconds, from 1 to a week");
    }
    if (!config.postgres.empty() && !config.backups.folder.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "--backup-dir backs up the embedded store; a server on PostgreSQL is backed up with pg_dump "
                      "(then tsunagu-server restore --postgres after restoring it)");
    }
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create data folder " + config.data_dir + ": " + ec.message());
    ::chmod(config.data_dir.c_str(), 0700);

    // Held while the server runs: a key rotation never rewrites the store under it.
    std::optional<DataFolderLock> lock;
    if (config.postgres.empty()) {
        auto taken = DataFolderLock::take(config.data_dir, DataFolderLock::Mode::shared);
        TSUNAGU_TRY(taken);
        lock.emplace(std::move(*taken));
        TSUNAGU_TRY(rotation_unfinished(config.data_dir));
    }
    const std::string store_path = store_path_in(config.data_dir);
    const std::string key_path = key_path_for(config.data_dir, config.key_file);
    const bool fresh = !config.postgres.empty() || !std::filesystem::exists(store_path);
    bool key_made = false;
    if (!std::filesystem::exists(key_path)) {
        if (!fresh) {
            return Status(ErrorCode::not_found, "the store " + store_path + " exists but its key file " +
                                                    key_path + " is missing; pass --key-file");
        }
        TSUNAGU_TRY(create_key_file(key_path));
        key_made = true;
    }
    auto key_source = [key_path]() { return KeySource::key_file(key_path); };

    SignInPolicy policy;
    policy.pwhash_ops = config.pwhash_ops;
    policy.pwhash_mem = config.pwhash_mem;
    policy.lock_after = std::max(1, config.lock_after);
    policy.free_attempts = std::min(policy.free_attempts, policy.lock_after - 1);

    StartedServer started;
    // The schema, the first administrator and the demo: once per database.
    auto create_schema = [&](Store& store) -> Status {
        TSUNAGU_TRY(create_server_tables(store));
        auto upstream = sync::Upstream::open(store, domain::care_schema());
        if (!upstream) return upstream.status();
        Accounts accounts(store, policy);
        // The first administrator: made by the first start, and given their password again by a
        // later one for as long as nobody has signed in as them (a first start that failed after
        // making them, at a port in use, never showed its one-time password; a file given later is
        // taken). Servers sharing PostgreSQL start side by side, so there only a file is taken
        // again: a one-time password made by each would undo the others'.
        const bool from_file = !config.admin_password_file.empty();
        auto unclaimed = accounts.unclaimed_first_admin();
        TSUNAGU_TRY(unclaimed);
        const bool again = !unclaimed->empty() && (from_file || config.postgres.empty());
        if (!accounts.any_admin() || again) {
            // The operator's own password from a file, or a one-time one to print (and change).
            Result<Secret> password = from_file ? read_secret_file(config.admin_password_file,
                                                                   "administrator's password file", 12,
                                                                   "an administrator's password deserves a long one")
                                                : Result<Secret>(Secret::copy_of(random_password()));
            TSUNAGU_TRY(password);
            const PasswordSetBy by = from_file ? PasswordSetBy::owner : PasswordSetBy::administrator;
            if (again) {
                TSUNAGU_TRY(accounts.set_password(*unclaimed, password->view(), by));
            } else {
                auto admin = accounts.create_user("admin", "Administrator", Role::admin, "", password->view());
                if (!admin) return admin.status();
                if (by == PasswordSetBy::administrator) {
                    auto& flag = store.cached("UPDATE account SET must_change_password = 1 WHERE id = ?1");
                    flag.bind(1, admin->id);
                    TSUNAGU_TRY(flag.run());
                }
            }
            started.first_admin_again = again;
            started.first_admin_from_file = from_file;
            if (!from_file) started.first_admin_password = std::string(password->view());
        }
        if (config.demo) TSUNAGU_TRY(prepare_demo(store, accounts, config.data_dir, started));
        return Status::ok();
    };
    auto database = ready_database(store_path, key_source, config.postgres, config.tenant, create_schema);
    if (!database) {
        // (PostgreSQL's refusal says what to do already.) A key file this start made, which the
        // database's data key was not wrapped with, seals nothing: it goes, lest it pass for the
        // deployment's key file later.
        if (database.status().code() == ErrorCode::wrong_key && key_made) {
            std::error_code ignored;
            std::filesystem::remove(key_path, ignored);
        }
        if (database.status().code() == ErrorCode::wrong_key && config.postgres.empty()) {
            return Status(ErrorCode::wrong_key, "the key file " + key_path + " does not open the store " + store_path +
                                                    ": give the one that seals it with --key-file (after "
                                                    "tsunagu-server rotate-key, the new one)");
        }
        return database.status();
    }

    const std::int64_t keep_history_ms = std::max<std::int64_t>(0, config.keep_history_days) * 24 * 60 * 60 * 1000;
    // One for the server's connections: a database that goes back in time under it is refused.
    auto sequence_seen = std::make_shared<std::atomic<std::int64_t>>(0);
    auto pool = std::make_unique<ConnectionPool>(
        [open_store = std::move(database->open), keep_history_ms, sequence_seen](ConnectionPool::Use use)
            -> Result<std::unique_ptr<ServerConnection>> {
            auto store = open_store();
            if (!store) return store.status();
            auto connection = std::make_unique<ServerConnection>(std::move(*store));
            // The writer keeps the hot pages of pushes (16 MiB: the id index of about 300,000
            // records, within the server's memory budget of 50 MB); a reader's cache lives only
            // until the next commit, so SQLite's default (about 2 MB) serves it.
            sync::UpstreamOptions options;
            options.cache_kib = use == ConnectionPool::Use::writing ? 16 * 1024 : 2 * 1024;
            options.keep_history_ms = keep_history_ms;
            auto upstream = sync::Upstream::open(connection->store, domain::care_schema(), options);
            if (!upstream) return upstream.status();
            upstream->share_sequence_seen(sequence_seen);
            connection->upstream.emplace(std::move(*upstream));
            return connection;
        });
    auto core = std::make_unique<ServerCore>(*pool, policy);
    core->add_routes(operations_routes());
    core->add_routes(auth_routes());
    core->add_routes(admin_routes());
    core->add_routes(sync_routes());
    core->add_routes(supervisor_routes());
    core->add_routes(refused_routes());
    core->add_routes(report_routes());
    core->add_routes(web_routes());
    core->web_sessions.idle_seconds = std::max<std::int64_t>(1, config.web_idle_seconds);
    core->log_requests = config.log_requests;
    core->compactor().keep_dismissed_for(
        std::chrono::seconds(std::max<std::int64_t>(0, config.keep_dismissed_days) * 24 * 60 * 60));
    core->compactor().stale_after(
        std::chrono::milliseconds(static_cast<std::int64_t>(std::max(0.0, config.stale_device_days) * 86'400'000.0)));
    if (!config.postgres.empty()) {
        BackupPolicy with_pg_dump;
        with_pg_dump.postgres = true;
        core->use_backups(std::make_unique<Backups>(core->metrics(), config.data_dir, config.key_file, with_pg_dump));
    } else if (!config.backups.folder.empty()) {
        if (!(config.backups.every_hours > 0 && config.backups.every_hours <= 24 * 366)) {
            return Status(ErrorCode::invalid_argument, "--backup-every takes hours, more than 0 and at most a year");
        }
        BackupPolicy schedule;
        schedule.folder = config.backups.folder;
        schedule.every = std::chrono::milliseconds(static_cast<std::int64_t>(config.backups.every_hours * 3'600'000.0));
        schedule.keep = config.backups.keep;
        schedule.keep_weekly = config.backups.keep_weekly;
        schedule.keep_monthly = config.backups.keep_monthly;
        schedule.passphrase_file = config.backups.passphrase_file;
        schedule.copy_command = config.backups.copy_command;
        schedule.copy_timeout =
            std::chrono::milliseconds(static_cast<std::int64_t>(config.backups.copy_timeout_seconds * 1000.0));
        auto backups =
            std::make_unique<Backups>(core->metrics(), config.data_dir, config.key_file, std::move(schedule));
        // The folder is claimed by the server's replica id: the installation, which a restore of
        // its backups keeps.
        std::string installation;
        {
            auto connection = pool->borrow();
            TSUNAGU_TRY(connection);
            installation = (*connection)->upstream->replica_id();
        }
        TSUNAGU_TRY(backups->prepare(installation));
        core->use_backups(std::move(backups));
    }
    if (config.postgres.empty()) core->metrics().watch_disk("data", config.data_dir);
    if (!config.backups.folder.empty()) core->metrics().watch_disk("backups", config.backups.folder);
    ServerCore* core_ptr = core.get();
    auto running =
        std::make_unique<RunningServer>(config.listen_url, std::move(lock), std::move(database->presence),
                                        std::move(pool), std::move(core));

    HttpHandler handler = [core_ptr](HttpRequest& r) { return core_ptr->handle(r); };
    if (config.serve_in_process) {
        config.serve_in_process(std::move(handler));
    } else {
        // The adapter answers requests (/metrics among them) as soon as it starts, before
        // start_http_server returns it: the gauges read it through a slot filled once it has.
        auto adapter = std::make_shared<std::atomic<HttpServer*>>(nullptr);
        core_ptr->load_gauges = [adapter] {
            const HttpServer* http = adapter->load();
            return http ? std::pair<std::size_t, std::size_t>{http->in_flight(), http->queue_depth()}
                        : std::pair<std::size_t, std::size_t>{0, 0};
        };
        auto http = start_http_server(config.listen_url, config.tls, config.limits, std::move(handler),
                                      [core_ptr](const HttpRequest& r) { return core_ptr->lane_of(r); });
        if (!http) return http.status();
        adapter->store(http->get());
        running->attach(std::move(*http));
    }
    core_ptr->compactor().start(std::chrono::seconds(config.compact_every_seconds));
    core_ptr->backups().start();
    started.server = std::move(running);
    return started;
}

}  // namespace tsunagu::api
