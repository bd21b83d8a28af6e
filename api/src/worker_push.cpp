// A batch applied as its worker's push (see worker_push.h).
#include "api/src/worker_push.h"

#include <set>

#include "api/src/caseload.h"
#include "domain/review.h"

namespace tsunagu::api {
namespace {

// A client created on a worker's device joins that worker's caseload and area before the push,
// so the worker can keep recording about them offline; only a client new to the server (one with
// a caseload, or held as a record, e.g. left unassigned by an administrator, is never reassigned
// by a push). Answers the ids adopted.
Result<std::vector<std::string>> adopt_new_clients(Store& store, sync::Upstream& upstream, const User& worker,
                                                   const sync::PushBatch& batch, std::int64_t now) {
    std::vector<std::string> adopted;
    std::vector<Caseload> caseloads;
    std::set<std::string> seen;
    for (const auto& change : batch.changes) {
        if (change.collection != "client" || !change.create || !seen.insert(change.record).second) continue;
        auto fresh = is_new_client(store, upstream, change.record);
        TSUNAGU_TRY(fresh);
        if (!*fresh) continue;
        Caseload caseload{change.record, worker.team_id, {}};
        if (is_field_worker(worker.role)) caseload.worker_ids.push_back(worker.id);
        if (caseload.team_id.empty() && caseload.worker_ids.empty()) continue;
        caseloads.push_back(std::move(caseload));
        adopted.push_back(change.record);
    }
    if (!caseloads.empty()) TSUNAGU_TRY(Caseloads::assign(store, upstream, caseloads, now));
    return adopted;
}

// A client adopted for a create the push then refused (an invalid value, say) is given up again:
// no caseload stays behind for a record that was never made. Unless the batch filed records under
// the client all the same (visits to it, taken): adopted, its key had none before, so these are
// the worker's; she keeps them in view, and her create, sent again once mended, is in her scope.
Status release_unmade_clients(Store& store, sync::Upstream& upstream, const std::vector<std::string>& adopted,
                              std::int64_t now) {
    std::vector<Caseload> released;
    for (const std::string& client : adopted) {
        auto held = upstream.get(client);
        if (!held) return held.status();
        if (*held) continue;
        auto used = upstream.scope_key_ever_used("client:" + client);
        if (!used) return used.status();
        if (*used) continue;
        released.push_back(Caseload{client, "", {}});
    }
    if (released.empty()) return Status::ok();
    return Caseloads::assign(store, upstream, released, now);
}

}  // namespace

Result<bool> is_new_client(Store& store, sync::Upstream& upstream, const std::string& client) {
    auto existing = Caseloads::get(store, client);
    if (!existing) return existing.status();
    if (!existing->team_id.empty() || !existing->worker_ids.empty()) return false;
    auto held = upstream.get(client);
    if (!held) return held.status();
    if (*held) return false;
    auto used = upstream.scope_key_ever_used("client:" + client);
    if (!used) return used.status();
    return !*used;
}

Result<WorkerPush> apply_worker_push(Store& store, sync::Upstream& upstream, const User& worker,
                                     const sync::PushBatch& batch, std::int64_t now) {
    auto adopted = adopt_new_clients(store, upstream, worker, batch, now);
    TSUNAGU_TRY(adopted);
    // The review's rules hold for every synced change, a supervisor's too: approving by sync
    // would skip the review's own checks (submitted, no open conflict).
    auto pushed = upstream.push(batch, domain::check_synced_change);
    TSUNAGU_TRY(pushed);
    TSUNAGU_TRY(release_unmade_clients(store, upstream, *adopted, now));
    WorkerPush out;
    auto refusals = RefusedChanges::keep(store, batch, pushed->outcomes, worker.team_id, now);
    TSUNAGU_TRY(refusals);
    out.refusals = *refusals;
    for (const auto& o : pushed->outcomes) {
        if (o.status != sync::PushStatus::refused) ++out.accepted;
    }
    out.result = std::move(*pushed);
    return out;
}

void count_worker_push(Metrics& metrics, const WorkerPush& push, const std::string& device_id) {
    metrics.add_changes_pushed(push.accepted);
    const KeptRefusals& kept = push.refusals;
    if (kept.kept == 0 && kept.not_kept == 0) return;
    metrics.add_refusals(kept.kept, kept.not_kept);
    if (kept.not_kept) {
        log_event("warn", "refusals_not_kept", {{"device", device_id}, {"not_kept", std::to_string(kept.not_kept)}});
    }
}

}  // namespace tsunagu::api
