// Sign-in, sign-out and "who am I".
#include "api/src/server_core.h"

namespace tsunagu::api {

Json user_json(const User& u) {
    return {{"id", u.id},
            {"username", u.username},
            {"display_name", u.display_name},
            {"role", role_name(u.role)},
            {"team_id", u.team_id},
            {"disabled", u.disabled}};
}

namespace {

HttpResponse open_session(RequestContext& ctx, const std::string& username, const Secret& password,
                          const std::string& device_name, const std::string& device_id, const PasswordWork& ahead);

HttpResponse sign_in(RequestContext& ctx) {
    auto taken = parse_secret_body(ctx, {"password"});
    if (!taken) return error_response(taken.status());
    Json& body = taken->json;
    const Secret& password = taken->secrets[0];
    Status shape = check_fields(body, {{"username", JsonType::string, true},
                                       {"password", JsonType::string, true},
                                       {"device_name", JsonType::string, false},
                                       {"device_id", JsonType::string, false}});
    if (!shape) return error_response(shape);
    const std::string username = body["username"];
    const std::string device_name = body.value("device_name", "");
    // A device may propose its replica id (see Accounts::sign_in), never the server's own: its
    // changes would pass for the server's (a supervisor's review), and revoking it would forget
    // the server's progress.
    std::string device_id = body.value("device_id", "");
    if (device_id == ctx.upstream.replica_id()) device_id.clear();
    if (username.size() > 64 || device_name.size() > 100 || device_id.size() > 64) {
        return HttpResponse::error(400, "invalid", "username, device_name or device_id is too long");
    }
    // The name under which the web page registers each user's browser sign-ins: a phone of that
    // name would be taken for it, its sessions ended with the page's and its device shared.
    if (device_name == kWebDeviceName) {
        return HttpResponse::error(400, "invalid", std::string("field \"device_name\": \"") + kWebDeviceName +
                                                       "\" is kept for the web page's sign-ins; name the device otherwise");
    }

    // Argon2id here, on this request's own connection; the rest in the write group.
    auto ahead = ctx.accounts.sign_in_ahead(username, password.view(), ctx.now);
    if (!ahead) return error_response(ahead.status());
    return ctx.core.in_group(ctx, [&](RequestContext& group) {
        return open_session(group, username, password, device_name, device_id, *ahead);
    });
}

// The sign-in's writes, in the group: the check again (with the work done ahead), then the
// device, the session and the audit entry, or the refusal counted.
HttpResponse open_session(RequestContext& ctx, const std::string& username, const Secret& password,
                          const std::string& device_name, const std::string& device_id, const PasswordWork& ahead) {
    auto result = ctx.accounts.sign_in(username, password.view(), device_name, device_id, ctx.now, &ahead);
    if (!result) return error_response(result.status());
    if (result->outcome != SignIn::Outcome::ok) {
        // A disabled account's too, as the web page's: its right password tried is worth knowing.
        audit_refused_sign_in(ctx, username, "");
        return refused_password(result->outcome, result->retry_after_s, PasswordAsked::sign_in);
    }
    const Principal& p = result->principal;
    // No session is handed out that the trail does not show.
    if (Status a = ctx.audit_as(p.user.id, p.device.id, "auth.sign_in", p.device.id); !a) return error_response(a);
    return json_response(200, {{"token", result->token},
                               {"user", user_json(p.user)},
                               {"device_id", p.device.id},
                               {"must_change_password", p.user.must_change_password},
                               {"server_time_ms", ctx.now * 1000}});
}

}  // namespace

std::vector<Route> auth_routes() {
    return {
        {"POST", "/v1/auth/sign-in", Access::anyone, sign_in, /*outside_group=*/true, /*before_own_password=*/false,
         Lane::password},
        {"POST", "/v1/auth/sign-out", Access::signed_in,
         [](RequestContext& ctx) {
             if (ctx.via_session_cookie) return web_sign_out(ctx);  // the cookie and its web session too
             Status s = ctx.accounts.sign_out(ctx.who().session_id);
             if (!s) return error_response(s);
             if (Status a = ctx.audit("auth.sign_out", ctx.who().device.id); !a) return error_response(a);
             return json_response(200, {{"signed_out", true}});
         },
         /*outside_group=*/false, /*before_own_password=*/true},
        {"GET", "/v1/me", Access::signed_in,
         [](RequestContext& ctx) {
             return json_response(200, {{"user", user_json(ctx.who().user)},
                                        {"device_id", ctx.who().device.id}});
         },
         /*outside_group=*/false, /*before_own_password=*/true},
        {"POST", "/v1/me/password", Access::signed_in,
         [](RequestContext& ctx) {
             auto taken = parse_secret_body(ctx, {"current_password", "password"});
             if (!taken) return error_response(taken.status());
             Status shape = check_fields(taken->json, {{"current_password", JsonType::string, true},
                                                       {"password", JsonType::string, true}});
             if (!shape) return error_response(shape);
             const Secret& current = taken->secrets[0];
             const Secret& password = taken->secrets[1];
             // Argon2id (the check and the new hash) here; the change in the write group.
             auto ahead = ctx.accounts.password_change_ahead(ctx.who(), current.view(), password.view(), ctx.now);
             if (!ahead) return error_response(ahead.status());
             return ctx.core.in_group(ctx, [&](RequestContext& group) {
                 auto changed = group.accounts.change_own_password(group.who(), current.view(), password.view(),
                                                                   group.now, &*ahead);
                 if (!changed) return error_response(changed.status());
                 if (changed->outcome != SignIn::Outcome::ok) {
                     audit_refused_password_change(group);
                     return refused_password(changed->outcome, changed->retry_after_s, PasswordAsked::change);
                 }
                 // Every other session of the account ended with the change; this one goes on.
                 if (Status a = group.audit("auth.password_changed", group.who().user.id); !a) return error_response(a);
                 return json_response(200, {{"changed", true}});
             });
         },
         /*outside_group=*/true, /*before_own_password=*/true, Lane::password},
    };
}

}  // namespace tsunagu::api
