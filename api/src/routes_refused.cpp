// Supervisors: the change sets the server refused from their team's workers (refused_changes.h).
// A supervisor lists them, reads one whole (audited, as a record read is) and dismisses it with a
// comment, or applies it on the worker's behalf. Another team's entries answer 404, as if they did
// not exist.
#include <algorithm>
#include <optional>
#include <set>

#include "api/src/caseload.h"
#include "api/src/refused_changes.h"
#include "api/src/server_core.h"
#include "api/src/worker_push.h"
#include "sync/protocol.h"

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

// The entry, when it exists and belongs to the supervisor's team, whose member its worker still
// is (entries follow a worker who moves: RefusedChanges::follow_worker); not_found otherwise.
Result<RefusedChange> visible_refusal(RequestContext& ctx, const std::string& change_id) {
    auto found = RefusedChanges::get(ctx.store, change_id);
    if (!found) return found.status();
    const std::string& team = ctx.who().user.team_id;
    const Status hidden(ErrorCode::not_found, "no refused change " + change_id + " in your team");
    if (!*found || team.empty() || (*found)->team_id != team) return hidden;
    auto worker = ctx.accounts.find_user((*found)->user_id);
    if (!worker) return worker.status().code() == ErrorCode::not_found ? hidden : worker.status();
    if (worker->team_id != team) return hidden;
    return std::move(**found);
}

// The scope key of the record a refused change is about: the record's on the server; for a record
// only kept changes would make, the one the change gives it when it can say (a create; a
// collection whose records are their own scope), or else the one the device's kept create of the
// record gives it. std::nullopt when nothing says: an edit of a client's visit names no client,
// and taken alone it would look like a record of its worker's own.
Result<std::optional<std::string>> refused_record_scope(RequestContext& ctx, const RefusedChange& r) {
    auto record = ctx.upstream.get(r.record);
    TSUNAGU_TRY(record);
    if (*record) return std::optional<std::string>((*record)->scope_key);
    const sync::Schema& schema = ctx.upstream.schema();
    auto parsed = [&](const RefusedChange& kept) -> Result<sync::ChangeSet> {
        auto change = sync::parse_change_set(Json::parse(kept.change, nullptr, /*allow_exceptions=*/false));
        if (!change) {
            return Status(ErrorCode::internal, "kept refused change " + kept.change_id + " does not parse: " +
                                                   change.status().message());
        }
        return change;
    };
    auto change = parsed(r);
    TSUNAGU_TRY(change);
    const sync::CollectionSchema* collection = schema.find(change->collection);
    // The change says itself when it makes the record, when the record is its own scope, or when
    // it sets the field the scope follows (an edit that moves a visit to another client is read
    // under that client's scope).
    const bool sets_scope_field = collection && collection->scope.kind == sync::ScopeRule::Kind::field &&
                                  change->set.contains(collection->scope.field);
    if (change->create || sets_scope_field ||
        (collection && collection->scope.kind == sync::ScopeRule::Kind::self)) {
        return std::optional<std::string>(sync::scope_key_of(schema, *change));
    }
    auto siblings = RefusedChanges::open_for_record(ctx.store, r.device_id, r.record);
    TSUNAGU_TRY(siblings);
    for (const RefusedChange& sibling : *siblings) {
        auto create = parsed(sibling);
        TSUNAGU_TRY(create);
        if (create->create) return std::optional<std::string>(sync::scope_key_of(schema, *create));
    }
    return std::optional<std::string>();
}

// Whether the supervisor may read what the refused change holds: the record it is about lies in
// her scope, or under a client new to the server (no caseload, never held), which the kept
// create would make her team's worker's once applied (apply_worker_push adopts it). A worker may
// be given a client of another area, or hold edits to a client that moved to one; her own team's
// supervisor sees such a refusal listed and may dismiss it, but its content is another area's, as
// the record itself is. Content whose scope nothing says is read by no one (refused_record_scope).
Result<bool> content_in_scope(RequestContext& ctx, const RefusedChange& r, const std::set<std::string>& scope) {
    auto key = refused_record_scope(ctx, r);
    TSUNAGU_TRY(key);
    if (!key->has_value()) return false;
    if (scope.contains(**key)) return true;
    constexpr std::string_view kClient = "client:";
    if (!(*key)->starts_with(kClient)) return false;
    return is_new_client(ctx.store, ctx.upstream, (*key)->substr(kClient.size()));
}

// The answer for a refused change whose content the supervisor may not read (content_in_scope),
// ending with what she may do.
HttpResponse not_readable(const RefusedChange& r, std::string_view what_now) {
    return HttpResponse::error(403, "forbidden",
                               "refused change " + r.change_id + " is about record " + r.record +
                                   ", outside your team's scope (a client of another area), or one the server does "
                                   "not hold and whose create is not kept: " + std::string(what_now));
}

// A list's query: ?status=open|dismissed (open by default) and ?limit=N.
struct ListQuery {
    bool dismissed = false;
    std::size_t limit = 0;
};

Result<ListQuery> list_query(RequestContext& ctx) {
    auto& q = ctx.request.query;
    const std::string status = q.count("status") ? q["status"] : "open";
    if (status != "open" && status != "dismissed") {
        return Status(ErrorCode::validation, "query parameter \"status\": open or dismissed");
    }
    auto limit = integer_parameter(ctx.request, "limit", kDefaultListLimit, 1, kMaxListLimit);
    if (!limit) return limit.status();
    return ListQuery{status == "dismissed", static_cast<std::size_t>(*limit)};
}

HttpResponse list_refused(RequestContext& ctx) {
    auto query = list_query(ctx);
    if (!query) return error_response(query.status());
    auto kept = RefusedChanges::list(ctx.store, ctx.who().user.team_id, query->dismissed, query->limit);
    if (!kept) return error_response(kept.status());
    auto scope = Caseloads::scope_set(ctx.store, ctx.who().user);
    if (!scope) return error_response(scope.status());
    Json list = Json::array();
    for (const auto& r : *kept) {
        auto readable = content_in_scope(ctx, r, *scope);
        if (!readable) return error_response(readable.status());
        Json one = summary(r);
        one["readable"] = *readable;  // false: about a record outside her scope (read answers 403)
        list.push_back(std::move(one));
    }
    // A list cut at its limit says so: the oldest, a lost phone's, are the ones left out.
    auto total = RefusedChanges::count(ctx.store, ctx.who().user.team_id, query->dismissed);
    if (!total) return error_response(total.status());
    // No content, but whose work about which records: on the trail, as a listing of records is.
    Json records = Json::array();
    for (const auto& r : *kept) records.push_back(r.record);
    const Json detail = {{"status", query->dismissed ? "dismissed" : "open"}, {"shown", kept->size()}, {"records", records}};
    if (Status a = ctx.audit_in_group("refused.list", "", detail.dump()); !a) return error_response(a);
    return json_response(200, {{"refused", list}, {"total", *total}});
}

// A worker's own kept changes, from all her devices (a new phone learns what the old one left
// behind): with the reason and the supervisor's comment, which are hers to read, but never the
// content (the phone that made it holds it; for a lost one, the supervisor reads it).
HttpResponse list_own_refused(RequestContext& ctx) {
    if (!holds_care_records(ctx.who())) return no_care_records();
    auto query = list_query(ctx);
    if (!query) return error_response(query.status());
    auto kept = RefusedChanges::list_for_worker(ctx.store, ctx.who().user.id, query->dismissed, query->limit);
    if (!kept) return error_response(kept.status());
    Json list = Json::array();
    for (const auto& r : *kept) {
        Json one = summary(r);
        one.erase("worker");
        one.erase("dismissed_by");
        one["this_device"] = r.device_id == ctx.who().device.id;
        one["reason"] = r.reason;
        one["comment"] = r.comment;
        list.push_back(std::move(one));
    }
    // A list cut at its limit says so: the oldest, a lost phone's, are the ones left out.
    auto total = RefusedChanges::count_for_worker(ctx.store, ctx.who().user.id, query->dismissed);
    if (!total) return error_response(total.status());
    return json_response(200, {{"refused", list}, {"total", *total}});
}

HttpResponse read_refused(RequestContext& ctx) {
    auto refusal = visible_refusal(ctx, ctx.params["id"]);
    if (!refusal) return error_response(refusal.status());
    auto scope = Caseloads::scope_set(ctx.store, ctx.who().user);
    if (!scope) return error_response(scope.status());
    auto readable = content_in_scope(ctx, *refusal, *scope);
    if (!readable) return error_response(readable.status());
    if (!*readable) {
        return not_readable(*refusal, "its content is not shown to you. You may still dismiss it with a comment "
                                      "for the worker, who sees why it was refused");
    }
    if (Status a = ctx.audit("refused.read", refusal->record, refusal->change_id); !a) return error_response(a);
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
    if (Status a = ctx.audit("refused.dismiss", refusal->record, refusal->change_id); !a) return error_response(a);
    return json_response(200, {{"change_id", refusal->change_id}, {"status", "dismissed"}});
}

// The batch the worker's device would send again for this refusal's record: the record's open kept
// changes from that device, in the order the device made them (a later one may build on an
// earlier one, and is refused as held behind it when sent alone).
Result<sync::PushBatch> retry_batch(Store& store, const RefusedChange& refusal) {
    auto kept = RefusedChanges::open_for_record(store, refusal.device_id, refusal.record);
    TSUNAGU_TRY(kept);
    sync::PushBatch batch;
    batch.replica = refusal.device_id;
    batch.user = refusal.user_id;
    for (const auto& r : *kept) {
        auto change = sync::parse_change_set(Json::parse(r.change, nullptr, /*allow_exceptions=*/false));
        if (!change) {
            return Status(ErrorCode::internal, "kept refused change " + r.change_id + " does not parse: " +
                                                   change.status().message());
        }
        batch.changes.push_back(std::move(*change));
    }
    std::sort(batch.changes.begin(), batch.changes.end(),
              [](const sync::ChangeSet& a, const sync::ChangeSet& b) { return a.hlc < b.hlc; });
    return batch;
}

// Applies an open refused change now, on its worker's behalf: for a phone lost, wiped by a
// revocation, or far from any signal, once the supervisor has removed the cause (assigned the
// client to the worker, returned the record, upgraded the server). The record's other open kept
// changes from the same device go with it, in order, as the device's own retry would send them,
// and the checks are the worker's own push's (apply_worker_push): scope, review lock, schema.
// Applied changes are the worker's, made on that device; the device, if it syncs again, hears
// they are known and drops them. Audited as refused.apply. Nothing applied: 409, with why.
HttpResponse apply_refused(RequestContext& ctx) {
    auto refusal = visible_refusal(ctx, ctx.params["id"]);
    if (!refusal) return error_response(refusal.status());
    if (!refusal->dismissed_by.empty()) {
        return HttpResponse::error(409, "conflict", "refused change " + refusal->change_id +
                                                        " was dismissed; a dismissed change is not applied");
    }
    auto worker = ctx.accounts.find_user(refusal->user_id);
    if (!worker) return error_response(worker.status());
    auto before = Caseloads::scope_set(ctx.store, ctx.who().user);
    if (!before) return error_response(before.status());
    // Content she may not read, she may not apply either: the push's answers would tell her of
    // another area's record (its review lock, a rule quoting another field's value).
    auto readable = content_in_scope(ctx, *refusal, *before);
    if (!readable) return error_response(readable.status());
    if (!*readable) {
        return not_readable(*refusal, "its area's supervisors apply it, once the worker is in their team. You may "
                                      "dismiss it");
    }
    auto batch = retry_batch(ctx.store, *refusal);
    if (!batch) return error_response(batch.status());
    // The worker's checks decide what is applied; the supervisor's scope, what she may apply:
    // a record that would land outside her team's (a client of another area) is not written.
    std::optional<WorkerPush> applied;
    Status done = with_transaction(ctx.store, [&]() -> Status {
        auto pushed = apply_worker_push(ctx.store, ctx.upstream, *worker, *batch, ctx.now);
        TSUNAGU_TRY(pushed);
        // As the push left it: a client the batch created is her team's worker's now.
        auto scope = Caseloads::scope_set(ctx.store, ctx.who().user);
        TSUNAGU_TRY(scope);
        for (const auto& o : pushed->result.outcomes) {
            if (o.status != sync::PushStatus::accepted) continue;
            auto record = ctx.upstream.get(o.record);
            TSUNAGU_TRY(record);
            if (*record && !scope->contains((*record)->scope_key)) {
                return Status(ErrorCode::forbidden, "record " + o.record +
                                                        " would belong outside your team's scope: its area's "
                                                        "supervisors apply it, once the worker is in their team");
            }
        }
        applied = std::move(*pushed);
        return Status::ok();
    });
    if (!done) return error_response(done);

    Json outcomes = Json::array(), ids = Json::array();
    const sync::PushOutcome* first_refusal = nullptr;
    for (const auto& o : applied->result.outcomes) {
        Json one = {{"change_id", o.change_id}, {"status", sync::push_status_name(o.status)}};
        if (o.status == sync::PushStatus::refused) {
            one["cause"] = o.cause;
            one["reason"] = o.reason;
            if (!first_refusal) first_refusal = &o;
        }
        outcomes.push_back(std::move(one));
        ids.push_back(o.change_id);
    }
    // On failure, a server error: the savepoint undoes the apply.
    if (Status a = ctx.audit("refused.apply", refusal->record, ids.dump()); !a) return error_response(a);
    count_worker_push(ctx.core.metrics(), *applied, refusal->device_id);
    if (applied->accepted == 0 && first_refusal) {
        return HttpResponse::error(409, "still_refused",
                                   "the server still refuses it (" + first_refusal->cause + "): " +
                                       first_refusal->reason +
                                       ". Remove the cause first (assign the client to the worker, return the "
                                       "record, or upgrade the server), then apply it again");
    }
    return json_response(200, {{"record", refusal->record},
                               {"applied", applied->accepted},
                               {"refused", applied->result.outcomes.size() - applied->accepted},
                               {"outcomes", outcomes}});
}

}  // namespace

std::vector<Route> refused_routes() {
    return {
        // Read beside the writers, not in their group: a long list holds no push up (its audit
        // entry, in the group, checks the session again).
        {"GET", "/v1/refused", Access::supervisor, list_refused, /*outside_group=*/true},
        {"GET", "/v1/refused/{id}", Access::supervisor, read_refused},
        {"POST", "/v1/refused/{id}/dismiss", Access::supervisor, dismiss_refused},
        {"POST", "/v1/refused/{id}/apply", Access::supervisor, apply_refused},
        {"GET", "/v1/sync/refused", Access::signed_in, list_own_refused},
    };
}

}  // namespace tsunagu::api
