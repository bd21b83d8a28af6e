// A real PostgreSQL server for one test: a fresh cluster (initdb) in a temporary directory,
// listening only on a Unix socket in that directory (no TCP port), stopped and removed at the end.
// Uses Debian's postgresql package (scripts/install-deps.sh installs it). PostgreSQL refuses to
// run as root, so when the tests run as root the cluster runs as the package's `postgres` user.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run_program.h"
#include "support/temp_dir.h"

namespace tsunagu::testing {

class PostgresCluster {
public:
    // `durable`: every commit reaches the disk (fsync), as in production and as the embedded
    // store does; benchmarks want it. Tests run without fsync, for speed.
    explicit PostgresCluster(bool durable = false) : dir_("tsunagu-pg"), durable_(durable) {
        bin_ = find_bin_dir();
        data_ = dir_.file("data");
        socket_dir_ = dir_.path().string();
        if (::geteuid() == 0) {
            // The postgres user must reach its files: the directory is root's, mode 0700.
            ::chmod(socket_dir_.c_str(), 0755);
            std::filesystem::create_directories(data_);
            run_checked("/usr/bin/chown", {"postgres:postgres", socket_dir_, data_});
        }
        run_pg("initdb", {"-D", data_, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                          "--locale=C"});  // --no-sync: initdb's own files only
        start();
    }
    PostgresCluster(const PostgresCluster&) = delete;
    PostgresCluster& operator=(const PostgresCluster&) = delete;
    ~PostgresCluster() {
        try {
            stop();
        } catch (...) {
        }
    }

    // A libpq connection string for `database` on this cluster.
    std::string conninfo(const std::string& database = "postgres") const {
        return "host=" + socket_dir_ + " port=5432 user=postgres dbname=" + database;
    }
    void create_database(const std::string& name) {
        run_pg("createdb", {"-h", socket_dir_, "-U", "postgres", name});
    }
    // Everything a database administrator (or a stolen backup) would see: pg_dump's plain SQL.
    std::string dump(const std::string& database) {
        return run_pg("pg_dump", {"-h", socket_dir_, "-U", "postgres", "--no-owner", database});
    }
    // Loads pg_dump's plain SQL (dump()) into `database`, as restoring a backup does.
    void load(const std::string& database, const std::string& sql) {
        const std::string file = dir_.file("load-" + database + ".sql");
        std::ofstream(file) << sql;
        ::chmod(file.c_str(), 0644);  // read by psql, as the postgres user when we are root
        run_pg("psql", {"-h", socket_dir_, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-f", file});
    }
    // Stops the server at once, as a crash would (no checkpoint), or cleanly.
    void stop(bool immediate = true) {
        if (!running_) return;
        running_ = false;
        run_pg("pg_ctl", {"-D", data_, "-m", immediate ? "immediate" : "fast", "-w", "stop"});
    }
    void start() {
        run_pg("pg_ctl", {"-D", data_, "-l", dir_.file("server.log"), "-w", "-t", "60", "-o",
                          "-k " + socket_dir_ + " -c listen_addresses=''" +
                              (durable_ ? std::string(" -c fsync=on -c synchronous_commit=on")
                                        : std::string(" -c fsync=off")) +
                              " -c max_connections=300 -c shared_buffers=64MB",
                          "start"});
        running_ = true;
    }
    const std::string& bin_dir() const { return bin_; }

private:
    static std::string find_bin_dir() {
        const std::filesystem::path root = "/usr/lib/postgresql";
        std::error_code ec;
        std::string best;
        for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
            const auto candidate = entry.path() / "bin";
            if (std::filesystem::exists(candidate / "initdb") && candidate.string() > best) best = candidate.string();
        }
        if (best.empty()) {
            throw std::runtime_error("PostgreSQL's server programs are not installed under /usr/lib/postgresql: "
                                     "run scripts/install-deps.sh as root");
        }
        return best;
    }
    static std::string run_checked(const std::string& program, const std::vector<std::string>& args) {
        ProgramRun run = run_program(program, args);
        if (run.exit_code != 0) {
            throw std::runtime_error(program + " failed (" + std::to_string(run.exit_code) + "): " + run.err + run.out);
        }
        return run.out;
    }
    // Runs one of PostgreSQL's programs, as the postgres user when we are root: from the root
    // folder, as PostgreSQL's programs go back to the folder they started in, which a build tree
    // under /root (mode 0700) does not let them do.
    std::string run_pg(const std::string& program, std::vector<std::string> args) const {
        const std::string path = bin_ + "/" + program;
        if (::geteuid() != 0) return run_checked(path, args);
        args.insert(args.begin(), {"-u", "postgres", "--", "/usr/bin/env", "--chdir=/", path});
        return run_checked("/usr/sbin/runuser", args);
    }

    TempDir dir_;
    std::string bin_;
    std::string data_;
    std::string socket_dir_;
    bool durable_ = false;
    bool running_ = false;
};

}  // namespace tsunagu::testing
