// The supervisor's web page: the page and its assets (compiled in), its sign-in into a cookie
// session, and the directory of names the page shows instead of ids. Every other request the
// page makes goes to the same /v1 endpoints as any client, under the same scope checks.
#include <algorithm>
#include <set>

#include "api/src/caseload.h"
#include "api/src/server_core.h"
#include "api/src/web_assets.h"

namespace tsunagu::api {

Json user_json(const User& u);  // routes_auth.cpp

namespace {

// No inline script or style anywhere, nothing from elsewhere, never inside a frame.
constexpr const char* kPagePolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

HttpResponse asset_response(const WebAsset& asset) {
    HttpResponse r;
    r.content_type = std::string(asset.content_type);
    r.body = std::string(asset.body);
    r.headers = {{"Content-Security-Policy", kPagePolicy},
                 {"Cross-Origin-Opener-Policy", "same-origin"}};
    return r;
}

// The page is for the office: supervisors review, administrators manage.
bool may_use_page(Role role) {
    return role == Role::supervisor || role == Role::admin;
}

bool is_json_body(const std::string& content_type) {
    return content_type.rfind("application/json", 0) == 0;
}

// Ends the web sessions that ran out, so that their tokens stop working as bearer tokens too.
Status end_ran_out_sessions(RequestContext& ctx) {
    auto ran_out = WebSessions::ran_out(ctx.store, ctx.now, ctx.core.web_sessions);
    if (!ran_out) return ran_out.status();
    for (const auto& id : *ran_out) {
        TSUNAGU_TRY(ctx.accounts.sign_out(id));
        TSUNAGU_TRY(WebSessions::forget(ctx.store, id));
    }
    return Status::ok();
}

HttpResponse refused_sign_in(RequestContext& ctx, const std::string& username,
                             const SignIn& result) {
    audit_refused_sign_in(ctx, username, "web");
    return refused_password(result.outcome, result.retry_after_s, PasswordAsked::sign_in);
}

HttpResponse open_session(RequestContext& ctx, const std::string& username, const Secret& password,
                          const PasswordWork& ahead);

// POST /v1/web/sign-in {username, password}: a web session in the cookie, the CSRF token in the
// answer. Field workers are refused after their password checked out, with nothing registered.
HttpResponse sign_in(RequestContext& ctx) {
    // A cross-site form can post text/plain but not application/json: no sign-in forgery.
    if (!is_json_body(ctx.request.header("content-type"))) {
        wipe(ctx.request.body);  // it may hold a password all the same
        return HttpResponse::error(415, "unsupported_media_type",
                                   "send the sign-in as Content-Type: application/json");
    }
    const std::string& site = ctx.request.header("sec-fetch-site");
    if (site == "cross-site" || site == "same-site") {
        wipe(ctx.request.body);
        return HttpResponse::error(403, "csrf", "sign-ins from other sites are refused");
    }
    auto taken = parse_secret_body(ctx, {"password"});
    if (!taken) return error_response(taken.status());
    Status shape = check_fields(
        taken->json, {{"username", JsonType::string, true}, {"password", JsonType::string, true}});
    if (!shape) return error_response(shape);
    const std::string username = taken->json["username"];
    const Secret& password = taken->secrets[0];
    if (username.size() > 64)
        return HttpResponse::error(400, "invalid", "field \"username\": at most 64 bytes");
    // Argon2id here, on this request's own connection; the rest in the write group.
    auto ahead = ctx.accounts.sign_in_ahead(username, password.view(), ctx.now);
    if (!ahead) return error_response(ahead.status());
    return ctx.core.in_group(ctx, [&](RequestContext& group) { return open_session(group, username, password, *ahead); });
}

// The web sign-in's writes, in the group.
HttpResponse open_session(RequestContext& ctx, const std::string& username, const Secret& password,
                          const PasswordWork& ahead) {
    if (Status s = end_ran_out_sessions(ctx); !s) return error_response(s);

    std::optional<SignIn> result;
    bool field_worker = false;
    // A savepoint: a field worker's successful sign-in is undone, device and session alike.
    Status signed_in = with_transaction(ctx.store, [&]() -> Status {
        auto attempt = ctx.accounts.sign_in(username, password.view(), kWebDeviceName, "", ctx.now, &ahead);
        if (!attempt) return attempt.status();
        result = std::move(*attempt);
        if (result->outcome == SignIn::Outcome::ok && !may_use_page(result->principal.user.role)) {
            field_worker = true;
            return Status(ErrorCode::forbidden, "field workers do not use the web page");
        }
        return Status::ok();
    });
    if (field_worker) {
        const std::string& worker = result->principal.user.id;
        if (Status a = ctx.audit_as(worker, "", "web.sign_in_refused", worker, "field worker"); !a) {
            return error_response(a);
        }
        return HttpResponse::error(
            403, "not_for_field_workers",
            "this page is for supervisors and administrators; field workers record "
            "and sync with the Tsunagu app on their phone");
    }
    if (!signed_in) return error_response(signed_in);
    if (result->outcome != SignIn::Outcome::ok) return refused_sign_in(ctx, username, *result);

    const Principal& p = result->principal;
    if (Status s = WebSessions::open(ctx.store, p.session_id, ctx.now); !s)
        return error_response(s);
    if (Status a = ctx.audit_as(p.user.id, p.device.id, "auth.sign_in", p.device.id, "web"); !a) {
        return error_response(a);
    }
    HttpResponse r = json_response(200, {{"user", user_json(p.user)},
                                         {"csrf_token", csrf_token_for(result->token)},
                                         {"idle_seconds", ctx.core.web_sessions.idle_seconds},
                                         {"must_change_password", p.user.must_change_password}});
    r.headers.emplace_back("Set-Cookie", session_cookie(result->token));
    return r;
}

// GET /v1/web/session: who is signed in with this cookie, and the CSRF token, so that a reload
// keeps the session. Only a same-origin script can read the answer.
HttpResponse current_session(RequestContext& ctx) {
    if (!ctx.via_session_cookie) {
        return HttpResponse::error(400, "invalid",
                                   "this endpoint is for the web page's cookie session");
    }
    const std::string token = session_token_from_cookie(ctx.request.header("cookie"));
    return json_response(200, {{"user", user_json(ctx.who().user)},
                               {"csrf_token", csrf_token_for(token)},
                               {"idle_seconds", ctx.core.web_sessions.idle_seconds},
                               {"must_change_password", ctx.who().user.must_change_password}});
}

// GET /v1/web/directory: the names the supervisor's screens show instead of ids: their team, its
// members and their devices, the server's replica, and the pseudonym and area of each client in
// their scope.
HttpResponse directory(RequestContext& ctx) {
    const User& me = ctx.who().user;
    Json team = {{"id", me.team_id}, {"name", ""}};
    auto teams = ctx.accounts.list_teams();
    if (!teams) return error_response(teams.status());
    for (const auto& [id, name] : *teams) {
        if (id == me.team_id) team["name"] = name;
    }
    auto users = ctx.accounts.list_users();
    if (!users) return error_response(users.status());
    Json members = Json::array(), devices = Json::array();
    for (const auto& u : *users) {
        if (u.id != me.id && (me.team_id.empty() || u.team_id != me.team_id)) continue;
        members.push_back({{"id", u.id},
                           {"username", u.username},
                           {"display_name", u.display_name},
                           {"role", role_name(u.role)}});
        auto owned = ctx.accounts.list_devices(u.id);
        if (!owned) return error_response(owned.status());
        for (const auto& d : *owned)
            devices.push_back({{"id", d.id}, {"name", d.name}, {"user_id", d.user_id}});
    }
    auto scope_set = Caseloads::scope_set(ctx.store, me);
    if (!scope_set) return error_response(scope_set.status());
    const std::set<std::string>& scope = *scope_set;
    auto records = ctx.upstream.list("client");
    if (!records) return error_response(records.status());
    Json clients = Json::array();
    for (const auto& r : *records) {
        if (r.deleted || !scope.count(r.scope_key)) continue;
        clients.push_back({{"id", r.id},
                           {"pseudonym", r.text("pseudonym")},
                           {"area", r.text("area")}});
    }
    // The clients' pseudonyms and areas are the records' own: the reading is on the trail, naming
    // whose were read.
    Json ids = Json::array();
    for (const auto& c : clients) ids.push_back(c["id"]);
    if (Status a = ctx.audit_in_group("directory.read", "", Json{{"clients", clients.size()}, {"ids", ids}}.dump());
        !a) {
        return error_response(a);
    }
    // Reviews and resolutions made on this page are changes of the server's own replica.
    return json_response(200, {{"team", team},
                               {"members", members},
                               {"devices", devices},
                               {"server_replica", ctx.upstream.replica_id()},
                               {"clients", clients}});
}

}  // namespace

HttpResponse web_sign_out(RequestContext& ctx) {
    if (Status s = ctx.accounts.sign_out(ctx.who().session_id); !s) return error_response(s);
    if (Status s = WebSessions::forget(ctx.store, ctx.who().session_id); !s)
        return error_response(s);
    if (Status a = ctx.audit("auth.sign_out", ctx.who().device.id, "web"); !a) return error_response(a);
    HttpResponse r = json_response(200, {{"signed_out", true}});
    r.headers.emplace_back("Set-Cookie", expired_session_cookie());
    return r;
}

std::vector<Route> web_routes() {
    std::vector<Route> routes;
    for (const WebAsset& asset : web_assets()) {
        routes.push_back({"GET", std::string(asset.path), Access::anyone,
                          [&asset](RequestContext&) { return asset_response(asset); },
                          /*outside_group=*/true});
    }
    routes.push_back({"POST", "/v1/web/sign-in", Access::anyone, sign_in, /*outside_group=*/true,
                      /*before_own_password=*/false, Lane::password});
    routes.push_back({"GET", "/v1/web/session", Access::signed_in, current_session, false, /*before_own_password=*/true});
    routes.push_back({"POST", "/v1/web/sign-out", Access::signed_in, web_sign_out, false, /*before_own_password=*/true});
    routes.push_back({"GET", "/v1/web/directory", Access::supervisor, directory, /*outside_group=*/true});
    return routes;
}

}  // namespace tsunagu::api
