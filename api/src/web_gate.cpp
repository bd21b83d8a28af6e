// The web page's session rules as the core applies them to every authenticated request.
#include <algorithm>

#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

bool changes_state(const std::string& method) {
    return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

std::optional<HttpResponse> check_web_session(RequestContext& ctx, const std::string& token,
                                              bool may_write) {
    const std::string& session_id = ctx.who().session_id;
    std::int64_t last_active_at = 0;
    auto state = WebSessions::check(ctx.store, session_id, ctx.now, ctx.core.web_sessions, &last_active_at);
    if (!state) return error_response(state.status());
    switch (*state) {
        case WebSessions::State::not_web:
            // A device's token pasted into the cookie would escape the idle limit and the CSRF
            // token; the cookie only ever carries what POST /v1/web/sign-in put there.
            if (!ctx.via_session_cookie) return std::nullopt;
            return HttpResponse::error(401, "unauthenticated",
                                       "this cookie is not a web page session; sign in again");
        case WebSessions::State::expired: {
            if (may_write) {
                (void)ctx.accounts.sign_out(session_id);
                (void)WebSessions::forget(ctx.store, session_id);
            }
            HttpResponse r =
                HttpResponse::error(401, "session_expired",
                                    "you were signed out after " +
                                        std::to_string(ctx.core.web_sessions.idle_seconds / 60) +
                                        " minutes without activity; sign in again");
            if (ctx.via_session_cookie)
                r.headers.emplace_back("Set-Cookie", expired_session_cookie());
            return r;
        }
        case WebSessions::State::active:
            break;
    }
    // Browsers label requests another site made. SameSite=Strict keeps the cookie off cross-site
    // ones, but not off those of a sibling subdomain (same-site): refused whatever the method,
    // since a read too is audited as the supervisor's (an <img> could fill her trail).
    const std::string& site = ctx.request.header("sec-fetch-site");
    if (ctx.via_session_cookie && (site == "cross-site" || site == "same-site")) {
        return HttpResponse::error(403, "csrf", "requests from other sites are refused");
    }
    if (ctx.via_session_cookie && changes_state(ctx.request.method)) {
        // The actual protection of a change: the session's CSRF token.
        if (!csrf_token_matches(token, ctx.request.header(kCsrfHeader))) {
            return HttpResponse::error(
                403, "csrf", "missing or wrong X-CSRF-Token header: reload the page and try again");
        }
    }
    if (may_write) {
        if (Status s = WebSessions::touch(ctx.store, session_id, ctx.now); !s)
            return error_response(s);
    } else {
        // A read on a connection of its own (the indicators, a pull page) is activity too: the
        // touch is handed to the commit group, now and then, not waited for (losing one in a
        // crash costs a session at most a few seconds of its idle time).
        const std::int64_t every = std::clamp<std::int64_t>(ctx.core.web_sessions.idle_seconds / 4, 1, 60);
        if (ctx.now - last_active_at >= every) {
            const std::int64_t now = ctx.now;
            ctx.core.commit_group().post([session_id, now](ServerConnection& c) {
                Status s = WebSessions::touch(c.store, session_id, now);
                return s ? HttpResponse{} : error_response(s);
            });
        }
    }
    return std::nullopt;
}


}  // namespace tsunagu::api
