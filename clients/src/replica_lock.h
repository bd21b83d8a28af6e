// The lock that keeps a device's replica from being replaced, or removed, under a process that has
// it open (the app, a second `tsunagu` command): whose commits would otherwise be lost.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "crypto/file_lock.h"
#include "crypto/status.h"

namespace tsunagu::client {

// HOME/replica.lock, never renamed or removed (see FileLock): every open Device holds it shared
// for its whole life; what replaces or removes HOME/replica.db holds it exclusive meanwhile (a
// passphrase change renames a re-encrypted copy over it, a revoked device's erasure removes it, a
// salvage reads a whole replica out of a home or writes one into it). Nothing waits: a conflict is
// refused at once as busy, with what to do, and changes nothing.
//
// HOME/replica.lock.gate is held by every taker of the exclusive lock, and only by them, while
// they ask for it and hold it. A conversion from shared to exclusive lets the shared lock go first
// (flock), so two that converted at once could leave one of them holding nothing while the other
// replaced the replica under it; through the gate only one converts at a time, and one that is
// refused takes its shared lock back for sure.
//
// Released when destroyed, or when the process dies, however it dies (kill -9 included).
class ReplicaLock {
public:
    // For an open Device: the lock on `home`'s replica (created with the folder's other files when
    // missing), shared. busy while another process replaces the replica; try again after.
    static Result<ReplicaLock> share(const std::string& home);
    // For what reads a whole replica out of `home` or writes one into it while no Device of this
    // process has it open (a salvage): exclusive from the start. busy, naming `doing` ("salvage
    // the replica in HOME"), while another process has the replica open or is replacing it.
    static Result<ReplicaLock> exclusive(const std::string& home, const std::string& doing);

    // An exclusive() lock made shared, as share() takes it, without letting the replica go in
    // between: a salvage opens the replica it wrote before anyone else can replace it.
    Status make_shared();

    // This shared lock made exclusive for as long as the hold lives, then shared again. Taken
    // without waiting: busy, naming `doing` ("change the passphrase"), while another process (or
    // another Device of this one) has the replica open, with what to do; the lock is then still
    // held shared, and nothing was changed. Needs a lock taken by share(), which must outlive the
    // hold and stay where it is meanwhile.
    class ExclusiveHold {
    public:
        ExclusiveHold(ExclusiveHold&& other) noexcept;
        ExclusiveHold& operator=(ExclusiveHold&&) = delete;
        ExclusiveHold(const ExclusiveHold&) = delete;
        ExclusiveHold& operator=(const ExclusiveHold&) = delete;
        ~ExclusiveHold();

    private:
        friend class ReplicaLock;
        ExclusiveHold(FileLock& replica, FileLock gate)
            : replica_(&replica), gate_(std::move(gate)) {}
        FileLock* replica_;  // the ReplicaLock's; null once moved from
        FileLock gate_;
    };
    Result<ExclusiveHold> hold_exclusive(const std::string& doing);

    ReplicaLock(ReplicaLock&&) noexcept = default;
    ReplicaLock& operator=(ReplicaLock&&) = delete;
    ReplicaLock(const ReplicaLock&) = delete;
    ReplicaLock& operator=(const ReplicaLock&) = delete;
    ~ReplicaLock() = default;

private:
    ReplicaLock(std::string home, std::optional<FileLock> gate, FileLock replica)
        : home_(std::move(home)), gate_(std::move(gate)), replica_(std::move(replica)) {}
    std::string home_;
    // Declared before the replica's lock, so let go after it: nobody holds that one exclusive
    // without the gate, even for an instant.
    std::optional<FileLock> gate_;  // held for the lock's life when taken by exclusive()
    FileLock replica_;
};

}  // namespace tsunagu::client
