// Device::salvage: a damaged replica rebuilt into a new home folder (see clients/device.h).
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>
#include <optional>

#include "clients/src/device_impl.h"

namespace tsunagu::client {
namespace {

// Whether `folder` is on a filesystem mounted read-only (a copy of a phone's files, say): nothing
// there can be written, renamed or removed by anyone, nor can a lock file be made.
bool on_read_only_filesystem(const std::string& folder) {
    struct statvfs fs {};
    return ::statvfs(folder.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0;
}

}  // namespace

Result<SalvageReport> Device::salvage(const std::string& damaged_home, const std::string& new_home,
                                      std::string_view passphrase, DeviceOptions options) {
    if (damaged_home.empty() || new_home.empty()) {
        return Status(ErrorCode::invalid_argument, "salvage needs the damaged replica's home folder and a new one");
    }
    if (passphrase.empty()) return Status(ErrorCode::invalid_argument, "the passphrase is empty");
    namespace fs = std::filesystem;
    const std::string damaged = (fs::path(damaged_home) / kDatabaseName).string();
    const std::string rebuilt = (fs::path(new_home) / kDatabaseName).string();
    std::error_code ec;
    if (fs::equivalent(damaged_home, new_home, ec)) {
        return Status(ErrorCode::invalid_argument,
                      "salvage into another home folder than " + damaged_home + ": its files are only read");
    }
    auto damaged_exists = file_exists(damaged, "the damaged replica's home folder " + damaged_home);
    TSUNAGU_TRY(damaged_exists);
    if (!*damaged_exists) return Status(ErrorCode::not_found, "no replica in " + damaged_home + " to salvage");
    auto rebuilt_exists = file_exists(rebuilt, "the new home folder " + new_home);
    TSUNAGU_TRY(rebuilt_exists);
    if (*rebuilt_exists) {
        return Status(ErrorCode::invalid_argument,
                      new_home + " already holds a replica; salvage into a new, empty home folder");
    }
    const bool made = fs::create_directories(new_home, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create the folder " + new_home + ": " + ec.message());
    if (made) ::chmod(new_home.c_str(), 0700);  // never an existing folder's, shared perhaps
    // Nobody records into the damaged replica meanwhile (the copy would miss it, and the worker
    // goes on in the new home), nor opens or makes a replica in the new home before it is whole
    // (salvage_store refuses a replica made there since the look above). On a read-only
    // filesystem the damaged replica cannot change, and needs no lock.
    std::optional<ReplicaLock> damaged_lock;
    if (!on_read_only_filesystem(damaged_home)) {
        auto taken = ReplicaLock::exclusive(damaged_home, "salvage the replica in " + damaged_home);
        TSUNAGU_TRY(taken);
        damaged_lock.emplace(std::move(*taken));
    }
    auto rebuilt_lock = ReplicaLock::exclusive(new_home, "salvage into " + new_home);
    TSUNAGU_TRY(rebuilt_lock);

    // Before the rebuilt replica can appear: whatever happens after, it pulls everything again
    // unless it is known complete (kResyncMarker).
    TSUNAGU_TRY(mark_resync(new_home));
    StoreOptions store_options;
    store_options.journal_mode = options.journal_mode;
    auto report = salvage_store(damaged, KeySource::passphrase(passphrase, options.kdf), rebuilt, store_options);
    // Cleared only when no replica behind its pages can be there: a salvage that failed after its
    // rename (syncing the folder) left one.
    // (One whose presence cannot be told counts as there.)
    const bool rebuilt_absent = !fs::exists(rebuilt, ec) && !ec;
    if ((!report && rebuilt_absent) || (report && report->complete())) TSUNAGU_TRY(clear_resync_mark(new_home));
    if (!report) {
        if (report.status().code() == ErrorCode::wrong_key) {
            return Status(ErrorCode::wrong_key,
                          "wrong passphrase for the replica in " + damaged_home + "; nothing was changed, try again");
        }
        return report.status();
    }
    if (!report->complete()) {
        // Told now, before anyone can replace the new replica (the lock goes from exclusive to
        // shared without a gap): its open finds the marker. Should that fail, the report still
        // goes to the worker, and the replica's next open does it.
        if (rebuilt_lock->make_shared()) {
            (void)open_locked(std::move(*rebuilt_lock), new_home, passphrase, std::move(options));
        }
    }
    return report;
}

}  // namespace tsunagu::client
