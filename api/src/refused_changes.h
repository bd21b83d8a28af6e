// Refused changes, kept: every change set the server refuses (a record outside the worker's
// caseload, an approved record locked, a field this server does not know, ...) is also kept here,
// with why, until it is accepted. The device keeps it too, and sends it again when its record
// changes or the worker asks; but a phone can be lost, or wiped by a revocation, and a refusal
// often needs a supervisor (a client to reassign, a record to return). So a worker's refused work
// never lives only on one phone, and the worker's supervisors see it and why.
//
// Contract:
// - keep() runs in the push's transaction: refused change sets are kept (again: counted, reason
//   updated), accepted and duplicate ones that were kept are dropped (they are now in their
//   record's history). At most kMaxKeptPerDevice open entries per device and kMaxKeptPerUser per
//   user (devices cost a sign-in each, so the device limit alone would not bound a user), each at
//   most kMaxKeptBytes of change set: beyond that a refusal is answered but not kept (a device
//   sending thousands of refusals is broken or hostile), and keep() says how many were not.
// - A kept change belongs to the team of its worker when it was refused: that team's supervisors
//   list it, read it whole and dismiss it; nobody else does.
// - A dismissed change stays (it is still someone's work, with the supervisor's comment); if the
//   device sends it again it is refused again with the supervisor's comment, and stays dismissed.
// - A supervisor may also apply an open one on its worker's behalf (routes_refused.cpp), as the
//   worker's device would on a retry: it is then taken, or refused and kept again.
// - A dismissed change is purged once it has been dismissed longer than the server keeps them
//   (compaction, --keep-dismissed DAYS); an open one stays until it is taken.
// - Its change set and the texts (reason, comment) are sealed on PostgreSQL, like records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "sync/protocol.h"

namespace tsunagu::api {

struct RefusedChange {
    std::string change_id;
    std::string record;
    std::string collection;
    std::string user_id;    // the worker who made it
    std::string device_id;  // the device that sent it
    std::string team_id;    // the worker's team when it was refused
    std::string code;       // error code name ("forbidden", "validation", ...)
    std::string cause;      // which check refused it (sync::PushOutcome::cause: "outside_scope", ...)
    std::string reason;
    std::int64_t first_at = 0, last_at = 0;  // unix seconds: first and latest refusal
    std::int64_t times = 0;                  // how many times it was refused
    std::string dismissed_by;                // "" while open
    std::int64_t dismissed_at = 0;
    std::string comment;  // the supervisor's, on dismissal
    std::string change;   // the change set's wire JSON, as the device sent it
};

struct KeptRefusals {
    std::size_t kept = 0;      // refusals kept (new or again)
    std::size_t not_kept = 0;  // over a device's or its user's limit, or too large
};

class RefusedChanges {
public:
    static constexpr std::size_t kMaxKeptPerDevice = 1000;
    static constexpr std::size_t kMaxKeptPerUser = 5000;
    static constexpr std::size_t kMaxKeptBytes = 64 * 1024;

    static Status create_schema(Store& store);

    // After Upstream::push (outcomes one per change set, in batch order), in its transaction:
    // keeps the refused ones of `user_id`'s device `device_id` (in `team_id`), drops the accepted
    // ones, and gives the refusals of dismissed changes the supervisor's comment.
    static Result<KeptRefusals> keep(Store& store, const sync::PushBatch& batch,
                                     std::vector<sync::PushOutcome>& outcomes, const std::string& team_id,
                                     std::int64_t now);

    // A team's kept changes, newest refusal first: open ones, or dismissed ones.
    static Result<std::vector<RefusedChange>> list(Store& store, const std::string& team_id, bool dismissed,
                                                   std::size_t limit);
    // How many a list of the team's (open or dismissed) would hold without its limit.
    static Result<std::int64_t> count(Store& store, const std::string& team_id, bool dismissed);
    // The same for a worker's own list.
    static Result<std::int64_t> count_for_worker(Store& store, const std::string& user_id, bool dismissed);
    // A worker's own kept changes, from all her devices, newest refusal first: open or dismissed.
    static Result<std::vector<RefusedChange>> list_for_worker(Store& store, const std::string& user_id,
                                                              bool dismissed, std::size_t limit);
    static Result<std::optional<RefusedChange>> get(Store& store, const std::string& change_id);
    // A worker moved to another team takes her kept changes with her: her new team's supervisors
    // handle them, and her old team's no longer see them.
    static Status follow_worker(Store& store, const std::string& user_id, const std::string& team_id);
    // The open kept changes of `record` from device `device_id`, in no particular order (each
    // change set's hlc says when the device made it).
    static Result<std::vector<RefusedChange>> open_for_record(Store& store, const std::string& device_id,
                                                              const std::string& record);
    // Purges the dismissed changes dismissed before `before` (unix seconds); returns how many.
    // A device that still holds one and sends it again has it kept anew, open.
    static Result<std::size_t> purge_dismissed(Store& store, std::int64_t before);
    // conflict when already dismissed; not_found when not kept.
    static Status dismiss(Store& store, const std::string& change_id, const std::string& by,
                          const std::string& comment, std::int64_t now);
};

}  // namespace tsunagu::api
