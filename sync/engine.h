// The sync engine: one replica of Tsunagu's records over an encrypted Store, in one of two roles.
//
//  - Upstream (the server): accepts pushes from many devices and users, gives every accepted
//    change set the next sequence number, and serves each user's devices pulls filtered by scope.
//  - Device (a phone): saves local edits and queues them in an outbox, pushes the outbox in
//    batches, pulls pages after its cursor, and evicts what left its user's scope.
//
// Both merge with the rules of merge.h and validate with schema.h. Everything they exchange is a
// plain struct of protocol.h. Neither talks to a network: the caller carries the structs.
//
// Storage: the engine keeps its tables (named sync_*) in the given Store, which the caller owns and
// must keep open for the engine's lifetime. One engine per Store, used from one thread. Every
// public call is atomic: its own transaction, or, when the caller has one open, a savepoint of it
// (see with_transaction in crypto/store.h), so a server can commit a push with its audit entry.
// A record is one row, however many fields it has; an upstream also appends one change-log row per
// accepted change set (its history line, and what pulls walk in sequence order).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "crypto/store.h"
#include "sync/change.h"
#include "sync/hlc.h"
#include "sync/merge.h"
#include "sync/protocol.h"
#include "sync/schema.h"

namespace tsunagu::sync {

// How a delete that conflicts (with a concurrent edit or restore) is settled.
enum class DeletionResolution {
    keep_deleted,  // the record stays deleted; the concurrent edits are discarded knowingly
    restore,       // the record comes back with its current values
};

// How a pull page finds the change log's lines in the user's scope: by walking the log after the
// device's cursor, or, for the lines filed by key so far (UpstreamOptions::file_log_every), by
// looking up each of the user's scope keys and walking the rest. Both give the same page; which is
// cheaper depends on how far behind the device is and how many keys its user has.
enum class PullLines { automatic, walk_log, by_key };

struct UpstreamOptions {
    WallClock wall = system_wall_clock();
    // The upstream never adopts a device's clock reading further ahead of its own wall clock than
    // this. Such a change is not refused: it is re-stamped, with the device's skew (measured from
    // PushBatch::sent_at_ms) taken off, or else with the upstream's own time; in batch order.
    std::int64_t max_clock_ahead_ms = 60'000;
    // The upstream's own clock (kept in the store, shared by the servers of one database) is let
    // go of when it is further ahead of this machine's wall clock than this: the machine's clock
    // ran fast and was set back, or another server sharing the database runs fast. Stamps then
    // follow this machine's clock again (see take_clock_let_go_ms). Servers whose clocks differ
    // by less follow the one furthest ahead, as hybrid clocks do.
    std::int64_t max_stored_clock_ahead_ms = 10 * 60'000;
    // Upper bound on PullRequest::limit.
    std::size_t max_page = 5'000;
    IdSource ids = new_id;
    // The page cache open() gives the store's connection (never lowering a larger one): the
    // connection that writes wants the records' hot pages, and a miss costs a read and a
    // decryption. A server's read-only connections, whose caches SQLite drops at every commit of
    // another connection, need little.
    std::int64_t cache_kib = 32 * 1024;
    // How pull pages find their log lines (see PullLines): the engine chooses, unless a test or
    // a benchmark pins one way.
    PullLines pull_lines = PullLines::automatic;
    // The change log is filed by scope key in chunks of this many lines (on a SQLite store; 0:
    // never, and pulls always walk). A device further behind than the last chunk's end looks its
    // user's keys up to there, and walks only the rest.
    std::int64_t file_log_every = 4096;
    // Compaction leaves what it could purge for this long after the upstream took it (by its
    // clock, never by the change's stamp, which is its device's: counted from the first compaction
    // run after it took the change): a superseded history entry (who changed which field, when)
    // and a tombstone stay visible to supervisors for 90 days, whatever the devices' progress.
    std::int64_t keep_history_ms = 90LL * 24 * 60 * 60 * 1000;
};

struct CompactionReport {
    std::size_t history_purged = 0;     // history entries of superseded versions
    std::size_t tombstones_purged = 0;  // deleted records without open conflicts
    std::size_t log_purged = 0;         // scope-move and scope-removal entries
    std::size_t filed_purged = 0;       // lines filed by key that are no longer a record's latest

    CompactionReport& operator+=(const CompactionReport& more) {
        history_purged += more.history_purged;
        tombstones_purged += more.tombstones_purged;
        log_purged += more.log_purged;
        filed_purged += more.filed_purged;
        return *this;
    }
};

// Where a compaction run in slices is (Upstream::compact_some): start from a default one and call
// again until done. What each slice purged adds up in `report`.
struct CompactionProgress {
    enum class Phase { records, log, done };
    Phase phase = Phase::records;
    std::int64_t after = 0;  // the last record row (records) or sequence number (log) passed
    // The time UpstreamOptions::keep_history_ms is counted back from (unix ms); 0: the upstream's
    // wall clock. A server passes a reading that a clock set forward cannot rush (api/src/retention_clock.h).
    std::int64_t retention_now_ms = 0;
    CompactionReport report;
    bool done() const { return phase == Phase::done; }
};

// A device the upstream waits for before compacting (Upstream::replicas).
struct ReplicaProgress {
    std::string replica;
    std::string user;
    std::int64_t cursor = 0;   // the last sequence number it reported applied
    std::int64_t horizon = 0;  // the lower of its cursor and its outbox floor: compaction keeps what is above
    std::int64_t last_pull_ms = 0;  // the upstream's wall clock when its progress was last recorded
};

// A server's own rule on top of the schema and scopes, asked about each pushed change set that
// passed them: ok to accept it, or the reason to refuse it (the device keeps the change set in its
// outbox, refused, with that reason). `current` is the record's state before the change, or null
// for a record the upstream has not seen. Must not touch the engine.
using PushGate = std::function<Status(const ChangeSet& change, const RecordState* current)>;

class Upstream {
  public:
    // Opens (creating its tables on first use) the upstream replica kept in `store`. Fails when the
    // store holds a device replica, or the schema does not pass Schema::check(). Raises the
    // connection's page cache to UpstreamOptions::cache_kib and its WAL checkpoint interval to
    // 10,000 pages, unless the caller set them higher (or turned automatic checkpoints off).
    static Result<Upstream> open(Store& store, Schema schema, UpstreamOptions options = {});
    Upstream(Upstream&&) noexcept;
    Upstream& operator=(Upstream&&) noexcept;
    ~Upstream();

    const std::string& replica_id() const;
    const Schema& schema() const;
    // The last sequence number given out.
    Result<std::int64_t> sequence();
    // `seen` is shared by the connections of one server: the highest sequence number any of them
    // saw committed (note_committed_sequence, after each commit). A write that finds the store's
    // number below it refuses (corrupt, saying what to do): the database went back in time under
    // the running server (a dump loaded without `restore`), and numbers handed out again would be
    // skipped by devices that pulled past them. Unset: no such check.
    void share_sequence_seen(std::shared_ptr<std::atomic<std::int64_t>> seen);
    // After a commit, outside a transaction: notes the committed sequence number in the shared
    // `seen` (when set), below which no later write may find the store.
    Status note_committed_sequence();
    // How far ahead of this upstream's wall clock the clock it last let go of was (0: none since
    // the last call), and forgets it. A transaction that finds the stored clock further ahead than
    // UpstreamOptions::max_stored_clock_ahead_ms (this machine's clock ran fast and was set back,
    // or a server whose clock runs fast shares the database) stamps by the wall clock again and
    // tells devices that time: the changes stamped while it ran fast keep their stamps, and win
    // ties with concurrent edits made since (which stay beside them as conflicts). For the log.
    std::int64_t take_clock_let_go_ms();

    // Run once on a store just restored from a backup, before any device syncs with it. Devices
    // may have pulled, from the server that was lost, sequence numbers beyond the backup's; were
    // they given out again, those devices would never pull what gets them (it would be at or
    // below their cursors). So numbering jumps above any cursor a device can hold
    // (restored_sequence: by kRestoreGap, and above every number an earlier restore of the same
    // lineage gave), and every change from now on reaches every device in scope. The upstream also takes a new
    // epoch, which its answers carry: a device hearing it sends again the changes this upstream
    // had acknowledged that it still keeps (see DeviceOptions::keep_acknowledged_ms), since the
    // backup may predate them.
    Status after_restore();
    // Which life of this upstream answers: its replica id, or the id the last restore drew.
    const std::string& epoch() const;
    // 2^40: more changes than a server takes in a lifetime; 8,000 restores stay below 2^53, the
    // largest integer a JavaScript client reads exactly.
    static constexpr std::int64_t kRestoreGap = std::int64_t{1} << 40;
    // The clock's floor for a restore's numbering: 2^20 numbers a second since 1970 (2^50.7 in
    // 2026, 2^53 in 2242), far more than a server takes in a second.
    static constexpr std::int64_t kRestoreSeqPerSecond = std::int64_t{1} << 20;
    // The first sequence number after a restore of a backup whose log ends at `backup_seq`, made
    // when the server's clock reads `wall_ms`: above the backup's by kRestoreGap at least, and
    // above the clock's floor when the clock can be believed.
    static std::int64_t restored_sequence(std::int64_t backup_seq, std::int64_t wall_ms);

    // Applies a device's batch in one transaction. Each change set is accepted (next sequence
    // number), a duplicate of one accepted before (same outcome again, nothing changes), or refused
    // with a reason (validation; forbidden when it is not the pusher's own change or its record is
    // outside the pusher's scope). Fails as a whole only when storage fails.
    // A refused change set holds back the later ones of the batch for the same record.
    // `gate`, when set, may refuse change sets on the server's own grounds (see PushGate).
    Result<PushResult> push(const PushBatch& batch, const PushGate& gate = {});

    // The next page of in-scope records changed after request.after (each record once, with its
    // whole merged state), the records and scope keys that left the user's scope since, and
    // answers for the device's unanswered pushes. Read in one read transaction. The last page of a
    // pull also records the device's progress, which compaction waits for, when it is due; and a
    // device whose progress is not recorded (a new phone) has it recorded, at the cursor it
    // starts from, before its first page is read, so that compaction waits for a pull cut off
    // part-way, and for one under way: whatever its user loses meanwhile is still evicted when it
    // goes on. (Such a phone, lost for good, holds compaction back like any other until
    // forget_replica().)
    Result<PullPage> pull(const PullRequest& request);
    // pull() in its two steps, for a server that commits writes in groups: read_page() only
    // reads (one read transaction, no write lock) and sets PullPage::progress_due when
    // record_progress() should write the device's progress (pull() does so). Progress is
    // advisory: recorded late or lost, it only makes compaction wait longer. A device with no
    // progress recorded gets PullPage::unregistered and nothing else: record_progress() first,
    // committed, then read_page() again (pull() does so).
    Result<PullPage> read_page(const PullRequest& request);
    Status record_progress(const PullRequest& request);

    // Sets the scope keys whose records `user` may see and write (e.g. "client:<id>" for each
    // assigned client, "user:<self>" for their own records; "*" for everything). A key taken away
    // is reported to the user's devices on their next pull, which evict its records; a key added
    // brings its records on the next pull.
    Status set_scope(std::string_view user, std::vector<std::string> scope_keys);
    Result<std::vector<std::string>> scope_of(std::string_view user);
    // Stops waiting for a device (revoked or lost) before compacting.
    Status forget_replica(std::string_view replica);
    // The devices compaction waits for, with how far each has pulled and when it last recorded
    // progress (see ReplicaProgress): a device lost without being revoked shows here as one whose
    // last pull grows old, and holds back compaction of its user's records until forgotten.
    Result<std::vector<ReplicaProgress>> replicas();

    // Reads. get() answers nullopt for an unknown (or purged) record.
    Result<std::optional<Record>> get(std::string_view record);
    // Whether a record was ever filed under `scope_key`, even one purged since ("client:<id>" of a
    // client deleted and purged: its visits, kept for the reports, are still filed under it).
    Result<bool> scope_key_ever_used(const std::string& scope_key);
    Result<std::vector<Record>> list(std::string_view collection, bool include_deleted = false);
    Result<std::vector<Conflict>> conflicts();
    // Who changed which fields of a record, when, from which device: oldest first, until
    // compaction purges superseded entries.
    Result<std::vector<HistoryEntry>> history(std::string_view record);

    // Edits by people working on the server (a supervisor resolving a conflict). Validated, checked
    // against `user`'s scope, and sequenced like pushed changes. An update that changes nothing
    // makes no change set.
    Result<std::string> create(std::string_view user, std::string_view collection,
                               const Json& fields);
    Status update(std::string_view user, std::string_view record, const Json& fields);
    Status remove(std::string_view user, std::string_view record);
    Status resolve(std::string_view user, std::string_view record, std::string_view field,
                   const Json& value);
    Status resolve_deletion(std::string_view user, std::string_view record,
                            DeletionResolution resolution);

    // Purges history entries of superseded versions, and tombstones without open conflicts, once
    // every device whose user has the record's scope key has pulled past them and has nothing
    // older in its outbox, and they are older than UpstreamOptions::keep_history_ms; and scope
    // log entries every device has passed.
    Result<CompactionReport> compact();
    // The same in slices, each its own transaction, so that a server keeps taking pushes between
    // them: the next `records` records (their history and tombstones), then the log clean-up
    // `records` * 4 lines at a time. Each slice is correct alone (it reads the devices' progress
    // afresh), so a run may stop anywhere and start over later.
    Status compact_some(CompactionProgress& progress, std::size_t records);

    struct Impl;

  private:
    explicit Upstream(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

struct DeviceOptions {
    std::string user;  // the person signed in on this device; a replica belongs to one user
    WallClock wall = system_wall_clock();
    // The machine's boot clock (a device library passes system_boot_clock()). Once the device has
    // heard the upstream's time, its stamps follow that time as the boot clock counts on from it,
    // until the machine restarts: a wall clock set wrong after a sync (by hand, or a network's
    // wrong time) then stamps nothing wrong. Empty: the wall clock, corrected by the offset learnt.
    BootClock boot = {};
    // Outbox changes stamped further ahead of the upstream's time than this are re-stamped before
    // they are pushed. Use the upstream's max_clock_ahead_ms.
    std::int64_t max_clock_ahead_ms = 60'000;
    IdSource ids = new_id;
    // The replica's id when the store is new ("" = a fresh id). A device library passes the id the
    // server registered the device under, so the replica and the device are one identity. An
    // existing replica with another id is refused.
    std::string replica_id = {};
    // How long a change the upstream acknowledged stays in the device's journal (sync_journal), to
    // be sent again should the upstream be restored from a backup older than it (an answer with
    // another PushResult::epoch). Longer than the time between the server's backups. 0: not kept.
    std::int64_t keep_acknowledged_ms = 30LL * 24 * 3'600'000;
    // How long a record kept after a restore waits to be asked about again when the upstream
    // answered that it lacks some of it (ReleaseAnswers::not_held).
    std::int64_t release_ask_again_ms = 3'600'000;
};

enum class PendingState {
    unsent,   // not pushed yet
    sent,     // pushed, no answer yet: pushed again until answered
    refused,  // the upstream refused it (see reason); held with later changes to its record
    evicted,  // its record left the user's scope; held until a page brings it, or (when its scope key
              // was taken away) any record under that key, back
};
const char* pending_state_name(PendingState state) noexcept;

// How many outbox entries are in each state (Device::outbox_counts).
struct OutboxCounts {
    std::size_t to_push = 0;  // unsent or sent
    std::size_t refused = 0;
    std::size_t evicted = 0;
    std::size_t total() const noexcept { return to_push + refused + evicted; }
};

struct PendingChange {
    ChangeSet change;
    PendingState state = PendingState::unsent;
    ErrorCode code = ErrorCode::ok;  // refused: why
    std::string reason;
    std::string cause;  // refused: the upstream's word for the check (PushOutcome::cause), or ""
};

// A push batch (see Device::prepare_push_text) whose change sets are already JSON text.
struct PushBatchText {
    std::string replica;
    std::string user;
    std::int64_t sent_at_ms = 0;
    std::optional<std::int64_t> clock_offset_ms;  // as PushBatch::clock_offset_ms
    std::size_t count = 0;  // change sets in `changes`
    std::string changes;    // a JSON array of change sets (their wire form)
    // Where the batch ends in the outbox, the records it carries changes to, and the entries its
    // preparation marked sent: for the Device calls that take a batch back or prepare the next
    // one; opaque to callers.
    std::int64_t last_position = 0;
    std::set<std::string> records;
    std::vector<std::int64_t> marked;
};

struct PushReport {
    std::size_t acknowledged = 0;  // accepted or duplicate: removed from the outbox
    std::size_t refused = 0;
    std::size_t restamped = 0;  // local versions given the upstream's stamp
    // Acknowledged changes queued again, first, because the upstream answered with a new epoch
    // (it was restored from a backup): the next prepare_push() sends them.
    std::size_t resent = 0;
    // The answer came with a new epoch (see PullReport::restarted): the next pull starts again.
    bool restarted = false;
};

struct PullReport {
    bool stale = false;  // the page was not for this device's cursor: nothing applied
    std::size_t records = 0;
    // Records this device pushed that the page left out because it holds them as they are.
    std::size_t kept = 0;
    std::size_t acknowledged = 0;
    std::size_t refused = 0;  // outbox changes the page's acks refused: kept, with the reason
    std::size_t evicted = 0;  // released ones included
    // Records kept through the pull from the start after a restore, which the upstream answered
    // it holds whole and the user no longer sees (PullPage::release): let go, as evictions.
    std::size_t released = 0;
    // This page ended the pull from the start after a restore, which kept records to ask about
    // (PullRequest::release): pull again to ask.
    bool release_due = false;
    // Unsynced outbox changes whose records were evicted: kept, not pushed, until they return.
    std::vector<std::string> evicted_pending;
    std::size_t restamped = 0;  // outbox changes re-stamped after learning the upstream's time
    // As PushReport::resent: push again.
    std::size_t resent = 0;
    // Values only this device's copy held, of records a page brought (a restored upstream lost
    // them with the backup's later changes: a colleague's edit whose phone is gone), queued again
    // as this user's changes on top of the page's version (Device::Impl::keep_lost_heads): push
    // again. Nothing a copy kept through a restore is replaced unseen.
    std::size_t recovered = 0;
    // The page came from an upstream restored from a backup (a new epoch): nothing else of it
    // was applied, and the cursor went back to the start. Pull again, whatever `more` said: the
    // pull brings everything in scope again (what the backup's caseloads give the user) and takes
    // nothing off this device: until its last page, evictions are not applied (the log replays
    // old ones), and a page's version older than this device's copy is not taken (the copy holds
    // changes the upstream lost with the backup's later ones). The records it kept that no page
    // brought, or that a page evicted, are asked about in later pulls (PullRequest::release) and
    // go once the upstream answers that it holds every version of them and the user no longer
    // sees them.
    bool restarted = false;
};

class Device {
  public:
    // Opens (creating its tables on first use) the device replica kept in `store`. Fails when the
    // store holds an upstream, belongs to another user, or the schema is unsound. Raises the
    // connection's page cache to 8 MiB and its WAL checkpoint interval to 10,000 pages, unless the
    // caller set them higher (or turned automatic checkpoints off).
    static Result<Device> open(Store& store, Schema schema, DeviceOptions options);
    Device(Device&&) noexcept;
    Device& operator=(Device&&) noexcept;
    ~Device();

    const std::string& replica_id() const;
    // How far the upstream's clock is ahead of this device's own wall clock (negative: behind), as
    // the device last learnt it from an answer; none before it first heard the upstream's time.
    // The device stamps its changes with the corrected time, so a wrong clock loses no work; this
    // tells the worker (and, sent with each push, the administrator) to set the clock right.
    std::optional<std::int64_t> clock_offset_ms() const;
    const Schema& schema() const;
    // The sequence number up to which this device has applied the upstream's changes.
    Result<std::int64_t> cursor();
    // Forgets how far this device has pulled: the next pull starts again from the beginning and
    // brings every record in scope whole (none named as held), with this device's unsynced
    // changes re-applied on top. For a replica rebuilt from damaged files (crypto/salvage.h) some
    // of whose pages fell back to older versions: its records come back as the upstream has them.
    Status pull_everything_again();

    // Local edits, offline: validated against the schema (errors name the field), applied to the
    // replica and queued in the outbox, in one transaction. `fields` is an object of field values;
    // null clears a field. An update that changes nothing queues nothing.
    Result<std::string> create(std::string_view collection, const Json& fields);
    Status update(std::string_view record, const Json& fields);
    Status remove(std::string_view record);
    // Settles a concurrent_edit conflict on `field` with `value` (one of the competing values or a
    // new one). The resolution syncs and clears the conflict everywhere.
    Status resolve(std::string_view record, std::string_view field, const Json& value);
    // The same, made from the record as the person read it (`as_read`: get's answer, kept while the
    // form or the conflict was on screen). What arrived since is not overwritten unseen: a value
    // stays beside the update as a conflict, an edit beside the delete, a competing value beside
    // the resolution. The ones above act on the replica's record as it stands when they run.
    Status update(std::string_view record, const Json& fields, const AsRead& as_read);
    Status remove(std::string_view record, const AsRead& as_read);
    Status resolve(std::string_view record, std::string_view field, const Json& value, const AsRead& as_read);
    // Settles an edit_vs_delete or delete_vs_restore conflict.
    Status resolve_deletion(std::string_view record, DeletionResolution resolution);

    Result<std::optional<Record>> get(std::string_view record);
    Result<std::vector<Record>> list(std::string_view collection, bool include_deleted = false);
    Result<std::vector<Conflict>> conflicts();

    // The next batch to push (at most max_changes, oldest first; empty when nothing is due).
    // Its changes are marked sent; they stay in the outbox until the upstream answers.
    Result<PushBatch> prepare_push(std::size_t max_changes = 500);
    // The same batch as prepare_push(), marked sent the same way, with its change sets as the
    // JSON text of their array (as the outbox stores them: no parsing, no JSON document).
    Result<PushBatchText> prepare_push_text(std::size_t max_changes = 500);
    // The batch to send beside the batches `in_flight` (sent, not answered yet): the next due
    // entries after theirs, marked sent, leaving out every change that names a record they carry
    // changes to (its own record, or a value such as a visit's client) and the later changes that
    // build on those (they wait for a later batch). Sharing and needing none of their records, it
    // may be sent at once: their answers may come back in any order, and a refusal in one of them
    // (which holds back its record's later changes) concerns nothing in it. Lets a caller keep the
    // upstream busy.
    Result<PushBatchText> prepare_push_text(std::size_t max_changes,
                                            const std::vector<const PushBatchText*>& in_flight);
    Result<PushBatchText> prepare_push_text(std::size_t max_changes,
                                            const PushBatchText& in_flight);
    // Takes back a prepared batch that will not be sent: the entries its preparation marked sent
    // are unsent again.
    Status withdraw_push(const PushBatchText& batch);
    // Takes the upstream's answer: accepted and duplicate changes leave the outbox, refused ones
    // stay with their reason. Learns the upstream's time.
    Result<PushReport> apply_push_result(const PushResult& result);
    // Keeps change `refusal.change_id` as refused (with refusal's code, reason and cause) when the
    // upstream refused the request that carried it whole, without judging it (a change too large
    // for the upstream's requests even alone): from then on as any refused change, holding back
    // its record's later changes, listed, due again with retry_refused, given up with
    // discard_refused. A change no longer in the outbox is left alone.
    Status refuse_unjudged(const PushOutcome& refusal);
    // A request for the page after this device's cursor. It names as held (up to `limit`) the
    // records whose pushed changes the upstream acknowledged after the cursor, so that the page
    // does not send back what this device wrote (see PullRequest::held).
    Result<PullRequest> prepare_pull(std::size_t limit = 1000);
    // Applies one page and moves the cursor, in one transaction: acknowledged outbox changes leave
    // the outbox, evicted records go (their unsynced changes stay, reported), records are stored
    // with this device's unsynced changes re-applied on top, and kept records (held as the
    // upstream has them) are filed as pulled. A page from an upstream restored from a backup since
    // this device last heard it (a new epoch) only sends the journal again (PullReport::resent):
    // nothing else of it is applied and the cursor stays, so that the next pull asks the upstream
    // which of those changes it holds before any record is rebased onto them. Changes held for
    // eviction are due again once the page brings their record, or a record under the scope key
    // they left with: a record made here that the upstream never had is then put back from them,
    // and pushed. Learns the upstream's time; outbox changes stamped by a clock found to be ahead,
    // or set back since it last heard it, are re-stamped, in order.
    Result<PullReport> apply_pull(const PullPage& page);
    // Takes the clock (its latest reading, the learnt offset, whether the upstream's time is known)
    // back to what the store holds: after a transaction of the caller's that held
    // apply_push_result or apply_pull rolled back, so that what they learnt in memory goes with
    // what they wrote (each does this itself when its own work fails).
    Status reload_clock();
    // Around such a transaction: unless kept (once it committed), takes the clock back with
    // reload_clock when it goes, on an error or an exception alike.
    class ClockRestore {
      public:
        explicit ClockRestore(Device& device) : device_(device) {}
        ClockRestore(const ClockRestore&) = delete;
        ClockRestore& operator=(const ClockRestore&) = delete;
        ~ClockRestore() {
            if (!kept_) (void)device_.reload_clock();
        }
        void keep() noexcept { kept_ = true; }

      private:
        Device& device_;
        bool kept_ = false;
    };

    // The outbox, oldest first.
    Result<std::vector<PendingChange>> outbox();
    // The outbox entries in one state, oldest first.
    Result<std::vector<PendingChange>> outbox(PendingState only);
    // How many outbox entries are unsent or sent (due, or held back by a refused or evicted
    // change to their record), without reading the entries.
    Result<std::size_t> outbox_to_push();
    // How many outbox entries are in each state, without reading the entries: the cost does not
    // grow with the size of the changes, and the memory used not with their number.
    Result<OutboxCounts> outbox_counts();
    // Whether a change still to be sent was stamped with the clock's memory of a later time than the
    // clock read (with the offset it knows) when the change was made: the clock was set back
    // since the device last heard the upstream. Learning the upstream's time before pushing (a
    // pull first) re-stamps such changes with when they were made, so that they do not go out
    // stamped early and lose to edits made before them.
    Result<bool> stamped_from_memory();
    // Whether a sync should learn the upstream's time (a pull) before it pushes: stamped_from_memory,
    // or changes wait to be sent while the clock is not kept by the boot clock (none, or the
    // machine restarted since the last sync). Only the device can judge its stamps then, by when
    // each change was made on its wall clock: the error of its clock when it pushes says nothing
    // of the error when each change was stamped.
    Result<bool> needs_time_first();
    // Makes refused changes due again (e.g. after the upstream was upgraded). Returns how many.
    Result<std::size_t> retry_refused();
    // Gives up this device's refused changes to `record` (the upstream keeps a refused change for
    // the worker's supervisors, see the server's refused changes): they leave the outbox, and the
    // record goes back to the upstream's version at the next pull, which asks for it whole
    // (PullRequest::refetch) with this device's other changes to it re-applied on top; a record
    // the upstream does not hold for this user leaves the device. Giving up a refused create, or a
    // change refused as "no_record", gives up the record: its later changes, whatever their
    // state, are discarded with it. Returns how many changes were discarded; not_found when the
    // record has no refused change.
    Result<std::size_t> discard_refused(std::string_view record);
    // Drops tombstones without open conflicts or outbox entries (nor kept after a restore, see
    // PullReport::restarted). Returns how many.
    Result<std::size_t> compact();

    struct Impl;

  private:
    explicit Device(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace tsunagu::sync
