// tsunagu-server: the sync server over the embedded encrypted store.
//   tsunagu-server --data DIR --listen URL [--tls-cert F --tls-key F] [--key-file F] [--demo]
//                  [--backup-dir DIR [--backup-every H] [--backup-keep N] [--backup-keep-weekly W]
//                                    [--backup-keep-monthly M]]
//   tsunagu-server report --data DIR --fy YEAR [--csv|--json] [--key-file F]
//   tsunagu-server backup --data DIR --to FILE [--key-file F]
//   tsunagu-server verify-backup --from FILE [--key-file F | --passphrase-file P]
//   tsunagu-server restore --from FILE --data DIR [--key-file F]
//   tsunagu-server rotate-key --data DIR [--key-file F] --new-key-file NEW
//   tsunagu-server salvage --data DIR --to NEWDIR [--key-file F]
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/server.h"
#include "crypto/secret.h"

namespace {

void usage() {
    std::fputs(
        "usage: tsunagu-server --data DIR --listen URL [--tls-cert FILE --tls-key FILE]\n"
        "                      [--key-file FILE] [--max-body BYTES] [--workers N] [--quiet]\n"
        "  --data DIR        folder of the encrypted store (created on first start)\n"
        "  --listen URL      http://127.0.0.1:8080 (loopback only) or https://HOST:PORT\n"
        "  --tls-cert FILE   PEM certificate chain for https\n"
        "  --tls-key FILE    PEM private key for https\n"
        "  --key-file FILE   32-byte store key (default DIR/tsunagu.key, made 0600 on first start)\n"
        "  --admin-password-file F  on first start, the administrator's password is F's first\n"
        "                    line (0600, 12+ characters) instead of a one-time one printed once\n"
        "  --postgres CONN   keep the data in PostgreSQL (libpq string, e.g. \"host=/run/postgresql\n"
        "                    dbname=tsunagu\"), shared by every server given the same key file\n"
        "  --tenant NAME     the tenant that database serves, one per database (default \"default\")\n"
        "  --demo            in a new DIR, create the demo organisation first (then serve it)\n"
        "  --compact-every S compact every S seconds (default 3600; 0: only when an admin asks)\n"
        "  --keep-history D  compaction leaves history and deleted records D days (default 90)\n"
        "  --keep-dismissed D  compaction purges refused changes D days after their dismissal\n"
        "                    (default 365; 0: never)\n"
        "  --stale-after D   flag devices that have not synced for D days as probably lost\n"
        "                    (default 30; fractions allowed; 0: never)\n"
        "  --backup-dir DIR  take backups of the store into DIR (ideally another disk), on a\n"
        "                    schedule kept across restarts, and when an administrator asks\n"
        "  --backup-every H  every H hours (default 24; fractions allowed)\n"
        "  --backup-keep N   keep the newest N backups (default 7)\n"
        "  --backup-keep-weekly W  and the newest of each of the last W weeks (default 4)\n"
        "  --backup-keep-monthly M  and the newest of each of the last M months (default 0)\n"
        "  --backup-passphrase-file P  seal them under the passphrase in P (0600) instead of\n"
        "                    the key file, so that they restore without it\n"
        "  --backup-copy-command CMD  run /bin/sh -c CMD on each new backup, its path as $1, to\n"
        "                    copy it off the machine (e.g. 'rsync \"$1\" backup-host:/srv/tsunagu/')\n"
        "  --backup-copy-timeout S  kill the copy command after S seconds (default 600)\n"
        "\n"
        "usage: tsunagu-server report --data DIR --fy YEAR [--csv|--json] [--key-file FILE]\n"
        "                             [--postgres CONN [--tenant NAME]]\n"
        "  prints the yearly indicators against targets, without a running server;\n"
        "  --json: an array of rows {id, label_ja, label_en, target, actual, rate};\n"
        "  --csv: UTF-8 with BOM for Excel\n"
        "\n"
        "usage: tsunagu-server backup --data DIR --to FILE [--key-file FILE] [--passphrase-file P]\n"
        "  writes a consistent, encrypted copy of the store (the server may be running), sealed\n"
        "  under the key file (keep a copy of it apart: without it no backup can be read), or with\n"
        "  --passphrase-file under the passphrase in P's first line (a 0600 file)\n"
        "\n"
        "usage: tsunagu-server verify-backup --from FILE [--data DIR] [--key-file FILE] [--passphrase-file P]\n"
        "  reads a backup whole without restoring it, and says what it holds\n"
        "\n"
        "usage: tsunagu-server restore --from FILE --data DIR [--key-file FILE] [--passphrase-file P]\n"
        "  restores a backup into DIR, which must hold no store; then start the server on DIR\n"
        "usage: tsunagu-server restore --postgres CONN [--tenant NAME] [--data DIR] [--key-file FILE]\n"
        "  after restoring a PostgreSQL dump, once, before any server starts on it\n"
        "\n"
        "usage: tsunagu-server salvage --data DIR --to NEWDIR [--key-file FILE]\n"
        "  with the server stopped: a store it refuses as damaged, rebuilt in NEWDIR with every commit\n"
        "  its files still hold (DIR is only read); then start the server on NEWDIR\n"
        "\n"
        "usage: tsunagu-server rotate-key --data DIR [--key-file FILE] --new-key-file NEW\n"
        "  with the server stopped: seals the store under NEW (created 0600) and a new data key;\n"
        "  the old key file opens nothing it holds from then on (older backups still need it)\n"
        "usage: tsunagu-server rotate-key --postgres CONN [--tenant NAME] [--data DIR] [--key-file FILE]\n"
        "                                 --new-key-file NEW\n"
        "  with every server on the database stopped: seals its records under a new data key, wrapped\n"
        "  under NEW, all or none (older dumps still need the old key file)\n",
        stderr);
}

// A subcommand's options: "--name value" pairs and bare flags, each declared. Answers nullopt
// with the exit code to return for --help (0) or a mistake (2, said on stderr).
struct Options {
    std::map<std::string, std::string> values;
    std::set<std::string> flags;
    std::string value(const std::string& name, const std::string& fallback = "") const {
        auto it = values.find(name);
        return it == values.end() ? fallback : it->second;
    }
};

std::optional<Options> parse_options(int argc, char** argv, const char* command, const std::set<std::string>& with_value,
                                     const std::set<std::string>& flags, int& exit_code) {
    Options options;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage();
            exit_code = 0;
            return std::nullopt;
        }
        if (flags.count(arg)) {
            options.flags.insert(arg);
        } else if (with_value.count(arg)) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "tsunagu-server %s: %s needs a value\n", command, arg.c_str());
                exit_code = 2;
                return std::nullopt;
            }
            options.values[arg] = argv[++i];
        } else {
            std::fprintf(stderr, "tsunagu-server %s: unknown option %s\n", command, arg.c_str());
            usage();
            exit_code = 2;
            return std::nullopt;
        }
    }
    return options;
}

// `tsunagu-server backup ...`: an encrypted copy of the embedded store, while the server runs.
int backup_command(int argc, char** argv) {
    int exit_code = 0;
    auto options =
        parse_options(argc, argv, "backup", {"--data", "--to", "--key-file", "--passphrase-file"}, {}, exit_code);
    if (!options) return exit_code;
    if (options->value("--to").empty()) {
        std::fputs("tsunagu-server backup: name the backup file to write, e.g. --to /backups/tsunagu-2026-12-04.db\n",
                   stderr);
        return 2;
    }
    const std::string passphrase_file = options->value("--passphrase-file");
    auto written = tsunagu::api::back_up_data(options->value("--data", "data"), options->value("--key-file"),
                                              options->value("--to"), passphrase_file);
    if (!written) {
        std::fprintf(stderr, "tsunagu-server backup: %s\n", written.status().message().c_str());
        return 1;
    }
    std::printf("backup written and read back whole: %s (%.1f MB), sealed with XChaCha20-Poly1305 under %s\n",
                written->path.c_str(), static_cast<double>(written->bytes) / 1e6,
                passphrase_file.empty() ? "the key file; keep a copy of the key file apart from the backups"
                                        : "the passphrase; keep it where the backups' readers can find it");
    return 0;
}

// `tsunagu-server verify-backup ...`: a backup read whole, without restoring it.
int verify_backup_command(int argc, char** argv) {
    int exit_code = 0;
    auto options = parse_options(argc, argv, "verify-backup", {"--from", "--data", "--key-file", "--passphrase-file"},
                                 {}, exit_code);
    if (!options) return exit_code;
    if (options->value("--from").empty()) {
        std::fputs("tsunagu-server verify-backup: name the backup to check with --from FILE\n", stderr);
        return 2;
    }
    auto contents = tsunagu::api::verify_backup(options->value("--from"), options->value("--data", "data"),
                                                options->value("--key-file"), options->value("--passphrase-file"));
    if (!contents) {
        std::fprintf(stderr, "tsunagu-server verify-backup: %s\n", contents.status().message().c_str());
        return 1;
    }
    std::int64_t total = 0;
    std::string by_collection;
    for (const auto& [collection, count] : contents->records) {
        total += count;
        by_collection += (by_collection.empty() ? "" : ", ") + collection + " " + std::to_string(count);
    }
    char last_change[40] = "none";
    if (contents->last_change_ms > 0) {
        const std::time_t at = static_cast<std::time_t>(contents->last_change_ms / 1000);
        std::tm utc{};
        ::gmtime_r(&at, &utc);
        std::strftime(last_change, sizeof last_change, "%Y-%m-%d %H:%M:%S UTC", &utc);
    }
    std::printf("%s is whole (%.1f MB): %lld record(s)%s%s%s, %lld account(s); its last change is #%lld, of %s, "
                "from installation %s; restore it with tsunagu-server restore\n",
                options->value("--from").c_str(), static_cast<double>(contents->bytes) / 1e6,
                static_cast<long long>(total), by_collection.empty() ? "" : " (", by_collection.c_str(),
                by_collection.empty() ? "" : ")", static_cast<long long>(contents->accounts),
                static_cast<long long>(contents->last_sequence), last_change, contents->installation.c_str());
    return 0;
}

// What every restore says after it (restore_data, mark_restored_database end every session):
// `from` is "backup" or "dump".
void print_sessions_ended(const char* from) {
    std::printf("every session was ended: phones and the web page sign in again. A device revoked, an account\n"
                "disabled or a password reset after the %s was taken is not known to it: do those again.\n",
                from);
}

// `tsunagu-server restore ...`: a backup into a new data folder.
int restore_command(int argc, char** argv) {
    int exit_code = 0;
    auto options =
        parse_options(argc, argv, "restore", {"--data", "--from", "--key-file", "--postgres", "--tenant", "--passphrase-file"},
                      {}, exit_code);
    if (!options) return exit_code;
    if (!options->value("--postgres").empty()) {
        if (!options->value("--from").empty()) {
            std::fputs("tsunagu-server restore: a PostgreSQL database is restored with pg_restore or psql; then run "
                       "this with --postgres and without --from\n",
                       stderr);
            return 2;
        }
        tsunagu::Status marked = tsunagu::api::mark_restored_database(
            options->value("--postgres"), options->value("--tenant", "default"), options->value("--data", "data"),
            options->value("--key-file"));
        if (!marked) {
            std::fprintf(stderr, "tsunagu-server restore: %s\n", marked.message().c_str());
            return 1;
        }
        std::puts("the restored database is ready: start the servers on it; phones send again what the dump lacked");
        print_sessions_ended("dump");
        return 0;
    }
    if (options->value("--from").empty() || options->value("--data").empty()) {
        std::fputs("tsunagu-server restore: give the backup (--from FILE) and a new data folder (--data DIR)\n", stderr);
        return 2;
    }
    const std::string data = options->value("--data"), key_file = options->value("--key-file");
    if (tsunagu::Status restored =
            tsunagu::api::restore_data(options->value("--from"), data, key_file, options->value("--passphrase-file"));
        !restored) {
        std::fprintf(stderr, "tsunagu-server restore: %s\n", restored.message().c_str());
        return 1;
    }
    std::printf("restored into %s; start the server on it: tsunagu-server --data %s%s --listen URL\n", data.c_str(),
                data.c_str(), key_file.empty() ? "" : (" --key-file " + key_file).c_str());
    print_sessions_ended("backup");
    return 0;
}

// `tsunagu-server salvage ...`: a store refused as damaged, rebuilt into a new data folder.
int salvage_command(int argc, char** argv) {
    int exit_code = 0;
    auto options = parse_options(argc, argv, "salvage", {"--data", "--to", "--key-file"}, {}, exit_code);
    if (!options) return exit_code;
    if (options->value("--data").empty() || options->value("--to").empty()) {
        std::fputs("tsunagu-server salvage: give the damaged data folder (--data DIR) and a new one (--to NEWDIR)\n",
                   stderr);
        return 2;
    }
    const std::string data = options->value("--data"), to = options->value("--to"),
                      key_file = options->value("--key-file");
    auto report = tsunagu::api::salvage_data(data, to, key_file);
    if (!report) {
        std::fprintf(stderr, "tsunagu-server salvage: %s\n", report.status().message().c_str());
        return 1;
    }
    std::printf("salvaged %s into %s: %s\n%sthe damaged files are unchanged; start the server on it: "
                "tsunagu-server --data %s%s --listen URL\n",
                data.c_str(), to.c_str(), report->summary().c_str(),
                report->complete() ? ""
                                   : "sequence numbers jumped, as after a restore: phones pull again what they miss\n",
                to.c_str(), key_file.empty() ? "" : (" --key-file " + key_file).c_str());
    if (!report->complete()) {
        std::printf("every session was ended: phones and the web page sign in again. A device revoked, an account\n"
                    "disabled, a password reset or a caseload changed in what was lost is undone: check the\n"
                    "devices, accounts and caseloads (and the audit trail of the damaged store) and do those again.\n");
    }
    return 0;
}

// `tsunagu-server rotate-key ...`: a new key file and data key, for the embedded store or PostgreSQL.
int rotate_key_command(int argc, char** argv) {
    int exit_code = 0;
    auto options = parse_options(argc, argv, "rotate-key",
                                 {"--data", "--key-file", "--new-key-file", "--postgres", "--tenant"}, {}, exit_code);
    if (!options) return exit_code;
    if (options->value("--new-key-file").empty()) {
        std::fputs("tsunagu-server rotate-key: name the new key file, e.g. --new-key-file /etc/tsunagu/2027.key\n",
                   stderr);
        return 2;
    }
    const std::string data = options->value("--data", "data");
    if (!options->value("--postgres").empty()) {
        const std::string new_key = options->value("--new-key-file");
        auto rotated = tsunagu::api::rotate_postgres_key(options->value("--postgres"),
                                                         options->value("--tenant", "default"), data,
                                                         options->value("--key-file"), new_key);
        if (!rotated) {
            std::fprintf(stderr, "tsunagu-server rotate-key: %s\n", rotated.status().message().c_str());
            return 1;
        }
        if (rotated->already) {
            std::printf("the records in the database are sealed under %s already: nothing to do.\n", new_key.c_str());
        } else {
            std::printf("%zu row(s) of records, change log and refused changes (%zu value(s)) in the database are "
                        "now sealed under a new data key, wrapped under %s.\n",
                        rotated->rows, rotated->values, new_key.c_str());
        }
        std::printf("Start every server with --key-file %s. Dumps taken before still need the old key file: keep "
                    "it with them until they are no longer needed.\n",
                    new_key.c_str());
        return 0;
    }
    auto rotated = tsunagu::api::rotate_key(data, options->value("--key-file"), options->value("--new-key-file"));
    if (!rotated) {
        std::fprintf(stderr, "tsunagu-server rotate-key: %s\n", rotated.status().message().c_str());
        return 1;
    }
    std::printf("%sthe store in %s is now sealed under %s, with a new data key (every page sealed again with %s).\n"
                "Start the server with --key-file %s. Backups taken before still need the old key file: keep it "
                "with them until they are no longer needed, or take a new backup now.\n",
                rotated->resumed ? "rotation taken up again: " : "", data.c_str(), rotated->key_file.c_str(),
                rotated->cipher.c_str(), rotated->key_file.c_str());
    return 0;
}

// `tsunagu-server report ...`: the indicator report straight from the store.
int report_command(int argc, char** argv) {
    int exit_code = 0;
    auto options = parse_options(argc, argv, "report", {"--data", "--key-file", "--postgres", "--tenant", "--fy"},
                                 {"--csv", "--json"}, exit_code);
    if (!options) return exit_code;
    const std::string format = options->flags.count("--json") ? "json" : options->flags.count("--csv") ? "csv" : "text";
    const std::string fy_text = options->value("--fy");
    if (fy_text.empty()) {
        std::fputs("tsunagu-server report: give the fiscal year, e.g. --fy 2020 (April 2020 to March 2021)\n", stderr);
        return 2;
    }
    int fy = -1;
    try {
        std::size_t used = 0;
        fy = std::stoi(fy_text, &used);
        if (used != fy_text.size()) fy = -1;
    } catch (const std::exception&) {
        fy = -1;
    }
    if (fy < 2000 || fy > 2100) {
        std::fprintf(stderr, "tsunagu-server report: --fy takes a fiscal year such as 2020, got %s\n", fy_text.c_str());
        return 2;
    }
    const std::string data = options->value("--data", "data"), key_file = options->value("--key-file"),
                      postgres = options->value("--postgres"), tenant = options->value("--tenant", "default");
    auto report = tsunagu::api::read_indicator_report(data, key_file, fy, postgres, tenant);
    if (!report) {
        std::fprintf(stderr, "tsunagu-server report: %s\n", report.status().message().c_str());
        return 1;
    }
    std::string out;
    if (format == "json") out = tsunagu::domain::report_rows_to_json(*report).dump(2) + "\n";
    else if (format == "csv") out = tsunagu::domain::report_to_csv(*report);
    else out = tsunagu::domain::report_to_text(*report);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

// glibc returns freed memory at the top of a heap to the kernel once more than 128 KiB are free
// (M_TRIM_THRESHOLD), and takes it back page by page, each a page fault. A reader connection's
// page cache is freed and refilled at every read transaction after a commit, and concurrent pulls
// walking the log did that so often that trimming and faulting cost more than the walks (the
// embedded 500-device scale cell of server_bench: 752 changes/s; 5,026 with a 256 MiB threshold).
// Memory freed stays with the process up to that much; the peak is unchanged.
constexpr int kTrimThresholdBytes = 256 * 1024 * 1024;

int main(int argc, char** argv) {
    // Every command here holds decrypted pages and keys: no core dump, no reading by a neighbour.
    if (!tsunagu::keep_memory_private()) {
        std::fprintf(stderr, "tsunagu-server: warning: cannot turn core dumps off (%s)\n", std::strerror(errno));
    }
    mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
    for (int i = 1; i < argc; ++i) {  // every command that takes --postgres
        const bool named = std::strcmp(argv[i], "--postgres") == 0 && i + 1 < argc;
        const char* value = named ? argv[i + 1] : std::strncmp(argv[i], "--postgres=", 11) == 0 ? argv[i] + 11 : nullptr;
        if (value == nullptr) continue;
        if (auto refused = tsunagu::api::check_postgres_option(value); !refused) {
            std::fprintf(stderr, "tsunagu-server: %s\n", refused.message().c_str());
            return 2;
        }
    }
    if (argc > 1 && std::strcmp(argv[1], "report") == 0) return report_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "backup") == 0) return backup_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "restore") == 0) return restore_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "rotate-key") == 0) return rotate_key_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "salvage") == 0) return salvage_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "verify-backup") == 0) return verify_backup_command(argc, argv);
    tsunagu::api::ServerConfig config;
    std::string cert, key;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "tsunagu-server: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (arg == "--data") config.data_dir = value();
            else if (arg == "--listen") config.listen_url = value();
            else if (arg == "--tls-cert") cert = value();
            else if (arg == "--tls-key") key = value();
            else if (arg == "--key-file") config.key_file = value();
            else if (arg == "--admin-password-file") config.admin_password_file = value();
            else if (arg == "--postgres") config.postgres = value();
            else if (arg == "--tenant") config.tenant = value();
            else if (arg == "--max-body") config.limits.max_body_bytes = std::stoul(value());
            else if (arg == "--workers") config.limits.worker_threads = std::stoul(value());
            else if (arg == "--quiet") config.log_requests = false;
            else if (arg == "--demo") config.demo = true;
            else if (arg == "--lock-after") config.lock_after = std::stoi(value());
            else if (arg == "--compact-every") config.compact_every_seconds = std::stoll(value());
            else if (arg == "--keep-history") config.keep_history_days = std::stoll(value());
            else if (arg == "--keep-dismissed") config.keep_dismissed_days = std::stoll(value());
            else if (arg == "--stale-after") config.stale_device_days = std::stod(value());
            else if (arg == "--backup-dir") config.backups.folder = value();
            else if (arg == "--backup-every") config.backups.every_hours = std::stod(value());
            else if (arg == "--backup-keep") config.backups.keep = std::stoul(value());
            else if (arg == "--backup-keep-weekly") config.backups.keep_weekly = std::stoul(value());
            else if (arg == "--backup-keep-monthly") config.backups.keep_monthly = std::stoul(value());
            else if (arg == "--backup-passphrase-file") config.backups.passphrase_file = value();
            else if (arg == "--backup-copy-command") config.backups.copy_command = value();
            else if (arg == "--backup-copy-timeout") config.backups.copy_timeout_seconds = std::stod(value());
            else if (arg == "--weak-password-hashing-for-benchmarks") {
                // Thousands of simulated devices sign in: Argon2id at its floor. Never in production.
                config.pwhash_ops = 1;
                config.pwhash_mem = 8192;
                std::fputs("tsunagu-server: WARNING: weak password hashing (benchmarks only)\n", stderr);
            }
            else if (arg == "--help" || arg == "-h") { usage(); return 0; }
            else {
                std::fprintf(stderr, "tsunagu-server: unknown option %s\n", arg.c_str());
                usage();
                return 2;
            }
        } catch (const std::exception&) {
            std::fprintf(stderr, "tsunagu-server: %s needs a number\n", arg.c_str());
            return 2;
        }
    }
    if (!(config.stale_device_days >= 0 && config.stale_device_days <= 36'500)) {
        std::fputs("tsunagu-server: --stale-after takes a number of days from 0 (never) to 36500\n", stderr);
        return 2;
    }
    if (cert.empty() != key.empty()) {
        std::fputs("tsunagu-server: give both --tls-cert and --tls-key, or neither\n", stderr);
        return 2;
    }
    if (!cert.empty()) config.tls = tsunagu::api::TlsFiles{cert, key};

    // Block the stop signals before any thread starts, so only sigwait below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // At most one malloc arena per worker thread (the threads that allocate most: SQLite, JSON).
    // glibc's default is 8 per core, each keeping what its threads freed (see kTrimThresholdBytes):
    // server_bench's 50 devices on 2 cores peaked at 43.2-47.3 MB with it and 41.8-42.0 MB with
    // 8, at the same rate; on a machine with many cores the default would multiply that margin.
    mallopt(M_ARENA_MAX, static_cast<int>(std::clamp<std::size_t>(config.limits.worker_threads, 2, 64)));
    auto started = tsunagu::api::start_server(config);
    if (!started) {
        std::fprintf(stderr, "tsunagu-server: %s\n", started.status().message().c_str());
        return 1;
    }
    if (config.postgres.empty()) {
        std::printf("tsunagu-server listening on %s (store: %s/tsunagu.db, encrypted)\n",
                    started->server->url().c_str(), config.data_dir.c_str());
    } else {
        // The connection string may hold a password: it is not printed.
        std::printf("tsunagu-server listening on %s (store: PostgreSQL, tenant \"%s\", contents sealed)\n",
                    started->server->url().c_str(), config.tenant.c_str());
    }
    if (started->first_admin_from_file && started->demo_guide.empty()) {
        std::printf(started->first_admin_again
                        ? "administrator \"admin\" has not signed in since the first start: password set from %s\n"
                        : "first start: administrator \"admin\" created with the password in %s\n",
                    config.admin_password_file.c_str());
    }
    if (started->first_admin_password && started->demo_guide.empty()) {
        if (started->first_admin_again) {
            std::printf("administrator \"admin\" has not signed in since the first start: new one-time password "
                        "%s\n(shown once; any shown before no longer works; sign in and change it)\n",
                        started->first_admin_password->c_str());
        } else {
            std::printf("first start: administrator \"admin\" created with one-time password %s\n"
                        "(shown once; sign in and change it)\n",
                        started->first_admin_password->c_str());
        }
    }
    if (!started->demo_guide.empty()) {
        std::printf("%s(kept in %s)\n", started->demo_guide.c_str(), started->demo_accounts_file.c_str());
    } else if (!started->demo_accounts_file.empty()) {
        std::printf("demo organisation: sign-in details are in %s\n", started->demo_accounts_file.c_str());
    }
    std::fflush(stdout);

    int received = 0;
    sigwait(&stop_signals, &received);
    std::fprintf(stderr, "tsunagu-server: %s received, finishing requests in flight\n",
                 received == SIGINT ? "SIGINT" : "SIGTERM");
    started->server->stop();
    return 0;
}
