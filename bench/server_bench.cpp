// server_bench: how fast is tsunagu-server, next to a bare HTTP echo on the same adapter, and does
// a small push stay fast while hundreds of devices do their initial sync?
//
// In one run:
//  1. N simulated devices (default 50) each push a batch of 10 home visits (about 500 bytes each)
//     then pull after their cursor, naming the visits they pushed as held (PullRequest::held: the
//     server does not send them back), in a loop, for --seconds: changes/s, requests/s, p50/p99 and
//     the server's peak RSS;
//  2. the same request mix against a bare echo endpoint (the cpprestsdk listener answering inline
//     with the body it got), in a separate process too: the ratio of the two request rates, and
//     for both runs the CPU each request cost the server and the simulated devices (which share
//     the machine's cores, so together they bound the rate);
//  3. the morning rush: 300 devices do their initial pull at once while one more device pushes
//     small batches: that device's p99 latency during the rush.
//
//  4. with --postgres, scale: the same mix for 50, 500 and 5,000 simulated devices (--scale) on the
//     embedded store (one server), then with the data in PostgreSQL (a temporary cluster that
//     fsyncs its commits, as the embedded store does) behind 1, 2 and 3 servers (--servers):
//     changes/s and p99 for each, and how throughput grows with servers; then, with the servers
//     stopped, a key rotation of that database (every record sealed anew) next to a plain UPDATE
//     of the same rows. Simulated devices each
//     keep their own session and cursor; at most --concurrency of them sync at one moment (a
//     thousand phones do not all press "sync" in the same second).
//
// Usage: server_bench [--json] [--devices N] [--seconds S] [--rush N]
//                     [--postgres [--servers N] [--scale 50,500,5000] [--scale-seconds S]
//                      [--concurrency N]]
//        server_bench --echo PORT   (internal: the echo endpoint process)
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/src/http_server.h"
#include "clients/src/http_transport.h"
#include "pg/pg.h"
#include "support/run_program.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using tsunagu::client::HttpTransport;
using tsunagu::client::make_http_transport;

namespace {

std::string hex_id() {
    static std::mt19937_64 rng{std::random_device{}()};
    static std::mutex m;
    std::lock_guard lock(m);
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

struct Latencies {
    std::mutex m;
    std::vector<double> ms;
    void add(double v) {
        std::lock_guard lock(m);
        ms.push_back(v);
    }
    double percentile(double p) {
        std::lock_guard lock(m);
        if (ms.empty()) return 0;
        std::sort(ms.begin(), ms.end());
        return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))];
    }
};

// One signed-in device: its transport, token, device id and user id.
struct Session {
    std::unique_ptr<HttpTransport> http;
    std::string token, device_id, user_id, client_id;
    std::int64_t cursor = 0;
    std::vector<std::string> held;  // records pushed since the last pull, named in the next one
    std::int64_t clock_ms = 1'750'000'000'000;

    tsunagu::Result<tsunagu::client::HttpAnswer> call(const std::string& method, const std::string& path,
                                                      const std::string& body) {
        return http->send(method, path, body, {{"Authorization", "Bearer " + token}});
    }
};

Session sign_in(const std::string& url, const std::string& user, const std::string& password) {
    Session s;
    s.http = make_http_transport(url);
    auto r = s.http->send("POST", "/v1/auth/sign-in",
                          json{{"username", user}, {"password", password}, {"device_name", "bench"},
                               {"device_id", hex_id()}}.dump(), {});
    if (!r || r->status != 200) {
        std::fprintf(stderr, "server_bench: sign-in of %s failed\n", user.c_str());
        std::exit(1);
    }
    json body = json::parse(r->body);
    s.token = body["token"];
    s.device_id = body["device_id"];
    s.user_id = body["user"]["id"];
    return s;
}

// Runs work(i) for every i below `count` on `threads` threads.
void in_parallel(std::size_t count, int threads, const std::function<void(std::size_t)>& work) {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            for (std::size_t i = next++; i < count; i = next++) work(i);
        });
    }
    for (auto& t : pool) t.join();
}

json change_set(Session& s, const std::string& collection, const std::string& record, json fields) {
    return {{"id", hex_id()}, {"collection", collection}, {"record", record},
            {"hlc", std::to_string(++s.clock_ms) + "-0"}, {"replica", s.device_id}, {"user", s.user_id},
            {"schema", 1}, {"create", true}, {"set", std::move(fields)}};
}

json home_visit(const std::string& client, int i) {
    return {{"client", client},
            {"date", "2020-06-" + std::to_string(10 + i % 18)},
            {"duration_min", 30 + i % 60},
            {"purpose", "check_in"},
            {"observations", std::string(300, 'o')},
            {"risk_flags", json::array({"isolation"})},
            {"next_visit", "2020-07-01"},
            {"review_status", "submitted"}};
}

// The push body of one batch of `n` visits (the first batch of a session also creates its client).
std::string push_body(Session& s, int n) {
    json changes = json::array();
    if (s.client_id.empty()) {
        s.client_id = hex_id();
        changes.push_back(change_set(s, "client", s.client_id, {{"pseudonym", "B-" + s.client_id.substr(0, 6)}, {"area", "bench"}}));
        s.held.push_back(s.client_id);
    }
    for (int i = 0; i < n; ++i) {
        s.held.push_back(hex_id());
        changes.push_back(change_set(s, "home_visit", s.held.back(), home_visit(s.client_id, i)));
    }
    // As the device library sends it: its clock when it sent the batch, and how far the server's
    // clock was ahead of its own at the last answer (a device with a right clock).
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return json{{"changes", changes}, {"sent_at", now_ms}, {"clock_offset", 0}}.dump();
}

// The pull body after the device's cursor, naming the records it pushed since its last pull as
// held (all under its client's scope key), as the device library does; the server leaves them
// out of the page. Like a push, it carries the device's clock offset (a device with a right clock).
std::string pull_body(Session& s) {
    json body = {{"after", s.cursor}, {"limit", 500}, {"clock_offset", 0}};
    if (!s.held.empty()) body["held"]["client:" + s.client_id] = std::move(s.held);
    s.held.clear();
    return body.dump();
}

double since_ms(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct LoadResult {
    double seconds = 0;
    std::uint64_t requests = 0, changes = 0, errors = 0;
    double p50 = 0, p99 = 0;

    static LoadResult of(Clock::time_point start, std::uint64_t requests, std::uint64_t changes,
                         std::uint64_t errors, Latencies& lat) {
        return {since_ms(start) / 1000.0, requests, changes, errors, lat.percentile(0.50), lat.percentile(0.99)};
    }
};

// Each device: push a batch of 10, then pull after its cursor; repeat until the time is up.
LoadResult run_devices(std::vector<Session>& sessions, double seconds, bool echo) {
    std::atomic<std::uint64_t> requests{0}, changes{0}, errors{0};
    Latencies lat;
    const auto start = Clock::now();
    const auto stop_at = start + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    for (auto& s : sessions) {
        threads.emplace_back([&, sp = &s] {
            Session& d = *sp;
            while (Clock::now() < stop_at) {
                auto t = Clock::now();
                auto pushed = d.call("POST", echo ? "/echo" : "/v1/sync/push", push_body(d, 10));
                lat.add(since_ms(t));
                ++requests;
                if (!pushed || pushed->status != 200) { ++errors; continue; }
                changes += 10;
                t = Clock::now();
                auto pulled = d.call("POST", echo ? "/echo" : "/v1/sync/pull", pull_body(d));
                lat.add(since_ms(t));
                ++requests;
                if (!pulled || pulled->status != 200) { ++errors; continue; }
                if (!echo) d.cursor = json::parse(pulled->body)["next"].get<std::int64_t>();
            }
        });
    }
    for (auto& t : threads) t.join();
    return LoadResult::of(start, requests, changes, errors, lat);
}

double peak_rss_mb(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return 0;
}

// CPU time (user + system) a process has used so far, in seconds; 0 when it cannot be read.
double cpu_seconds_of(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return 0;
    // Fields after the command name (which may hold spaces, so after its closing parenthesis):
    // utime and stime are the 14th and 15th fields of the line, in clock ticks.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i >= 14) ticks += std::stod(field);
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU time this process (the simulated devices) has used so far, in seconds.
double own_cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Where the CPU went during a load run: milliseconds of CPU per request in the server and in the
// simulated devices (this process). On a machine whose cores the two share, this bounds the rate.
struct CpuSplit {
    double server_ms = 0, devices_ms = 0;
};

template <typename Run>
CpuSplit measure_cpu(pid_t server, Run run, LoadResult& result) {
    const double server_before = cpu_seconds_of(server), devices_before = own_cpu_seconds();
    result = run();
    const double requests = std::max<double>(1, static_cast<double>(result.requests));
    return {(cpu_seconds_of(server) - server_before) * 1000 / requests,
            (own_cpu_seconds() - devices_before) * 1000 / requests};
}

int run_echo(int port) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    tsunagu::api::ListenerLimits limits;
    limits.worker_threads = 0;  // bare: answer inline, on the listener's own threads
    auto server = tsunagu::api::start_http_server(
        "http://127.0.0.1:" + std::to_string(port), std::nullopt, limits,
        [](tsunagu::api::HttpRequest& r) {
            tsunagu::api::HttpResponse out;
            out.body = std::move(r.body);
            return out;
        });
    if (!server) return 1;
    std::printf("tsunagu-server listening on echo\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    (*server)->stop(0);
    return 0;
}


// ---- 4. scale: the embedded store and PostgreSQL behind several servers ------------------------

// A simulated device of the scale runs: its session on the shared database, and which server
// it talks to. The connection is its syncing thread's, to that server.
struct ScaleDevice {
    Session session;
    std::size_t server = 0;
};

struct ScaleCell {
    std::string backend;
    int servers = 0, devices = 0;
    double changes_per_s = 0, requests_per_s = 0, p99_ms = 0;
    std::uint64_t errors = 0;
};

// `concurrency` threads share the devices; each thread cycles through its devices: push 10, pull.
LoadResult run_scale(const std::vector<ScaleDevice*>& devices, const std::vector<std::string>& urls, double seconds,
                     int concurrency) {
    std::atomic<std::uint64_t> requests{0}, changes{0}, errors{0};
    Latencies lat;
    const auto start = Clock::now();
    const auto stop_at = start + std::chrono::duration<double>(seconds);
    const int threads_n = std::min<int>(concurrency, static_cast<int>(devices.size()));
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_n; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::unique_ptr<HttpTransport>> http;
            for (const auto& u : urls) http.push_back(make_http_transport(u));
            for (std::size_t i = static_cast<std::size_t>(t); Clock::now() < stop_at;) {
                ScaleDevice& d = *devices[i];
                auto call = [&](const std::string& path, const std::string& body) {
                    auto t0 = Clock::now();
                    auto answer = http[d.server]->send("POST", path, body, {{"Authorization", "Bearer " + d.session.token}});
                    lat.add(since_ms(t0));
                    ++requests;
                    return answer;
                };
                auto pushed = call("/v1/sync/push", push_body(d.session, 10));
                if (pushed && pushed->status == 200) changes += 10; else ++errors;
                auto pulled = call("/v1/sync/pull", pull_body(d.session));
                if (pulled && pulled->status == 200) {
                    d.session.cursor = json::parse(pulled->body)["next"].get<std::int64_t>();
                } else {
                    ++errors;
                }
                i += static_cast<std::size_t>(threads_n);
                if (i >= devices.size()) i = static_cast<std::size_t>(t);
            }
        });
    }
    for (auto& t : threads) t.join();
    return LoadResult::of(start, requests, changes, errors, lat);
}

// A deployment for the scale runs: `servers` tsunagu-server processes on one database, with
// `users` workers in one team and `devices` signed-in simulated devices (spread over the servers).
struct ScaleDeployment {
    tsunagu::testing::TempDir dir{"tsunagu-scale-bench"};
    std::vector<std::unique_ptr<tsunagu::testing::ServerProcess>> servers;
    std::vector<std::string> urls;
    std::vector<ScaleDevice> devices;

    ScaleDeployment(const std::string& postgres, int server_count, int device_count, int users) {
        for (int i = 0; i < server_count; ++i) {
            const std::string name = "server" + std::to_string(i);
            servers.push_back(std::make_unique<tsunagu::testing::ServerProcess>(TSUNAGU_SERVER_PATH, dir.file(name),
                                                                                dir.file(name + ".log")));
            std::vector<std::string> args{"--quiet", "--weak-password-hashing-for-benchmarks", "--key-file",
                                          dir.file("tsunagu.key")};
            if (!postgres.empty()) args.insert(args.end(), {"--postgres", postgres});
            servers.back()->start(args);
            urls.push_back(servers.back()->url());
        }
        Session admin = sign_in(urls[0], "admin", servers[0]->admin_password());
        auto answer = admin.call("POST", "/v1/admin/teams", json{{"name", "Scale"}}.dump());
        const std::string team = json::parse(answer->body)["team"]["id"];
        for (int i = 0; i < users; ++i) {
            (void)admin.call("POST", "/v1/admin/users",
                             json{{"username", "s" + std::to_string(i)}, {"role", "home_visitor"}, {"team_id", team},
                                  {"password", "scale-password-" + std::to_string(i)}, {"must_change_password", false}}.dump());
        }
        sign_in_devices(device_count, users);
    }
    // Signs in more devices, up to `total`.
    // Signs in `count` devices, spread over the servers and the users.
    void sign_in_devices(int count, int users) {
        devices.resize(static_cast<std::size_t>(count));
        in_parallel(devices.size(), 8, [&](std::size_t i) {
            const int u = static_cast<int>(i) % users;
            devices[i].server = i % urls.size();
            devices[i].session = sign_in(urls[devices[i].server], "s" + std::to_string(u),
                                         "scale-password-" + std::to_string(u));
            devices[i].session.http.reset();  // the syncing thread's connection serves it
        });
    }
    void stop() {
        for (auto& s : servers) s->stop(SIGTERM);
    }
};

// A key rotation on PostgreSQL (rotate-key --postgres: every sealed value opened and sealed anew
// under a new data key: records, change log lines, refused changes) on the database the scale
// runs filled, next to the same rows rewritten by a plain UPDATE without any crypto.
struct RotationFigure {
    std::int64_t rows = 0;
    double seconds = 0, plain_update_seconds = 0;
};

RotationFigure time_postgres_rotation(const std::string& conninfo, const std::string& key_file,
                                      const std::string& new_key_file) {
    RotationFigure figure;
    auto connection = tsunagu::pg::Connection::open(conninfo);
    if (!connection) return figure;
    auto rows = connection->query(
        "SELECT (SELECT count(*) FROM sync_records) + (SELECT count(*) FROM sync_log) + (SELECT count(*) FROM "
        "refused_change)");
    if (rows) figure.rows = rows->integer(0, 0);
    auto start = Clock::now();
    if (!connection->exec("BEGIN; UPDATE sync_records SET fields = fields, meta = meta; UPDATE sync_log SET fields = "
                          "fields; UPDATE refused_change SET change = change, reason = reason, comment = comment; "
                          "COMMIT")) {
        return figure;
    }
    figure.plain_update_seconds = since_ms(start) / 1000.0;
    start = Clock::now();
    const auto run = tsunagu::testing::run_program(
        TSUNAGU_SERVER_PATH, {"rotate-key", "--postgres", conninfo, "--key-file", key_file, "--new-key-file", new_key_file});
    if (run.exit_code != 0) {
        std::fprintf(stderr, "server_bench: rotate-key failed: %s\n", run.err.c_str());
        return figure;
    }
    figure.seconds = since_ms(start) / 1000.0;
    return figure;
}

std::vector<ScaleCell> run_scale_matrix(const std::vector<int>& device_counts, int max_servers, double seconds,
                                        int concurrency, const std::string& postgres, RotationFigure& rotation) {
    std::vector<ScaleCell> cells;
    const int users = 500;
    const int most = *std::max_element(device_counts.begin(), device_counts.end());
    auto measure = [&](ScaleDeployment& d, const std::string& backend, int servers) {
        for (int n : device_counts) {
            // The first n devices, spread over the servers of this cell.
            std::vector<ScaleDevice*> subset;
            for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
                d.devices[i].server = i % static_cast<std::size_t>(servers);
                subset.push_back(&d.devices[i]);
            }
            std::vector<std::string> urls(d.urls.begin(), d.urls.begin() + servers);
            LoadResult r = run_scale(subset, urls, seconds, concurrency);
            ScaleCell cell{backend, servers, n, static_cast<double>(r.changes) / r.seconds,
                           static_cast<double>(r.requests) / r.seconds, r.p99, r.errors};
            std::printf("scale: %-8s %d server%s %5d devices: %6.0f changes/s, %5.0f requests/s, p99 %6.1f ms, "
                        "%llu errors\n",
                        backend.c_str(), servers, servers == 1 ? " " : "s", n, cell.changes_per_s,
                        cell.requests_per_s, cell.p99_ms, static_cast<unsigned long long>(cell.errors));
            std::fflush(stdout);
            cells.push_back(cell);
        }
    };
    {
        ScaleDeployment embedded("", 1, most, users);
        measure(embedded, "embedded", 1);
        embedded.stop();
    }
    tsunagu::testing::PostgresCluster database(/*durable=*/true);
    const std::string conninfo = postgres.empty() ? database.conninfo() : postgres;
    ScaleDeployment shared(conninfo, max_servers, most, users);
    for (int servers = 1; servers <= max_servers; ++servers) measure(shared, "postgres", servers);
    shared.stop();
    rotation = time_postgres_rotation(conninfo, shared.dir.file("tsunagu.key"), shared.dir.file("rotated.key"));
    return cells;
}

std::vector<int> parse_counts(const std::string& list) {
    std::vector<int> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        const auto comma = list.find(',', start);
        const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) out.push_back(std::max(1, std::atoi(item.c_str())));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    bool as_json = false;
    int devices = 50, rush = 300;
    double seconds = 10;
    std::string server_workers;  // the server's default unless given
    bool scale = false;
    int max_servers = 3, concurrency = 64;
    double scale_seconds = 5;
    std::vector<int> scale_counts{50, 500, 5000};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--echo" && i + 1 < argc) return run_echo(std::atoi(argv[i + 1]));
        if (a == "--json") as_json = true;
        else if (a == "--devices" && i + 1 < argc) devices = std::atoi(argv[++i]);
        else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--rush" && i + 1 < argc) rush = std::atoi(argv[++i]);
        else if (a == "--server-workers" && i + 1 < argc) server_workers = argv[++i];
        else if (a == "--postgres") scale = true;
        else if (a == "--servers" && i + 1 < argc) max_servers = std::max(1, std::atoi(argv[++i]));
        else if (a == "--scale" && i + 1 < argc) scale_counts = parse_counts(argv[++i]);
        else if (a == "--scale-seconds" && i + 1 < argc) scale_seconds = std::atof(argv[++i]);
        else if (a == "--concurrency" && i + 1 < argc) concurrency = std::max(1, std::atoi(argv[++i]));
    }
    signal(SIGPIPE, SIG_IGN);
    tsunagu::testing::TempDir dir("tsunagu-server-bench");
    tsunagu::testing::ServerProcess server(TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log"));
    std::vector<std::string> server_args{"--quiet"};
    if (!server_workers.empty()) server_args.insert(server_args.end(), {"--workers", server_workers});
    server.start(server_args);
    const std::string url = server.url();

    // Accounts: one team, a worker per simulated device (each with their own client and visits).
    Session admin = sign_in(url, "admin", server.admin_password());
    auto answer = admin.call("POST", "/v1/admin/teams", json{{"name", "Bench"}}.dump());
    const std::string team = json::parse(answer->body)["team"]["id"];
    const int workers = std::max(devices, 30) + 1;
    for (int i = 0; i < workers; ++i) {
        (void)admin.call("POST", "/v1/admin/users",
                   json{{"username", "w" + std::to_string(i)}, {"role", "peer_supporter"}, {"team_id", team},
                        {"password", "bench-password-" + std::to_string(i)}, {"must_change_password", false}}.dump());
    }
    auto sign_in_all = [&](int count, int first_user, int users) {
        std::vector<Session> sessions(static_cast<std::size_t>(count));
        in_parallel(sessions.size(), 4, [&](std::size_t i) {
            const int u = first_user + static_cast<int>(i) % users;
            sessions[i] = sign_in(url, "w" + std::to_string(u), "bench-password-" + std::to_string(u));
        });
        return sessions;
    };

    // 1. the sync mix against the real server.
    std::vector<Session> sessions = sign_in_all(devices, 0, devices);
    LoadResult sync;
    const CpuSplit sync_cpu = measure_cpu(server.pid(), [&] { return run_devices(sessions, seconds, false); }, sync);
    const double rss = peak_rss_mb(server.pid());

    // 2. the same mix against the bare echo endpoint, in its own process.
    tsunagu::testing::ServerProcess echo_process(argv[0], "", dir.file("echo.log"));
    const int echo_port = tsunagu::testing::free_port();
    pid_t echo_pid = ::fork();
    if (echo_pid == 0) {
        ::execl(argv[0], argv[0], "--echo", std::to_string(echo_port).c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::vector<Session> echo_sessions(static_cast<std::size_t>(devices));
    for (std::size_t i = 0; i < echo_sessions.size(); ++i) {
        echo_sessions[i].http = make_http_transport("http://127.0.0.1:" + std::to_string(echo_port));
        echo_sessions[i].device_id = sessions[i].device_id;
        echo_sessions[i].user_id = sessions[i].user_id;
    }
    LoadResult echo;
    const CpuSplit echo_cpu = measure_cpu(echo_pid, [&] { return run_devices(echo_sessions, seconds, true); }, echo);
    ::kill(echo_pid, SIGTERM);
    ::waitpid(echo_pid, nullptr, 0);

    // 3. the morning rush: `rush` devices pull everything at once; one more pushes small batches.
    std::vector<Session> rushing = sign_in_all(rush, 0, std::max(devices, 30));
    Session pusher = sign_in(url, "w" + std::to_string(workers - 1), "bench-password-" + std::to_string(workers - 1));
    std::atomic<bool> rush_done{false};
    Latencies push_latency;
    std::thread pushing([&] {
        while (!rush_done) {
            auto t = Clock::now();
            auto pushed = pusher.call("POST", "/v1/sync/push", push_body(pusher, 3));
            pusher.held.clear();  // it does not pull
            if (!pushed || pushed->status != 200) std::fprintf(stderr, "server_bench: a rush push failed\n");
            push_latency.add(since_ms(t));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    const auto rush_start = Clock::now();
    std::vector<std::thread> pulls;
    std::atomic<std::uint64_t> rush_records{0};
    for (auto& s : rushing) {
        pulls.emplace_back([&, sp = &s] {
            bool more = true;
            while (more) {
                auto page = sp->call("POST", "/v1/sync/pull", json{{"after", sp->cursor}, {"limit", 500}}.dump());
                if (!page || page->status != 200) break;
                json body = json::parse(page->body);
                sp->cursor = body["next"];
                more = body["more"];
                rush_records += body["records"].size();
            }
        });
    }
    for (auto& t : pulls) t.join();
    const double rush_seconds = since_ms(rush_start) / 1000.0;
    rush_done = true;
    pushing.join();
    if (std::getenv("TSUNAGU_BENCH_METRICS")) {
        auto metrics = make_http_transport(url)->send("GET", "/metrics", "", {});
        if (metrics) std::fprintf(stderr, "%s", metrics->body.c_str());
    }

    server.stop(SIGTERM);
    std::vector<ScaleCell> cells;
    RotationFigure rotation;
    if (scale) cells = run_scale_matrix(scale_counts, max_servers, scale_seconds, concurrency, "", rotation);

    const double changes_per_s = static_cast<double>(sync.changes) / sync.seconds;
    const double requests_per_s = static_cast<double>(sync.requests) / sync.seconds;
    const double echo_per_s = static_cast<double>(echo.requests) / echo.seconds;
    std::printf("sync mix, %d devices, %.1f s: %.0f changes/s, %.0f requests/s, p50 %.1f ms, p99 %.1f ms, "
                "%llu errors\n",
                devices, sync.seconds, changes_per_s, requests_per_s, sync.p50, sync.p99,
                static_cast<unsigned long long>(sync.errors));
    std::printf("server peak RSS: %.1f MB\n", rss);
    std::printf("bare echo, same mix: %.0f requests/s, p50 %.1f ms, p99 %.1f ms\n", echo_per_s, echo.p50, echo.p99);
    std::printf("sync / echo request rate: %.2f (target >= 0.70)\n", requests_per_s / echo_per_s);
    std::printf("CPU per request: sync server %.3f ms, its devices %.3f ms; echo server %.3f ms, its devices %.3f ms\n",
                sync_cpu.server_ms, sync_cpu.devices_ms, echo_cpu.server_ms, echo_cpu.devices_ms);
    std::printf("morning rush: %d devices pulled %llu records in %.1f s; a pushing device's p99: %.1f ms "
                "(p50 %.1f ms, target p99 < 1000 ms)\n",
                rush, static_cast<unsigned long long>(rush_records.load()), rush_seconds,
                push_latency.percentile(0.99), push_latency.percentile(0.5));
    // How PostgreSQL's throughput grows with servers, at the largest device count.
    json scale_json = json::array();
    double one_server = 0, most_servers = 0, embedded_most = 0;
    for (const auto& c : cells) {
        scale_json.push_back({{"backend", c.backend}, {"servers", c.servers}, {"devices", c.devices},
                              {"changes_per_s", c.changes_per_s}, {"requests_per_s", c.requests_per_s},
                              {"p99_ms", c.p99_ms}, {"errors", c.errors}});
        if (c.devices != scale_counts.back()) continue;
        if (c.backend == "embedded") embedded_most = c.changes_per_s;
        if (c.backend == "postgres" && c.servers == 1) one_server = c.changes_per_s;
        if (c.backend == "postgres" && c.servers == max_servers) most_servers = c.changes_per_s;
    }
    if (!cells.empty() && one_server > 0) {
        std::printf("postgres, %d devices: %d servers / 1 server = %.2f; postgres (1 server) / embedded = %.2f\n",
                    scale_counts.back(), max_servers, most_servers / one_server,
                    embedded_most > 0 ? one_server / embedded_most : 0.0);
    }
    if (rotation.seconds > 0) {
        std::printf("key rotation on postgres: %lld rows sealed anew in %.2f s; a plain UPDATE of the same rows "
                    "%.2f s (ratio %.2f)\n",
                    static_cast<long long>(rotation.rows), rotation.seconds, rotation.plain_update_seconds,
                    rotation.plain_update_seconds > 0 ? rotation.seconds / rotation.plain_update_seconds : 0.0);
    }
    if (as_json) {
        json out = {{"devices", devices},
                    {"changes_per_s", changes_per_s},
                    {"requests_per_s", requests_per_s},
                    {"p50_ms", sync.p50},
                    {"p99_ms", sync.p99},
                    {"rss_mb", rss},
                    {"echo_requests_per_s", echo_per_s},
                    {"echo_ratio", requests_per_s / echo_per_s},
                    {"server_cpu_ms_per_request", sync_cpu.server_ms},
                    {"devices_cpu_ms_per_request", sync_cpu.devices_ms},
                    {"echo_server_cpu_ms_per_request", echo_cpu.server_ms},
                    {"echo_devices_cpu_ms_per_request", echo_cpu.devices_ms},
                    {"rush_devices", rush},
                    {"rush_seconds", rush_seconds},
                    {"rush_push_p99_ms", push_latency.percentile(0.99)}};
        if (!cells.empty()) {
            out["scale"] = scale_json;
            out["postgres_servers_growth_ratio"] = one_server > 0 ? most_servers / one_server : 0.0;
            out["postgres_vs_embedded_ratio"] = embedded_most > 0 ? one_server / embedded_most : 0.0;
        }
        if (rotation.seconds > 0) {
            out["postgres_rotation_rows"] = rotation.rows;
            out["postgres_rotation_seconds"] = rotation.seconds;
            out["postgres_rotation_vs_plain_update_ratio"] =
                rotation.plain_update_seconds > 0 ? rotation.seconds / rotation.plain_update_seconds : 0.0;
        }
        std::printf("%s\n", out.dump().c_str());
    }
    return 0;
}
