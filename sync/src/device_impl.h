// The device's private state, shared by its source files (local edits, sync).
#pragma once

#include <string>

#include "sync/engine.h"
#include "sync/src/authoring.h"
#include "sync/src/record_table.h"
#include "sync/src/tables.h"

namespace tsunagu::sync {

struct Device::Impl {
    Store& store;
    Schema schema;
    DeviceOptions options;
    HybridClock clock;
    bool knows_upstream_time = false;  // an answer told it the upstream's clock (the offset holds)
    std::string replica;
    detail::RecordTable records;

    Impl(Store& s, Schema sc, DeviceOptions o, detail::OpenedTables tables)
        : store(s),
          schema(std::move(sc)),
          options(std::move(o)),
          clock(options.wall, {}, options.boot),
          replica(std::move(tables.replica)),
          records(s, tables.record_key) {}

    // A local edit: applied and queued, in one transaction. Returns the record id.
    Result<std::string> edit(const detail::Edit& edit);
    // Inside a transaction: takes the upstream's clock reading; corrects the wall-clock offset and,
    // when this device's clock proves ahead, or set back since it last heard the upstream's time,
    // re-stamps its unsent changes. Returns how many.
    // `age_ms`: how long ago the upstream read `upstream`, at least (-1: not known, taken as 0).
    Result<std::size_t> learn_time(Hlc upstream, std::int64_t age_ms);
    // Inside a write transaction that began with catch_up_clock(): stores the clock (no other
    // connection can have saved a later reading meanwhile).
    Status save_clock();
    // The clock as the store holds it (see Device::reload_clock).
    Status reload_clock();
    // Inside a transaction, before a stamp: when another connection to this replica (the app and a
    // command both have it open) committed since this one last looked, the clock takes in what it
    // saved: its latest reading (observed, so this one's next stamps come after it, never moved
    // back) and the offset and anchor it learnt from the upstream. So the replica's stamps keep
    // their order whichever process makes them, and none is made with an offset already corrected.
    Status catch_up_clock();
    std::int64_t clock_data_version = -1;  // PRAGMA data_version when the clock was last read
    // Inside a transaction: the record stored with every outbox change for it re-applied on top.
    Status rebase(const RecordSnapshot& snapshot);
    // Inside a transaction: queues `change` (made here, stamped) at the end of the outbox.
    Status queue(const ChangeSet& change);
    // Inside a write transaction: `snapshot` is a page's version of a record whose copy here may
    // hold versions the upstream lacks (kept through a pull from the start after a restore, and
    // asked about, or newer than the page's). Each value of the copy that no version the page's
    // holds, and no change of the outbox or journal, accounts for is queued again as this user's
    // change, one per lost version in their order, and the record is rebased on the snapshot; its
    // release ask is closed. `ancestor`: the snapshot is a state the copy grew from (older: a
    // restored upstream numbers everything after the backup above it), so each queued value
    // supersedes the values it overwrote there, as it did; otherwise it stays beside the
    // upstream's as a conflict. A deletion is never queued again (the record stays, live).
    // Returns how many changes it queued.
    Result<std::size_t> keep_lost_heads(const RecordSnapshot& snapshot, bool ancestor);
    // Inside a transaction: notes `record` (an id) in sync_refetch, for pulls to ask for it whole
    // until a page brings it or evicts it (answered_refetch).
    Status ask_whole(const std::string& record);
    // Inside a transaction: drops from sync_refetch the records `page` brought whole or evicted.
    Status answered_refetch(const PullPage& page);
    // Inside a transaction, during a pull from the start after a restore: notes `record`, when
    // this device holds it, to be asked about once the pull ends (see sync_release_asks).
    Status ask_release(const std::string& record);
    // Inside a transaction: takes the page's answers to PullRequest::release. A record released
    // goes (as an eviction), unless it has outbox changes (made since it was asked about) or the
    // page carries it; one in scope is asked for whole (ask_whole), its ask kept until a page brings it
    // (keep_lost_heads closes it); one not held waits DeviceOptions::release_ask_again_ms.
    // Returns how many went.
    Result<std::size_t> answered_release(const PullPage& page);
    // Inside a transaction: drops a record that left the scope, and what the journal keeps of it;
    // returns its held outbox changes. `lost_key`: the scope key the user lost, when the record
    // goes with it (its held changes are due again once the key is back: see scopes_returned);
    // empty when the record itself moved out (they are due again when it comes back).
    Result<std::vector<std::string>> evict(const std::string& record, const std::string& lost_key = {});
    // Inside a transaction, after a page's records are stored: the changes held for eviction under
    // a scope key that a record of the page has (the key is back) are due again; a record made
    // here that only they hold (the upstream never had it) is put back from them.
    Status scopes_returned(const PullPage& page);
    // During a pull begun from the start again (`resync`: the kMetaResync the page is applied
    // under): notes the records `page` brought (or kept), and on its last page erases the records
    // no page brought that have nothing in the outbox, as evictions; answers how many went. After
    // a restore (kResyncRestored) nothing is erased: on its last page those records are noted to
    // be asked about (ask_release), and the pull ends.
    Result<std::size_t> resync_page(const PullPage& page, std::int64_t resync);
    // Inside a transaction: takes the upstream's answer that it applied an outbox change (from a
    // push answer, or a pull's acks when that answer was lost). The change leaves the outbox, its
    // record is noted in sync_acked, and a stamp the upstream corrected replaces the device's.
    struct Acknowledged {
        bool removed = false;    // false: answered before
        bool restamped = false;  // the stamp was corrected
    };
    Result<Acknowledged> acknowledge(const PushOutcome& outcome, std::int64_t acked_ms);
    // Inside a transaction: takes one outcome of an answer (a push's, or a pull's acks): a
    // refusal keeps the change in the outbox, refused, with its reason; anything else is
    // acknowledged. An outcome whose change id is not an id is ignored.
    struct Settled {
        std::size_t acknowledged = 0, refused = 0, restamped = 0;
    };
    // `acked_ms`: when the upstream acknowledged it (acked_at), which the journal keeps it by.
    Result<Settled> settle(const PushOutcome& outcome, std::int64_t acked_ms);
    // When an answer stamped `upstream_time` acknowledged its changes: the upstream's own clock,
    // else this device's corrected one, never its raw wall clock (a phone set a year ahead would
    // otherwise let its journal go at once, or keep it for a year).
    std::int64_t acked_at(Hlc upstream_time) const {
        return upstream_time.wall_ms > 0 ? upstream_time.wall_ms : clock.wall_now();
    }
    // Inside a transaction: notes the epoch an answer came with (PushResult::epoch). When it is
    // not the one last heard, the upstream was restored from a backup: the acknowledged changes
    // the journal keeps go back to the outbox, ahead of the unsent ones, to be sent again (those
    // the backup held are answered as duplicates), and the device pulls everything again from
    // the start (kResyncRestored): the backup's caseloads may differ from what the pulls from
    // the lost upstream left here.
    struct EpochHeard {
        bool restored = false;  // a new epoch, after another one
        std::size_t resent = 0;  // journal entries back in the outbox
    };
    Result<EpochHeard> heard_epoch(const std::string& epoch);
    // Inside a transaction: drops journal entries older than options.keep_acknowledged_ms.
    Status prune_journal();
};

namespace detail {

enum class OutboxState { unsent = 0, sent = 1, refused = 2, evicted = 3 };

// An outbox entry's change set, from its stored JSON form.
Result<ChangeSet> read_outbox_change(std::string_view text);

}  // namespace detail
}  // namespace tsunagu::sync
