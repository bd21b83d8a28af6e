// Backups the server takes of its own embedded store: on a schedule that survives restarts, into
// one folder, keeping the newest few, and when an administrator asks (POST /v1/admin/backups).
//
// Each is a file written by back_up_data (api/server.h): a consistent copy taken while requests go
// on, sealed under the key file or a passphrase, read back whole before it counts, and named for
// the moment it was taken (UTC, to the millisecond; just after the newest one when the wall clock
// stepped back), so that names sort as the backups were taken:
//   <folder>/tsunagu-20261205-031500-123.backup
// The next scheduled backup is due one period after the newest file in the folder, so that a
// restarted server neither skips one nor (restarting in a loop) rotates good ones away. A failed
// run is logged and counted and tried again sooner (after a tenth of the period, at most an hour).
// Only files this schedule names are ever removed, and only in a folder claimed by this
// installation (<folder>/.tsunagu-installation holds its id).
//
// Off the machine: with a copy command (--backup-copy-command), each new backup is handed to it
// (api/src/shell_command.h), one at a time on a thread of its own, so that neither the schedule
// nor an administrator's request waits for the network. A copy that fails is logged, counted and
// shown; the backup stays in the folder, and the next backup is copied in its turn. When the next
// run finds nothing changed (so takes none), the newest is handed to the command again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"
#include "api/src/backup_retention.h"
#include "api/src/data_folder.h"
#include "api/src/observability.h"
#include "api/src/periodic.h"
#include "crypto/store.h"
#include "crypto/unique_fd.h"

namespace tsunagu::api {

struct BackupPolicy {
    std::string folder;  // "": the server takes no backups of its own
    std::chrono::milliseconds every{24LL * 60 * 60 * 1000};
    std::size_t keep = 7;          // the newest this many stay,
    std::size_t keep_weekly = 4;   // and the newest of each of this many recent weeks,
    std::size_t keep_monthly = 0;  // and of this many recent months; the rest are removed
                                   // (api/src/backup_retention.h)
    std::string passphrase_file;  // "": sealed under the key file
    // The data is in PostgreSQL, which is backed up with pg_dump: never a folder here.
    bool postgres = false;
    // Run on each new backup, its path as $1 (e.g. rsync "$1" backup-host:/srv/tsunagu/); "": none.
    std::string copy_command;
    std::chrono::milliseconds copy_timeout{10LL * 60 * 1000};  // killed when it runs longer
};

// A backup in the folder.
struct BackupFile {
    std::string name;  // "tsunagu-20261205-031500-123.backup"
    std::uintmax_t bytes = 0;
    std::int64_t taken_at_ms = 0;  // from its name
    // Why the rotation keeps it ("newest", "weekly", "monthly"); set by list().
    std::vector<std::string> kept_as;
};

// Why a failed backup (or copy) failed, and when.
struct BackupFailure {
    std::int64_t at_ms = 0;
    std::string reason;
};

// Where the off-site copies stand.
struct CopyState {
    std::size_t waiting = 0;              // backups not yet handed to the command
    std::string last_copied;              // the newest copied, and when
    std::int64_t last_copied_at_ms = 0;
    std::optional<BackupFailure> last_failure;  // since the last copy that worked
};

// A passphrase file fit to seal backups (0600, one line of 12 characters or more), or why not.
Status check_passphrase_file(const std::string& path);

// Opens the embedded store under `data_dir` as a running server has it (WAL, never created), with
// the key file (`key_file` "" = <data_dir>/tsunagu.key), which is handed back in `key` when given.
// The data folder's lock taken shared, for a command that opens the live store beside a running
// server (backup, report): busy, saying `doing` once a rotation, restore or salvage has finished;
// none when the folder holds no store (nothing to guard: the command says so, or reads PostgreSQL).
Result<std::optional<DataFolderLock>> share_data_folder(const std::string& data_dir, const std::string& doing);
Result<Store> open_live_store(const std::string& data_dir, const std::string& key_file,
                              std::optional<KeySource>* key = nullptr);

class Backups {
public:
    Backups(Metrics& metrics, std::string data_dir, std::string key_file, BackupPolicy policy);
    ~Backups();
    Backups(const Backups&) = delete;
    Backups& operator=(const Backups&) = delete;

    // At start-up, before start(): creates the folder (0700), proves it writable, checks the
    // passphrase file, claims the folder for `installation` (the server's replica id, which a
    // restore of its backups keeps), and removes what a backup killed part way left. An error says
    // what to fix. A folder another installation claimed is refused: each prunes its own folder
    // by name, and two in one folder would rotate each other's backups away. So is one another
    // server of this installation (a restored copy) is using now.
    Status prepare(const std::string& installation);
    bool enabled() const { return !policy_.folder.empty(); }
    const BackupPolicy& policy() const { return policy_; }

    // Takes one now (after the one in progress, if any), then removes the oldest beyond `keep`.
    // Logged (file name, size, time; nothing of the content) and counted either way.
    Result<BackupFile> run();
    // What the schedule runs: run(), unless nothing was written to the store since the last
    // backup this object took, whose file is still in the folder. Then it answers nullopt and
    // takes none, so that `keep` backups are that many different states of the data (an idle
    // weekend does not rotate the week's backups away for copies of Friday's), and nothing new
    // is copied off the machine. Logged and counted as unchanged. "Nothing was written" is
    // SQLite's data_version, on a connection of this object's own: any commit by any connection
    // or process changes it, so a doubt always takes a backup.
    Result<std::optional<BackupFile>> run_if_changed();
    // The backups in the folder, newest first, each with why the rotation keeps it (none: the
    // next rotation removes it).
    Result<std::vector<BackupFile>> list() const;
    RetentionPolicy retention() const { return {policy_.keep, policy_.keep_weekly, policy_.keep_monthly}; }
    std::optional<BackupFailure> last_failure() const;
    // When the schedule last found the data as the newest backup holds it, and that backup's name
    // (nullopt when it has not, since the last backup it took).
    struct Unchanged {
        std::int64_t at_ms = 0;
        std::string backup;
    };
    std::optional<Unchanged> last_unchanged() const;
    bool copies() const { return !policy_.copy_command.empty(); }
    CopyState copy_state() const;
    // When the schedule takes the next one (unix ms), once started.
    std::int64_t next_at_ms() const;

    // Runs the schedule (and the copier) until stop(). Idempotent; no-op when not enabled.
    // stop() kills a copy in progress: it is not waited for.
    void start();
    void stop();

private:
    std::chrono::milliseconds run_scheduled();
    // Checks that a backup can be taken here: ok, or conflict saying what to do instead.
    Status can_take() const;
    // Takes one, with running_ held by the caller; `version` is data_version() read before it
    // (a write during the copy then makes the next run take another).
    Result<BackupFile> take(const Result<std::int64_t>& version);
    // The store's data_version on the watching connection (opened on first use), with running_.
    Result<std::int64_t> data_version();
    // Removes the backups the rotation keeps for no reason; answers the folder's backups as listed
    // before (empty when it could not be listed), each with why it is kept.
    std::vector<BackupFile> prune();
    void copy_later(const std::string& name);
    // Whether `name` was the last copied, waits to be copied, or is being copied.
    bool copied_or_waiting(const std::string& name) const;
    void copy_loop();

    Metrics& metrics_;
    const std::string data_dir_, key_file_;
    const BackupPolicy policy_;
    std::mutex running_;  // one backup at a time; guards the three below
    std::optional<Store> watcher_;  // reads nothing but data_version
    std::optional<std::int64_t> backed_up_version_;  // data_version when the last backup began
    std::string backed_up_name_;                     // that backup's file
    mutable std::mutex state_;
    std::optional<BackupFailure> last_failure_;  // with state_
    std::optional<Unchanged> last_unchanged_;    // with state_
    std::int64_t next_at_ms_ = 0;                // with state_
    Periodic timer_;
    // The copier: backups to copy, oldest first (at most `keep`), with copy_mutex_.
    mutable std::mutex copy_mutex_;
    std::condition_variable copy_wake_;
    std::deque<std::string> to_copy_;
    std::string copying_;  // the one the command is copying now
    CopyState copied_;
    std::atomic<bool> stopping_{false};
    std::thread copier_;
    // The folder's claim, locked (flock) while this server runs: a second server of the same
    // installation (a restored copy started beside it) is refused too.
    UniqueFd claim_lock_;
};

}  // namespace tsunagu::api
