// Runs the real tsunagu-server binary on a free loopback port, for integration tests.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/exec.h"
#include "support/postgres_cluster.h"

namespace tsunagu::testing {

// Whether the server tests run against PostgreSQL (TSUNAGU_TEST_BACKEND=postgres; tests/CMakeLists.txt
// registers the server's integration suites once for each backend).
inline bool testing_on_postgres() {
    const char* backend = std::getenv("TSUNAGU_TEST_BACKEND");
    return backend != nullptr && std::string(backend) == "postgres";
}

// The PostgreSQL cluster that stands for a data folder's store when testing on PostgreSQL: one
// per folder, so that a server restarted on the folder finds its data again; all stopped and
// removed when the test process ends.
inline PostgresCluster& postgres_for(const std::string& data_dir) {
    static std::map<std::string, std::unique_ptr<PostgresCluster>> clusters;
    auto& cluster = clusters[data_dir];
    if (!cluster) cluster = std::make_unique<PostgresCluster>();
    return *cluster;
}

// A loopback TCP port nobody listens on right now.
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// " --postgres '<conninfo>'" for a command line run by a shell when testing on PostgreSQL, else "".
inline std::string postgres_option(const std::string& data_dir) {
    return testing_on_postgres() ? " --postgres '" + postgres_for(data_dir).conninfo() + "'" : "";
}

class ServerProcess {
public:
    ServerProcess(std::string binary, std::string data_dir, std::string log_file)
        : binary_(std::move(binary)), data_dir_(std::move(data_dir)), log_file_(std::move(log_file)) {}
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;
    ~ServerProcess() { stop(SIGKILL); }

    // On a first start the administrator's password comes from a file (--admin-password-file),
    // so that tests may act as administrators at once. Set this before start() to have the
    // server make a one-time password instead, which must be changed before anything else.
    bool one_time_admin_password = false;

    // Starts the server and waits until it listens. Extra arguments follow --data and --listen.
    // With no `port`, a free one is chosen; should another process take it between the choice and
    // the server's bind (free_port() cannot hold it), the start is tried again on a fresh port.
    // A start that fails throws with the server's exit status and what it wrote to its log.
    void start(const std::vector<std::string>& extra = {}, int port = 0, bool https = false) {
        for (int attempt = 1;; ++attempt) {
            try {
                start_once(extra, port ? port : free_port(), https);
                return;
            } catch (const PortTaken&) {
                if (port != 0 || attempt == 5) throw;
            }
        }
    }

    // Sends `signal` and waits for the process; returns its exit status (or -1 if not running).
    int stop(int signal = SIGTERM) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        if (stdout_fd_ >= 0) ::close(stdout_fd_);
        stdout_fd_ = -1;
        return status;
    }

    const std::string& url() const { return url_; }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    const std::string& admin_password() const { return admin_password_; }
    const std::string& startup_output() const { return startup_output_; }

private:
    // The server could not bind its port: something else listens there.
    struct PortTaken : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    void start_once(const std::vector<std::string>& extra, int port, bool https) {
        const std::string password_file = data_dir_ + ".admin-password";
        if (!one_time_admin_password && admin_password_.empty()) {
            admin_password_ = "admin-password-of-the-tests";
            const int fd = ::open(password_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || ::write(fd, admin_password_.data(), admin_password_.size()) < 0) {
                throw std::runtime_error("cannot write " + password_file);
            }
            ::close(fd);
        }
        port_ = port;
        const auto log_start = file_size(log_file_);
        url_ = std::string(https ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
        if (testing_on_postgres()) postgres_ = postgres_for(data_dir_).conninfo();
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            int log = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(log, STDERR_FILENO);
            ::close(out[0]);
            std::vector<std::string> args = {binary_, "--data", data_dir_, "--listen", url_};
            if (!postgres_.empty()) args.insert(args.end(), {"--postgres", postgres_});
            if (!one_time_admin_password) args.insert(args.end(), {"--admin-password-file", password_file});
            args.insert(args.end(), extra.begin(), extra.end());
            exec_or_exit(std::move(args));
        }
        ::close(out[1]);
        stdout_fd_ = out[0];
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        // Under AddressSanitizer a start runs 3-5 times slower (the demo on PostgreSQL: over 20 s),
        // under ThreadSanitizer more.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
#else
        // The demo on PostgreSQL took over 20 s to start on a 2-core machine busy with builds.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
#endif
        std::string seen;
        // Started once it listens and has printed the first start's notes whole (a one-time
        // password: ends "(shown once...", the demo's accounts: end "(kept in ...").
        auto notes_whole = [&] {
            const bool pending = seen.find("one-time password") != std::string::npos ||
                                 seen.find("Demo organisation") != std::string::npos;
            return !pending || seen.find("(shown once") != std::string::npos ||
                   seen.find("(kept in") != std::string::npos;
        };
        while (seen.find("listening on") == std::string::npos || !notes_whole()) {
            if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("server did not start: " + seen);
            pollfd p{stdout_fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                char buf[512];
                ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
                if (n <= 0) exited_at_start(seen, log_start);
                seen.append(buf, static_cast<std::size_t>(n));
            }
        }
        const auto at = seen.find("one-time password ");
        if (at != std::string::npos) {
            admin_password_ = seen.substr(at + 18, seen.find_first_of(" \n", at + 18) - (at + 18));
        }
        startup_output_ = seen;
    }

    static std::uintmax_t file_size(const std::string& path) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        return ec ? 0 : size;
    }

    // The server closed its output before listening: reaps it and throws with its exit status and
    // what it logged in this start (its error is the log's last line), PortTaken if it lost its port.
    [[noreturn]] void exited_at_start(const std::string& seen, std::uintmax_t log_start) {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        ::close(stdout_fd_);
        stdout_fd_ = -1;
        std::ifstream log(log_file_);
        log.seekg(static_cast<std::streamoff>(log_start));
        std::string logged((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        if (logged.size() > 2000) logged = "..." + logged.substr(logged.size() - 2000);
        const std::string how = WIFEXITED(status)     ? "exit code " + std::to_string(WEXITSTATUS(status))
                                : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                      : "status " + std::to_string(status);
        const std::string message = "server exited at start (" + how + "); its output: " + seen + "; its log: " + logged;
        if (logged.find("Address already in use") != std::string::npos) throw PortTaken(message);
        throw std::runtime_error(message);
    }

    std::string binary_, data_dir_, log_file_;
    std::string url_, admin_password_, startup_output_;
    std::string postgres_;  // the --postgres connection string, when testing on PostgreSQL
    int port_ = 0;
    pid_t pid_ = -1;
    int stdout_fd_ = -1;
};

}  // namespace tsunagu::testing
