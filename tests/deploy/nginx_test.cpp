// deploy/nginx.conf, run by a real nginx in front of a real tsunagu-server: normal sync traffic
// passes; oversized bodies, malformed headers and slow or idle clients are stopped at nginx.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include "../api/api_client.h"
#include "support/certificates.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/tls_socket.h"

using namespace tsunagu::testing;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

std::string replace(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("deploy/nginx.conf no longer contains: " + from);
    return text.replace(at, from.size(), to);
}

// nginx running the shipped configuration, with only addresses and file paths substituted.
class Nginx {
public:
    // A port free when chosen may be taken before nginx binds it (by another test's process):
    // nginx then exits saying so, and starts again on another.
    Nginx(const std::string& dir, int upstream_port, const CertificateFiles& cert) {
        for (int attempt = 0; attempt < 3; ++attempt) {
            if (start(dir, upstream_port, cert)) return;
        }
        throw std::runtime_error("nginx found no free port in 3 tries: " + read_file(dir + "/error.log"));
    }

private:
    // Starts nginx on a port free a moment ago; false when that port was taken meanwhile.
    bool start(const std::string& dir, int upstream_port, const CertificateFiles& cert) {
        port_ = free_port();
        const std::string source = TSUNAGU_SOURCE_DIR;
        std::string site = read_file(source + "/deploy/nginx.conf");
        site = replace(site, "server 127.0.0.1:8080;", "server 127.0.0.1:" + std::to_string(upstream_port) + ";");
        site = replace(site, "listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(port_) + " ssl;");
        site = replace(site, "listen [::]:443 ssl;", "");
        site = replace(site, "/etc/ssl/tsunagu/fullchain.pem", cert.certificate);
        site = replace(site, "/etc/ssl/tsunagu/privkey.pem", cert.private_key);
        site = std::regex_replace(site, std::regex("/etc/nginx/tsunagu_proxy_params"),
                                  source + "/deploy/tsunagu_proxy_params");
        write_file(dir + "/tsunagu.conf", site);
        write_file(dir + "/error.log", "");  // this attempt's words only
        for (const char* sub : {"body", "proxy", "fastcgi", "uwsgi", "scgi"})
            std::filesystem::create_directories(dir + "/" + sub);
        write_file(dir + "/nginx.conf",
                   "daemon off;\nuser root;\nworker_processes 1;\npid " + dir + "/nginx.pid;\n"
                   "error_log " + dir + "/error.log info;\n"
                   "events { worker_connections 512; }\n"
                   "http {\n  access_log " + dir + "/access.log;\n"
                   "  client_body_temp_path " + dir + "/body;\n  proxy_temp_path " + dir + "/proxy;\n"
                   "  fastcgi_temp_path " + dir + "/fastcgi;\n  uwsgi_temp_path " + dir + "/uwsgi;\n"
                   "  scgi_temp_path " + dir + "/scgi;\n  include " + dir + "/tsunagu.conf;\n}\n");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl("/usr/sbin/nginx", "nginx", "-p", dir.c_str(), "-c", (dir + "/nginx.conf").c_str(),
                    "-e", (dir + "/error.log").c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 100; ++i) {
            try {
                TlsSocket probe(port_);
                return true;
            } catch (const std::exception&) {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // nginx gave up
                    pid_ = -1;
                    const std::string log = read_file(dir + "/error.log");
                    if (log.find("Address already in use") != std::string::npos) return false;
                    throw std::runtime_error("nginx did not start: " + log);
                }
                std::this_thread::sleep_for(50ms);
            }
        }
        throw std::runtime_error("nginx did not start: " + read_file(dir + "/error.log"));
    }

public:
    ~Nginx() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    int port() const { return port_; }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

private:
    int port_ = 0;
    pid_t pid_ = -1;
};

struct Deployment {
    TempDir dir{"tsunagu-nginx"};
    CertificateFiles cert = make_self_signed_certificate(dir.path().string());
    ServerProcess server{TSUNAGU_SERVER_PATH, dir.file("data"), dir.file("server.log")};
    std::unique_ptr<Nginx> nginx;

    Deployment() {
        server.start();
        std::filesystem::create_directories(dir.file("nginx"));
        nginx = std::make_unique<Nginx>(dir.file("nginx"), server.port(), cert);
    }
    std::string exchange(const std::string& request, std::chrono::milliseconds wait = 3s) {
        TlsSocket s(nginx->port());
        s.send(request);
        return s.read_all(wait);
    }
};

// The client library refuses self-signed certificates; tests on loopback switch that off.
ApiClient insecure_client(const std::string& url) { return ApiClient(url, /*verify_tls=*/false); }

}  // namespace

TEST_CASE("normal sync traffic passes through nginx over TLS") {
    Deployment d;
    ApiClient admin = insecure_client(d.nginx->url());
    Reply signed_in = admin.sign_in("admin", d.server.admin_password(), "office-pc");
    REQUIRE(signed_in.status == 200);
    CHECK(admin.get("/v1/me").body["user"]["username"] == "admin");
    CHECK(admin.get("/healthz").status == 200);
    CHECK(admin.get("/metrics").status == 404);  // metrics stay on loopback, behind nginx
    CHECK(admin.get("/metrics/").status == 404);
    CHECK(d.exchange("GET //metrics?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
}

TEST_CASE("nginx refuses an oversized body before the server sees it") {
    Deployment d;
    const std::string body(5 << 20, 'x');
    std::string answer = d.exchange("POST /v1/auth/sign-in HTTP/1.1\r\nHost: localhost\r\n"
                                    "Content-Type: application/json\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 1024));
    CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(read_file(d.dir.file("server.log")).find("/v1/auth/sign-in") == std::string::npos);
}

TEST_CASE("nginx refuses malformed headers that would hang the server's listener") {
    Deployment d;
    const std::vector<std::string> malformed = {
        "POST /v1/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
        "POST /v1/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
        "Content-Length: 40\r\n\r\n{}",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: " + std::string(20000, 'a') + "\r\n\r\n",
    };
    for (const auto& request : malformed) {
        std::string answer = d.exchange(request);
        INFO(request.substr(0, 80));
        CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    }
    ApiClient admin = insecure_client(d.nginx->url());
    CHECK(admin.get("/healthz").status == 200);
}

TEST_CASE("nginx cuts a client that stalls in its headers, and others are still served") {
    Deployment d;
    TlsSocket slow(d.nginx->port());
    slow.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");  // and then nothing
    ApiClient admin = insecure_client(d.nginx->url());
    CHECK(admin.get("/healthz").status == 200);
    bool closed = false;
    const auto started = std::chrono::steady_clock::now();
    slow.read_all(20s, &closed);
    CHECK(closed);
    // client_header_timeout 10s, counted from the connection's start (a little before `started`).
    CHECK(std::chrono::steady_clock::now() - started < 16s);
    CHECK(std::chrono::steady_clock::now() - started > 5s);
}
