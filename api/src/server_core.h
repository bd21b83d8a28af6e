// The server's request handling in plain C++: routing, authentication, role checks, JSON errors,
// metrics and logs. The HTTP adapter hands requests in on worker threads; each worker borrows one
// Store connection from the pool for the request.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http.h"
#include "api/src/accounts.h"
#include "api/src/backups.h"
#include "api/src/commit_group.h"
#include "api/src/compactor.h"
#include "api/src/error_response.h"
#include "api/src/connection_pool.h"
#include "api/src/json_input.h"
#include "api/src/observability.h"
#include "api/src/session_cache.h"
#include "api/src/web_session.h"
#include "crypto/secret.h"
#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::api {

class ServerCore;

// Everything a route handler needs for one request.
struct RequestContext {
    HttpRequest& request;
    Store& store;                       // this worker's connection, for this request only
    sync::Upstream& upstream;           // the sync engine over that connection
    Accounts& accounts;
    std::optional<Principal> principal;  // set for routes that require sign-in
    std::map<std::string, std::string> params;  // path parameters, e.g. {"id": "..."}
    std::int64_t now = 0;               // unix seconds
    ServerCore& core;
    // True when the session token came in the web page's cookie rather than a bearer header.
    bool via_session_cookie = false;

    const Principal& who() const { return *principal; }

    // Appends to the audit trail (api/src/audit.h) in this request's transaction, as the caller
    // (anonymously when no one is signed in): the entry commits with the request's writes, or
    // not at all. A route answers error_response() when it fails, which rolls the request back:
    // nothing is read or written that the trail does not show. (The one exception is a refused
    // sign-in, whose failure counter must stay: it logs the failure and still refuses.)
    Status audit(std::string action, std::string target, std::string detail = "");
    // For a route outside the group (Route::outside_group): the entry goes through the group,
    // durable when this returns; a route answers error_response() when it fails, before anything
    // it read leaves. A signed-in caller's session is checked again there: revoked, disabled or
    // signed out since the request was authenticated, nothing is appended, this fails, and the
    // request is answered as its session now stands (a wipe, or 401), whatever the route answers.
    // `work_done`: the route's work stands whatever the session (a compaction, a backup): the entry
    // is appended all the same, and the answer is the route's.
    Status audit_in_group(std::string action, std::string target, std::string detail = "", bool work_done = false);
    // Set by audit_in_group when the session ended while the request was handled.
    std::optional<HttpResponse> ended_meanwhile{};
    // The same, naming who acted: a sign-in, whose caller has no principal yet.
    Status audit_as(std::string user_id, std::string device_id, std::string action, std::string target,
                    std::string detail = "");
};

// Records a refused sign-in of `username` (`detail`: where from, "web" or ""). The trail names
// the account by its id, and a name no account has only as unknown: what someone typed into the
// name field may be their password. A failure to append it is logged, not answered: the refusal
// stands, and with it the failed-attempt count the lockout reads (a server error would roll that
// back, so a full disk would open the door to guessing).
void audit_refused_sign_in(RequestContext& ctx, const std::string& username, const std::string& detail);
// Records a refused change of the caller's own password (a wrong current password), the same way.
void audit_refused_password_change(RequestContext& ctx);

// Where a password was refused: at a sign-in (wrong: 401), or in a signed-in caller's change of
// their own password (wrong: 403, the session itself being good).
enum class PasswordAsked { sign_in, change };
// The answer to a refused password, the same at every door: wrong, 429 while a wait runs, 423
// when locked, 403 for a disabled account; with Retry-After whenever a wait runs.
HttpResponse refused_password(SignIn::Outcome outcome, std::int64_t retry_after_s, PasswordAsked asked);

enum class Access {
    anyone,      // no token needed
    signed_in,   // any valid session
    supervisor,  // supervisors (and admins who read no care records unless also supervisors)
    admin,       // administrators
};

using RouteHandler = std::function<HttpResponse(RequestContext&)>;

struct Route {
    std::string method;
    std::string pattern;  // "/v1/admin/devices/{id}/revoke"
    Access access;
    RouteHandler handler;
    // A route runs, by default, in a savepoint of a group transaction (commit_group.h): one
    // writer at a time, queued in process, and one commit to disk for a whole group, instead of
    // several SQLite connections polling for the database lock with sleeps. A route outside the
    // group runs on a connection of its own, concurrently with others: it reads there, and hands
    // any writes to ServerCore::commit_group() (the sync routes parse and check a push, or read a
    // pull page, outside, so that the group's serial work is the database's only).
    bool outside_group = false;
    // Open to an account whose password an administrator set (must_change_password), which may do
    // nothing else until it has chosen its own: a password handed over on paper or by phone must
    // not go on reading care records.
    bool before_own_password = false;
    // The worker pool's lane its requests wait in (api/http.h): bulk for pull pages, password for
    // the routes that run Argon2id. Only a route with a fixed path (no "{id}") may leave the
    // interactive lane: the adapter classifies each request before any route is matched.
    Lane lane = Lane::interactive;
};

// Administrators manage accounts; they hold and write no care records: routes open to every
// signed-in user that carry care records answer them no_care_records() (403).
bool holds_care_records(const Principal& p);
HttpResponse no_care_records();
// The answer to a revoked device: 401 with error "wipe", which the device library obeys by erasing
// its replica.
HttpResponse wipe_response();
// The answer to a request whose session ended while it was handled (`session`: not live): the
// wipe for a revoked device, 401 otherwise.
HttpResponse session_ended_response(Accounts::SessionNow session);
// The query parameter `name` as an integer from `lo` to `hi`, `fallback` when absent; a validation
// error naming the parameter and the range otherwise.
Result<std::int64_t> integer_parameter(const HttpRequest& request, const std::string& name, std::int64_t fallback,
                                       std::int64_t lo, std::int64_t hi);
HttpResponse json_response(int status, const Json& body);
// The JSON object body of a request that carries secrets (passwords), parsed, with each member
// named in `keys` that is a string moved into guarded memory (`secrets`, in the order of `keys`;
// an empty Secret for one absent or not a string) and wiped from the parsed body, and the
// request's text wiped: all before anything can refuse the request, so that a body refused as
// malformed or for its shape (a field too many, a wrong type) leaves no copy of a password in the
// server's own buffers. A wiped member stays in the body as a string, for check_fields. (Beyond
// reach: the JSON lexer's token buffer, freed unwiped when the parse ends, and cpprestsdk's socket
// buffers; core dumps are off, so reading them takes the live process's memory.)
struct SecretBody {
    Json json;
    std::vector<Secret> secrets;
};
Result<SecretBody> parse_secret_body(RequestContext& ctx, std::initializer_list<const char*> keys);

class ServerCore {
public:
    ServerCore(ConnectionPool& pool, SignInPolicy policy);
    void add_routes(std::vector<Route> routes);
    // The adapter's entry point: never throws, always answers.
    HttpResponse handle(HttpRequest& request);
    // The lane the adapter queues `request` in (Route::lane); interactive for any other request.
    // Cheap (one lookup of method and path), safe from any thread once the routes are added.
    Lane lane_of(const HttpRequest& request) const;

    Metrics& metrics() { return metrics_; }
    CommitGroup& commit_group() { return commits_; }
    Compactor& compactor() { return compactor_; }
    // The server's own backups; disabled (no folder) until the server sets its policy.
    Backups& backups() { return *backups_; }
    void use_backups(std::unique_ptr<Backups> backups) { backups_ = std::move(backups); }
    SessionCache& sessions() { return sessions_; }
    // For a route outside the group: runs `work` in the group, on a context like `outside` but
    // over the group's connection (its store, engine and accounts), and answers what it answers.
    // Its writes and audit entries land as a grouped route's do (CommitGroup::run).
    HttpResponse in_group(RequestContext& outside, const std::function<HttpResponse(RequestContext&)>& work);
    const SignInPolicy& sign_in_policy() const { return policy_; }
    // The adapter's in-flight requests and queue depth, for /metrics gauges. Set before the
    // adapter starts (requests read it from its threads), and never after.
    std::function<std::pair<std::size_t, std::size_t>()> load_gauges;
    // Whether successful requests are logged (errors always are).
    bool log_requests = true;
    // Idle and lifetime limits of the web page's sessions.
    WebSessionPolicy web_sessions;

private:
    // Finds the connection for `route` (404 or 405 without one) and serves the request on it.
    HttpResponse dispatch(const Route* route, bool path_known, HttpRequest& request,
                          std::map<std::string, std::string> params, std::string& user_id);
    // Authenticates, checks the route's role, and runs its handler on `connection`.
    HttpResponse serve(const Route& route, HttpRequest& request, std::map<std::string, std::string> params,
                       ServerConnection& connection, std::string& user_id);
    const Route* match(const HttpRequest& request, std::map<std::string, std::string>& params,
                       bool& path_known) const;
    ConnectionPool& pool_;
    SignInPolicy policy_;
    std::vector<Route> routes_;
    std::vector<std::vector<std::string>> patterns_;  // each route's pattern, split at '/'
    std::unordered_map<std::string, Lane> lanes_;     // "METHOD /path" of each route off the interactive lane
    Metrics metrics_;
    CommitGroup commits_;
    Compactor compactor_{commits_, metrics_};
    std::unique_ptr<Backups> backups_ = std::make_unique<Backups>(metrics_, "", "", BackupPolicy{});
    SessionCache sessions_;  // Accounts::authenticate uses it where it may (SQLite, no transaction)
};

// Route tables, one per concern.
std::vector<Route> operations_routes();
std::vector<Route> auth_routes();
std::vector<Route> admin_routes();
std::vector<Route> sync_routes();
std::vector<Route> supervisor_routes();
std::vector<Route> refused_routes();
std::vector<Route> report_routes();
std::vector<Route> web_routes();

// Signs out the web page's session a request came with (routes_web.cpp): the session, its web
// session's row and the cookie end. POST /v1/auth/sign-out made with the cookie does the same.
HttpResponse web_sign_out(RequestContext& ctx);

// The web page's session rules, for an authenticated request (web_gate.cpp): a web session ends
// after its idle time or lifetime (and is then signed out, when `may_write`); the session cookie
// carries web sessions only; a state-changing request made with the cookie must carry the
// session's CSRF token. Returns the refusal to send, or nullopt to go on.
std::optional<HttpResponse> check_web_session(RequestContext& ctx, const std::string& token, bool may_write);

}  // namespace tsunagu::api
