// ReplicaLock: the replica's lock and its gate, in the device's home folder (see replica_lock.h).
#include "clients/src/replica_lock.h"

#include <filesystem>
#include <utility>

namespace tsunagu::client {
namespace {

constexpr const char* kLockName = "replica.lock";
constexpr const char* kGateName = "replica.lock.gate";

std::string in_home(const std::string& home, const char* name) {
    return (std::filesystem::path(home) / name).string();
}

// What a conflict on the gate means: another is already replacing the replica.
Status being_replaced(const std::string& home, const std::string& doing) {
    return Status(ErrorCode::busy,
                  "cannot " + doing + ": another process is changing the replica in " + home +
                      " as a whole (its passphrase, a revoked device's erasure, or a salvage); try "
                      "again once that has finished. Nothing was changed");
}

// A refusal of the lock, said for the replica in `home` (busy: someone has it open).
Status refused(const std::string& home, const std::string& doing, const Status& status) {
    if (status.code() == ErrorCode::busy) {
        return Status(ErrorCode::busy,
                      "cannot " + doing + ": the replica in " + home +
                          " is open in another process (the app, or another tsunagu command) or "
                          "through another handle; close it, then try again. Nothing was changed");
    }
    return Status(status.code(), "cannot " + doing + ": " + status.message());
}

Result<FileLock> take_gate(const std::string& home, const std::string& doing) {
    auto gate = FileLock::take(in_home(home, kGateName), FileLock::Mode::exclusive);
    if (gate) return gate;
    if (gate.status().code() == ErrorCode::busy) return being_replaced(home, doing);
    return refused(home, doing, gate.status());
}

}  // namespace

Result<ReplicaLock> ReplicaLock::share(const std::string& home) {
    auto taken = FileLock::take(in_home(home, kLockName), FileLock::Mode::shared);
    if (taken) return ReplicaLock(home, std::nullopt, std::move(*taken));
    if (taken.status().code() == ErrorCode::busy) {
        return Status(ErrorCode::busy,
                      "another process is changing the replica in " + home +
                          " as a whole (its passphrase, a revoked device's erasure, or a salvage): "
                          "try again once that has finished");
    }
    return Status(taken.status().code(),
                  "cannot open the replica in " + home + ": " + taken.status().message());
}

Result<ReplicaLock> ReplicaLock::exclusive(const std::string& home, const std::string& doing) {
    auto gate = take_gate(home, doing);
    TSUNAGU_TRY(gate);
    // Whoever holds the replica's lock exclusive holds the gate, which is this one's now: a
    // conflict here is someone who has the replica open.
    auto taken = FileLock::take(in_home(home, kLockName), FileLock::Mode::exclusive);
    if (!taken) return refused(home, doing, taken.status());
    return ReplicaLock(home, std::move(*gate), std::move(*taken));
}

Status ReplicaLock::make_shared() {
    if (!gate_) return Status::ok();
    TSUNAGU_TRY(
        replica_.convert(FileLock::Mode::shared));  // cannot conflict while the gate is held
    gate_.reset();
    return Status::ok();
}

Result<ReplicaLock::ExclusiveHold> ReplicaLock::hold_exclusive(const std::string& doing) {
    if (gate_ || replica_.mode() != FileLock::Mode::shared) {
        return Status(ErrorCode::internal, "cannot " + doing + ": the lock on the replica in " +
                                               home_ + " is exclusive already");
    }
    auto gate = take_gate(home_, doing);
    TSUNAGU_TRY(gate);
    // With the gate held nobody else asks for the exclusive lock, so a refused conversion gets its
    // shared lock back (FileLock::convert).
    if (Status converted = replica_.convert(FileLock::Mode::exclusive); !converted) {
        return refused(home_, doing, converted);
    }
    return ExclusiveHold(replica_, std::move(*gate));
}

ReplicaLock::ExclusiveHold::ExclusiveHold(ExclusiveHold&& other) noexcept
    : replica_(std::exchange(other.replica_, nullptr)), gate_(std::move(other.gate_)) {}

ReplicaLock::ExclusiveHold::~ExclusiveHold() {
    // Shared again before the gate goes (the member is destroyed after this body): a conversion
    // fails only if someone took the lock exclusive in between, which needs the gate.
    if (replica_) (void)replica_->convert(FileLock::Mode::shared);
}

}  // namespace tsunagu::client
