// The review workflow of field records (every collection but client):
//
//   draft ──submit──▶ submitted ──approve──▶ approved (locked for workers)
//     ▲                  │   ▲                    │
//     └──withdraw────────┘   │                    │ return (reopen, with a comment)
//                            └──resubmit── returned ◀──return (with a comment)── submitted
//
// Each transition is an ordinary synced change of review_status (and review_comment), so the
// record's history shows who moved it and when, from which device.
//
// Field workers move their records between draft and submitted and resubmit returned ones; only
// supervisors approve and return, through the review, never by sync. An approved record is locked
// for every synced change: the server refuses a change set to it, with a reason naming the lock. The device keeps the refused change in
// its outbox, visible with its reason; it is sent again when the supervisor returns the record
// (the device then sees the record change), so no offline work is lost, and nothing a worker does
// silently alters what a supervisor approved.
#pragma once

#include <string>
#include <string_view>

#include "crypto/status.h"
#include "sync/change.h"
#include "sync/merge.h"

namespace tsunagu::domain {

// True for collections that go through review (all but client).
bool is_reviewed(std::string_view collection);

// A record's review status ("draft" when never set).
std::string review_status_of(const sync::Record& record);

// The server's rule for a change set that arrives by sync, whoever pushed it (a worker's phone,
// a supervisor's, a script's); `current` is the record's state before it (null for a new record).
// A sync moves a record between draft and submitted and edits it while it is not approved;
// approving and returning go through the supervisor's review (domain::review_fields, behind
// POST /v1/records/{id}/review), which checks that the record was submitted and has no open
// conflict. Refusals are `forbidden` and say what to do.
Status check_synced_change(const sync::ChangeSet& change, const sync::RecordState* current);

// A supervisor's decision: the fields to set. `decision` is "approve" (a submitted record) or
// "return" (a submitted or approved one, with a comment). Refuses other moves with `conflict`,
// naming the record's status.
Result<sync::Json> review_fields(std::string_view current_status, std::string_view decision,
                                 const std::string& comment);

// A supervisor's resolution of a conflict on `field` of `record` to `value` (keeping one side or
// writing a merged value): a record is never approved that way, as approving goes through the
// review, which first checks the record (no other open conflict, the report's numbers present).
// So a conflict on review_status keeps one of its two values, other than "approved": `conflict`
// otherwise, saying what to do instead.
Status check_resolution(const sync::Record& record, std::string_view field, const sync::Json& value);

}  // namespace tsunagu::domain
