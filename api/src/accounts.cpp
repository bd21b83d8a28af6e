// Accounts, devices and sessions over the server's encrypted store.
#include "api/src/accounts.h"

#include <cstdlib>
#include <sodium.h>

#include <sys/mman.h>

#include <algorithm>
#include <mutex>

#include "api/src/area_history.h"
#include "api/src/clock_step.h"
#include "api/src/observability.h"
#include "api/src/session_cache.h"
#include "api/src/sign_in_throttle.h"
#include "sync/change.h"

namespace tsunagu::api {
namespace {

constexpr const char* kTokenPrefix = "tsn_";
constexpr std::size_t kTokenSecretBytes = 32;

std::string hex(const unsigned char* bytes, std::size_t n) {
    std::string out(n * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes, n);
    out.pop_back();
    return out;
}

std::vector<std::uint8_t> token_hash(std::string_view secret) {
    std::vector<std::uint8_t> h(crypto_generichash_BYTES);
    crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(secret.data()),
                       secret.size(), nullptr, 0);
    return h;
}

// Argon2id maps its memory (19 MiB) for each check or hash: the process runs one at a time, so
// that a crowd signing in at once (a team's phones at the start of a day) costs the server one
// check's memory, not one per worker thread (50 devices took its peak from 43 MB to 95 MB). A
// sign-in waits its turn here, outside the write group: pushes never wait behind it.
std::mutex& argon2_turn() {
    static std::mutex turn;
    return turn;
}

// A hash to verify against when the user does not exist, so timing does not reveal names.
// Made once it can be (a start short of memory tries again at the next unknown name): against ""
// a check fails at once, and its timing would tell that the name is unknown.
std::string dummy_hash(const SignInPolicy& policy) {
    static std::mutex mutex;
    static std::string hash;
    std::lock_guard lock(mutex);
    if (hash.empty()) {
        char out[crypto_pwhash_STRBYTES] = {};
        std::lock_guard one_at_a_time(argon2_turn());
        if (crypto_pwhash_str(out, "not a password", 14, policy.pwhash_ops, policy.pwhash_mem) == 0) hash = out;
    }
    return hash;
}

constexpr const char* kUserColumns =
    "id, username, display_name, role, coalesce(team_id, ''), disabled, must_change_password";

User read_user(const Statement& q) {
    User u;
    u.id = std::string(q.column_text(0));
    u.username = std::string(q.column_text(1));
    u.display_name = std::string(q.column_text(2));
    u.role = parse_role(std::string(q.column_text(3))).value_or(Role::peer_supporter);
    u.team_id = std::string(q.column_text(4));
    u.disabled = q.column_int(5) != 0;
    u.must_change_password = q.column_int(6) != 0;
    return u;
}

// The device columns read_device() reads, in its order.
constexpr const char* kDeviceColumns =
    "id, user_id, name, registered_at, last_seen_at, revoked_at, clock_ahead_ms, clock_read_at";

// A device from kDeviceColumns, starting at column `at` of the row.
Device read_device(const Statement& q, int at = 0) {
    Device d;
    d.id = std::string(q.column_text(at));
    d.user_id = std::string(q.column_text(at + 1));
    d.name = std::string(q.column_text(at + 2));
    d.registered_at = q.column_int(at + 3);
    d.last_seen_at = q.column_int(at + 4);
    d.revoked = !q.column_is_null(at + 5);
    d.clock_ahead_ms = q.column_int(at + 6);
    d.clock_read_at = q.column_int(at + 7);
    return d;
}

Result<std::optional<User>> query_user(Store& store, const std::string& where, const std::string& value) {
    auto& q = store.cached(std::string("SELECT ") + kUserColumns + " FROM account WHERE " + where + " = ?1");
    q.bind(1, value);
    auto row = q.step();
    if (!row) return row.status();
    if (!*row) return std::optional<User>();
    User u = read_user(q);
    q.reset();
    return std::optional<User>(std::move(u));
}

Result<std::string> hash_password(std::string_view password, const SignInPolicy& policy) {
    if (password.size() < 10) {
        return Status(ErrorCode::validation, "password: must be at least 10 characters");
    }
    if (password.size() > 1024) {
        return Status(ErrorCode::validation, "password: must be at most 1024 characters");
    }
    char out[crypto_pwhash_STRBYTES];
    std::lock_guard one_at_a_time(argon2_turn());
    if (crypto_pwhash_str(out, password.data(), password.size(), policy.pwhash_ops,
                          policy.pwhash_mem) != 0) {
        return Status(ErrorCode::io_error, "out of memory while hashing a password");
    }
    return std::string(out);
}

}  // namespace

const char* role_name(Role role) {
    switch (role) {
        case Role::peer_supporter: return "peer_supporter";
        case Role::home_visitor: return "home_visitor";
        case Role::staff: return "staff";
        case Role::supervisor: return "supervisor";
        case Role::admin: return "admin";
    }
    return "peer_supporter";
}

std::optional<Role> parse_role(const std::string& name) {
    for (Role r : {Role::peer_supporter, Role::home_visitor, Role::staff, Role::supervisor, Role::admin}) {
        if (name == role_name(r)) return r;
    }
    return std::nullopt;
}

namespace {
// Supervisors see, review and report their team's records, and keep the changes the server refuses
// from their team's workers: a field worker outside every team would work unseen.
constexpr const char* kFieldWorkerNeedsTeam =
    "team_id: a field worker (peer_supporter, home_visitor, staff) needs a team (area), whose supervisors "
    "review her records and see what the server refuses from her; create the team first";

}  // namespace

Result<bool> team_missing(Store& store, const std::string& team_id) {
    if (team_id.empty()) return false;
    auto& q = store.cached("SELECT 1 FROM team WHERE id = ?1");
    q.bind(1, team_id);
    auto row = q.step();
    q.reset();
    TSUNAGU_TRY(row);
    return !*row;
}

Status no_such_team(const std::string& team_id) {
    return Status(ErrorCode::not_found, "team_id: no team with id \"" + team_id + "\" (GET /v1/admin/teams lists them)");
}

bool is_field_worker(Role role) {
    return role == Role::peer_supporter || role == Role::home_visitor || role == Role::staff;
}

std::string random_id() {
    unsigned char bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    return hex(bytes, sizeof bytes);
}

Accounts::Accounts(Store& store, SignInPolicy policy) : store_(store), policy_(policy) {}

// Version 1 of these tables, frozen: later columns (the device's clock reading) are steps in
// server_schema.cpp.
Status Accounts::create_schema(Store& store) {
    TSUNAGU_TRY(store.exec(R"sql(
CREATE TABLE IF NOT EXISTS team(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS account(
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  role TEXT NOT NULL,
  team_id TEXT REFERENCES team(id),
  password_hash TEXT NOT NULL,
  must_change_password INTEGER NOT NULL DEFAULT 0,
  failed_sign_ins INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()));
CREATE TABLE IF NOT EXISTS device(
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES account(id),
  name TEXT NOT NULL,
  registered_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS device_by_user ON device(user_id);
CREATE TABLE IF NOT EXISTS session(
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES account(id),
  device_id TEXT NOT NULL REFERENCES device(id),
  token_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS session_by_device ON session(device_id);
)sql"));
    if (!store.is_sqlite()) return Status::ok();  // PostgreSQL: sessions are not cached (see SessionCache)
    // The accounts generation (see SessionCache): bumped by any change to an account, a device or
    // a session that a cached session could depend on. A device's last-seen time, and an
    // account's failed sign-in count and next allowed attempt, are left out: they change all day
    // and no session check reads them from the cache.
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS auth_generation(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO auth_generation(id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS account_updated AFTER UPDATE OF
  id, username, display_name, role, team_id, password_hash, must_change_password, disabled, created_at ON account
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS account_deleted AFTER DELETE ON account
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS device_updated AFTER UPDATE OF id, user_id, name, registered_at, revoked_at ON device
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS device_deleted AFTER DELETE ON device
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS session_updated AFTER UPDATE ON session
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS session_deleted AFTER DELETE ON session
  BEGIN UPDATE auth_generation SET n = n + 1 WHERE id = 1; END;
)sql");
}

Status end_every_session(Store& store) {
    return with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(store.exec("DELETE FROM web_session"));
        return store.exec("UPDATE session SET expires_at = 0 WHERE expires_at != 0");
    });
}

std::string random_password() {
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    std::string out;
    for (int i = 0; i < 16; ++i) out += alphabet[randombytes_uniform(sizeof alphabet - 1)];
    return out;
}

namespace {

// What a new account must be, checked before its password is hashed (Argon2id is not spent on a
// name that is taken by its form alone, or a team that does not exist).
Status check_new_user(Store& store, const std::string& username, Role role, const std::string& team_id) {
    if (username.empty() || username.size() > 64 ||
        !std::all_of(username.begin(), username.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        })) {
        return Status(ErrorCode::validation,
                      "username: 1 to 64 characters of letters, digits, '.', '_' or '-'");
    }
    if (is_field_worker(role) && team_id.empty()) return Status(ErrorCode::validation, kFieldWorkerNeedsTeam);
    auto missing = team_missing(store, team_id);
    TSUNAGU_TRY(missing);
    if (*missing) return no_such_team(team_id);
    return Status::ok();
}

}  // namespace

Result<User> Accounts::create_user(const std::string& username, const std::string& display_name,
                                   Role role, const std::string& team_id, std::string_view password,
                                   PasswordSetBy by) {
    TSUNAGU_TRY(check_new_user(username, role, team_id));
    auto hash = hash_password(password, policy_);
    if (!hash) return hash.status();
    return create_user_hashed(username, display_name, role, team_id, *hash, by);
}

Status Accounts::check_new_user(const std::string& username, Role role, const std::string& team_id) {
    return api::check_new_user(store_, username, role, team_id);
}

Result<std::string> Accounts::hash_new_password(std::string_view password) const {
    return hash_password(password, policy_);
}

Result<User> Accounts::create_user_hashed(const std::string& username, const std::string& display_name, Role role,
                                          const std::string& team_id, const std::string& password_hash,
                                          PasswordSetBy by) {
    TSUNAGU_TRY(check_new_user(username, role, team_id));
    const std::string* hash = &password_hash;
    User u;
    u.id = random_id();
    u.username = username;
    u.display_name = display_name.empty() ? username : display_name;
    u.role = role;
    u.team_id = team_id;
    u.must_change_password = by == PasswordSetBy::administrator;
    auto& insert = store_.cached(
        "INSERT INTO account(id, username, display_name, role, team_id, password_hash, must_change_password) "
        "VALUES(?1, ?2, ?3, ?4, nullif(?5, ''), ?6, ?7)");
    insert.bind(1, u.id).bind(2, u.username).bind(3, u.display_name).bind(4, role_name(role));
    insert.bind(5, team_id).bind(6, *hash).bind(7, u.must_change_password ? 1 : 0);
    Status s = insert.run();
    if (s.code() == ErrorCode::constraint) {
        return Status(ErrorCode::already_exists, "username: \"" + username + "\" is taken");
    }
    if (!s) return s;
    return u;
}

Result<User> Accounts::find_user_by_name(const std::string& username) {
    auto u = query_user(store_, "username", username);
    if (!u) return u.status();
    if (!*u) return Status(ErrorCode::not_found, "no user named \"" + username + "\"");
    return std::move(**u);
}

Result<User> Accounts::find_user(const std::string& id) {
    auto u = query_user(store_, "id", id);
    if (!u) return u.status();
    if (!*u) return Status(ErrorCode::not_found, "no user with id " + id);
    return std::move(**u);
}

Result<std::vector<User>> Accounts::list_users() {
    auto& q = store_.cached(std::string("SELECT ") + kUserColumns + " FROM account ORDER BY username");
    std::vector<User> users;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        users.push_back(read_user(q));
    }));
    return users;
}

Status Accounts::set_password(const std::string& user_id, std::string_view password, PasswordSetBy by,
                              const std::string& keep_session) {
    auto hash = hash_password(password, policy_);
    if (!hash) return hash.status();
    return set_password_hash(user_id, *hash, by, keep_session);
}

Status Accounts::set_password_hash(const std::string& user_id, const std::string& hash, PasswordSetBy by,
                                   const std::string& keep_session) {
    return with_transaction(store_, [&]() -> Status {
        auto& q = store_.cached("UPDATE account SET password_hash = ?2, must_change_password = ?3 WHERE id = ?1");
        q.bind(1, user_id).bind(2, hash).bind(3, by == PasswordSetBy::administrator ? 1 : 0);
        TSUNAGU_TRY(q.run());
        if (store_.changes() == 0) return Status(ErrorCode::not_found, "no user with id " + user_id);
        // An administrator's reset also unlocks the account (what a locked-out worker asks for);
        // its owner's change leaves the count to be forgiven with time (sign_in_throttle.h).
        if (by == PasswordSetBy::administrator) {
            auto& unlock = store_.cached("UPDATE account SET failed_sign_ins = 0, next_attempt_at = 0 WHERE id = ?1");
            TSUNAGU_TRY(unlock.bind(1, user_id).run());
        }
        // Whoever held the old password (or a token got with it) is signed out everywhere.
        auto& end = store_.cached("UPDATE session SET expires_at = 0 WHERE user_id = ?1 AND id != ?2 AND expires_at != 0");
        end.bind(1, user_id).bind(2, keep_session);
        return end.run();
    });
}

Result<PasswordCheck> Accounts::change_own_password(const Principal& who, std::string_view current,
                                                      std::string_view replacement, std::int64_t now,
                                                      const PasswordWork* ahead) {
    auto check = check_password("id", who.user.id, current, now, ahead);
    TSUNAGU_TRY(check);
    if (check->outcome == SignIn::Outcome::ok) {
        if (ahead && !ahead->new_hash.empty()) {
            TSUNAGU_TRY(set_password_hash(who.user.id, ahead->new_hash, PasswordSetBy::owner, who.session_id));
        } else {
            TSUNAGU_TRY(set_password(who.user.id, replacement, PasswordSetBy::owner, who.session_id));
        }
    }
    return check;
}

Result<PasswordWork> Accounts::password_change_ahead(const Principal& who, std::string_view current,
                                                     std::string_view replacement, std::int64_t now) {
    auto work = check_ahead("id", who.user.id, current, now);
    TSUNAGU_TRY(work);
    // Only for a current password that matched: a guesser gets no hashing done for free. A
    // replacement refused (too short, too long) is left to the group's check to say so.
    if (work->checked && work->matches) {
        if (auto hash = hash_password(replacement, policy_); hash) work->new_hash = std::move(*hash);
    }
    return work;
}

Status Accounts::set_disabled(const std::string& user_id, bool disabled) {
    return with_transaction(store_, [&]() -> Status {
        if (disabled) {
            // The last administrator who can sign in stays: nobody could enable anyone again.
            auto& others = store_.cached(
                "SELECT count(*) FROM account WHERE role = 'admin' AND disabled = 0 AND id != ?1");
            others.bind(1, user_id);
            auto row = others.step();
            const bool last_admin = row.is_ok() && *row && others.column_int(0) == 0;
            others.reset();
            TSUNAGU_TRY(row);
            auto target = find_user(user_id);
            TSUNAGU_TRY(target);
            if (target->role == Role::admin && !target->disabled && last_admin) {
                return Status(ErrorCode::conflict,
                              "disabled: this is the last administrator who can sign in; enable or create "
                              "another first");
            }
        }
        auto& q = store_.cached("UPDATE account SET disabled = ?2 WHERE id = ?1");
        q.bind(1, user_id).bind(2, disabled ? 1 : 0);
        TSUNAGU_TRY(q.run());
        if (store_.changes() == 0) return Status(ErrorCode::not_found, "no user with id " + user_id);
        if (!disabled) return Status::ok();
        // Its sessions end now, so enabling it again later brings none of them back.
        auto& end = store_.cached("UPDATE session SET expires_at = 0 WHERE user_id = ?1 AND expires_at != 0");
        end.bind(1, user_id);
        return end.run();
    });
}

Status Accounts::set_team(const std::string& user_id, const std::string& team_id, const std::string& today) {
    auto user = find_user(user_id);
    TSUNAGU_TRY(user);
    if (team_id.empty() && is_field_worker(user->role)) return Status(ErrorCode::validation, kFieldWorkerNeedsTeam);
    auto missing = team_missing(store_, team_id);
    TSUNAGU_TRY(missing);
    if (*missing) return no_such_team(team_id);
    return with_transaction(store_, [&]() -> Status {
        if (user->team_id != team_id) {
            TSUNAGU_TRY(date_area_change(store_, AreaOf::worker, user_id, user->team_id, team_id, today));
        }
        auto& q = store_.cached("UPDATE account SET team_id = nullif(?2, '') WHERE id = ?1");
        return q.bind(1, user_id).bind(2, team_id).run();
    });
}

bool Accounts::any_admin() {
    auto& q = store_.cached("SELECT 1 FROM account WHERE role = 'admin' LIMIT 1");
    auto row = q.step();
    bool found = row.is_ok() && *row;
    q.reset();
    return found;
}

Result<std::string> Accounts::unclaimed_first_admin() {
    auto& q = store_.cached(
        "SELECT id FROM account AS a WHERE username = 'admin' AND role = 'admin' "
        "AND NOT EXISTS (SELECT 1 FROM device WHERE user_id = a.id) "
        "AND (SELECT count(*) FROM account WHERE role = 'admin') = 1");
    auto row = q.step();
    if (!row) return row.status();
    std::string id = *row ? std::string(q.column_text(0)) : std::string();
    q.reset();
    return id;
}

Result<std::string> Accounts::create_team(const std::string& name) {
    if (name.empty() || name.size() > 100) {
        return Status(ErrorCode::validation, "name: a team needs a name of 1 to 100 characters");
    }
    std::string id = random_id();
    auto& q = store_.cached("INSERT INTO team(id, name) VALUES(?1, ?2)");
    q.bind(1, id).bind(2, name);
    Status s = q.run();
    if (s.code() == ErrorCode::constraint) {
        return Status(ErrorCode::already_exists, "name: a team called \"" + name + "\" exists");
    }
    if (!s) return s;
    return id;
}

Result<std::vector<std::pair<std::string, std::string>>> Accounts::list_teams() {
    auto& q = store_.cached("SELECT id, name FROM team ORDER BY name");
    std::vector<std::pair<std::string, std::string>> teams;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        teams.emplace_back(std::string(q.column_text(0)), std::string(q.column_text(1)));
    }));
    return teams;
}

namespace {

// The memory Argon2id needs to check against `hash` (its "m=" in KiB), or `fallback`.
std::size_t argon2_memory(const std::string& hash, std::size_t fallback) {
    const std::size_t at = hash.find("$m=");
    if (at == std::string::npos) return fallback;
    std::size_t kib = 0;
    for (std::size_t i = at + 3; i < hash.size() && hash[i] >= '0' && hash[i] <= '9' && kib < (1u << 30); ++i) {
        kib = kib * 10 + static_cast<std::size_t>(hash[i] - '0');
    }
    return kib == 0 ? fallback : kib * 1024;
}

// Whether `bytes` of memory can be mapped now: false under an address-space limit (RLIMIT_AS) or
// strict overcommit that has run out. Maps and unmaps; touches nothing.
bool can_map(std::size_t bytes) {
    void* probe = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) return false;
    ::munmap(probe, bytes);
    return true;
}

// crypto_pwhash_str_verify, telling a wrong password from a password that could not be checked.
// libsodium (1.0.18) answers -1 with errno EINVAL for both; Argon2id needs its memory (19 MiB
// here), and under a memory limit, or in a rush of sign-ins, it may not get it: a worker with the
// right password must not be counted as guessing. So a failure is taken as a mismatch only when
// that memory can be mapped just after (if it was freed in between, one failure is counted).
Status verify_password(const std::string& hash, std::string_view password, std::size_t memory, bool& matches) {
    std::unique_lock one_at_a_time(argon2_turn());
    matches = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
    if (matches || can_map(argon2_memory(hash, memory))) return Status::ok();
    one_at_a_time.unlock();
    log_event("error", "password_check_failed",
              {{"error", "out of memory"},
               {"hint", "each sign-in needs Argon2id's memory (19 MiB): raise the server's memory limit"}});
    return Status(ErrorCode::unavailable,
                  "the password could not be checked: the server is short of memory; nothing was counted "
                  "against the account, try again in a minute");
}

}  // namespace

// What both checks read: the account whose `column` is `value` (if any) and its attempts; for a
// username, the name's attempts too, read whether or not an account has it (sign_in_throttle.h:
// the same statements for both), and the ones that count when none has.
Result<Accounts::CheckedAccount> Accounts::read_for_check(const char* column, const std::string& value) {
    CheckedAccount account;
    auto& q = store_.cached(
        std::string("SELECT id, password_hash, failed_sign_ins, next_attempt_at, disabled FROM account WHERE ") +
        column + " = ?1");
    q.bind(1, value);
    auto row = q.step();
    if (!row) return row.status();
    account.found = *row;
    if (account.found) {
        account.user_id = std::string(q.column_text(0));
        account.hash = std::string(q.column_text(1));
        account.stored = Attempts{static_cast<int>(q.column_int(2)), q.column_int(3)};
        account.disabled = q.column_int(4) != 0;
    }
    q.reset();
    if (std::string_view(column) == "username") {
        auto named = name_attempts(store_, value);
        TSUNAGU_TRY(named);
        if (!account.found) account.stored = *named;
    }
    return account;
}

Result<PasswordWork> Accounts::check_ahead(const char* column, const std::string& value, std::string_view password,
                                           std::int64_t now) {
    auto account = read_for_check(column, value);
    TSUNAGU_TRY(account);
    PasswordWork work;
    work.user_id = account->user_id;
    work.hash = account->hash;
    if (now < current_attempts(policy_, account->stored, now).next_attempt_at) return work;  // waiting: the group answers so
    bool ignored = false;  // a name no account has is checked against a hash no password matches
    TSUNAGU_TRY(verify_password(account->found ? work.hash : dummy_hash(policy_), password, policy_.pwhash_mem,
                                account->found ? work.matches : ignored));
    work.checked = true;
    return work;
}

Result<PasswordWork> Accounts::sign_in_ahead(const std::string& username, std::string_view password, std::int64_t now) {
    return check_ahead("username", username, password, now);
}

Result<PasswordCheck> Accounts::check_password(const char* column, const std::string& value,
                                                std::string_view password, std::int64_t now,
                                                const PasswordWork* ahead) {
    auto account = read_for_check(column, value);
    TSUNAGU_TRY(account);
    const bool found = account->found;
    const std::string& hash = account->hash;
    PasswordCheck check;
    check.user_id = account->user_id;
    const bool by_name = std::string_view(column) == "username";
    // No count to keep for an account gone meanwhile (a password change): the same work, refused.
    const bool counted = found || by_name;
    // (Run for a name no account has too, matching no row: the same statements.)
    const auto keep = [&](const Attempts& attempts) -> Status {
        if (by_name) TSUNAGU_TRY(note_name_attempts(store_, policy_, value, attempts, now));
        auto& update = store_.cached("UPDATE account SET failed_sign_ins = ?2, next_attempt_at = ?3 WHERE id = ?1");
        return update.bind(1, check.user_id).bind(2, attempts.failures).bind(3, attempts.next_attempt_at).run();
    };

    Attempts attempts = current_attempts(policy_, account->stored, now);
    if (counted && now < attempts.next_attempt_at) {
        std::int64_t cut_to = 0;
        PasswordCheck waiting = waiting_answer(policy_, attempts, now, cut_to);
        waiting.user_id = check.user_id;
        if (cut_to != 0) TSUNAGU_TRY(keep(Attempts{attempts.failures, cut_to}));
        return waiting;
    }
    bool password_ok = false;
    if (ahead && ahead->checked && ahead->user_id == check.user_id && ahead->hash == hash) {
        password_ok = found && ahead->matches;  // the work is done (against the dummy hash, for no account)
    } else {
        // Same work as for a real account, so the answer's timing (and a failure to check) does
        // not reveal the name. A match is impossible: the dummy hash is of a fixed non-password.
        bool matches = false;
        TSUNAGU_TRY(verify_password(found ? hash : dummy_hash(policy_), password, policy_.pwhash_mem, matches));
        password_ok = found && matches;
    }
    if (!password_ok) {
        if (!counted) return check;
        PasswordCheck failed = after_failure(policy_, attempts, now);
        failed.user_id = check.user_id;
        TSUNAGU_TRY(keep(attempts));
        return failed;
    }
    check.outcome = account->disabled ? SignIn::Outcome::disabled : SignIn::Outcome::ok;
    return check;
}

Result<SignIn> Accounts::sign_in(const std::string& username, std::string_view password,
                                 const std::string& device_name, const std::string& device_id,
                                 std::int64_t now, const PasswordWork* ahead) {
    SignIn result;
    auto check = check_password("username", username, password, now, ahead);
    TSUNAGU_TRY(check);
    result.outcome = check->outcome;
    result.retry_after_s = check->retry_after_s;
    if (check->outcome != SignIn::Outcome::ok) return result;
    const std::string& user_id = check->user_id;

    // The failed sign-ins are not reset: they are forgiven with time (sign_in_throttle.h), as an
    // unknown name's are, which never succeeds.
    Status done = with_transaction(store_, [&]() -> Status {
        Device device;
        bool reuse = false;
        std::string reused_id = device_id;
        if (reused_id.empty() && device_name == kWebDeviceName) {
            // Each user's web sign-ins share one registered device, so the device list stays
            // readable and revoking it ends every web session of that user. Looked up only once
            // the password checked out: before, it would cost a real name more than an unknown one.
            auto& web = store_.cached(
                "SELECT id FROM device WHERE user_id = ?1 AND name = ?2 AND revoked_at IS NULL "
                "ORDER BY registered_at, id LIMIT 1");
            web.bind(1, user_id).bind(2, kWebDeviceName);
            TSUNAGU_TRY(each_row(web, [&](const Statement& row) { reused_id = std::string(row.column_text(0)); }));
        }
        if (!reused_id.empty()) {
            auto& find = store_.cached(std::string("SELECT ") + kDeviceColumns + " FROM device WHERE id = ?1");
            find.bind(1, reused_id);
            auto found = find.step();
            if (!found) return found.status();
            if (*found) {
                device = read_device(find);
                // The web page's device and a phone's are never one: their sessions follow
                // different rules (idle and lifetime limits, the cookie), and a phone signing in
                // under the page's id would mix them again.
                const bool same_kind = (device.name == kWebDeviceName) == (device_name == kWebDeviceName);
                reuse = device.user_id == user_id && !device.revoked && same_kind;
            }
            find.reset();
        }
        if (!reuse) {
            // A device proposes its own replica id on first sign-in, so the id its changes carry
            // is the id the server knows it by; one already taken gets a fresh id instead.
            const bool proposed = device_id.size() == 32 && device.id.empty() &&
                                  device_id.find_first_not_of("0123456789abcdef") == std::string::npos;
            device = Device{proposed ? device_id : random_id(), user_id,
                            device_name.empty() ? "device" : device_name, now, now, false};
            auto& insert = store_.cached(
                "INSERT INTO device(id, user_id, name, registered_at, last_seen_at) "
                "VALUES(?1, ?2, ?3, ?4, ?4)");
            insert.bind(1, device.id).bind(2, user_id).bind(3, device.name).bind(4, now);
            TSUNAGU_TRY(insert.run());
        }

        unsigned char secret_bytes[kTokenSecretBytes];
        randombytes_buf(secret_bytes, sizeof secret_bytes);
        const std::string secret = hex(secret_bytes, sizeof secret_bytes);
        sodium_memzero(secret_bytes, sizeof secret_bytes);
        const std::string session_id = random_id();
        auto hashed = token_hash(secret);
        auto& session = store_.cached(
            "INSERT INTO session(id, user_id, device_id, token_hash, created_at, expires_at) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
        session.bind(1, session_id).bind(2, user_id).bind(3, device.id).bind_blob(4, hashed);
        session.bind(5, now).bind(6, now + policy_.session_seconds);
        TSUNAGU_TRY(session.run());

        auto user = find_user(user_id);
        if (!user) return user.status();
        result.outcome = SignIn::Outcome::ok;
        result.token = kTokenPrefix + session_id + "." + secret;
        result.principal = Principal{std::move(*user), device, session_id};
        return Status::ok();
    });
    if (!done) return done;
    return result;
}

Result<Authentication> Accounts::authenticate(const std::string& bearer_token, std::int64_t now,
                                              SessionCache* cache) {
    Authentication result;
    if (bearer_token.empty()) return result;  // missing
    result.outcome = Authentication::Outcome::invalid;
    const std::string prefix = kTokenPrefix;
    const auto dot = bearer_token.find('.');
    if (bearer_token.rfind(prefix, 0) != 0 || dot == std::string::npos || dot <= prefix.size()) {
        return result;
    }
    const std::string session_id = bearer_token.substr(prefix.size(), dot - prefix.size());
    const std::string secret = bearer_token.substr(dot + 1);
    // Sessions are named by 32 hex characters (random_id): anything else is no session, answered
    // without asking the store (PostgreSQL would refuse bytes that are not UTF-8 as an error).
    if (!sync::is_id(session_id)) return result;

    // The cache needs the generation the SQLite store's triggers keep (PostgreSQL has none), and a
    // read outside any transaction: inside one (the writers' group) what is read may roll back.
    if (!store_.is_sqlite() || store_.in_transaction()) cache = nullptr;
    // The generation first: the rows read after it are at least as new as their label.
    std::int64_t generation = 0;
    if (cache) {
        auto& g = store_.cached("SELECT n FROM auth_generation WHERE id = 1");
        auto row = g.step();
        if (!row) return row.status();
        if (*row) {
            generation = g.column_int(0);
        } else {
            cache = nullptr;  // no generation row: nothing would tell the cache of a change
        }
        g.reset();
    }
    std::optional<StoredSession> session = cache ? cache->find(session_id, generation) : std::nullopt;
    if (!session) {
        auto read = read_session(session_id);
        if (!read) return read.status();
        if (!*read) return result;
        session = std::move(*read);
        if (cache) cache->keep(session_id, generation, *session);
    }

    if (!constant_time_equal(session->token_hash, token_hash(secret))) return result;
    // A revoked device is told to wipe even if its session would otherwise have expired.
    if (session->device.revoked) {
        result.outcome = Authentication::Outcome::wipe;
        return result;
    }
    // Ended (end_every_session): the token is no longer one, as after a sign-out.
    if (session->expires_at == 0) return result;
    // A session made "in the future" was made before the clock was set back: it ends rather than
    // living the step longer.
    if (now >= session->expires_at || set_back_since(session->created_at, now)) {
        result.outcome = Authentication::Outcome::expired;
        return result;
    }
    if (session->user.disabled) return result;
    // Coarse, so that authentication is not a write per request.
    result.seen_due = now - session->device.last_seen_at >= 60;
    result.outcome = Authentication::Outcome::ok;
    result.principal = Principal{std::move(session->user), std::move(session->device), session_id};
    return result;
}

Result<std::optional<StoredSession>> Accounts::read_session(const std::string& session_id) {
    // The device's columns as kDeviceColumns, named by table (session has an id and a user_id too).
    auto& q = store_.cached(
        "SELECT s.token_hash, s.expires_at, d.id, d.user_id, d.name, d.registered_at, "
        "d.last_seen_at, d.revoked_at, d.clock_ahead_ms, d.clock_read_at, s.created_at "
        "FROM session s JOIN device d ON d.id = s.device_id "
        "WHERE s.id = ?1");
    q.bind(1, session_id);
    auto row = q.step();
    if (!row) return row.status();
    if (!*row) return std::optional<StoredSession>();
    StoredSession entry;
    auto stored = q.column_blob(0);
    entry.token_hash.assign(stored.begin(), stored.end());
    entry.expires_at = q.column_int(1);
    entry.device = read_device(q, 2);
    entry.created_at = q.column_int(10);
    q.reset();
    auto user = find_user(entry.device.user_id);
    if (!user) return user.status();
    entry.user = std::move(*user);
    return std::optional<StoredSession>(std::move(entry));
}

Status Accounts::mark_seen(const std::string& device_id, std::int64_t now) {
    auto& seen = store_.cached("UPDATE device SET last_seen_at = ?2 WHERE id = ?1");
    seen.bind(1, device_id).bind(2, now);
    return seen.run();
}

bool Accounts::clock_reading_due(const Device& device, std::int64_t ahead_ms, std::int64_t now) {
    // Checked: a reading an earlier version stored may be any 64-bit value.
    std::int64_t moved = 0;
    const bool far_apart = __builtin_sub_overflow(ahead_ms, device.clock_ahead_ms, &moved);
    return device.clock_read_at == 0 || now - device.clock_read_at >= 24 * 60 * 60 || far_apart || moved >= 60'000 ||
           moved <= -60'000;
}

Status Accounts::record_clock(Store& store, const std::string& device_id, std::int64_t ahead_ms, std::int64_t now) {
    auto& q = store.cached("UPDATE device SET clock_ahead_ms = ?2, clock_read_at = ?3 WHERE id = ?1");
    q.bind(1, device_id).bind(2, ahead_ms).bind(3, now);
    return q.run();
}

Result<bool> Accounts::is_revoked(Store& store, const std::string& device_id) {
    auto& q = store.cached("SELECT revoked_at IS NOT NULL FROM device WHERE id = ?1");
    q.bind(1, device_id);
    bool revoked = false;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) { revoked = q.column_int(0) != 0; }));
    return revoked;
}

Result<Accounts::SessionNow> Accounts::session_now(Store& store, const std::string& session_id,
                                                   const std::string& device_id, std::int64_t now) {
    auto& q = store.cached(
        "SELECT d.revoked_at IS NOT NULL, a.disabled, s.expires_at FROM device d JOIN account a ON a.id = d.user_id "
        "LEFT JOIN session s ON s.id = ?2 AND s.device_id = d.id WHERE d.id = ?1");
    q.bind(1, device_id).bind(2, session_id);
    SessionNow state = SessionNow::ended;  // a device the store does not hold has no live session
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        if (q.column_int(0) != 0) state = SessionNow::revoked;
        else if (q.column_int(1) != 0 || q.column_is_null(2) || q.column_int(2) <= now) state = SessionNow::ended;
        else state = SessionNow::live;
    }));
    return state;
}

Status Accounts::sign_out(const std::string& session_id) {
    auto& q = store_.cached("DELETE FROM session WHERE id = ?1");
    q.bind(1, session_id);
    return q.run();
}

Result<std::vector<Device>> Accounts::list_devices(const std::string& user_id) {
    auto& q = store_.cached(std::string("SELECT ") + kDeviceColumns +
                            " FROM device WHERE ?1 = '' OR user_id = ?1 ORDER BY registered_at");
    q.bind(1, user_id);
    std::vector<Device> devices;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        devices.push_back(read_device(q));
    }));
    return devices;
}

Status Accounts::revoke_device(const std::string& device_id, std::int64_t now) {
    auto& q = store_.cached(
        "UPDATE device SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1");
    q.bind(1, device_id).bind(2, now);
    TSUNAGU_TRY(q.run());
    if (store_.changes() == 0) return Status(ErrorCode::not_found, "no device with id " + device_id);
    return Status::ok();
}

}  // namespace tsunagu::api
