// Supervisors: read their team's records with filters, review them, settle conflicts.
// Every record they open is audited; every answer is limited to their scope.
#include <sodium.h>

#include <algorithm>
#include <optional>
#include <set>

#include "api/src/caseload.h"
#include "api/src/server_core.h"
#include "domain/care_schema.h"
#include "domain/indicators.h"
#include "domain/review.h"

namespace tsunagu::api {
namespace {

Result<std::set<std::string>> scope_of(RequestContext& ctx) {
    return Caseloads::scope_set(ctx.store, ctx.who().user);
}

// The record, when it exists and the supervisor may see it; not_found otherwise, so that
// records outside the scope are indistinguishable from records that do not exist.
Result<sync::Record> visible_record(RequestContext& ctx, const std::string& id) {
    auto scope = scope_of(ctx);
    if (!scope) return scope.status();
    auto record = ctx.upstream.get(id);
    if (!record) return record.status();
    if (!*record || !scope->count((*record)->scope_key)) {
        return Status(ErrorCode::not_found, "no record " + id + " in your team");
    }
    return std::move(**record);
}

// What the supervisor saw of a record, as a short tag: which change set wrote each field's value
// in force, whether it is deleted, and which versions each open conflict opposes. Any change that
// alters what the record screen or the conflict list shows alters it (a newest clock would not: a
// value can win its field with a clock older than another field's). The page sends it back with
// a decision ("seen"), and a decision about a record that changed since is refused.
std::string record_version(const sync::Record& r) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, 16);
    auto add = [&state](std::string_view part) {
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()), part.size());
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>("\0"), 1);
    };
    add(r.deleted ? "deleted" : "live");
    for (const auto& [field, version] : r.versions) {
        add(field);
        add(version.change_id);
    }
    for (const auto& c : r.conflicts) {
        add(c.field);
        add(c.current.version.change_id);
        add(c.losing.version.change_id);
    }
    unsigned char digest[16];
    crypto_generichash_final(&state, digest, sizeof digest);
    char hex[2 * sizeof digest + 1];
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    return hex;
}

// A decision's "seen" (record_version of what the page showed) against the record as it is now:
// nothing when it matches, or for a review the caller sent none (a script that read the record
// just before; a resolution must send it).
std::optional<HttpResponse> changed_since_read(const Json& body, const sync::Record& record) {
    if (!body.contains("seen") || body["seen"].get<std::string>() == record_version(record)) return std::nullopt;
    return HttpResponse::error(409, "changed_since_read",
                               "record " + record.id +
                                   " changed since you read it (a device synced an edit, or another supervisor "
                                   "decided): read it again, then decide; nothing was changed");
}

// The clock reading of the record's newest version. (Compared as readings: as text, "…-9" would
// sort above "…-10" within one millisecond.)
sync::Hlc newest_change(const sync::Record& r) {
    sync::Hlc newest;
    for (const auto& [field, v] : r.versions) newest = std::max(newest, v.hlc);
    return newest;
}

// The date a record is listed and filtered by: its date, else its start date (a case).
std::string record_date(const sync::Record& r) {
    std::string date = r.text("date");
    return date.empty() ? r.text("start_date") : date;
}

bool matches(const sync::Record& r, const std::map<std::string, std::string>& q) {
    auto get = [&](const char* k) -> std::string {
        auto it = q.find(k);
        return it == q.end() ? "" : it->second;
    };
    const std::string status = get("status"), owner = get("worker"), from = get("from"), to = get("to");
    if (!status.empty() && domain::review_status_of(r) != status) return false;
    if (!owner.empty() && r.owner != owner) return false;
    const std::string date = record_date(r);
    if (!from.empty() && (date.empty() || date < from)) return false;
    if (!to.empty() && (date.empty() || date > to)) return false;
    return true;
}

HttpResponse list_records(RequestContext& ctx) {
    auto scope = scope_of(ctx);
    if (!scope) return error_response(scope.status());
    auto& q = ctx.request.query;
    std::vector<std::string> collections;
    if (q.count("collection")) {
        if (!domain::care_schema().find(q["collection"])) {
            return HttpResponse::error(400, "invalid", "query parameter \"collection\": no such record type");
        }
        collections.push_back(q["collection"]);
    } else {
        for (const auto& c : domain::care_schema().collections) collections.push_back(c.name);
    }
    std::vector<std::pair<sync::Hlc, Json>> rows;
    std::map<std::string, int> counts;
    for (const auto& collection : collections) {
        auto records = ctx.upstream.list(collection);
        if (!records) return error_response(records.status());
        for (const auto& r : *records) {
            if (!scope->count(r.scope_key)) continue;
            const std::string review_status = domain::review_status_of(r);
            ++counts[review_status];
            if (!matches(r, q)) continue;
            const sync::Hlc updated = newest_change(r);
            // Listing shows what a supervisor needs to pick a record, never free-text content.
            Json row = {{"id", r.id},
                        {"collection", r.collection},
                        {"owner", r.owner},
                        {"review_status", review_status},
                        {"date", record_date(r)},
                        {"client", r.text("client")},
                        {"conflicts", r.conflicts.size()},
                        {"updated", updated.to_string()}};
            rows.emplace_back(updated, std::move(row));
        }
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    // No content, but whose records, of which clients, when: the listing is on the trail, with its
    // filters and how many it showed (each record read whole is audited by its id). The filters
    // are as the address gave them: bytes that are not UTF-8 are written as U+FFFD. Not the ids:
    // the page lists the whole area and filters by status itself, so each view would write every
    // record id of the area to the trail (append-only, in the writers' group).
    Json filters = Json::object();
    for (const auto& [key, value] : q) filters[key] = value;
    const std::string detail =
        Json{{"filters", filters}, {"shown", rows.size()}}.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (Status a = ctx.audit_in_group("records.list", "", detail); !a) return error_response(a);
    Json list = Json::array();
    for (auto& [_, row] : rows) list.push_back(std::move(row));
    return json_response(200, {{"records", list}, {"counts", counts}});
}

HttpResponse read_record(RequestContext& ctx) {
    auto record = visible_record(ctx, ctx.params["id"]);
    if (!record) return error_response(record.status());
    auto history = ctx.upstream.history(record->id);
    if (!history) return error_response(history.status());
    if (Status a = ctx.audit("record.read", record->id); !a) return error_response(a);
    Json out = {{"record", *record}, {"history", *history}, {"version", record_version(*record)}};
    return json_response(200, out);
}

HttpResponse review(RequestContext& ctx) {
    auto body = parse_json_object(ctx.request.body);
    if (!body) return error_response(body.status());
    Status shape = check_fields(*body, {{"decision", JsonType::string, true},
                                        {"comment", JsonType::string, false},
                                        {"seen", JsonType::string, false}});
    if (!shape) return error_response(shape);
    const std::string decision = (*body)["decision"];
    const std::string comment = body->value("comment", "");
    auto record = visible_record(ctx, ctx.params["id"]);
    if (!record) return error_response(record.status());
    if (auto changed = changed_since_read(*body, *record)) return *changed;
    if (!domain::is_reviewed(record->collection)) {
        return HttpResponse::error(400, "invalid", "client records are not reviewed");
    }
    // The report counts an approved record with the value that currently wins: approving while a
    // conflict is open would count whichever value that happens to be.
    if (decision == "approve" && !record->conflicts.empty()) {
        std::set<std::string> fields;
        for (const auto& c : record->conflicts) fields.insert(c.field == sync::kDeletedField ? "deletion" : c.field);
        std::string names;
        for (const auto& f : fields) names += (names.empty() ? "" : ", ") + f;
        return HttpResponse::error(409, "open_conflicts",
                                   "record " + record->id + " has " + std::to_string(record->conflicts.size()) +
                                       " open conflict(s) (" + names +
                                       "): resolve them first (POST /v1/conflicts/resolve, or the Conflicts "
                                       "screen), then approve");
    }
    // Approved, it counts in the yearly report: without the numbers an indicator adds up, as 0.
    if (decision == "approve") {
        const auto missing = domain::summed_fields_missing(*record);
        if (!missing.empty()) {
            std::string names;
            for (const auto& f : missing) names += (names.empty() ? "" : ", ") + f;
            return HttpResponse::error(409, "incomplete_for_report",
                                       "record " + record->id + " lacks what the yearly report adds up (" + names +
                                           "): return it to its author to fill that in, then approve");
        }
        const auto gaps = domain::not_countable_yet(*record, sync::local_date(domain::care_schema(), ctx.now * 1000));
        if (!gaps.empty()) {
            std::string what;
            for (const auto& g : gaps) what += (what.empty() ? "" : "; ") + g;
            return HttpResponse::error(409, "incomplete_for_report",
                                       "record " + record->id + " cannot be counted in the yearly report yet (" +
                                           what + "): return it to its author to fill that in, or approve it later");
        }
    }
    auto fields = domain::review_fields(domain::review_status_of(*record), decision, comment);
    if (!fields) {
        if (fields.status().code() == ErrorCode::conflict) {
            return HttpResponse::error(409, "not_submitted", fields.status().message());
        }
        return error_response(fields.status());
    }
    Status s = ctx.upstream.update(ctx.who().user.id, record->id, *fields);
    if (!s) return error_response(s);
    if (Status a = ctx.audit("record.review", record->id, decision); !a) return error_response(a);
    return json_response(200, {{"id", record->id}, {"review_status", (*fields)["review_status"]}});
}

HttpResponse list_conflicts(RequestContext& ctx) {
    auto scope = scope_of(ctx);
    if (!scope) return error_response(scope.status());
    auto conflicts = ctx.upstream.conflicts();
    if (!conflicts) return error_response(conflicts.status());
    Json list = Json::array();
    Json shown = Json::array();  // the records whose values the list shows, once each
    std::map<std::string, std::optional<std::string>> versions;  // record -> its version, if visible
    for (const auto& c : *conflicts) {
        if (!versions.count(c.record)) {
            auto r = ctx.upstream.get(c.record);
            if (!r) return error_response(r.status());
            auto& version = versions[c.record];
            if (*r && scope->count((*r)->scope_key)) {
                version = record_version(**r);
                shown.push_back(c.record);
            }
        }
        if (const auto& version = versions[c.record]) {
            Json entry = c;
            entry["record_version"] = *version;  // to send back as "seen" with the resolution
            list.push_back(std::move(entry));
        }
    }
    // The list carries both values of each conflict, which is reading those records: audited as
    // a pull is, the records' ids in the entry's detail.
    if (!shown.empty()) {
        if (Status a = ctx.audit_in_group("conflicts.read", "", shown.dump()); !a) return error_response(a);
    }
    return json_response(200, {{"conflicts", list}});
}

HttpResponse resolve_conflict(RequestContext& ctx) {
    auto body = parse_json_object(ctx.request.body);
    if (!body) return error_response(body.status());
    Status shape = check_fields(*body, {{"record", JsonType::string, true},
                                        {"field", JsonType::string, false},
                                        {"value", JsonType::any, false},
                                        {"deletion", JsonType::string, false},
                                        {"seen", JsonType::string, false}});
    if (!shape) return error_response(shape);
    auto record = visible_record(ctx, (*body)["record"]);
    if (!record) return error_response(record.status());
    // A resolution settles the values its supervisor read: one made without saying what was read
    // could settle a value that arrived since, unseen (and hide it under the chosen one).
    if (!body->contains("seen")) {
        return HttpResponse::error(400, "invalid",
                                   "field \"seen\": required; give the conflict's \"record_version\" from GET "
                                   "/v1/conflicts (or the record's \"version\" from GET /v1/records/{id}) as read");
    }
    if (auto changed = changed_since_read(*body, *record)) return *changed;
    Status s;
    if (body->contains("deletion")) {
        const std::string how = (*body)["deletion"];
        if (how != "keep_deleted" && how != "restore") {
            return HttpResponse::error(400, "invalid", "field \"deletion\": keep_deleted or restore");
        }
        s = ctx.upstream.resolve_deletion(ctx.who().user.id, record->id,
                                          how == "restore" ? sync::DeletionResolution::restore
                                                           : sync::DeletionResolution::keep_deleted);
    } else {
        if (!body->contains("field") || !body->contains("value")) {
            return HttpResponse::error(400, "invalid", "give \"field\" and \"value\", or \"deletion\"");
        }
        const std::string field = (*body)["field"];
        if (Status allowed = domain::check_resolution(*record, field, (*body)["value"]); !allowed) {
            return HttpResponse::error(409, "approve_by_review", allowed.message());
        }
        s = ctx.upstream.resolve(ctx.who().user.id, record->id, field, (*body)["value"]);
    }
    if (!s) return error_response(s);
    if (Status a = ctx.audit("conflict.resolve", record->id); !a) return error_response(a);
    return json_response(200, {{"resolved", true}});
}

}  // namespace

std::vector<Route> supervisor_routes() {
    return {
        // The lists read every record of the organisation to filter by scope: on a connection of
        // their own, not in the writers' group, where pushes would wait for them.
        {"GET", "/v1/records", Access::supervisor, list_records, /*outside_group=*/true},
        {"GET", "/v1/records/{id}", Access::supervisor, read_record},
        {"POST", "/v1/records/{id}/review", Access::supervisor, review},
        {"GET", "/v1/conflicts", Access::supervisor, list_conflicts, /*outside_group=*/true},
        {"POST", "/v1/conflicts/resolve", Access::supervisor, resolve_conflict},
    };
}

}  // namespace tsunagu::api
