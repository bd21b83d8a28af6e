// Web sessions: the cookie, the CSRF token derived from the session token, and the table that
// marks account sessions as web sessions with their last activity.
#include "api/src/web_session.h"

#include <sodium.h>

#include "api/src/clock_step.h"

namespace tsunagu::api {
namespace {

constexpr std::string_view kCsrfDomain = "tsunagu web page csrf v1";

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t");
    return std::string(s.substr(first, last - first + 1));
}

}  // namespace

std::string session_token_from_cookie(const std::string& cookie_header) {
    const std::string wanted = std::string(kSessionCookie) + "=";
    std::size_t at = 0;
    while (at <= cookie_header.size()) {
        std::size_t end = cookie_header.find(';', at);
        if (end == std::string::npos) end = cookie_header.size();
        const std::string pair = trim(std::string_view(cookie_header).substr(at, end - at));
        if (pair.rfind(wanted, 0) == 0) return pair.substr(wanted.size());
        at = end + 1;
    }
    return {};
}

std::string session_cookie(const std::string& token) {
    // No Max-Age: the cookie dies with the browser; the server ends the session sooner.
    return std::string(kSessionCookie) + "=" + token +
           "; Path=/; HttpOnly; Secure; SameSite=Strict";
}

std::string expired_session_cookie() {
    return std::string(kSessionCookie) + "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict";
}

std::string csrf_token_for(std::string_view session_token) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, 32);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kCsrfDomain.data()),
                              kCsrfDomain.size());
    const unsigned char separator = 0;
    crypto_generichash_update(&state, &separator, 1);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(session_token.data()),
                              session_token.size());
    unsigned char digest[32];
    crypto_generichash_final(&state, digest, sizeof digest);
    char hex[sizeof digest * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    sodium_memzero(digest, sizeof digest);
    return hex;
}

bool csrf_token_matches(std::string_view session_token, std::string_view presented) {
    if (session_token.empty()) return false;
    const std::string expected = csrf_token_for(session_token);
    // The length is public (always 64); the content is compared in constant time.
    if (presented.size() != expected.size()) return false;
    return sodium_memcmp(expected.data(), presented.data(), expected.size()) == 0;
}

Status WebSessions::create_schema(Store& store) {
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS web_session(
  session_id TEXT PRIMARY KEY,
  opened_at INTEGER NOT NULL,
  last_active_at INTEGER NOT NULL);
)sql");
}

Status WebSessions::open(Store& store, const std::string& session_id, std::int64_t now) {
    auto& q = store.cached(
        "INSERT INTO web_session(session_id, opened_at, last_active_at) VALUES(?1, ?2, ?2) "
        "ON CONFLICT(session_id) DO UPDATE SET opened_at = ?2, last_active_at = ?2");
    q.bind(1, session_id).bind(2, now);
    return q.run();
}

Result<WebSessions::State> WebSessions::check(Store& store, const std::string& session_id,
                                              std::int64_t now, const WebSessionPolicy& policy,
                                              std::int64_t* last_active_out) {
    auto& q =
        store.cached("SELECT opened_at, last_active_at FROM web_session WHERE session_id = ?1");
    q.bind(1, session_id);
    auto row = q.step();
    if (!row) return row.status();
    if (!*row) return State::not_web;
    const std::int64_t opened_at = q.column_int(0);
    const std::int64_t last_active_at = q.column_int(1);
    q.reset();
    if (last_active_out) *last_active_out = last_active_at;
    if (now - last_active_at >= policy.idle_seconds || now - opened_at >= policy.lifetime_seconds) {
        return State::expired;
    }
    // Used or opened "in the future": the clock was set back since, and how long the session has
    // been idle or open is unknown. It ends rather than lasting the step longer.
    if (set_back_since(last_active_at, now) || set_back_since(opened_at, now)) return State::expired;
    return State::active;
}

Status WebSessions::touch(Store& store, const std::string& session_id, std::int64_t now) {
    auto& q = store.cached(
        "UPDATE web_session SET last_active_at = ?2 WHERE session_id = ?1 AND last_active_at < ?2");
    q.bind(1, session_id).bind(2, now);
    return q.run();
}

Status WebSessions::forget(Store& store, const std::string& session_id) {
    auto& q = store.cached("DELETE FROM web_session WHERE session_id = ?1");
    q.bind(1, session_id);
    return q.run();
}

Result<std::vector<std::string>> WebSessions::ran_out(Store& store, std::int64_t now,
                                                      const WebSessionPolicy& policy) {
    auto& q = store.cached(
        "SELECT session_id FROM web_session WHERE last_active_at <= ?1 OR opened_at <= ?2"
        " OR last_active_at > ?3 OR opened_at > ?3");
    q.bind(1, now - policy.idle_seconds).bind(2, now - policy.lifetime_seconds);
    q.bind(3, now + kClockStepToleranceSeconds);  // set_back_since, in SQL
    std::vector<std::string> ids;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        ids.emplace_back(q.column_text(0));
    }));
    return ids;
}

}  // namespace tsunagu::api
