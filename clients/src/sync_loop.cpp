// Device::sync(): push the outbox in batches, then pull pages until up to date. Every step is one
// engine transaction, and a batch whose answer was lost is sent again (the engine keeps it marked
// sent; the server answers a repeat as duplicate), so a cut at any point resumes without loss or
// duplication.
#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "clients/src/device_impl.h"
#include "sync/protocol.h"

namespace tsunagu::client {
namespace {


// Push batches sent before the first is answered: two keep the server busy (it reads one while
// it applies the other) without queueing more of one device's work than that.
constexpr std::size_t kPushesInFlight = 2;

std::string key_of(const sync::Conflict& c) { return conflict_key(c.record, c.field, c.losing.version.change_id); }

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// One sync's push and pull, with what it reports so far. Each step stops at the first error; a
// revoked device's replica is wiped and `report.wiped` set, and the sync then ends.
struct SyncRun {
    Device::Impl& d;
    ServerLink& link;
    sync::Device& engine;
    SyncReport& report;
    const ProgressCallback& progress;
    std::size_t push_total = 0;

    void notify(SyncProgress::Phase phase, std::size_t done, std::size_t total) const {
        if (progress) progress(SyncProgress{phase, done, total});
    }

    // Push, in rounds of push_round(). A round the server refused a batch of as too large (413:
    // over its body limit, or more changes than it takes) is followed by one with batches half
    // that size: the refused batch's changes are still due (marked sent, never answered, so the
    // next round takes them again from the start of the outbox: none lost, none applied twice).
    // A change refused alone is too large for this server whatever the batch: it is kept as
    // refused (cause "too_large", listed in the report), holding back its record's later changes
    // as any refusal does, and the others go on in batches of the usual size.
    Status push() {
        notify(SyncProgress::Phase::push, 0, push_total);
        const std::size_t usual = std::max<std::size_t>(d.options.push_batch, 1);
        std::size_t limit = usual;
        while (true) {
            std::optional<sync::PushBatchText> too_large;
            TSUNAGU_TRY(push_round(limit, too_large));
            if (!too_large || report.wiped) return Status::ok();
            if (too_large->count > 1) {
                limit = too_large->count / 2;
                continue;
            }
            TSUNAGU_TRY(refuse_too_large(*too_large));
            limit = usual;
        }
    }

    // Keeps the one change of `batch`, which the server refused as too large alone, as refused.
    Status refuse_too_large(const sync::PushBatchText& batch) {
        const sync::Json changes = sync::Json::parse(batch.changes, nullptr, false);
        if (!changes.is_array() || changes.size() != 1 || !changes[0].is_object() ||
            !changes[0].contains("id") || !changes[0]["id"].is_string()) {
            return Status(ErrorCode::internal, "a push batch of one change is not one change set; please report it");
        }
        sync::PushOutcome refusal;
        refusal.change_id = changes[0]["id"].get<std::string>();
        refusal.record = batch.records.empty() ? std::string() : *batch.records.begin();
        refusal.code = ErrorCode::invalid_argument;
        refusal.cause = "too_large";
        refusal.reason = "this change (" + std::to_string(batch.changes.size() / 1024 + 1) +
                         " KiB) is larger than the server accepts in one request, so it never reached it; it is "
                         "kept on this device. Ask the server's administrator to raise the request size limit, "
                         "then send it again (tsunagu retry), or give it up for the server's version (tsunagu "
                         "discard " + refusal.record + ")";
        return engine.refuse_unjudged(refusal);
    }

    // One round of pushing batches of at most `limit` changes. Up to kPushesInFlight batches fly
    // at once, and one more waits prepared, sent the moment an answer lands, so the server never
    // waits for the device. They share no record (the engine leaves the records of the batches
    // flying out of the one it prepares), so their answers may come back in any order, a refusal
    // in one (which holds back its record's later changes) concerns nothing in another, and the
    // server reads one batch while it applies the other. Each answer is applied together with
    // preparing the next batch (one transaction, one commit). A batch is repeated until answered:
    // one whose answer is lost, or prepared and never sent, stays marked sent, and the next sync
    // (or round) sends it again. The round ends when nothing is due, or when an answer makes no
    // progress (every change held back), so it cannot spin; or, once a batch was refused as too
    // large (413, the smallest such in `too_large`), when the batches still flying have landed.
    Status push_round(std::size_t limit, std::optional<sync::PushBatchText>& too_large) {
        struct Flight {
            std::future<Result<ServerAnswer>> answer;
            sync::PushBatchText batch;
            // Its own retries, counted on its thread and added to the report once it landed.
            std::shared_ptr<std::size_t> retries;
        };
        std::deque<Flight> flights;
        sync::PushBatchText next;  // prepared while the others fly (count 0: none)
        auto launch = [&](sync::PushBatchText batch) {
            std::string body = "{\"changes\":" + batch.changes + ",\"sent_at\":" + std::to_string(batch.sent_at_ms);
            if (batch.clock_offset_ms) body += ",\"clock_offset\":" + std::to_string(*batch.clock_offset_ms);
            body += "}";
            auto retries = std::make_shared<std::size_t>(0);
            // The token is viewed, not copied: the session outlives every flight (all land or
            // are waited for before push() returns, and before a wipe).
            auto answer = std::async(std::launch::async, [&link = link, retries, token = d.session.token.view(), body = std::move(body)] {
                return link.send_text("POST", "/v1/sync/push", body, token, retries.get());
            });
            flights.push_back({std::move(answer), std::move(batch), std::move(retries)});
        };
        // Prepares the next batch (none is prepared), beside those flying.
        auto prepare = [&]() -> Status {
            std::vector<const sync::PushBatchText*> beside;
            for (const Flight& f : flights) beside.push_back(&f.batch);
            auto batch = engine.prepare_push_text(limit, beside);
            TSUNAGU_TRY(batch);
            next = std::move(*batch);
            return Status::ok();
        };
        // Nothing more is sent once a batch was too large: the round ends with those flying.
        auto send_prepared = [&] {
            if (!too_large && next.count > 0 && flights.size() < kPushesInFlight) {
                launch(std::exchange(next, sync::PushBatchText{}));
            }
        };
        TSUNAGU_TRY(prepare());  // then as many as may fly, and one more prepared
        while (next.count > 0 && flights.size() < kPushesInFlight) {
            send_prepared();
            TSUNAGU_TRY(prepare());
        }
        while (!flights.empty()) {
            Flight landed = std::move(flights.front());
            flights.pop_front();
            auto answer = landed.answer.get();
            report.retries += *landed.retries;
            if (!answer) return answer.status();
            if (is_wipe(*answer)) {
                flights.clear();  // waits for the other answers: the replica goes only after them
                return wipe();
            }
            if (answer->status == 413) {
                // Its changes stay marked sent, as does the batch prepared: the next round takes
                // them again. The server read none of it.
                if (!too_large || landed.batch.count < too_large->count) too_large = std::move(landed.batch);
                continue;
            }
            if (answer->status != 200) return refusal(*answer, "push");
            send_prepared();
            auto result = sync::parse_push_result_text(answer->text);
            if (!result) {
                return Status(ErrorCode::unavailable, "the server's push answer is malformed: " + result.status().message());
            }
            std::optional<Result<sync::PushReport>> applied;
            // Rolled back, by an error or an exception, the clock goes back with the answer it
            // learnt the time from.
            sync::Device::ClockRestore restore(engine);
            result->upstream_time_age_ms = answer->ms_since_headers();
            Status step = with_transaction(*d.store, [&]() -> Status {
                applied = engine.apply_push_result(*result);
                if (!*applied) return applied->status();
                const bool progressed = (*applied)->acknowledged > 0 || (*applied)->refused > 0;
                return (progressed || !flights.empty()) && next.count == 0 && !too_large ? prepare() : Status::ok();
            });
            if (!step) return step;
            restore.keep();
            send_prepared();
            report.pushed += (*applied)->acknowledged;
            report.resent += (*applied)->resent;
            if ((*applied)->restarted) TSUNAGU_TRY(restarted());
            notify(SyncProgress::Phase::push, std::min(report.pushed, push_total), push_total);
        }
        return Status::ok();
    }

    // Pull. Each page is applied (records, evictions, acknowledgements) with the cursor in one
    // transaction; a stale page is ignored and asked for again.
    // A request over the server's body limit (413: it names up to a page's worth of records held
    // here) is asked again for pages of half as many, down to one.
    Status pull() {
        int stale_pages = 0;
        std::size_t page_limit = std::max<std::size_t>(d.options.pull_page, 1);
        notify(SyncProgress::Phase::pull, 0, 0);
        while (true) {
            auto request = engine.prepare_pull(page_limit);
            if (!request) return request.status();
            sync::Json wire = *request;
            wire.erase("replica");
            wire.erase("user");
            auto answer = link.send_text("POST", "/v1/sync/pull", wire.dump(), d.session.token.view(), &report.retries);
            if (!answer) return answer.status();
            if (is_wipe(*answer)) return wipe();
            if (answer->status == 413 && page_limit > 1) {
                page_limit /= 2;
                continue;
            }
            if (answer->status != 200) return refusal(*answer, "pull");
            // Read as it streams in, without a JSON document: memory stays one page's structs.
            auto page = sync::parse_pull_page_text(answer->text);
            if (!page) {
                return Status(ErrorCode::unavailable, "the server's pull answer is malformed: " + page.status().message());
            }
            answer->text = std::string();
            // A page that says more follow must move the cursor on: asked again from the same
            // place, the server would answer the same page forever.
            if (page->more && page->next <= page->after) {
                return Status(ErrorCode::unavailable,
                              "the server's pull answer is malformed: it says more records follow but does not move "
                              "past sequence number " + std::to_string(page->after) + " (next " +
                              std::to_string(page->next) + "); the pull stopped and nothing of the page was applied. "
                              "Sync again later; if it persists, report it to the server's administrator");
            }
            page->upstream_time_age_ms = answer->ms_since_headers();
            auto applied = engine.apply_pull(*page);
            if (!applied) return applied.status();
            if (applied->stale) {
                if (++stale_pages > 3) {
                    return Status(ErrorCode::internal, "the server keeps answering pulls for another cursor; sync again");
                }
                continue;
            }
            // Back toward the pages asked for, once a smaller one went through (the records it
            // names shrink as the cursor passes the ones it pushed).
            page_limit = std::min(std::max<std::size_t>(d.options.pull_page, 1), page_limit * 2);
            report.pulled += applied->records;
            report.resent += applied->resent;
            report.recovered += applied->recovered;
            report.evicted += applied->evicted;
            for (auto& r : applied->evicted_pending) report.evicted_pending.push_back(std::move(r));
            notify(SyncProgress::Phase::pull, report.pulled, report.pulled + (page->more ? request->limit : 0));
            if (applied->restarted) {  // a restored server: everything again, from the start
                TSUNAGU_TRY(restarted());
                continue;
            }
            if (!page->more) {
                // The records a pull from the start after a restore kept are asked about once it
                // ends (PullRequest::release), a hundred a request: asked on in this sync.
                const bool more_asks = request->release.size() == sync::PullRequest::kMaxRelease;
                if ((applied->release_due || more_asks) && release_rounds < kMaxReleaseRounds) {
                    ++release_rounds;
                    continue;
                }
                return Status::ok();
            }
        }
    }
    static constexpr int kMaxReleaseRounds = 50;
    int release_rounds = 0;

    // An answer came from a server restored from a backup (a new epoch). More than a few in one
    // sync: two servers answer at this address, one restored and one not, and each answer would
    // send the journal again and start the pull over, for ever.
    int restarts = 0;
    Status restarted() {
        if (++restarts <= 3) return Status::ok();
        return Status(ErrorCode::unavailable,
                      "the server's answers keep changing between a store restored from a backup and another "
                      "(two servers answer at this address); nothing on this device is lost. Tell the server's "
                      "administrator, and sync again later");
    }

    // The server revoked this device: its replica goes, and the report counts the work that went
    // with it unsent. Not while another has the replica open: the sync then fails busy.
    Status wipe() {
        auto unsent = d.wipe_counting_unsent();  // busy, erasing nothing, while another has the replica open
        TSUNAGU_TRY(unsent);
        report.wiped = true;
        report.wiped_unsent = *unsent;
        return Status::ok();
    }
};

}  // namespace

Result<SyncReport> Device::sync(const ProgressCallback& progress) {
    TSUNAGU_TRY(impl_->ready_for_records());
    Impl& d = *impl_;
    sync::Device& engine = *d.engine;
    auto link = d.server();
    TSUNAGU_TRY(link);
    SyncReport report;
    SyncRun run{d, **link, engine, report, progress};

    // What the caller has been told of: as the last sync that finished left it (refusals and
    // conflicts of a sync that failed after them are reported now). The first sync of a replica
    // takes what it holds as told, and keeps that before doing anything.
    auto told = load_reported(*d.store);
    TSUNAGU_TRY(told);
    if (!*told) {
        Reported now;
        auto before = engine.conflicts();
        if (!before) return before.status();
        for (const auto& c : *before) now.conflicts.insert(key_of(c));
        auto refused = d.refused();
        if (!refused) return refused.status();
        for (const auto& r : *refused) now.refused.insert(r.change_id);
        TSUNAGU_TRY(save_reported(*d.store, now));
        told->emplace(std::move(now));
    }
    const Reported& known = **told;
    {
        auto due = engine.outbox_to_push();
        if (!due) return due.status();
        run.push_total = *due;
    }

    // A clock set back while offline stamped the changes made since with its memory of a later
    // time; a clock not kept by the boot clock may have been set wrong since the last sync: the
    // server's time is learned first (a pull), which re-stamps them with when they were made,
    // before they go.
    auto set_back = engine.needs_time_first();
    if (!set_back) return set_back.status();
    if (*set_back) {
        TSUNAGU_TRY(run.pull());
        if (report.wiped) return report;
    }

    // Push, then pull; again (twice at most) when an answer came from a server restored from a backup (a new
    // epoch): the changes it had acknowledged, which the engine queued again, go first; and so do
    // the values of this replica's copies the restored server lacked, which a pull queued again.
    for (int round = 0; round < 3; ++round) {
        const std::size_t resent_before = report.resent, recovered_before = report.recovered;
        TSUNAGU_TRY(run.push());
        if (report.wiped) return report;
        TSUNAGU_TRY(run.pull());
        if (report.wiped) return report;
        if (report.resent == resent_before && report.recovered == recovered_before) break;
    }

    auto after = engine.conflicts();
    if (!after) return after.status();
    Reported now;
    for (auto& c : *after) {
        std::string key = key_of(c);
        if (!known.conflicts.count(key)) report.new_conflicts.push_back(std::move(c));
        now.conflicts.insert(std::move(key));
    }
    auto refused = d.refused();
    if (!refused) return refused.status();
    for (auto& r : *refused) {
        now.refused.insert(r.change_id);
        if (!known.refused.count(r.change_id)) report.refused.push_back(std::move(r));
    }
    d.session.last_sync_ms = now_ms();
    TSUNAGU_TRY(save_reported(*d.store, now));
    TSUNAGU_TRY(save_last_sync(*d.store, d.session.last_sync_ms));
    if (report.evicted > 0 || d.session.wal_holds_evicted) {
        // Records that left this worker's caseload are gone from the tables, and their space is
        // zeroed (secure_delete); the WAL still holds the frames written before. Checkpointed and
        // emptied now, the replica keeps nothing of them, even for someone with its passphrase;
        // or, when another reader holds that off, at the next sync or open.
        TSUNAGU_TRY(d.empty_wal());
    }
    return report;
}

}  // namespace tsunagu::client
