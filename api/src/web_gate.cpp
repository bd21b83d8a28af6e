// The web page's session rules as the core applies them to every authenticated request, and the
// security headers every answer carries.
#include <algorithm>

#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

bool changes_state(const std::string& method) {
    return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

bool has_header(const HttpResponse& r, const std::string& name) {
    return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) {
        return std::equal(h.first.begin(), h.first.end(), name.begin(), name.end(),
                          [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    });
}

}  // namespace

std::optional<HttpResponse> check_web_session(RequestContext& ctx, const std::string& token,
                                              bool may_write) {
    const std::string& session_id = ctx.who().session_id;
    auto state = WebSessions::check(ctx.store, session_id, ctx.now, ctx.core.web_sessions);
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
    if (ctx.via_session_cookie && changes_state(ctx.request.method)) {
        // Defence in depth: browsers label cross-site requests; SameSite=Strict already keeps
        // the cookie off them, and the token below is the actual protection.
        const std::string& site = ctx.request.header("sec-fetch-site");
        if (site == "cross-site" || site == "same-site") {
            return HttpResponse::error(403, "csrf", "requests from other sites are refused");
        }
        if (!csrf_token_matches(token, ctx.request.header(kCsrfHeader))) {
            return HttpResponse::error(
                403, "csrf", "missing or wrong X-CSRF-Token header: reload the page and try again");
        }
    }
    if (may_write) {
        if (Status s = WebSessions::touch(ctx.store, session_id, ctx.now); !s)
            return error_response(s);
    }
    return std::nullopt;
}

void add_security_headers(HttpResponse& response) {
    if (!has_header(response, "Content-Security-Policy")) {
        response.headers.emplace_back("Content-Security-Policy",
                                      "default-src 'none'; frame-ancestors 'none'");
    }
    response.headers.emplace_back("Referrer-Policy", "no-referrer");
    response.headers.emplace_back("X-Frame-Options", "DENY");
    response.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

}  // namespace tsunagu::api
