// The device's session with its server (URL, token, user, device id, last sync), kept in a small
// table inside the same encrypted Store as the replica: nothing of it is ever plaintext on disk.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "crypto/secret.h"
#include "crypto/status.h"
#include "crypto/store.h"

namespace tsunagu::client {

// Move-only: the token is a Secret, so it lives in libsodium's guarded memory for as long as the
// device is open and is wiped when the session is dropped or replaced.
struct Session {
    std::string server_url;
    Secret token;  // the bearer secret: never logged, printed or copied into a std::string to keep
    std::string user_id;
    std::string username;
    std::string role;
    std::string team_id;
    std::string device_id;
    std::int64_t last_sync_ms = 0;
    // The WAL's older frames may still hold records evicted from this replica: the checkpoint that
    // empties it was held off by another connection's read (see Device::Impl::empty_wal). Kept
    // apart from the rest: save_session leaves it as it is.
    bool wal_holds_evicted = false;

    bool signed_in() const { return !token.empty() && !device_id.empty(); }
};

// Creates the table on first use.
Status prepare_session_table(Store& store);
// The stored session (empty fields when never signed in).
Result<Session> load_session(Store& store);
// Replaces the stored session, in one transaction.
Status save_session(Store& store, const Session& session);
Status save_last_sync(Store& store, std::int64_t when_ms);
// The device id this replica proposes when it signs in without one, made once and kept in the
// replica: a sign-in whose answer was lost, tried again by another process (the command line run
// again, the app reopened), registers the same device rather than a second one.
Result<std::string> proposed_device_id(Store& store);
Status save_wal_holds_evicted(Store& store, bool holds);

// What the last sync that finished told its caller of: the refused changes (their ids) and the
// open conflicts (conflict_key) there were then. A sync reports what is new against this, so a
// refusal or conflict that arrived in a sync that then failed (a network cut during its pull, a
// full disk), whose report its caller never got, is reported by the next sync that finishes.
struct Reported {
    std::set<std::string> refused;
    std::set<std::string> conflicts;
};
std::string conflict_key(const std::string& record, const std::string& field, const std::string& losing_change);
// nullopt for a replica no sync has finished on since this was kept (the caller then takes what
// the replica holds now as told).
Result<std::optional<Reported>> load_reported(Store& store);
// Replaces what was told, in one transaction.
Status save_reported(Store& store, const Reported& reported);

}  // namespace tsunagu::client
