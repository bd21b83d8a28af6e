// Accounts, teams, devices and sessions, kept in the server's encrypted store.
// Passwords are hashed with crypto_pwhash_str (Argon2id); session tokens are random, shown to
// the client once, and stored only as a BLAKE2b hash; comparisons are constant-time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/store.h"

namespace tsunagu::api {

enum class Role { peer_supporter, home_visitor, staff, supervisor, admin };

const char* role_name(Role role);
std::optional<Role> parse_role(const std::string& name);
// Field workers: peer supporters, home visitors, staff. They hold their caseload only.
bool is_field_worker(Role role);

// The device name under which a user's web sign-ins are registered (one device per user): no
// phone signs in as it, nor takes its id over.
inline constexpr const char* kWebDeviceName = "web page";

// Whether `team_id` names no team (false for ""): asked before a row refers to it, because the
// embedded store does not enforce foreign keys, and on PostgreSQL one that fails aborts the
// caller's whole transaction, not only the statement.
Result<bool> team_missing(Store& store, const std::string& team_id);
// The answer for a team_id that names no team.
Status no_such_team(const std::string& team_id);

// A password for a new account (the first administrator's, demo accounts'): 16 characters from
// an alphabet without look-alikes, about 90 bits, from libsodium's generator.
std::string random_password();

struct User {
    std::string id;
    std::string username;
    std::string display_name;
    Role role = Role::peer_supporter;
    std::string team_id;  // "" when none
    bool disabled = false;
    bool must_change_password = false;
};

struct Device {
    std::string id;
    std::string user_id;
    std::string name;
    std::int64_t registered_at = 0;
    std::int64_t last_seen_at = 0;
    bool revoked = false;
    // How far the device's clock was ahead of the server's (negative: behind) when it last pushed,
    // in milliseconds, and when that was read (unix seconds; 0: never). A phone with a wrong clock
    // loses no work (the engine corrects its stamps), but its worker should set it right.
    std::int64_t clock_ahead_ms = 0;
    std::int64_t clock_read_at = 0;
};

// Who is calling, once a bearer token checked out.
struct Principal {
    User user;
    Device device;
    std::string session_id;
};

struct SignInPolicy {
    int free_attempts = 3;            // failures before each further attempt must wait
    int lock_after = 10;              // failures before the account locks
    std::int64_t lock_seconds = 900;  // how long the lock lasts
    std::int64_t session_seconds = 30 * 24 * 3600;
    std::uint64_t pwhash_ops = 2;     // Argon2id cost for stored passwords (OWASP: t=2, m=19 MiB)
    std::size_t pwhash_mem = 19u << 20;
};

// Failed password checks so far, and when the next attempt may be checked (unix seconds; 0: at
// once): an account's, or a name's with no account (sign_in_throttle.h).
struct Attempts {
    int failures = 0;
    std::int64_t next_attempt_at = 0;
    bool operator==(const Attempts&) const = default;
};

class SessionCache;

// A session as stored: its token's hash, its expiry, its device and its user.
struct StoredSession {
    std::vector<std::uint8_t> token_hash;
    std::int64_t created_at = 0;
    std::int64_t expires_at = 0;
    Device device;
    User user;
};

// Outcome of a sign-in attempt.
struct SignIn {
    enum class Outcome { ok, bad_credentials, wait, locked, disabled } outcome = Outcome::bad_credentials;
    std::string token;              // only when ok; never stored in clear
    Principal principal;            // only when ok
    std::int64_t retry_after_s = 0;  // wait / locked
};

// What checking a password found: ok, bad_credentials, wait or locked (disabled only at sign-in),
// and how long to wait before the next attempt counts.
struct PasswordCheck {
    SignIn::Outcome outcome = SignIn::Outcome::bad_credentials;
    std::string user_id;  // "" when no account matched
    std::int64_t retry_after_s = 0;
};

// Argon2id's work for one request, done ahead of the write group (Accounts::sign_in_ahead,
// Accounts::password_change_ahead) on a connection of the request's own, so that the group's one
// writer never waits on it: tens of milliseconds a check, which sign-ins no one has authenticated
// could otherwise queue in front of every push. The group's check re-reads the account and uses
// the verdict only while the account still holds the hash it was made against and need not wait;
// otherwise it does the work itself, so the outcome is the one a check inside the group would give.
struct PasswordWork {
    bool checked = false;  // `matches` holds (false: the account had to wait; nothing was checked)
    std::string user_id;   // the account checked; "" when no account had the name (a dummy hash was)
    std::string hash;      // the hash the password was checked against
    bool matches = false;
    std::string new_hash;  // a replacement password's hash, made ahead ("": none, or refused)
};

// Who set a password: its owner, or an administrator (then it must be changed at next sign-in).
enum class PasswordSetBy { owner, administrator };

// Outcome of checking a bearer token.
struct Authentication {
    enum class Outcome { ok, missing, invalid, expired, wipe } outcome = Outcome::missing;
    Principal principal;
    // The device's last-seen time is a minute or more old: the caller records it with
    // Accounts::mark_seen() where it may write (authentication itself only reads).
    bool seen_due = false;
};

// All account operations. Each call is one short transaction on `store`; not thread-safe (one
// Accounts per worker thread, each over its own Store connection).
class Accounts {
public:
    Accounts(Store& store, SignInPolicy policy);

    // Creates the tables when missing. Idempotent.
    static Status create_schema(Store& store);

    // A password an administrator chose (`by`) must be changed by its owner at the first sign-in
    // (must_change_password), as one set later must: whoever chose it could otherwise go on
    // using it, and a worker's account reads her caseload.
    Result<User> create_user(const std::string& username, const std::string& display_name, Role role,
                             const std::string& team_id, std::string_view password,
                             PasswordSetBy by = PasswordSetBy::owner);
    // What a new account must be (its name's form, a team for a field worker, the team existing),
    // checked before its password is hashed; create_user* check it again.
    Status check_new_user(const std::string& username, Role role, const std::string& team_id);
    // A new password's hash (Argon2id, checked for length first): made before the write group by a
    // route that then creates the account, or sets the password, with it (the *_hashed calls).
    Result<std::string> hash_new_password(std::string_view password) const;
    Result<User> create_user_hashed(const std::string& username, const std::string& display_name, Role role,
                                    const std::string& team_id, const std::string& password_hash, PasswordSetBy by);
    Result<User> find_user_by_name(const std::string& username);
    Result<User> find_user(const std::string& id);
    Result<std::vector<User>> list_users();
    // Replaces a password and ends every session of the account but `keep_session` (the caller's
    // own, when the owner changes it). Set by an administrator, it must be changed at the next
    // sign-in (the answer's must_change_password): the owner finds their password replaced.
    Status set_password(const std::string& user_id, std::string_view password, PasswordSetBy by,
                        const std::string& keep_session = "");
    // set_password with the hash already made (hash_new_password).
    Status set_password_hash(const std::string& user_id, const std::string& hash, PasswordSetBy by,
                             const std::string& keep_session = "");
    // The signed-in owner's change, which needs the current password (a token alone must not take
    // an account over); a wrong one counts as a failed sign-in. Answers ok, bad_credentials, wait
    // or locked, with the wait; the password is replaced only on ok.
    Result<PasswordCheck> change_own_password(const Principal& who, std::string_view current,
                                                std::string_view replacement, std::int64_t now,
                                                const PasswordWork* ahead = nullptr);
    // Reads only, and does Argon2id's work for change_own_password ahead of the write group.
    Result<PasswordWork> password_change_ahead(const Principal& who, std::string_view current,
                                               std::string_view replacement, std::int64_t now);
    // Disabling ends the account's sessions (enabling it again brings none back); the last
    // enabled administrator cannot be disabled (conflict).
    Status set_disabled(const std::string& user_id, bool disabled);
    // Moves a user to another team (area), or none ("", not for field workers), from the local date
    // `today` (YYYY-MM-DD) on: reports count the records they wrote before it in the old area
    // (api/src/area_history.h).
    Status set_team(const std::string& user_id, const std::string& team_id, const std::string& today);
    bool any_admin();
    // The administrator a first start made, while nobody has ever signed in as them and they are
    // still the only one: their password, shown once by a start that then failed (a port in use, a
    // full disk, a kill), may never have been seen. Empty when there is no such account.
    Result<std::string> unclaimed_first_admin();

    Result<std::string> create_team(const std::string& name);
    Result<std::vector<std::pair<std::string, std::string>>> list_teams();  // (id, name)

    // Verifies the password, applies throttling and lockout (sign_in_throttle.h), registers the
    // device (or reuses the caller's device id when it belongs to the same user and is not
    // revoked; for the web page, with no id, the user's web page device), opens a session.
    Result<SignIn> sign_in(const std::string& username, std::string_view password,
                           const std::string& device_name, const std::string& device_id,
                           std::int64_t now, const PasswordWork* ahead = nullptr);
    // Reads only, and does Argon2id's work for sign_in ahead of the write group.
    Result<PasswordWork> sign_in_ahead(const std::string& username, std::string_view password, std::int64_t now);
    // Reads only: safe on a connection outside the writer's group. With a cache, a session checked
    // before is not read again until an account, device or session changes; the cache is used on
    // SQLite stores only (its generation comes from their triggers), outside any transaction.
    Result<Authentication> authenticate(const std::string& bearer_token, std::int64_t now,
                                        SessionCache* cache = nullptr);
    // Records that the device was seen at `now` (coarse: see Authentication::seen_due).
    Status mark_seen(const std::string& device_id, std::int64_t now);
    // Whether a push showing the device's clock `ahead_ms` ahead is worth recording: never read,
    // read over a day ago, or a minute or more off the last reading (so most pushes write nothing).
    static bool clock_reading_due(const Device& device, std::int64_t ahead_ms, std::int64_t now);
    static Status record_clock(Store& store, const std::string& device_id, std::int64_t ahead_ms, std::int64_t now);
    // Whether the device was revoked (false for one the store does not hold): for work a request
    // authenticated earlier hands to the write group, which may run after a revocation.
    static Result<bool> is_revoked(Store& store, const std::string& device_id);
    // Where a session authenticated earlier stands now, for writes that request hands to the
    // write group: its device revoked (told to wipe), or the session ended since (signed out, its
    // account disabled, its password replaced), or still live.
    enum class SessionNow { live, revoked, ended };
    static Result<SessionNow> session_now(Store& store, const std::string& session_id, const std::string& device_id,
                                          std::int64_t now);
    Status sign_out(const std::string& session_id);

    Result<std::vector<Device>> list_devices(const std::string& user_id /* "" = all */);
    // Revokes the device; any of its sessions, ended or not, is then told to wipe.
    Status revoke_device(const std::string& device_id, std::int64_t now);

private:
    // Verifies `password` for the account whose `column` ("username" or "id") is `value`, with
    // throttling and lockout: a failure is counted, and an account waiting or locked is not checked.
    // Argon2id runs only if `ahead` did not check the account's present hash.
    Result<PasswordCheck> check_password(const char* column, const std::string& value,
                                         std::string_view password, std::int64_t now,
                                         const PasswordWork* ahead = nullptr);
    // The account (if any) and the attempts that count for the checks below (accounts.cpp).
    struct CheckedAccount {
        bool found = false;
        std::string user_id, hash;
        Attempts stored;
        bool disabled = false;
    };
    Result<CheckedAccount> read_for_check(const char* column, const std::string& value);
    // check_password's reading and Argon2id, writing nothing.
    Result<PasswordWork> check_ahead(const char* column, const std::string& value, std::string_view password,
                                     std::int64_t now);
    // The session with its device and user; empty when no session has this id.
    Result<std::optional<StoredSession>> read_session(const std::string& session_id);

    Store& store_;
    SignInPolicy policy_;
};

// Ends every session, the web page's included: after a restore, whose backup cannot know of a
// device revoked or an account disabled since it was taken. Everyone signs in again.
//
// A device's session that ends (here, with a password change or a disabled account) is kept,
// marked ended (expires_at 0), never deleted: its token opens nothing, but it still names its
// device, so a lost phone revoked before or after that moment is told to wipe when it next calls
// (a deleted session would leave the thief's token unknown: a plain 401, the replica kept).
// Only the holder's own sign-out deletes a session.
Status end_every_session(Store& store);

// 128-bit random id as 32 lower-case hex characters.
std::string random_id();

}  // namespace tsunagu::api
