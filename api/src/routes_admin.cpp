// Administration: users, teams, devices and the audit trail. Admins manage accounts; they read
// no care records through these routes.
#include <algorithm>
#include <chrono>
#include <limits>
#include <map>

#include "api/src/audit.h"
#include "api/src/caseload.h"
#include "api/src/refused_changes.h"
#include "api/src/reports.h"
#include "api/src/server_core.h"

namespace tsunagu::api {

Json user_json(const User& u);  // routes_auth.cpp

namespace {

// A device, with when it last pulled (`synced_at`, unix seconds; 0: it never has, or it was
// revoked) and whether that is so long ago that it is probably lost (Compactor::is_stale).
Json device_json(const Device& d, const sync::ReplicaProgress* replica, const Compactor& compactor, std::int64_t now_ms) {
    const std::int64_t synced_at = replica ? replica->last_pull_ms / 1000 : 0;
    return {{"id", d.id},
            {"user_id", d.user_id},
            {"name", d.name},
            {"registered_at", d.registered_at},
            {"last_seen_at", d.last_seen_at},
            {"revoked", d.revoked},
            {"clock_ahead_ms", d.clock_ahead_ms},
            {"clock_read_at", d.clock_read_at},
            {"synced_at", synced_at},
            {"stale", replica != nullptr && compactor.is_stale(replica->last_pull_ms, now_ms)}};
}

// RequestContext::audit_in_group for a route whose work is done when it is audited (a compaction,
// a backup): a failure to append the entry is logged, the work stands.
void audit_through_group(RequestContext& ctx, const std::string& action, const std::string& target) {
    Status audited = ctx.audit_in_group(action, target, "", /*work_done=*/true);
    if (!audited) log_event("error", "audit_failed", {{"action", action}, {"error", audited.to_string()}});
}

Json backup_json(const BackupFile& b) {
    return {{"file", b.name}, {"bytes", b.bytes}, {"taken_at", b.taken_at_ms / 1000}, {"kept_as", b.kept_as}};
}

// A user's own scope and their team supervisors' depend on who is in which team.
Status refresh_team_scopes(RequestContext& ctx, const std::string& user_id,
                           const std::vector<std::string>& teams) {
    std::vector<std::string> affected = {user_id};
    for (const auto& team : teams) {
        if (team.empty()) continue;
        auto sups = Caseloads::supervisors_of(ctx.store, team);
        if (!sups) return sups.status();
        affected.insert(affected.end(), sups->begin(), sups->end());
    }
    return Caseloads::refresh(ctx.store, ctx.upstream, affected);
}

Json caseload_json(const Caseload& c) {
    return {{"client_id", c.client_id}, {"team_id", c.team_id}, {"worker_ids", c.worker_ids}};
}

HttpResponse get_caseload(RequestContext& ctx) {
    auto caseload = Caseloads::get(ctx.store, ctx.params["id"]);
    if (!caseload) return error_response(caseload.status());
    // Who looks after a client says something of that client: the reading is on the trail.
    if (Status a = ctx.audit_in_group("admin.caseload_read", caseload->client_id); !a) return error_response(a);
    return json_response(200, caseload_json(*caseload));
}

HttpResponse put_caseload(RequestContext& ctx) {
    auto body = parse_json_object(ctx.request.body);
    if (!body) return error_response(body.status());
    Status shape = check_fields(*body, {{"team_id", JsonType::string, true},
                                        {"worker_ids", JsonType::array, true}});
    if (!shape) return error_response(shape);
    if (!sync::is_id(ctx.params["id"])) {
        return HttpResponse::error(400, "invalid", "the client id in the path: the client record's id, 32 hex characters");
    }
    Caseload caseload{ctx.params["id"], (*body)["team_id"], {}};
    for (const auto& w : (*body)["worker_ids"]) {
        if (!w.is_string()) return HttpResponse::error(400, "invalid", "field \"worker_ids\": user ids (strings)");
        auto user = ctx.accounts.find_user(w);
        if (!user) return HttpResponse::error(400, "invalid", "field \"worker_ids\": no user " + w.get<std::string>());
        if (!is_field_worker(user->role)) {
            return HttpResponse::error(400, "invalid", "field \"worker_ids\": " + user->username +
                                                           " is not a field worker");
        }
        caseload.worker_ids.push_back(w);
    }
    Status s = Caseloads::assign(ctx.store, ctx.upstream, caseload, ctx.now);
    if (!s) return error_response(s);
    const Json detail = {{"team_id", caseload.team_id}, {"worker_ids", caseload.worker_ids}};
    if (Status a = ctx.audit("admin.caseload_assigned", caseload.client_id, detail.dump()); !a) return error_response(a);
    return json_response(200, caseload_json(caseload));
}

HttpResponse create_user(RequestContext& ctx) {
    auto taken = parse_secret_body(ctx, {"password"});
    if (!taken) return error_response(taken.status());
    Json& body = taken->json;
    const Secret& password = taken->secrets[0];
    Status shape = check_fields(body, {{"username", JsonType::string, true},
                                       {"display_name", JsonType::string, false},
                                       {"role", JsonType::string, true},
                                       {"team_id", JsonType::string, false},
                                       {"password", JsonType::string, true},
                                       {"must_change_password", JsonType::boolean, false}});
    if (!shape) return error_response(shape);
    auto role = parse_role(body["role"]);
    if (!role) {
        return HttpResponse::error(400, "invalid",
                                   "field \"role\": one of peer_supporter, home_visitor, staff, "
                                   "supervisor, admin");
    }
    // The password the administrator chose is a first one, to be changed by its owner, unless
    // they say otherwise (a provisioning script handing over passwords the owners chose).
    const bool first_one = body.value("must_change_password", true);
    // The account's name and team are checked first (no hash spent on a bad one), then Argon2id
    // runs here, outside the writers' group: pushes do not wait for it.
    if (Status s = ctx.accounts.check_new_user(body["username"], *role, body.value("team_id", "")); !s) {
        return error_response(s);
    }
    // Shown in every list of users and on the page: at most 100 characters, as the page's form says.
    const std::string display_name = body.value("display_name", std::string());
    const auto characters = std::count_if(display_name.begin(), display_name.end(),
                                          [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
    if (characters > 100) {
        return error_response(Status(ErrorCode::validation, "display_name: at most 100 characters"));
    }
    auto hash = ctx.accounts.hash_new_password(password.view());
    if (!hash) return error_response(hash.status());
    return ctx.core.in_group(ctx, [&](RequestContext& group) {
        auto user = group.accounts.create_user_hashed(body["username"], body.value("display_name", ""), *role,
                                                      body.value("team_id", ""), *hash,
                                                      first_one ? PasswordSetBy::administrator : PasswordSetBy::owner);
        if (!user) return error_response(user.status());
        if (Status s = refresh_team_scopes(group, user->id, {user->team_id}); !s) return error_response(s);
        const Json detail = {{"role", role_name(user->role)}, {"team_id", user->team_id}};
        if (Status a = group.audit("admin.user_created", user->id, detail.dump()); !a) return error_response(a);
        return json_response(201, {{"user", user_json(*user)}});
    });
}

HttpResponse update_user(RequestContext& ctx) {
    auto taken = parse_secret_body(ctx, {"password"});
    if (!taken) return error_response(taken.status());
    Json& body = taken->json;
    Status shape = check_fields(body, {{"password", JsonType::string, false},
                                       {"disabled", JsonType::boolean, false},
                                       {"team_id", JsonType::string, false}});
    if (!shape) return error_response(shape);
    const std::string& id = ctx.params["id"];
    // A session alone must not replace its own account's password: whoever took an
    // administrator's token would lock the administrator out. Their own goes through
    // /v1/me/password, which asks for the current one.
    if (body.contains("password") && id == ctx.who().user.id) {
        return HttpResponse::error(400, "invalid",
                                   "field \"password\": change your own password with POST /v1/me/password, "
                                   "which asks for the current one");
    }
    // Argon2id here, outside the writers' group: pushes do not wait for it.
    std::optional<std::string> hash;
    if (body.contains("password")) {
        auto made = ctx.accounts.hash_new_password(taken->secrets[0].view());
        if (!made) return error_response(made.status());
        hash = std::move(*made);
    }
    return ctx.core.in_group(ctx, [&](RequestContext& group) {
        auto before = group.accounts.find_user(id);
        if (!before) return error_response(before.status());
        // What changed, never to what password: an administrator who resets a worker's password
        // could sign in as her; the trail says so.
        Json changed = Json::object();
        Status s = with_transaction(group.store, [&]() -> Status {
            if (hash) {
                // Set by an administrator: its owner must change it, and every session of that
                // account ends.
                TSUNAGU_TRY(group.accounts.set_password_hash(id, *hash, PasswordSetBy::administrator));
                changed["password_reset"] = true;
            }
            if (body.contains("disabled")) {
                TSUNAGU_TRY(group.accounts.set_disabled(id, body["disabled"]));
                changed["disabled"] = body["disabled"];
            }
            if (body.contains("team_id")) {
                TSUNAGU_TRY(group.accounts.set_team(id, body["team_id"],
                                                    sync::local_date(group.upstream.schema(), group.now * 1000)));
                TSUNAGU_TRY(RefusedChanges::follow_worker(group.store, id, body["team_id"]));
                changed["team_id"] = body["team_id"];
            }
            return group.audit("admin.user_updated", id, changed.dump());
        });
        if (!s) return error_response(s);
        auto user = group.accounts.find_user(id);
        if (!user) return error_response(user.status());
        if (Status refreshed = refresh_team_scopes(group, id, {before->team_id, user->team_id}); !refreshed) {
            return error_response(refreshed);
        }
        return json_response(200, {{"user", user_json(*user)}});
    });
}

HttpResponse get_targets(RequestContext& ctx) {
    auto fy = fiscal_year_parameter(ctx.request);
    if (!fy) return error_response(fy.status());
    auto targets = Targets::of_year(ctx.store, *fy);
    if (!targets) return error_response(targets.status());
    return json_response(200, {{"fiscal_year", *fy}, {"targets", *targets}});
}

// Sets the listed indicators' targets for a fiscal year: {"targets": {"dispatch_requests": 88}};
// null removes one (set by mistake: the report then shows no target rather than 0). The audit
// entry names each target's value before and after, so a target lowered in March shows.
HttpResponse put_targets(RequestContext& ctx) {
    auto fy = fiscal_year_parameter(ctx.request);
    if (!fy) return error_response(fy.status());
    auto body = parse_json_object(ctx.request.body);
    if (!body) return error_response(body.status());
    Status shape = check_fields(*body, {{"targets", JsonType::object, true}});
    if (!shape) return error_response(shape);
    std::map<std::string, std::int64_t> targets;
    std::vector<std::string> removed;
    for (const auto& [indicator, value] : (*body)["targets"].items()) {
        if (value.is_null()) {
            removed.push_back(indicator);
            continue;
        }
        if (!value.is_number_integer()) {
            return HttpResponse::error(400, "invalid", "targets." + indicator.substr(0, 64) +
                                                           ": a whole number from 0 to 1000000, or null to remove it");
        }
        targets[indicator] = value.get<std::int64_t>();
    }
    auto before = Targets::of_year(ctx.store, *fy);
    if (!before) return error_response(before.status());
    if (Status s = Targets::set(ctx.store, *fy, targets); !s) return error_response(s);
    if (Status s = Targets::remove(ctx.store, *fy, removed); !s) return error_response(s);
    Json changes = Json::object();
    auto was = [&](const std::string& indicator) {
        const auto it = before->find(indicator);
        return it == before->end() ? Json() : Json(it->second);
    };
    for (const auto& [indicator, value] : targets) changes[indicator] = {{"from", was(indicator)}, {"to", value}};
    for (const auto& indicator : removed) changes[indicator] = {{"from", was(indicator)}, {"to", nullptr}};
    if (Status a = ctx.audit("admin.targets_set", "fy" + std::to_string(*fy), changes.dump()); !a) {
        return error_response(a);
    }
    return get_targets(ctx);
}

}  // namespace

std::vector<Route> admin_routes() {
    return {
        {"GET", "/v1/admin/users", Access::admin,
         [](RequestContext& ctx) {
             auto users = ctx.accounts.list_users();
             if (!users) return error_response(users.status());
             Json list = Json::array();
             for (const auto& u : *users) list.push_back(user_json(u));
             return json_response(200, {{"users", list}});
         }},
        {"POST", "/v1/admin/users", Access::admin, create_user, /*outside_group=*/true, /*before_own_password=*/false,
         Lane::password},
        {"PATCH", "/v1/admin/users/{id}", Access::admin, update_user, /*outside_group=*/true},
        {"GET", "/v1/admin/teams", Access::admin,
         [](RequestContext& ctx) {
             auto teams = ctx.accounts.list_teams();
             if (!teams) return error_response(teams.status());
             Json list = Json::array();
             for (const auto& [id, name] : *teams) list.push_back({{"id", id}, {"name", name}});
             return json_response(200, {{"teams", list}});
         }},
        {"POST", "/v1/admin/teams", Access::admin,
         [](RequestContext& ctx) {
             auto body = parse_json_object(ctx.request.body);
             if (!body) return error_response(body.status());
             Status shape = check_fields(*body, {{"name", JsonType::string, true}});
             if (!shape) return error_response(shape);
             auto id = ctx.accounts.create_team((*body)["name"]);
             if (!id) return error_response(id.status());
             if (Status a = ctx.audit("admin.team_created", *id); !a) return error_response(a);
             return json_response(201, {{"team", {{"id", *id}, {"name", (*body)["name"]}}}});
         }},
        {"GET", "/v1/admin/clients/{id}/caseload", Access::admin, get_caseload, /*outside_group=*/true},
        {"PUT", "/v1/admin/clients/{id}/caseload", Access::admin, put_caseload},
        {"GET", "/v1/admin/targets", Access::admin, get_targets},
        {"PUT", "/v1/admin/targets", Access::admin, put_targets},
        {"GET", "/v1/admin/devices", Access::admin,
         [](RequestContext& ctx) {
             auto it = ctx.request.query.find("user_id");
             auto devices = ctx.accounts.list_devices(it == ctx.request.query.end() ? "" : it->second);
             if (!devices) return error_response(devices.status());
             auto replicas = ctx.upstream.replicas();
             if (!replicas) return error_response(replicas.status());
             std::map<std::string, const sync::ReplicaProgress*> by_device;  // a device's replica has its id
             for (const auto& r : *replicas) by_device[r.replica] = &r;
             const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count();
             Json list = Json::array();
             for (const auto& d : *devices) {
                 const auto replica = by_device.find(d.id);
                 list.push_back(device_json(d, replica == by_device.end() ? nullptr : replica->second,
                                            ctx.core.compactor(), now_ms));
             }
             const auto stale_after = ctx.core.compactor().stale_after();
             return json_response(200, {{"devices", list},
                                        {"stale_after_days", static_cast<double>(stale_after.count()) / 86'400'000.0}});
         }},
        {"POST", "/v1/admin/devices/{id}/revoke", Access::admin,
         [](RequestContext& ctx) {
             Status s = ctx.accounts.revoke_device(ctx.params["id"], ctx.now);
             if (!s) return error_response(s);
             // Wiped at its next request, it will never pull again: compaction stops waiting for it.
             if (Status forgot = ctx.upstream.forget_replica(ctx.params["id"]); !forgot) return error_response(forgot);
             if (Status a = ctx.audit("admin.device_revoked", ctx.params["id"]); !a) return error_response(a);
             return json_response(200, {{"revoked", true}});
         }},
        // Compacts now, rather than at the next tick of the timer, in slices between pushes; answers
        // what was purged once the whole run is done.
        {"POST", "/v1/admin/compact", Access::admin,
         [](RequestContext& ctx) {
             auto run = ctx.core.compactor().run();
             if (!run) return error_response(run.status());
             audit_through_group(ctx, "admin.compacted", "");
             const sync::CompactionReport& r = run->report;
             return json_response(200, {{"history_purged", r.history_purged},
                                        {"tombstones_purged", r.tombstones_purged},
                                        {"scope_log_purged", r.log_purged},
                                        {"filed_lines_purged", r.filed_purged},
                                        {"dismissed_refusals_purged", run->dismissed_purged},
                                        {"stale_devices", run->stale_devices},
                                        {"slices", run->slices},
                                        {"seconds", run->seconds}});
         },
         /*outside_group=*/true},
        // The server's own backups (--backup-dir): the folder's, newest first, and the schedule.
        {"GET", "/v1/admin/backups", Access::admin,
         [](RequestContext& ctx) {
             Backups& backups = ctx.core.backups();
             auto found = backups.list();
             Json list = Json::array();
             if (found) {
                 for (const BackupFile& b : *found) list.push_back(backup_json(b));
             }
             const BackupPolicy& policy = backups.policy();
             Json answer = {{"enabled", backups.enabled()},
                            {"store", policy.postgres ? "postgres" : "embedded"},
                            {"backups", list}};
             // The folder gone or unreadable (its disk unmounted): said, beside the last failure.
             if (!found) answer["folder_error"] = found.status().message();
             if (backups.enabled()) {
                 answer["folder"] = policy.folder;
                 answer["every_hours"] = static_cast<double>(policy.every.count()) / 3'600'000.0;
                 answer["keep"] = policy.keep;
                 answer["keep_weekly"] = policy.keep_weekly;
                 answer["keep_monthly"] = policy.keep_monthly;
                 answer["sealed_with"] = policy.passphrase_file.empty() ? "key_file" : "passphrase";
                 answer["next_at"] = backups.next_at_ms() / 1000;
             }
             if (auto failed = backups.last_failure()) {
                 answer["last_failure"] = {{"at", failed->at_ms / 1000}, {"reason", failed->reason}};
             }
             // The schedule's last run found nothing written since the newest backup, and took none.
             if (auto unchanged = backups.last_unchanged()) {
                 answer["unchanged"] = {{"at", unchanged->at_ms / 1000}, {"backup", unchanged->backup}};
             }
             // The off-site copies (the command itself is not shown: it may name hosts or keys).
             if (backups.copies()) {
                 const CopyState copies = backups.copy_state();
                 Json copy = {{"waiting", copies.waiting}, {"last_copied", copies.last_copied},
                              {"last_copied_at", copies.last_copied_at_ms / 1000}};
                 if (copies.last_failure) {
                     copy["last_failure"] = {{"at", copies.last_failure->at_ms / 1000},
                                             {"reason", copies.last_failure->reason}};
                 }
                 answer["copy"] = copy;
             }
             return json_response(200, answer);
         },
         /*outside_group=*/true},
        // Takes a backup now, into the folder of the schedule; answers once it is read back whole.
        {"POST", "/v1/admin/backups", Access::admin,
         [](RequestContext& ctx) {
             auto taken = ctx.core.backups().run();
             if (!taken) {
                 if (taken.status().code() == ErrorCode::conflict) return error_response(taken.status());
                 // The folder and the system's reason, for the administrator to fix (no record content).
                 return HttpResponse::error(500, "backup_failed", "the backup could not be taken: " +
                                                                      taken.status().message());
             }
             audit_through_group(ctx, "admin.backed_up", taken->name);
             return json_response(201, backup_json(*taken));
         },
         /*outside_group=*/true},
        {"GET", "/v1/admin/audit", Access::admin,
         [](RequestContext& ctx) {
             auto q = ctx.request.query;
             auto after = integer_parameter(ctx.request, "after", 0, 0, INT64_MAX);
             if (!after) return error_response(after.status());
             auto limit = integer_parameter(ctx.request, "limit", 200, 1, 1000);
             if (!limit) return error_response(limit.status());
             auto entries = AuditLog::list(ctx.store, *after, static_cast<int>(*limit), q["target"], q["user_id"]);
             if (!entries) return error_response(entries.status());
             Json list = Json::array();
             for (const auto& e : *entries) {
                 list.push_back({{"seq", e.seq}, {"at", e.at}, {"user_id", e.user_id},
                                 {"device_id", e.device_id}, {"action", e.action},
                                 {"target", e.target}, {"detail", e.detail}});
             }
             // The trail says who read which record when: reading it is on the trail too, with
             // what was asked (an administrator following one worker's or one client's steps).
             // A page showing nothing but such readings is not (paging to the trail's end would
             // never end: each page read would add one).
             const bool shows_more_than_readings = std::any_of(
                 entries->begin(), entries->end(), [](const AuditEntry& e) { return e.action != "admin.audit_read"; });
             if (!shows_more_than_readings) return json_response(200, {{"entries", list}});
             Json filters = Json::object();
             const auto& asked = ctx.request.query;  // `q` has the absent filters as ""
             for (const char* key : {"after", "limit", "target", "user_id"}) {
                 if (auto it = asked.find(key); it != asked.end()) filters[key] = it->second;
             }
             const std::string detail = Json{{"filters", filters}, {"shown", list.size()}}.dump(
                 -1, ' ', false, Json::error_handler_t::replace);
             if (Status a = ctx.audit_in_group("admin.audit_read", "", detail); !a) return error_response(a);
             return json_response(200, {{"entries", list}});
         },
         /*outside_group=*/true},
        // ?seq=N&hash=H: also that the trail still holds the head recorded then (in the log's
        // audit_head lines, say), which no recomputed chain can fake.
        {"GET", "/v1/admin/audit/verify", Access::admin,
         [](RequestContext& ctx) {
             std::optional<AuditHead> anchor;
             if (ctx.request.query.count("seq") || ctx.request.query.count("hash")) {
                 auto seq = integer_parameter(ctx.request, "seq", 0, 1, std::numeric_limits<std::int64_t>::max());
                 if (!seq) return error_response(seq.status());
                 const auto hash = ctx.request.query.find("hash");
                 if (*seq == 0 || hash == ctx.request.query.end() || hash->second.size() != 64) {
                     return HttpResponse::error(400, "invalid",
                                                "give both seq (an entry's number) and hash (its 64 hex "
                                                "characters), as an audit_head log line has them");
                 }
                 anchor = AuditHead{*seq, hash->second};
             }
             auto chain = AuditLog::verify(ctx.store, anchor);
             if (!chain && chain.status().code() != ErrorCode::corrupt) return error_response(chain.status());
             Json answer = {{"intact", chain.is_ok()},
                            {"message", chain ? (anchor ? "every entry follows its predecessor, and the trail "
                                                          "still holds the head given"
                                                        : "every entry follows its predecessor")
                                              : chain.status().message()}};
             if (chain) answer["head"] = {{"seq", chain->seq}, {"hash", chain->hash}};
             return json_response(200, answer);
         },
         /*outside_group=*/true},  // one query walks the whole trail: pushes do not wait for it
    };
}

}  // namespace tsunagu::api
