// The device library: what a field worker's phone runs. An encrypted local replica (opened with
// the worker's passphrase), offline edits queued in an outbox, and a sync loop against
// tsunagu-server that resumes cleanly after a cut at any point.
//
// Thread safety: a Device is one replica on one Store; use it from one thread at a time.
// Processes: several may have one replica open at once (the app, `tsunagu` commands), each through
// its own Device. Each open Device holds the replica's lock (HOME/replica.lock) shared until it is
// destroyed, or its process dies; what replaces or erases the replica file (change_passphrase, the
// erasure of a revoked device, salvage) needs it alone and is refused as busy, changing nothing,
// while anyone else has it open: whoever kept the old file open would lose all it committed after.
// Errors: expected failures are values (Status/Result), never exceptions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/salvage.h"
#include "crypto/status.h"
#include "crypto/store.h"
#include "sync/change.h"
#include "sync/engine.h"
#include "sync/schema.h"

namespace tsunagu::client {

class HttpTransport;  // clients/src/http_transport.h

// How a request that could not reach the server (or got 502/503/504) is retried: exponential
// backoff from `initial_delay`, doubling up to `max_delay`, each wait drawn in [delay/2, delay)
// ("equal jitter"), at most `max_attempts` tries per request; an answer that asks for a longer
// wait (Retry-After, in seconds) gets it, up to `max_delay`. `sleep` and `random` are injected
// by tests; empty means std::this_thread::sleep_for and a uniform generator in [0, 1).
// `sleep` and `random` may be called from several threads at once: a sync keeps several pushes in
// flight, and each backs off on its own.
struct RetryPolicy {
    int max_attempts = 5;
    std::chrono::milliseconds initial_delay{250};
    std::chrono::milliseconds max_delay{8000};
    std::function<void(std::chrono::milliseconds)> sleep;
    std::function<double()> random;
};

// Makes the transport to a server URL. Empty means the cpprestsdk transport.
using TransportFactory = std::function<std::unique_ptr<HttpTransport>(const std::string& url)>;

struct DeviceOptions {
    // Argon2id cost used when the replica is created (an existing replica keeps its own).
    KdfParams kdf = KdfParams::phone();
    RetryPolicy retry;
    TransportFactory transport;
    // WAL by default (readers beside the writer, one sync per commit). Rollback suits a file
    // system without shared memory for WAL's index; it is chosen when the replica is opened.
    JournalMode journal_mode = JournalMode::wal;
    std::size_t push_batch = 1000;  // change sets per push request (the server takes at most 1000)
    std::size_t pull_page = 1000;   // records per pull page (the server gives at most 5000)
    // The phone's clock, which may be wrong by hours or days: the server measures its skew from
    // each push and corrects the stamps it finds too far ahead (tests give a wrong one).
    sync::WallClock wall = sync::system_wall_clock();
    // The machine's boot clock: stamps follow the server's time by it between syncs (see
    // sync::DeviceOptions::boot). Tests that move `wall` by hand give one that moves with it, or none.
    sync::BootClock boot = sync::system_boot_clock();
};

// Where a sync is. For pushes `total` is exact (the outbox at the start of the sync). For pulls
// the server does not say how many records remain, so `total` is `done` plus one more page while
// the server reports more: an estimate that only grows.
struct SyncProgress {
    enum class Phase { push, pull };
    Phase phase = Phase::push;
    std::size_t done = 0;
    std::size_t total = 0;
};
using ProgressCallback = std::function<void(const SyncProgress&)>;

// A change the server refused (validation, out of scope): kept in the outbox, reported.
struct RefusedChange {
    std::string change_id;
    std::string record;
    std::string collection;
    ErrorCode code = ErrorCode::ok;
    std::string reason;  // the server's words, in English
    // The server's word for the check that refused it, for an app to explain in its reader's
    // language: "outside_scope", "rule" (e.g. the record was approved and is locked),
    // "invalid_value", "held_behind", "wrong_collection", "malformed", "not_yours",
    // "already_exists" (a create naming another author's record), "no_record" (a change to a
    // record the server no longer holds: deleted there and purged; discard it); "" from a
    // server older than this library. A newer server may send other words.
    std::string cause;
};

// One of this worker's refused changes as the server keeps it (from any of her devices): what a
// new phone learns of the work its predecessor left behind. Never the change's content.
struct KeptRefusal {
    std::string change_id;
    std::string record;
    std::string collection;
    std::string device_id;     // the device that sent it
    bool this_device = false;  // sent from this one (it is also in refused())
    ErrorCode code = ErrorCode::ok;
    std::string cause;   // as RefusedChange::cause
    std::string reason;  // the server's, in English
    std::int64_t first_refused_at = 0, last_refused_at = 0;  // unix seconds
    std::int64_t times = 0;
    bool dismissed = false;
    std::string comment;  // the supervisor's, on dismissal
};

struct SyncReport {
    std::size_t pushed = 0;    // change sets the server acknowledged (accepted or duplicate)
    std::size_t pulled = 0;    // records received
    std::size_t evicted = 0;   // records removed because they left this worker's scope
    std::size_t retries = 0;   // requests repeated after a network failure
    // Changes the server had acknowledged, sent again because it was restored from a backup that
    // may predate them (see sync::DeviceOptions::keep_acknowledged_ms); those it still had are
    // answered as duplicates.
    std::size_t resent = 0;
    // Values only this replica held of records the server lost with a restore (a colleague's edit
    // whose phone is gone), sent again as this user's changes (sync::PullReport::recovered).
    std::size_t recovered = 0;
    std::vector<RefusedChange> refused;          // newly refused in this sync
    std::vector<sync::Conflict> new_conflicts;   // conflicts this replica did not hold before
    // The unsent changes (their ids) of records evicted in this sync: kept on the device, held
    // (DeviceStatus::held, outbox() names their records) until the record is in scope again.
    std::vector<std::string> evicted_pending;
    // The server said this device is revoked: the replica's key and files were destroyed. Every
    // later call on this Device fails; open the home again to start afresh.
    bool wiped = false;
    // When wiped: the changes the server had not accepted that went with the replica (a revoked
    // phone keeps no care records, its unsent work included). Tell the worker and her supervisor.
    // None when they could not be counted (the replica was erased all the same).
    std::optional<std::size_t> wiped_unsent = 0;
};

// "3 change(s)", or words saying how many could not be counted: for the messages that tell a
// worker what an erased replica took with it.
std::string unsent_changes_text(const std::optional<std::size_t>& unsent);

struct DeviceStatus {
    bool signed_in = false;
    std::string server_url;
    std::string username;
    std::string user_id;
    std::string role;
    std::string device_id;
    std::size_t pending = 0;    // outbox changes waiting to be pushed (unsent or sent unanswered)
    std::size_t refused = 0;    // outbox changes the server refused
    std::size_t held = 0;       // outbox changes of evicted records
    std::size_t conflicts = 0;  // open conflicts on this replica
    std::int64_t cursor = 0;    // the server sequence number this replica has pulled up to
    std::int64_t last_sync_ms = 0;  // when the last complete sync finished (0 = never)
    // How far the server's clock is ahead of this device's (negative: behind), as the last sync
    // showed; none before the first. Changes are stamped with the corrected time, so a wrong clock
    // loses no work, but the worker should set it right (the administrator sees it too).
    std::optional<std::int64_t> clock_offset_ms;
};

class Device {
public:
    // Whether folder `home` holds a replica (for a command that must not make one: a mistyped
    // passphrase would otherwise seal a new, empty replica under the typo). io_error when the
    // folder cannot be looked into.
    static Result<bool> exists(const std::string& home);
    // Opens the replica in folder `home` (created if missing, mode 0700; a folder that exists keeps
    // its mode), creating the encrypted
    // store on first use with a data key wrapped under `passphrase`, which must then have at least
    // 8 characters (invalid_argument otherwise; a replica made before keeps opening with its own).
    // A wrong passphrase fails with ErrorCode::wrong_key and changes nothing on disk; busy while
    // another process changes the replica as a whole (its passphrase, a salvage): try again after.
    static Result<Device> open(const std::string& home, std::string_view passphrase,
                               DeviceOptions options = {});
    // Rebuilds the replica in `damaged_home`, which open() refuses as damaged (ErrorCode::corrupt),
    // into a new replica in `new_home` (which must hold none), with every commit its files still
    // hold: the session comes along, and with it the work not yet synced. The damaged files are
    // only read, never changed. Where the report is not complete() (pages fell back to older
    // versions), the new replica pulls everything again at its next sync, so that what was synced
    // comes back whole from the server. Then open(new_home, passphrase) and sync. Fails with
    // wrong_key, or corrupt naming the pages when the files hold no consistent replica any more;
    // busy while either home's replica is open elsewhere. (Each home gains the lock files.)
    static Result<SalvageReport> salvage(const std::string& damaged_home, const std::string& new_home,
                                         std::string_view passphrase, DeviceOptions options = {});
    Device(Device&&) noexcept;
    Device& operator=(Device&&) noexcept;
    ~Device();

    // Signs in to the server at `server_url`, registering this device (or reusing its
    // registration). The session token, URL, user and device id are kept inside the encrypted
    // replica. A replica belongs to one user: signing in as another user is refused (forbidden).
    Status sign_in(const std::string& server_url, const std::string& username,
                   std::string_view password, const std::string& device_name = "tsunagu device");

    const sync::Schema& schema() const;
    // The server said this device is revoked, and its replica was erased (by sync() or
    // refused_on_server()): every later call fails with forbidden.
    bool wiped() const;

    // Offline edits, validated against the schema (errors name the field) and queued.
    // All need a signed-in replica (the replica's user authors the changes).
    Result<std::string> create(std::string_view collection, const sync::Json& fields);
    Status update(std::string_view record, const sync::Json& fields);
    Status remove(std::string_view record);
    Status resolve(std::string_view record, std::string_view field, const sync::Json& value);
    // The same, made from the record as the person read it (get()'s answer, kept while the form
    // or the conflict was on screen): what a sync brought since stays in conflict, never
    // overwritten or settled unseen (sync::AsRead).
    Status update(std::string_view record, const sync::Json& fields, const sync::AsRead& as_read);
    Status remove(std::string_view record, const sync::AsRead& as_read);
    Status resolve(std::string_view record, std::string_view field, const sync::Json& value,
                   const sync::AsRead& as_read);
    // Settles a conflict between an edit and a deletion (conflicts() says edit_vs_delete or
    // delete_vs_restore): the record stays deleted, the concurrent edits discarded knowingly, or
    // comes back with its current values. A record in such a conflict takes no resolve() of a field
    // before this.
    Status resolve_deletion(std::string_view record, sync::DeletionResolution resolution);

    // Reads. get() fails with not_found for an unknown record. list() keeps records whose fields
    // equal every entry of `filter` (for a list field: contain the value); deleted ones excluded.
    Result<sync::Record> get(std::string_view record);
    Result<std::vector<sync::Record>> list(std::string_view collection,
                                           const sync::Json& filter = sync::Json::object());
    Result<std::vector<sync::Conflict>> conflicts();
    // The changes the server refused that this device still keeps, oldest first, each with why
    // (a supervisor's dismissal comment included): to send again (retry_refused) or give up
    // (discard_refused).
    Result<std::vector<RefusedChange>> refused();
    // This worker's refused changes the server keeps for her supervisors, from all her devices,
    // newest first (open ones, or dismissed ones): on a new phone, what the old one left behind
    // (her supervisor can apply it once its cause is gone). Needs the network; a revoked device
    // is erased, as by sync().
    Result<std::vector<KeptRefusal>> refused_on_server(bool dismissed = false);
    Result<DeviceStatus> status();

    // Pushes the outbox in batches, then pulls pages until up to date (applying evictions).
    // Network failures are retried per RetryPolicy; when they persist the sync fails with
    // unavailable and a later sync resumes where this one stopped, losing and duplicating nothing.
    // A revoked device is wiped (see SyncReport::wiped), but only once no other process or Device
    // has the replica open: until then the sync fails busy, erasing nothing (sync again once it is
    // closed). An expired session fails with forbidden.
    Result<SyncReport> sync(const ProgressCallback& progress = {});

    // Makes every change the server refused due again at the next sync: after the server was
    // upgraded, or the client of a refused record joined this worker's caseload. (A change refused
    // for a record the server has changed since is due again on its own.) Returns how many.
    Result<std::size_t> retry_refused();

    // Gives up this device's refused changes to `record`: the worker takes the server's version
    // (the server keeps what was refused for the worker's supervisors). They leave the outbox, and
    // the next sync brings the record back as the server has it, with this device's other changes
    // to it on top; a record the server does not hold for this worker leaves the device. Returns
    // how many changes were discarded; not_found when the record has no refused change.
    Result<std::size_t> discard_refused(const std::string& record);

    // From then on only `next` opens the replica (Argon2id, as at open), under a new data key:
    // the replica is re-encrypted into a copy beside it that replaces it in one rename, so the
    // old passphrase with any old copy of the replica's key header (a backup of the phone, a
    // copied replica) opens nothing the replica holds from then on. It takes two key derivations
    // and a copy of the replica (room for it on disk too); a crash at any point leaves the
    // replica whole under one of the two passphrases. `current` is checked first (wrong_key,
    // nothing changed): an unlocked phone left on a table is not enough to change it. Works
    // offline, signed in or not.
    // `next` needs at least 8 characters, as for a new replica. busy, with nothing changed, while
    // another process (the app, a `tsunagu` command) or another Device has the replica open: it
    // would go on with the old file and lose what it commits; close it, then change.
    Status change_passphrase(std::string_view current, std::string_view next);
    // Changes the signed-in worker's password on the server; `current` is checked there (wrong:
    // forbidden, counted as a failed sign-in). The way out of a password an administrator set,
    // which opens nothing else until it is changed (sync fails with forbidden saying so). Every
    // other session of the account ends; this device's goes on. Needs the network.
    Status change_password(std::string_view current, std::string_view replacement);

    // The folder and database file of the replica.
    const std::string& home() const;
    std::string database_path() const;

    struct Impl;

private:
    explicit Device(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// JSON forms (for the C API and `tsunagu --json`). Never contain the session token.
void to_json(sync::Json& out, const RefusedChange& refused);
void to_json(sync::Json& out, const KeptRefusal& kept);
void to_json(sync::Json& out, const SyncReport& report);
void to_json(sync::Json& out, const DeviceStatus& status);

}  // namespace tsunagu::client

namespace tsunagu {
// A salvage's report: {"complete","pages","wal_frames","journal_records","damaged_versions",
// "older_versions","uncommitted_versions","lost_pages","unplaced_frames","reindexed","summary"}.
void to_json(sync::Json& out, const SalvageReport& report);
}  // namespace tsunagu
