// Sync: push a batch of change sets, pull pages after a cursor, read the schema.
// The replica and user of every request are the session's device and user, never the body's.
#include <algorithm>

#include "api/src/audit.h"
#include "api/src/server_core.h"
#include "api/src/worker_push.h"
#include "domain/care_schema.h"
#include "sync/protocol.h"

namespace tsunagu::api {
namespace {

constexpr std::size_t kMaxPushChanges = 1000;
constexpr int kMaxPushDepth = 24;
constexpr std::size_t kMaxPullLimit = 5000;

// The audit entry's detail: the ids of the records a push or pull carried, as a JSON list.
template <typename Items, typename RecordOf>
std::string record_list(const Items& items, RecordOf record_of) {
    std::string list = "[";
    list.reserve(items.size() * 35 + 2);
    for (const auto& item : items) {
        if (list.size() > 1) list.push_back(',');
        const std::string& id = record_of(item);
        // An id needs no escaping (and a push carries 1000 of them); anything else goes through the
        // JSON library.
        if (sync::is_id(id)) {
            list.push_back('"');
            list.append(id);
            list.push_back('"');
        } else {
            list.append(Json(id).dump());
        }
    }
    list.push_back(']');
    return list;
}

// How far the device's clock is ahead of the server's, from the offset the device last learnt
// (a push's or pull's "clock_offset"), when that reading is worth recording
// (Accounts::clock_reading_due), so that an administrator sees which phones have wrong clocks.
// A reading beyond a century either way is no clock's (and INT64_MIN has no negation): not recorded,
// and the sync goes on.
std::optional<std::int64_t> clock_reading_due(const RequestContext& ctx, std::optional<std::int64_t> offset_ms) {
    constexpr std::int64_t kMostOffsetMs = 100LL * 366 * 24 * 3'600'000;
    if (!offset_ms || *offset_ms < -kMostOffsetMs || *offset_ms > kMostOffsetMs) return std::nullopt;
    const std::int64_t ahead = -*offset_ms;
    if (!Accounts::clock_reading_due(ctx.who().device, ahead, ctx.now)) return std::nullopt;
    return ahead;
}

// The body is read and checked outside the writers' group; the group only applies the batch.
HttpResponse push(RequestContext& ctx) {
    if (!holds_care_records(ctx.who())) return no_care_records();
    // The device's clock reading when it sent the batch ("sent_at") lets the engine measure its skew.
    auto body = sync::parse_push_batch_text(ctx.request.body, ctx.who().device.id, ctx.who().user.id,
                                            {kMaxPushDepth, kMaxPushChanges});
    if (body.too_many_changes) return HttpResponse::error(413, "batch_too_large", body.refusal.message());
    if (!body.refusal) return error_response(body.refusal);
    const sync::PushBatch& batch = body.batch;

    const Principal& who = ctx.who();
    const std::optional<std::int64_t> clock_ahead = clock_reading_due(ctx, batch.clock_offset_ms);
    std::optional<WorkerPush> applied;
    Accounts::SessionNow session = Accounts::SessionNow::live;
    Status written = ctx.core.commit_group().write([&](ServerConnection& connection) -> Status {
        // Revoked, disabled or signed out since this push was authenticated (a stolen phone's
        // push queued behind the revocation): nothing is written on its behalf.
        auto now = Accounts::session_now(connection.store, who.session_id, who.device.id, ctx.now);
        TSUNAGU_TRY(now);
        if ((session = *now) != Accounts::SessionNow::live) return Status::ok();
        if (clock_ahead) TSUNAGU_TRY(Accounts::record_clock(connection.store, who.device.id, *clock_ahead, ctx.now));
        auto pushed = apply_worker_push(connection.store, *connection.upstream, who.user, batch, ctx.now);
        TSUNAGU_TRY(pushed);
        const std::string records = record_list(
            pushed->result.outcomes, [](const sync::PushOutcome& o) -> const std::string& { return o.record; });
        TSUNAGU_TRY(
            AuditLog::append(connection.store, {0, ctx.now, who.user.id, who.device.id, "sync.push", "", records}));
        applied = std::move(*pushed);
        return Status::ok();
    });
    if (!written) return error_response(written);
    if (session != Accounts::SessionNow::live) return session_ended_response(session);
    if (clock_ahead) ctx.core.sessions().clock_read(who.session_id, *clock_ahead, ctx.now);
    count_worker_push(ctx.core.metrics(), *applied, who.device.id);
    // Written straight to text, as pull pages are.
    HttpResponse answer;
    answer.body = sync::push_result_text(applied->result);
    return answer;
}

// How many record ids a pull's "held" names ({scope key: [record id, ...]}; a value of another
// shape counts one, and is refused when the request is parsed).
std::size_t held_count(const Json& held) {
    std::size_t n = 0;
    for (const auto& [key, records] : held.items()) n += records.is_array() ? records.size() : 1;
    return n;
}


HttpResponse pull(RequestContext& ctx) {
    if (!holds_care_records(ctx.who())) return no_care_records();
    sync::PullRequest request;
    if (ctx.request.method == "GET") {
        auto after = integer_parameter(ctx.request, "after", 0, 0, INT64_MAX);
        if (!after) return error_response(after.status());
        auto limit = integer_parameter(ctx.request, "limit", 1000, 1, kMaxPullLimit);
        if (!limit) return error_response(limit.status());
        request.after = *after;
        request.limit = static_cast<std::size_t>(*limit);
        request.outbox_floor = *after;
    } else {
        auto body = parse_json_object(ctx.request.body);
        if (!body) return error_response(body.status());
        Status shape = check_fields(*body, {{"after", JsonType::integer, true},
                                            {"limit", JsonType::integer, false},
                                            {"sent", JsonType::array, false},
                                            {"held", JsonType::object, false},
                                            {"outbox_floor", JsonType::integer, false},
                                            {"refetch", JsonType::array, false},
                                            {"release", JsonType::array, false},
                                            {"clock_offset", JsonType::any, false}});
        if (!shape) return error_response(shape);
        if (body->contains("held") && held_count((*body)["held"]) > kMaxPullLimit) {
            return HttpResponse::error(400, "invalid", "held may name at most 5000 records (a page's worth); "
                                                       "name the rest in later pulls");
        }
        Json& wire = *body;
        wire["replica"] = ctx.who().device.id;
        wire["user"] = ctx.who().user.id;
        if (!wire.contains("limit")) wire["limit"] = 1000;
        if (!wire.contains("sent")) wire["sent"] = Json::array();
        if (!wire.contains("outbox_floor")) wire["outbox_floor"] = wire["after"];
        auto parsed = sync::parse_pull_request(wire);
        if (!parsed) return error_response(parsed.status());
        request = std::move(*parsed);
        if (request.after < 0 || request.limit < 1 || request.limit > kMaxPullLimit) {
            return HttpResponse::error(400, "invalid", "after must be >= 0 and limit from 1 to 5000");
        }
        // Compaction keeps the history a device's unsent changes build on, from its floor up.
        if (request.outbox_floor < 0) {
            return HttpResponse::error(400, "invalid", "outbox_floor must be >= 0 (the lowest sequence number "
                                                       "the device's unsent changes build on)");
        }
    }
    request.replica = ctx.who().device.id;
    request.user = ctx.who().user.id;
    // The page is read on this request's connection, concurrently with other readers and with
    // the writers. Its writes join the next group commit: the audit entry when it delivers
    // records, and the page is answered once that is durable (no record leaves unaudited); the
    // device's progress alone, when due, is posted to the group without waiting for the disk
    // (progress lost in a crash only makes compaction wait longer). A device polling with nothing
    // new costs no write.
    // A device's clock reading, like its progress, is bookkeeping: it joins whichever write the
    // page makes, or is posted without waiting for the disk.
    auto page = ctx.upstream.read_page(request);
    if (page && page->unregistered) {
        // A new phone: compaction is told to wait for it, durably, before its first page is read.
        bool revoked_meanwhile = false;
        Status registered = ctx.core.commit_group().write([&](ServerConnection& connection) {
            auto revoked = Accounts::is_revoked(connection.store, request.replica);
            TSUNAGU_TRY(revoked);
            if ((revoked_meanwhile = *revoked)) return Status::ok();
            return connection.upstream->record_progress(request);
        });
        if (!registered) return error_response(registered);
        if (revoked_meanwhile) return wipe_response();
        page = ctx.upstream.read_page(request);
        if (page && page->unregistered) {
            // Forgotten in between: revoked (told to wipe), or forgotten by an administrator.
            auto revoked = Accounts::is_revoked(ctx.store, request.replica);
            if (!revoked) return error_response(revoked.status());
            if (*revoked) return wipe_response();
            return HttpResponse::error(503, "busy", "this device was forgotten as its pull began; pull again");
        }
    }
    if (!page) return error_response(page.status());
    const std::optional<std::int64_t> clock_ahead = clock_reading_due(ctx, request.clock_offset_ms);
    if (page->records.empty() && (page->progress_due || clock_ahead)) {
        sync::PullRequest progress;
        progress.replica = request.replica;
        progress.user = request.user;
        progress.after = request.after;
        progress.outbox_floor = request.outbox_floor;
        ctx.core.commit_group().post([progress = std::move(progress), due = page->progress_due, clock_ahead,
                                      now = ctx.now](ServerConnection& connection) {
            // Revoked since this pull was authenticated: its progress would register the device
            // again, and compaction would wait for a phone that never pulls again.
            auto revoked = Accounts::is_revoked(connection.store, progress.replica);
            if (!revoked) return error_response(revoked.status());
            if (*revoked) return HttpResponse{};
            Status recorded = due ? connection.upstream->record_progress(progress) : Status::ok();
            if (recorded && clock_ahead) recorded = Accounts::record_clock(connection.store, progress.replica, *clock_ahead, now);
            return recorded ? HttpResponse{} : error_response(recorded);
        });
    } else if (!page->records.empty()) {
        const AuditEntry entry{
            0, ctx.now, ctx.who().user.id, ctx.who().device.id, "sync.pull", "",
            record_list(page->records, [](const sync::RecordSnapshot& r) -> const std::string& { return r.id; })};
        Accounts::SessionNow session = Accounts::SessionNow::live;
        Status written = ctx.core.commit_group().write([&](ServerConnection& connection) {
            // Revoked, disabled or signed out since this pull was authenticated: the page is not
            // delivered (nor audited as read), and the device is not registered again by its
            // progress.
            auto now = Accounts::session_now(connection.store, ctx.who().session_id, ctx.who().device.id, ctx.now);
            TSUNAGU_TRY(now);
            if ((session = *now) != Accounts::SessionNow::live) return Status::ok();
            TSUNAGU_TRY(AuditLog::append(connection.store, entry));
            if (clock_ahead) TSUNAGU_TRY(Accounts::record_clock(connection.store, ctx.who().device.id, *clock_ahead, ctx.now));
            return page->progress_due ? connection.upstream->record_progress(request) : Status::ok();
        });
        if (!written) return error_response(written);
        if (session != Accounts::SessionNow::live) return session_ended_response(session);
    }
    if (clock_ahead) ctx.core.sessions().clock_read(ctx.who().session_id, *clock_ahead, ctx.now);
    ctx.core.metrics().add_changes_pulled(page->records.size());
    // Written straight to text: record fields are stored as JSON text, never parsed here.
    HttpResponse answer;
    answer.body = sync::pull_page_text(*page);
    return answer;
}

}  // namespace

std::vector<Route> sync_routes() {
    return {
        {"POST", "/v1/sync/push", Access::signed_in, push, /*outside_group=*/true},
        {"GET", "/v1/sync/pull", Access::signed_in, pull, /*outside_group=*/true, /*before_own_password=*/false,
         Lane::bulk},
        {"POST", "/v1/sync/pull", Access::signed_in, pull, /*outside_group=*/true, /*before_own_password=*/false,
         Lane::bulk},
        {"GET", "/v1/sync/schema", Access::signed_in,
         [](RequestContext&) {
             HttpResponse r;
             r.body = domain::care_schema_json();
             return r;
         }},
    };
}

}  // namespace tsunagu::api
