// How failed password checks are slowed and then locked, for accounts and for names no account
// has alike.
//
// Contract: an account keeps its count and its next allowed attempt in its own row (account);
// a name with no account keeps them in sign_in_name_attempts, under a keyed hash of the name.
// Both follow the one policy below, and an attempt under either runs the same statements, so a
// caller cannot tell a real name from an unknown one by the answers (401, then 429 with
// Retry-After, then 423), their headers, or their timing (an attempt while waiting does no
// Argon2id work, for either).
//
// Both forgive: once a wait is over, one failure is taken off the count for every lock_seconds
// (15 minutes) that pass, and a sign-in that succeeds resets nothing (a reset would show the
// name is real: an unknown name never succeeds). So a guesser is held at about one check per
// lock however they pace their guesses, a worker's typos are forgotten within the hour, and the
// table holds only names whose count has not run out (deleted then: no cap, whose evictions a
// caller could see), their failures paced by Argon2id, one at a time.
//
// Left visible: the count is the account's, so its owner's own wrong passwords (a typo on the
// phone, a wrong current password when changing it) lengthen a guesser's next wait; and an
// administrator's password reset clears it. Neither tells a name from another without the
// owner's doing.
#pragma once

#include <cstdint>
#include <string>

#include "api/src/accounts.h"

namespace tsunagu::api {

// Attempts (failed checks so far, and when the next may be checked): accounts.h.

// The attempts as they count at `now`: one failure forgiven per lock_seconds since the wait ended.
Attempts current_attempts(const SignInPolicy& policy, const Attempts& stored, std::int64_t now);

// An attempt that comes while it must wait: answered wait (or locked, past the policy's
// lock_after), unchecked, with the seconds left. A wait longer than any the policy gives comes
// from a clock set back since: the answer is cut to lock_seconds, and `cut_to` is set to the
// next allowed attempt the caller stores (0: nothing to store).
PasswordCheck waiting_answer(const SignInPolicy& policy, const Attempts& attempts, std::int64_t now,
                             std::int64_t& cut_to);

// The attempts after one more failure at `now`, and the answer for it: bad_credentials with the
// wait that the next attempt must keep (0 for the first free_attempts - 1), or locked.
PasswordCheck after_failure(const SignInPolicy& policy, Attempts& attempts, std::int64_t now);

// The attempts stored under `username` in sign_in_name_attempts (none: zero). Read for every
// sign-in, an account's too, so that both kinds of name cost the same statements.
Result<Attempts> name_attempts(Store& store, const std::string& username);

// Deletes the rows whose count has run out, then stores the attempts under `username`. Run for
// every counted failure, an account's too (its own row is what counts for it; this one only
// makes the two kinds of name run the same statements).
Status note_name_attempts(Store& store, const SignInPolicy& policy, const std::string& username,
                          const Attempts& attempts, std::int64_t now);

// Makes the secret that keys the names' hashes, once per store (at start: create_server_tables).
Status ensure_name_secret(Store& store);

// sign_in_name_attempts and the secret that keys its hashes, made by server schema step 4 -> 5
// (server_schema.cpp). On PostgreSQL the secret is sealed with the tenant's data key
// (pg/src/sql_dialect.cpp), as the whole store is encrypted on SQLite: the hashes cannot be
// tried against guessed names (or passwords typed into the name field) without it.
inline constexpr const char* kCreateNameAttempts =
    "CREATE TABLE IF NOT EXISTS sign_in_name_attempts(name_key BLOB PRIMARY KEY, "
    "failed_sign_ins INTEGER NOT NULL, next_attempt_at BIGINT NOT NULL, forgiven_at BIGINT NOT NULL)";
inline constexpr const char* kIndexNameAttempts =
    "CREATE INDEX IF NOT EXISTS sign_in_name_attempts_by_age ON sign_in_name_attempts(forgiven_at)";
inline constexpr const char* kCreateNameSecret =
    "CREATE TABLE IF NOT EXISTS sign_in_name_secret(id INTEGER PRIMARY KEY, secret BLOB NOT NULL)";

}  // namespace tsunagu::api
