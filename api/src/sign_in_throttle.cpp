// The sign-in throttle's policy, and the attempts under names no account has (sign_in_throttle.h).
#include "api/src/sign_in_throttle.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <vector>

namespace tsunagu::api {
namespace {

using NameKey = std::array<std::uint8_t, crypto_generichash_BYTES>;

// The row's key: the name's BLAKE2b hash keyed with the store's secret, so that the table lists
// no name someone typed (a real one mistyped, or a password typed into the name field).
Result<NameKey> name_key(Store& store, const std::string& username) {
    auto& q = store.cached("SELECT id, secret FROM sign_in_name_secret WHERE id = 1");
    std::vector<std::uint8_t> secret;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) {
        const auto bytes = row.column_blob(1);
        secret.assign(bytes.begin(), bytes.end());
    }));
    if (secret.size() < crypto_generichash_KEYBYTES_MIN || secret.size() > crypto_generichash_KEYBYTES_MAX) {
        return Status(ErrorCode::internal,
                      "the sign-in names' secret is missing from the store: restart the server, which makes it");
    }
    NameKey key{};
    crypto_generichash(key.data(), key.size(), reinterpret_cast<const unsigned char*>(username.data()),
                       username.size(), secret.data(), secret.size());
    sodium_memzero(secret.data(), secret.size());
    return key;
}

}  // namespace

Status ensure_name_secret(Store& store) {
    auto& q = store.cached("SELECT count(*) FROM sign_in_name_secret");
    std::int64_t rows = 0;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { rows = row.column_int(0); }));
    if (rows != 0) return Status::ok();
    std::array<std::uint8_t, crypto_generichash_KEYBYTES> secret{};
    randombytes_buf(secret.data(), secret.size());
    auto& insert = store.cached("INSERT INTO sign_in_name_secret(id, secret) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING");
    Status made = insert.bind(1, 1).bind_blob(2, secret).run();
    sodium_memzero(secret.data(), secret.size());
    return made;
}

Attempts current_attempts(const SignInPolicy& policy, const Attempts& stored, std::int64_t now) {
    if (now <= stored.next_attempt_at || policy.lock_seconds <= 0) return stored;
    const std::int64_t forgiven = (now - stored.next_attempt_at) / policy.lock_seconds;
    if (forgiven >= stored.failures) return Attempts{};
    return Attempts{stored.failures - static_cast<int>(forgiven), stored.next_attempt_at};
}

PasswordCheck waiting_answer(const SignInPolicy& policy, const Attempts& attempts, std::int64_t now,
                             std::int64_t& cut_to) {
    PasswordCheck check;
    check.outcome = attempts.failures >= policy.lock_after ? SignIn::Outcome::locked : SignIn::Outcome::wait;
    check.retry_after_s = attempts.next_attempt_at - now;
    cut_to = 0;
    if (check.retry_after_s > policy.lock_seconds) {
        check.retry_after_s = policy.lock_seconds;
        cut_to = now + policy.lock_seconds;
    }
    return check;
}

PasswordCheck after_failure(const SignInPolicy& policy, Attempts& attempts, std::int64_t now) {
    attempts.failures += 1;
    std::int64_t wait = 0;
    if (attempts.failures >= policy.lock_after) {
        wait = policy.lock_seconds;
    } else if (attempts.failures >= policy.free_attempts) {
        wait = std::int64_t(1) << std::min(attempts.failures - policy.free_attempts, 8);  // 1 s .. 256 s
    }
    attempts.next_attempt_at = now + wait;
    PasswordCheck check;
    check.outcome = attempts.failures >= policy.lock_after ? SignIn::Outcome::locked : SignIn::Outcome::bad_credentials;
    check.retry_after_s = wait;
    return check;
}

Result<Attempts> name_attempts(Store& store, const std::string& username) {
    auto key = name_key(store, username);
    TSUNAGU_TRY(key);
    auto& q = store.cached(
        "SELECT failed_sign_ins, next_attempt_at FROM sign_in_name_attempts WHERE name_key = ?1");
    q.bind_blob(1, *key);
    Attempts attempts;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) {
        attempts.failures = static_cast<int>(row.column_int(0));
        attempts.next_attempt_at = row.column_int(1);
    }));
    return attempts;
}

Status note_name_attempts(Store& store, const SignInPolicy& policy, const std::string& username,
                          const Attempts& attempts, std::int64_t now) {
    auto& forget = store.cached("DELETE FROM sign_in_name_attempts WHERE forgiven_at <= ?1");
    TSUNAGU_TRY(forget.bind(1, now).run());
    auto key = name_key(store, username);
    TSUNAGU_TRY(key);
    // When current_attempts will have forgiven every failure.
    const std::int64_t forgiven_at = attempts.next_attempt_at + attempts.failures * std::max<std::int64_t>(policy.lock_seconds, 1);
    auto& upsert = store.cached(
        "INSERT INTO sign_in_name_attempts(name_key, failed_sign_ins, next_attempt_at, forgiven_at) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name_key) DO UPDATE SET failed_sign_ins = excluded.failed_sign_ins, "
        "next_attempt_at = excluded.next_attempt_at, forgiven_at = excluded.forgiven_at");
    return upsert.bind_blob(1, *key)
        .bind(2, attempts.failures)
        .bind(3, attempts.next_attempt_at)
        .bind(4, forgiven_at)
        .run();
}

}  // namespace tsunagu::api
