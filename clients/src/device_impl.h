// Device's private state, shared by device.cpp (replica, sign-in, records) and sync_loop.cpp.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clients/device.h"
#include "clients/src/replica_lock.h"
#include "clients/src/server_link.h"
#include "clients/src/session.h"
#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::client {

// The replica's file in a device's home folder.
inline constexpr const char* kDatabaseName = "replica.db";

// Whether `path` exists; io_error naming `what` (never an exception) when the operating system
// cannot say: a name too long, a loop of symbolic links, no permission.
Result<bool> file_exists(const std::string& path, const std::string& what);

struct Device::Impl {
    explicit Impl(ReplicaLock taken) : lock(std::move(taken)) {}

    // Held shared from open to close, so that no other process replaces the replica under this
    // one; first, so that it is let go last, after the store is closed.
    ReplicaLock lock;
    std::string home;
    std::string db_path;
    DeviceOptions options;
    std::unique_ptr<Store> store;
    std::unique_ptr<sync::Device> engine;  // opened once the replica has a user (after sign-in)
    Session session;
    std::unique_ptr<ServerLink> link;
    bool wiped = false;
    // Fails unless the replica is usable (not wiped) and signed in.
    Status ready_for_records() const;
    // Checkpoints the WAL and empties it, so that none of its older frames (which may hold records
    // evicted since) is left. Another connection's read (the app, another command) can hold that
    // off past the store's busy timeout: the replica then remembers that it owes it
    // (Session::wal_holds_evicted) and tries again at its next sync and its next open.
    Status empty_wal();
    // Opens the engine for the stored session's user and device id.
    Status open_engine();
    // The link to the session's server, made on first use; refused (invalid_argument, nothing
    // sent) when the session's URL is one sign_in refuses (see sends_secrets_safely).
    Result<ServerLink*> server();
    // A new link to `url`, through options.transport (or cpprestsdk's).
    std::unique_ptr<ServerLink> make_link(const std::string& url) const;
    // Destroys the replica: engine and store closed, key header overwritten, files removed. Only
    // once no other process has the replica open (their later commits would be lost unseen):
    // otherwise busy, saying to close it and sync again, with nothing changed. Answers how many
    // changes went unsent with the replica, counted once the replica is held alone (so none
    // recorded meanwhile goes uncounted); none when they could not be counted.
    Result<std::optional<std::size_t>> wipe_counting_unsent();
    // For a request other than a sync answered 401 "wipe" (the device was revoked): wipes the
    // replica, and answers forbidden saying so, with the number of changes that went unsent; or
    // the wipe's own error (busy while another process has the replica open).
    Status erase_revoked();
    // The engine's refused outbox entries, oldest first, as the library reports them.
    Result<std::vector<RefusedChange>> refused() const;
};

// Whether a password and session tokens may be sent to `server_url`: https://, or http:// to
// this machine only (127.0.0.1, [::1], localhost).
bool sends_secrets_safely(const std::string& server_url);

// A salvage whose rebuilt replica may hold older versions of pages leaves this file in the new
// home before the replica appears there, and removes it once the replica was told to pull
// everything again (sync::Device::pull_everything_again); an open that finds it does that first.
// So a salvage killed, or failing, between the two still leads to the full pull (which is what
// brings back the records its pages fell behind on), never to incremental syncs from a replica
// silently behind.
inline constexpr const char* kResyncMarker = "resync-needed";
std::string resync_marker(const std::string& home);  // the marker's path in `home`
Status mark_resync(const std::string& home);
Status clear_resync_mark(const std::string& home);

// Device::open's work once `lock` (shared, on `home`) is held: the replica opened (created when
// missing) under `passphrase`, its session loaded and, once signed in, its engine opened (and told
// to pull everything again when kResyncMarker is there).
Result<std::unique_ptr<Device::Impl>> open_locked(ReplicaLock lock, const std::string& home,
                                                  std::string_view passphrase, DeviceOptions options);

}  // namespace tsunagu::client
