// The review workflow's rules (see domain/review.h).
#include "domain/review.h"

namespace tsunagu::domain {
namespace {

std::string status_in(const sync::RecordState* state) {
    if (!state) return "draft";
    const sync::Head* head = state->winner("review_status");
    if (!head || !head->value.json().is_string()) return "draft";
    return head->value.json().get<std::string>();
}

}  // namespace

bool is_reviewed(std::string_view collection) { return collection != "client"; }

std::string review_status_of(const sync::Record& record) {
    auto it = record.fields.find("review_status");
    return it != record.fields.end() && it->is_string() ? it->get<std::string>() : "draft";
}

Status check_synced_change(const sync::ChangeSet& change, const sync::RecordState* current) {
    if (!is_reviewed(change.collection)) return Status::ok();
    if (status_in(current) == "approved") {
        return Status(ErrorCode::forbidden,
                      "record " + change.record +
                          " was approved by a supervisor and is locked: ask a supervisor to return it "
                          "if it needs a change (your change is kept on your device)");
    }
    if (auto it = change.set.find("review_status"); it != change.set.end()) {
        if (*it != "draft" && *it != "submitted") {
            return Status(ErrorCode::forbidden,
                          "field \"review_status\" (確認状況 / Review status): a sync may set draft or "
                          "submitted; only a supervisor approves or returns a record, in the review "
                          "(the page's Review screen, or POST /v1/records/{id}/review), which checks that "
                          "it was submitted and has no open conflict");
        }
    }
    if (change.set.contains("review_comment")) {
        return Status(ErrorCode::forbidden,
                      "field \"review_comment\" (確認コメント / Review comment): only a supervisor's review "
                      "writes it");
    }
    return Status::ok();
}

Status check_resolution(const sync::Record& record, std::string_view field, const sync::Json& value) {
    if (!is_reviewed(record.collection) || field != "review_status") return Status::ok();
    bool in_conflict = false, one_side = false;
    for (const auto& c : record.conflicts) {
        if (c.field != field) continue;
        in_conflict = true;
        if (c.current.value == value || c.losing.value == value) one_side = true;
    }
    // (No conflict on it: the engine's resolution answers that there is none to resolve.)
    if (!in_conflict || (one_side && value != "approved")) return Status::ok();
    return Status(ErrorCode::conflict,
                  "record " + record.id +
                      ": a conflict on review_status keeps one of its two values, other than approved (a "
                      "review status is not merged); a record is approved or returned in the review (POST "
                      "/v1/records/{id}/review, or the Review screen), which checks it first, once it is "
                      "submitted (a draft, by its author)");
}

Result<sync::Json> review_fields(std::string_view current_status, std::string_view decision,
                                 const std::string& comment) {
    if (decision != "approve" && decision != "return") {
        return Status(ErrorCode::invalid_argument, "field \"decision\": approve or return");
    }
    if (decision == "return" && comment.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "field \"comment\": say what to fix when returning a record");
    }
    // A submitted record is approved or returned; an approved one may be returned (reopened) when
    // it needs a change, which unlocks it for its author.
    const bool allowed = current_status == "submitted" || (decision == "return" && current_status == "approved");
    if (!allowed) {
        return Status(ErrorCode::conflict, std::string(decision == "approve" ? "only submitted records can be approved"
                                                                            : "only submitted or approved records can be returned") +
                                               "; this one is " + std::string(current_status));
    }
    return sync::Json{{"review_status", decision == "approve" ? "approved" : "returned"},
                      {"review_comment", comment.empty() ? sync::Json() : sync::Json(comment)}};
}

}  // namespace tsunagu::domain
