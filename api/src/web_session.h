// Sessions of the supervisor's web page: an ordinary account session whose token lives in an
// HttpOnly, Secure, SameSite=Strict cookie, marked as a web session so that it also ends after
// a short idle time, and guarded against cross-site request forgery by a per-session token.
//
// The CSRF token is derived from the session token (BLAKE2b with its own domain prefix), so it
// needs no storage: only a holder of the cookie's secret, i.e. the server, can compute it, and
// only a same-origin script that was handed it (GET /v1/web/session) can send it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/src/accounts.h"
#include "crypto/store.h"

namespace tsunagu::api {

// The cookie's name: the __Host- prefix makes the browser insist on Secure, Path=/ and no
// Domain, so no sibling host can set or shadow it.
inline constexpr const char* kSessionCookie = "__Host-tsunagu_session";
// The header every state-changing request made with the cookie must carry (lower-case).
inline constexpr const char* kCsrfHeader = "x-csrf-token";
// (The device name of a user's web sign-ins, kWebDeviceName, is in accounts.h.)

struct WebSessionPolicy {
    std::int64_t idle_seconds = 15 * 60;        // no request for this long ends the session
    std::int64_t lifetime_seconds = 12 * 3600;  // and none lasts longer than a working day
};

// The session token in a Cookie header, or "" when there is none.
std::string session_token_from_cookie(const std::string& cookie_header);
// Set-Cookie values that store the token, and that erase it.
std::string session_cookie(const std::string& token);
std::string expired_session_cookie();

// The CSRF token of a session token (64 hex characters).
std::string csrf_token_for(std::string_view session_token);
// Whether `presented` is the CSRF token of `session_token`; constant time (sodium_memcmp).
bool csrf_token_matches(std::string_view session_token, std::string_view presented);

// The web_session table: which account sessions are web sessions and when each was last used.
// Every call runs on the caller's connection, inside the caller's transaction if one is open.
class WebSessions {
  public:
    enum class State { not_web, active, expired };

    static Status create_schema(Store& store);
    // Marks `session_id` as a web session opened at `now`.
    static Status open(Store& store, const std::string& session_id, std::int64_t now);
    // not_web for sessions of devices; expired once idle or lifetime ran out at `now`.
    // `last_active_at`, when given, receives when the session was last used.
    static Result<State> check(Store& store, const std::string& session_id, std::int64_t now,
                               const WebSessionPolicy& policy, std::int64_t* last_active_at = nullptr);
    // Records activity at `now` (a no-op when already recorded this second).
    static Status touch(Store& store, const std::string& session_id, std::int64_t now);
    // Forgets the mark (the caller ends the account session itself).
    static Status forget(Store& store, const std::string& session_id);
    // Session ids of web sessions that ran out by `now`, for the caller to end.
    static Result<std::vector<std::string>> ran_out(Store& store, std::int64_t now,
                                                    const WebSessionPolicy& policy);
};

}  // namespace tsunagu::api
