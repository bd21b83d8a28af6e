// Supervisors: the change sets the server refused from their team's workers (refused_changes.h).
// A supervisor lists them, reads one whole (audited, as a record read is) and dismisses it with a
// comment. Another team's entries answer 404, as if they did not exist.
#include "api/src/audit.h"
#include "api/src/refused_changes.h"
#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

constexpr std::int64_t kDefaultListLimit = 200;
constexpr std::int64_t kMaxListLimit = 1000;

Json status_of(const RefusedChange& r) { return r.dismissed_by.empty() ? "open" : "dismissed"; }

// What a list shows: enough to pick one, never the change's content, its reason (a refused value
// is quoted there) or a comment; those come with the audited read of one.
Json summary(const RefusedChange& r) {
    return {{"change_id", r.change_id}, {"record", r.record},    {"collection", r.collection},
            {"worker", r.user_id},      {"device", r.device_id}, {"code", r.code}, {"cause", r.cause},
            {"first_refused_at", r.first_at}, {"last_refused_at", r.last_at}, {"times", r.times},
            {"status", status_of(r)},   {"dismissed_by", r.dismissed_by}, {"dismissed_at", r.dismissed_at}};
}

// The entry, when it exists and belongs to the supervisor's team; not_found otherwise.
Result<RefusedChange> visible_refusal(RequestContext& ctx, const std::string& change_id) {
    auto found = RefusedChanges::get(ctx.store, change_id);
    if (!found) return found.status();
    const std::string& team = ctx.who().user.team_id;
    if (!*found || team.empty() || (*found)->team_id != team) {
        return Status(ErrorCode::not_found, "no refused change " + change_id + " in your team");
    }
    return std::move(**found);
}

HttpResponse list_refused(RequestContext& ctx) {
    auto& q = ctx.request.query;
    const std::string status = q.count("status") ? q["status"] : "open";
    if (status != "open" && status != "dismissed") {
        return HttpResponse::error(400, "invalid", "query parameter \"status\": open or dismissed");
    }
    auto limit = integer_parameter(ctx.request, "limit", kDefaultListLimit, 1, kMaxListLimit);
    if (!limit) return error_response(limit.status());
    auto kept = RefusedChanges::list(ctx.store, ctx.who().user.team_id, status == "dismissed",
                                     static_cast<std::size_t>(*limit));
    if (!kept) return error_response(kept.status());
    Json list = Json::array();
    for (const auto& r : *kept) list.push_back(summary(r));
    return json_response(200, {{"refused", list}});
}

HttpResponse read_refused(RequestContext& ctx) {
    auto refusal = visible_refusal(ctx, ctx.params["id"]);
    if (!refusal) return error_response(refusal.status());
    (void)AuditLog::append(ctx.store, {0, ctx.now, ctx.who().user.id, ctx.who().device.id, "refused.read",
                                       refusal->record, refusal->change_id});
    Json out = summary(*refusal);
    out["reason"] = refusal->reason;
    out["comment"] = refusal->comment;
    out["change"] = Json::parse(refusal->change, nullptr, /*allow_exceptions=*/false);
    return json_response(200, {{"refused", out}});
}

HttpResponse dismiss_refused(RequestContext& ctx) {
    auto body = parse_json_object(ctx.request.body);
    if (!body) return error_response(body.status());
    Status shape = check_fields(*body, {{"comment", JsonType::string, true}});
    if (!shape) return error_response(shape);
    const std::string comment = (*body)["comment"];
    if (comment.size() > 2000) {
        return HttpResponse::error(400, "invalid", "field \"comment\": at most 2000 bytes");
    }
    if (comment.find_first_not_of(" \t\r\n") == std::string::npos) {
        return HttpResponse::error(400, "invalid", "field \"comment\": say why the change is dismissed, for the worker");
    }
    auto refusal = visible_refusal(ctx, ctx.params["id"]);
    if (!refusal) return error_response(refusal.status());
    Status dismissed = RefusedChanges::dismiss(ctx.store, refusal->change_id, ctx.who().user.id, comment, ctx.now);
    if (!dismissed) return error_response(dismissed);
    (void)AuditLog::append(ctx.store, {0, ctx.now, ctx.who().user.id, ctx.who().device.id, "refused.dismiss",
                                       refusal->record, refusal->change_id});
    return json_response(200, {{"change_id", refusal->change_id}, {"status", "dismissed"}});
}

}  // namespace

std::vector<Route> refused_routes() {
    return {
        {"GET", "/v1/refused", Access::supervisor, list_refused},
        {"GET", "/v1/refused/{id}", Access::supervisor, read_refused},
        {"POST", "/v1/refused/{id}/dismiss", Access::supervisor, dismiss_refused},
    };
}

}  // namespace tsunagu::api
