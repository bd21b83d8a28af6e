// A batch applied as its worker's push: the one sequence of writes behind POST /v1/sync/push and a
// supervisor's applying of a kept refused change (routes_refused.cpp), so that nothing passes the
// one that the other would refuse.
#pragma once

#include <cstdint>

#include "api/src/accounts.h"
#include "api/src/observability.h"
#include "api/src/refused_changes.h"
#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::api {

struct WorkerPush {
    sync::PushResult result;
    KeptRefusals refusals;
    std::size_t accepted = 0;  // accepted or duplicate
};

// In the caller's transaction, `batch` as `worker`'s push (the batch names the worker and the
// device that made its change sets): clients it creates join the worker's caseload and area; the
// engine applies it under the worker's scope and the review workflow's rules for synced changes,
// whatever the pusher's role (domain::check_synced_change: an approved record is locked, and only
// the review approves or returns); its refusals are kept for the worker's supervisors and the kept
// changes it now takes are dropped (RefusedChanges::keep). Not audited: the caller says who did it.
Result<WorkerPush> apply_worker_push(Store& store, sync::Upstream& upstream, const User& worker,
                                     const sync::PushBatch& batch, std::int64_t now);

// Whether `client` is new to the server, so that a push creating it makes it its worker's (joins
// her caseload and area): it has no caseload, is not held as a record, and its scope key was
// never used (a client deleted and purged, whose visits stay for the reports). Only such a client
// is adopted, or any worker knowing an id could take a client, and its records, by sending a create.
Result<bool> is_new_client(Store& store, sync::Upstream& upstream, const std::string& client);

// Counts what the push did in the metrics, and logs (counts only) refusals it could not keep.
void count_worker_push(Metrics& metrics, const WorkerPush& push, const std::string& device_id);

}  // namespace tsunagu::api
