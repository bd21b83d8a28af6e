// tsunagu-server as a library: start it over a data folder, stop it. Used by the executable, the
// integration tests and the benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "api/http.h"
#include "crypto/salvage.h"
#include "crypto/status.h"
#include "domain/indicators.h"

namespace tsunagu::api {

struct ServerConfig {
    std::string data_dir = "data";
    std::string listen_url = "http://127.0.0.1:8080";
    // Set: no listener starts (listen_url's host is still checked; tls and limits are unused).
    // The server's request handler is handed to this function instead, to call in process as the
    // listener's workers would, from any thread, until the server stops. For programs that drive
    // the whole server without a network: the fuzz target `requests` (tests/fuzz/).
    std::function<void(HttpHandler)> serve_in_process;
    std::optional<TlsFiles> tls;
    std::string key_file;  // "" = <data_dir>/tsunagu.key, created 0600 on first start
    // On first start, the first administrator's password is the first line of this file (0600, the
    // user's own; 12 characters or more) instead of a one-time password printed once: for a
    // deployment that hands it over from its secrets store, and keeps it out of the system
    // journal. Being the operator's own, it need not be changed at the first sign-in. Unused once
    // an administrator exists.
    std::string admin_password_file;
    // Set: the data lives in this PostgreSQL database (a libpq connection string) instead of the
    // encrypted SQLite store under data_dir, shared by every server started on it with the same
    // key file, which then seals the tenant's record contents (pg/pg_store.h).
    std::string postgres;
    std::string tenant = "default";
    ListenerLimits limits;
    // Argon2id cost for stored passwords; tests lower it, never production.
    std::uint64_t pwhash_ops = 2;
    std::size_t pwhash_mem = 19u << 20;
    bool log_requests = true;
    // Failed sign-ins before an account locks (the first few are free, then each waits longer).
    int lock_after = 10;
    // Create the demo organisation (api/src/demo_org.h) in a new data folder, then serve it. On a
    // folder that already holds the demo, just serve; on one holding other data, refuse.
    bool demo = false;
    // The web page's sessions end after this long without a request (tests shorten it).
    std::int64_t web_idle_seconds = 15 * 60;
    // Compaction (superseded history, tombstones every device has, the log lines no record needs)
    // runs this often, in slices between pushes; 0: only when an administrator asks.
    std::int64_t compact_every_seconds = 60 * 60;
    // What compaction could purge stays this long after the server took it: superseded history
    // entries (who changed which field, when) and deleted records, for supervisors to see.
    std::int64_t keep_history_days = 90;
    // Refused changes a supervisor dismissed are purged by compaction this long after the
    // dismissal (the audit trail keeps who dismissed which); 0: kept for ever.
    std::int64_t keep_dismissed_days = 365;
    // A device that has not synced for this long is flagged as stale (probably lost) to
    // administrators, in the devices list, the metrics and the compaction's log: until it is
    // revoked, compaction keeps its user's records' history for it. May be fractional; 0: never.
    double stale_device_days = 30;
    // The server's own backups of the embedded store (api/src/backups.h): into this folder, every
    // so often, keeping the newest few. Empty folder: none (tsunagu-server backup still works).
    struct ScheduledBackups {
        std::string folder;
        double every_hours = 24;      // may be fractional
        std::size_t keep = 7;
        std::size_t keep_weekly = 4;   // and the newest of each of this many recent weeks
        std::size_t keep_monthly = 0;  // and of this many recent months
        std::string passphrase_file;  // "": sealed under the key file
        // Run on each new backup, its path as $1, to copy it off the machine; "": none.
        std::string copy_command;
        double copy_timeout_seconds = 600;  // killed when it runs longer
    } backups;
};

class Server {
public:
    virtual ~Server() = default;
    // Stops accepting, finishes requests in flight, closes the store. Idempotent.
    virtual void stop() = 0;
    virtual const std::string& url() const = 0;
};

// A password inside a --postgres connection string would be on the command line, which every
// local user can read (/proc/PID/cmdline): refused, saying where libpq takes it from instead.
Status check_postgres_option(const std::string& conninfo);

struct StartedServer {
    std::unique_ptr<Server> server;
    // Set on first start only: the administrator's one-time password, to print once (none when
    // it came from ServerConfig::admin_password_file: then first_admin_from_file is set).
    std::optional<std::string> first_admin_password;
    bool first_admin_from_file = false;
    // The first administrator existed already, but nobody had signed in as them: their password
    // was set anew (see above), as a start that failed after the first may never have shown it.
    bool first_admin_again = false;
    // With ServerConfig::demo: how to sign in to the demo (also kept, 0600, in the file below).
    std::string demo_guide;
    std::string demo_accounts_file;
};

// Opens (or on first start creates) the encrypted store under config.data_dir and listens.
// Refuses plain HTTP on anything but a loopback address.
Result<StartedServer> start_server(const ServerConfig& config);

// The yearly indicator report of the store under `data_dir`, read directly (no server needed; a
// running server may hold the same store). `key_file` "" = <data_dir>/tsunagu.key. With
// `postgres` set, the report of that PostgreSQL database's `tenant` instead.
Result<domain::IndicatorReport> read_indicator_report(const std::string& data_dir, const std::string& key_file,
                                                      int fiscal_year, const std::string& postgres = "",
                                                      const std::string& tenant = "default");

// Backs up the embedded store under `data_dir` to `target` (which must not exist): a consistent
// copy, taken while a server may be running on it, sealed with XChaCha20-Poly1305 under a fresh
// data key wrapped by the same key file (`key_file` "" = <data_dir>/tsunagu.key), so that it
// restores on any machine that has the key file and nowhere else. The copy is checked (opened and
// integrity-checked) before this answers; a process killed meanwhile leaves no file at `target`.
// A server on PostgreSQL is backed up with pg_dump instead (record contents stay sealed in it).
struct BackupWritten {
    std::string path;
    std::uintmax_t bytes = 0;
};
// With `passphrase_file` (a 0600 file whose first line is the passphrase), the backup is sealed
// under that passphrase (Argon2id) instead: it then restores from the backup and the passphrase
// alone, on a new machine, without the key file that died with the old one.
Result<BackupWritten> back_up_data(const std::string& data_dir, const std::string& key_file, const std::string& target,
                                   const std::string& passphrase_file = "");

// Restores a backup made by back_up_data into `data_dir`, which must hold no store (a server is
// then started on it): checked whole first (a wrong key, a tampered or truncated file are refused
// and nothing is written), then re-sealed with a fresh data key and this machine's fastest cipher
// under the same key file, and moved into place only once complete. The backup is only read.
// Sequence numbers then jump past any a device may have pulled from the lost server
// (sync::Upstream::after_restore), so devices that synced after the backup miss nothing new.
// A backup sealed under a passphrase (`passphrase_file`) is re-sealed under the key file, which
// is created (0600) when there is none yet.
Status restore_data(const std::string& backup, const std::string& data_dir, const std::string& key_file,
                    const std::string& passphrase_file = "");

// Salvages the embedded store under `data_dir`, which the server refuses to start on as damaged
// (corrupt page N), into `new_dir`, which must hold no store: every commit its files still hold
// (crypto/salvage.h), the damaged files only read. Where pages fell back to older versions,
// sequence numbers jump as after a restore, so that devices which pulled what was lost are sent it
// again rather than skip what is numbered anew. The default key file (`key_file` "") is copied into
// `new_dir`; a named one opens both. Answers the salvage's report.
Result<SalvageReport> salvage_data(const std::string& data_dir, const std::string& new_dir, const std::string& key_file);

// Checks a backup made by back_up_data without restoring it (a drill, or an off-site copy after
// its transfer): read whole under its key (`key_file`, or `passphrase_file` for one sealed under a
// passphrase), from a temporary copy so that the backup itself is only read. Answers what it holds.
struct BackupContents {
    std::uintmax_t bytes = 0;
    std::map<std::string, std::int64_t> records;  // records (not deleted) by collection
    std::int64_t accounts = 0;
    // Where and when it comes from, so that a backup swapped for an older one, or for another
    // installation's, shows: the sequence number and time of the last change the server took
    // (0: none), and the server's own replica id (one per installation).
    std::int64_t last_sequence = 0;
    std::int64_t last_change_ms = 0;
    std::string installation;
};
Result<BackupContents> verify_backup(const std::string& backup, const std::string& data_dir,
                                     const std::string& key_file, const std::string& passphrase_file = "");

// After a PostgreSQL database was restored from a dump (pg_restore or psql), before any server
// starts on it: what restore_data does for the embedded store, the jump in sequence numbers and a
// new epoch, for `tenant`, so that phones miss nothing new and send again what the dump lacked.
// The key file is the servers' (`key_file` "" = <data_dir>/tsunagu.key).
Status mark_restored_database(const std::string& postgres, const std::string& tenant, const std::string& data_dir,
                              const std::string& key_file);

// Seals the embedded store under `data_dir` with a new key file, `new_key_file` (created 0600 when
// it does not exist; `key_file` "" = <data_dir>/tsunagu.key is the one in use), and a new data
// key: every page is sealed again, so the old key file opens nothing the store holds from then on
// (backups taken before still need it). No server may be running on the folder (its lock, see
// DataFolderLock, is checked; busy otherwise). A rotation killed part way is taken up again by
// running it again with the same files; at every point one of the two key files opens the store.
// A server on PostgreSQL is rotated with rotate_postgres_key.
struct KeyRotated {
    std::string key_file;
    bool resumed = false;  // the store already opened with the new key file
    std::string cipher;    // the page cipher now sealing it
};
Result<KeyRotated> rotate_key(const std::string& data_dir, const std::string& key_file,
                              const std::string& new_key_file);

// For a deployment on PostgreSQL: seals `tenant`'s records under a new data key, wrapped under
// `new_key_file` (created 0600 when missing) instead of the servers' key file (`key_file`, "" =
// <data_dir>/tsunagu.key), all or none (pg::reseal_tenant). No server may be running on the
// database (pg::ServerPresence; busy, naming how many, otherwise): servers started afterwards
// need the new key file, and whoever kept the old one and a copy of the database opens nothing
// written from then on. Run again after it succeeded, it changes nothing (`already`).
struct PostgresKeyRotated {
    bool already = false;    // the database was sealed under the new key file already
    std::size_t rows = 0;    // rows sealed anew
    std::size_t values = 0;  // values sealed anew
};
Result<PostgresKeyRotated> rotate_postgres_key(const std::string& postgres, const std::string& tenant,
                                               const std::string& data_dir, const std::string& key_file,
                                               const std::string& new_key_file);

}  // namespace tsunagu::api
