// Request handling: route match, authentication, role gate, error mapping, metrics, logs.
#include "api/src/server_core.h"

#include "api/src/audit.h"
#include "api/src/commit_group.h"
#include "sync/protocol.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <typeinfo>
#include <string_view>

namespace tsunagu::api {

// ---- responses --------------------------------------------------------------------------

Result<SecretBody> parse_secret_body(RequestContext& ctx, std::initializer_list<const char*> keys) {
    auto body = parse_json_object(ctx.request.body);
    SecretBody taken;
    if (body) {
        for (const char* key : keys) {
            auto member = body->find(key);
            const bool text = member != body->end() && member->is_string();
            taken.secrets.push_back(text ? Secret::take(member->get_ref<std::string&>()) : Secret());
        }
    }
    wipe(ctx.request.body);
    if (!body) return body.status();
    taken.json = std::move(*body);
    return taken;
}

HttpResponse json_response(int status, const Json& body) {
    HttpResponse r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

Result<std::int64_t> integer_parameter(const HttpRequest& r, const std::string& name, std::int64_t fallback,
                                       std::int64_t lo, std::int64_t hi) {
    auto it = r.query.find(name);
    if (it == r.query.end()) return fallback;
    try {
        std::size_t used = 0;
        const long long v = std::stoll(it->second, &used);
        if (used != it->second.size() || v < lo || v > hi) throw std::out_of_range(name);
        return static_cast<std::int64_t>(v);
    } catch (const std::exception&) {
        return Status(ErrorCode::validation, "query parameter \"" + name + "\": must be an integer from " +
                                                 std::to_string(lo) + " to " + std::to_string(hi));
    }
}

bool holds_care_records(const Principal& p) { return p.user.role != Role::admin; }

HttpResponse wipe_response() {
    return HttpResponse::error(401, "wipe", "this device was revoked: erase its local data now");
}

HttpResponse no_care_records() {
    return HttpResponse::error(403, "forbidden",
                               "administrators hold no care records; sign in as a worker or supervisor");
}

// ---- RequestContext ------------------------------------------------------------------------

Status RequestContext::audit(std::string action, std::string target, std::string detail) {
    return audit_as(principal ? principal->user.id : "", principal ? principal->device.id : "", std::move(action),
                    std::move(target), std::move(detail));
}

HttpResponse session_ended_response(Accounts::SessionNow session) {
    if (session == Accounts::SessionNow::revoked) return wipe_response();
    return HttpResponse::error(401, "unauthenticated",
                               "this session ended as the request was handled (signed out, the account disabled "
                               "or its password replaced); sign in again");
}

Status RequestContext::audit_in_group(std::string action, std::string target, std::string detail, bool work_done) {
    const AuditEntry entry{0, now, principal ? principal->user.id : "", principal ? principal->device.id : "",
                           std::move(action), std::move(target), std::move(detail)};
    Accounts::SessionNow session = Accounts::SessionNow::live;
    Status written = core.commit_group().write([&](ServerConnection& connection) {
        if (principal && !work_done) {
            auto current = Accounts::session_now(connection.store, principal->session_id, principal->device.id, now);
            TSUNAGU_TRY(current);
            if ((session = *current) != Accounts::SessionNow::live) return Status::ok();
        }
        return AuditLog::append(connection.store, entry);
    });
    TSUNAGU_TRY(written);
    if (session == Accounts::SessionNow::live) return Status::ok();
    ended_meanwhile = session_ended_response(session);
    return Status(ErrorCode::forbidden, "the session ended as the request was handled");
}

Status RequestContext::audit_as(std::string user_id, std::string device_id, std::string action, std::string target,
                                std::string detail) {
    Status appended = AuditLog::append(store, {0, now, std::move(user_id), std::move(device_id), std::move(action),
                                               std::move(target), std::move(detail)});
    if (appended) return appended;
    // Always a server error (a full disk, a busy store, or else internal), never a 4xx: a server
    // error rolls the request back, so its writes go with the entry that could not be written.
    const ErrorCode code = appended.code();
    if (code == ErrorCode::storage_full || code == ErrorCode::busy || code == ErrorCode::unavailable) return appended;
    return Status(ErrorCode::internal, "the audit trail could not be written: " + appended.message());
}

namespace {

void audit_refusal(RequestContext& ctx, std::string user_id, std::string device_id, const char* action,
                   std::string target, std::string detail) {
    Status audited = ctx.audit_as(std::move(user_id), std::move(device_id), action, std::move(target), std::move(detail));
    if (!audited) log_event("error", "audit_failed", {{"action", action}, {"error", audited.to_string()}});
}

}  // namespace

void audit_refused_sign_in(RequestContext& ctx, const std::string& username, const std::string& detail) {
    auto account = ctx.accounts.find_user_by_name(username);
    const std::string target = account ? account->id : "(unknown user)";
    audit_refusal(ctx, "", "", "auth.sign_in_failed", target, detail);
}

void audit_refused_password_change(RequestContext& ctx) {
    audit_refusal(ctx, ctx.who().user.id, ctx.who().device.id, "auth.password_change_failed",
                  ctx.who().user.id, "");
}

HttpResponse refused_password(SignIn::Outcome outcome, std::int64_t retry_after_s, PasswordAsked asked) {
    const bool sign_in = asked == PasswordAsked::sign_in;
    HttpResponse r;
    switch (outcome) {
        case SignIn::Outcome::disabled:
            return HttpResponse::error(403, "disabled", "this account is disabled; ask an administrator");
        case SignIn::Outcome::locked:
            r = HttpResponse::error(423, "locked",
                                    sign_in ? "too many failed sign-ins: the account is locked for a while; "
                                              "ask an administrator or wait"
                                            : "too many wrong passwords: the account is locked for a while; "
                                              "ask an administrator or wait");
            break;
        case SignIn::Outcome::wait:
            r = HttpResponse::error(429, "slow_down",
                                    sign_in ? "too many failed sign-ins: wait before trying again"
                                            : "too many wrong passwords: wait before trying again");
            break;
        default:
            r = sign_in ? HttpResponse::error(401, "bad_credentials", "wrong username or password")
                        : HttpResponse::error(403, "wrong_password",
                                              "field \"current_password\": not this account's password");
    }
    if (retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
    return r;
}

// ---- ServerCore -------------------------------------------------------------------------

namespace {

// The non-empty segments of a path: "/v1/sync//push" -> {"v1", "sync", "push"}.
std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> parts;
    while (!path.empty()) {
        const auto slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (!part.empty()) parts.emplace_back(part);
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

}  // namespace

ServerCore::ServerCore(ConnectionPool& pool, SignInPolicy policy)
    : pool_(pool), policy_(policy), commits_(pool) {}

void ServerCore::add_routes(std::vector<Route> routes) {
    for (auto& r : routes) {
        // Two handlers for one method and pattern would leave one unreachable: a build defect.
        for (const auto& known : routes_) {
            if (known.method == r.method && known.pattern == r.pattern) {
                std::fprintf(stderr, "tsunagu-server: route %s %s declared twice\n", r.method.c_str(),
                             r.pattern.c_str());
                std::abort();
            }
        }
        if (r.lane != Lane::interactive) {
            if (r.pattern.find('{') != std::string::npos) {
                std::fprintf(stderr, "tsunagu-server: route %s %s has a parameter and a lane of its own\n",
                             r.method.c_str(), r.pattern.c_str());
                std::abort();
            }
            lanes_.emplace(r.method + ' ' + r.pattern, r.lane);
        }
        patterns_.push_back(split_path(r.pattern));
        routes_.push_back(std::move(r));
    }
}

Lane ServerCore::lane_of(const HttpRequest& request) const {
    if (lanes_.empty()) return Lane::interactive;
    const auto found = lanes_.find(request.method + ' ' + request.path);
    return found == lanes_.end() ? Lane::interactive : found->second;
}

namespace {

std::string bearer_token(const HttpRequest& request) {
    const std::string& h = request.header("authorization");
    const std::string prefix = "Bearer ";
    if (h.size() > prefix.size() && h.compare(0, prefix.size(), prefix) == 0) return h.substr(prefix.size());
    return {};
}

}  // namespace

const Route* ServerCore::match(const HttpRequest& request, std::map<std::string, std::string>& params,
                               bool& path_known) const {
    path_known = false;
    // One spelling per endpoint: "/v1/auth/sign-in/" or "/v1//auth/sign-in" would slip past a
    // proxy's rule written for the path (nginx's limit on sign-ins) and still reach the route.
    const std::string& path = request.path;
    const bool canonical = !path.empty() && path.front() == '/' && path.find("//") == std::string::npos &&
                           (path.size() == 1 || path.back() != '/');
    if (!canonical) return nullptr;
    const auto parts = split_path(path);
    for (std::size_t r = 0; r < routes_.size(); ++r) {
        const Route& route = routes_[r];
        const std::vector<std::string>& pattern = patterns_[r];
        if (pattern.size() != parts.size()) continue;
        std::map<std::string, std::string> found;
        bool ok = true;
        for (std::size_t i = 0; i < parts.size() && ok; ++i) {
            if (pattern[i].front() == '{') {
                found[pattern[i].substr(1, pattern[i].size() - 2)] = parts[i];
            } else {
                ok = pattern[i] == parts[i];
            }
        }
        if (!ok) continue;
        path_known = true;
        if (route.method != request.method) continue;
        params = std::move(found);
        return &route;
    }
    return nullptr;
}

HttpResponse ServerCore::serve(const Route& route, HttpRequest& request, std::map<std::string, std::string> params,
                               ServerConnection& connection, std::string& user_id) {
    Store& store = connection.store;
    Accounts accounts(store, policy_);
    RequestContext ctx{request, store, *connection.upstream, accounts, std::nullopt, std::move(params),
                       static_cast<std::int64_t>(std::time(nullptr)), *this};
    if (route.access != Access::anyone) {
        // A bearer header (devices, scripts) wins; else the web page's session cookie.
        std::string token = bearer_token(request);
        if (token.empty()) {
            token = session_token_from_cookie(request.header("cookie"));
            ctx.via_session_cookie = !token.empty();
        }
        auto auth = accounts.authenticate(token, ctx.now, &sessions_);
        if (!auth) return error_response(auth.status());
        switch (auth->outcome) {
            case Authentication::Outcome::ok: break;
            case Authentication::Outcome::missing:
                return HttpResponse::error(401, "unauthenticated", "sign in first: send Authorization: Bearer <token>");
            case Authentication::Outcome::expired:
                return HttpResponse::error(401, "session_expired", "your session expired; sign in again");
            case Authentication::Outcome::wipe:
                return wipe_response();
            case Authentication::Outcome::invalid:
                return HttpResponse::error(401, "unauthenticated", "the token is not valid; sign in again");
        }
        ctx.principal = std::move(auth->principal);
        user_id = ctx.principal->user.id;
        if (auth->seen_due) {
            // A writing route is inside the group already; a reading one hands the write to it.
            const std::string& device_id = ctx.principal->device.id;
            auto mark = [&](Store& s) { return Accounts(s, policy_).mark_seen(device_id, ctx.now); };
            Status seen = route.outside_group ? commits_.write([&](ServerConnection& c) { return mark(c.store); })
                                          : mark(store);
            if (!seen) return error_response(seen);
            sessions_.seen(ctx.principal->session_id, ctx.now);
        }
        if (auto refused = check_web_session(ctx, token, !route.outside_group)) return *refused;
        if (ctx.principal->user.must_change_password && !route.before_own_password) {
            return HttpResponse::error(403, "password_change_required",
                                       "an administrator set this account's password: choose your own first "
                                       "(POST /v1/me/password with current_password and password)");
        }
        const Role role = ctx.principal->user.role;
        if (route.access == Access::admin && role != Role::admin) {
            return HttpResponse::error(403, "forbidden", "only administrators may do this");
        }
        if (route.access == Access::supervisor && role != Role::supervisor) {
            return HttpResponse::error(403, "forbidden", "only supervisors may do this");
        }
    }
    HttpResponse answer = route.handler(ctx);
    // Whatever it read does not leave once its session is known to have ended (audit_in_group).
    if (ctx.ended_meanwhile) return std::move(*ctx.ended_meanwhile);
    return answer;
}

HttpResponse ServerCore::in_group(RequestContext& outside, const std::function<HttpResponse(RequestContext&)>& work) {
    return commits_.run([&](ServerConnection& connection) {
        Accounts accounts(connection.store, policy_);
        RequestContext inside{outside.request, connection.store, *connection.upstream, accounts,
                              outside.principal, outside.params, outside.now, *this,
                              outside.via_session_cookie};
        return work(inside);
    });
}

HttpResponse ServerCore::dispatch(const Route* route, bool path_known, HttpRequest& request,
                                  std::map<std::string, std::string> params, std::string& user_id) {
    // A NUL (%00) in the address is no id or filter value; PostgreSQL's text could not even hold it.
    bool nul = request.path.find('\0') != std::string::npos;
    for (const auto& [key, value] : request.query) {
        nul = nul || key.find('\0') != std::string::npos || value.find('\0') != std::string::npos;
    }
    if (nul) return HttpResponse::error(400, "invalid", "the address holds a NUL character (%00): remove it");
    if (!route) {
        return path_known ? HttpResponse::error(405, "method_not_allowed",
                                                request.method + " is not allowed on " + request.path)
                          : HttpResponse::error(404, "not_found", "no such endpoint: " + request.path);
    }
    // Nor are bytes that are not UTF-8 (%F6): no id or filter is made of them, and PostgreSQL's
    // text would refuse them as an error of its own.
    bool text = sync::is_utf8(request.path);
    for (const auto& [key, value] : request.query) text = text && sync::is_utf8(key) && sync::is_utf8(value);
    if (!text) {
        return HttpResponse::error(400, "invalid",
                                   "the address holds bytes that are not UTF-8 text (a %-escape such as %F6): correct it");
    }
    if (route->outside_group) {
        auto lease = pool_.borrow();
        if (!lease) {
            log_event("error", "store_unavailable",
                      {{"request_id", request.request_id}, {"error", lease.status().to_string()}});
            return HttpResponse::error(503, "unavailable", "the store is unavailable; retry shortly");
        }
        return serve(*route, request, std::move(params), **lease, user_id);
    }
    // A writing request's writes (the engine's, the audit entry's, a failed sign-in's counter)
    // land together, in a savepoint of a group transaction committed once for every request of
    // the group. Only a server error rolls the request back.
    return commits_.run([&](ServerConnection& connection) {
        return serve(*route, request, std::move(params), connection, user_id);
    });
}

HttpResponse ServerCore::handle(HttpRequest& request) {
    const auto started = std::chrono::steady_clock::now();
    std::map<std::string, std::string> params;
    bool path_known = false;
    const Route* route = match(request, params, path_known);
    std::string route_name = route ? route->pattern : "unmatched";
    std::string user_id;

    HttpResponse response;
    try {
        response = dispatch(route, path_known, request, std::move(params), user_id);
    } catch (const std::exception& e) {
        // A bug, answered as one: the contract is an answer for every request. The log names the
        // exception's type only: its message may quote what the request carried.
        log_event("error", "handler_threw",
                  {{"request_id", request.request_id}, {"route", route_name}, {"exception", typeid(e).name()}});
        response = HttpResponse::error(500, "internal", "the server failed on this request; it was logged (request " +
                                                            request.request_id + ")");
    }

    add_security_headers(response);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.observe_request(route_name, response.status, seconds);
    if (!log_requests && response.status < 500) return response;
    log_event(response.status >= 500 ? "error" : "info", "request",
              {{"request_id", request.request_id},
               {"method", request.method},
               {"route", route_name},
               {"status", std::to_string(response.status)},
               {"ms", std::to_string(static_cast<long long>(seconds * 1000))},
               {"user", user_id}});
    return response;
}

}  // namespace tsunagu::api
