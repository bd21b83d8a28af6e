// Backing up and restoring the embedded store (tsunagu-server backup / restore).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "api/server.h"
#include "api/src/data_folder.h"
#include "crypto/secret.h"
#include "crypto/store.h"
#include "domain/care_schema.h"
#include "sync/engine.h"

namespace tsunagu::api {
namespace {

namespace fs = std::filesystem;

// The key file that seals the data, or what to do when there is none.
Result<KeySource> key_of(const std::string& key_path, const char* doing) {
    if (!fs::exists(key_path)) {
        return Status(ErrorCode::not_found,
                      std::string("no key file at ") + key_path + ": " + doing +
                          " needs the key file that seals the data; give it with --key-file");
    }
    return KeySource::key_file(key_path);
}

// Opens the store file at `path` only to read it whole: no journal-mode change, nothing created.
Status check_whole(const std::string& path, const KeySource& key) {
    StoreOptions read_only;
    read_only.journal_mode = JournalMode::rollback;
    read_only.create_if_missing = false;
    auto store = Store::open(path, key, read_only);
    if (!store) return store.status();
    return store->integrity_check();
}

// fsync of `path`'s folder, so that a rename into it survives a power cut.
Status sync_folder_of(const std::string& path) {
    const std::string folder = fs::path(path).parent_path().string();
    const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status(ErrorCode::io_error, "cannot open " + folder + " to make the restore durable");
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    return synced ? Status::ok() : Status(ErrorCode::io_error, "cannot sync " + folder + " after the restore");
}

// Removes a store file that was never complete: its key header first (Store::destroy), so that
// what it held cannot be read from blocks left on the disk.
void discard(const std::string& path) { (void)Store::destroy(path); }

}  // namespace

Result<BackupWritten> back_up_data(const std::string& data_dir, const std::string& key_file, const std::string& target) {
    ensure_sodium();
    const std::string store_path = store_path_in(data_dir);
    if (!fs::exists(store_path)) {
        return Status(ErrorCode::not_found, "no store in " + data_dir + " (expected " + store_path +
                                                "); a server on PostgreSQL is backed up with pg_dump");
    }
    if (target.empty()) return Status(ErrorCode::invalid_argument, "name the backup file to write with --to");
    auto key = key_of(key_path_for(data_dir, key_file), "a backup");
    TSUNAGU_TRY(key);
    StoreOptions live;  // as the server opens it (WAL): a running server goes on meanwhile
    live.create_if_missing = false;
    auto store = Store::open(store_path, *key, live);
    TSUNAGU_TRY(store);
    TSUNAGU_TRY(store->backup_to(target, *key));
    store->close();
    if (Status checked = check_whole(target, *key); !checked) {
        discard(target);
        return Status(checked.code(), "the backup written to " + target + " did not read back whole, and was "
                                          "removed: " + checked.message());
    }
    std::error_code ec;
    const std::uintmax_t bytes = fs::file_size(target, ec);
    return BackupWritten{target, ec ? 0 : bytes};
}

Status restore_data(const std::string& backup, const std::string& data_dir, const std::string& key_file) {
    ensure_sodium();
    if (!fs::is_regular_file(backup)) return Status(ErrorCode::not_found, "no backup file at " + backup);
    const std::string store_path = store_path_in(data_dir);
    if (fs::exists(store_path)) {
        return Status(ErrorCode::already_exists,
                      data_dir + " already holds a store, which a restore never overwrites: restore into a new "
                                 "folder, then start the server there");
    }
    auto key = key_of(key_path_for(data_dir, key_file), "restoring a backup");
    TSUNAGU_TRY(key);
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create the data folder " + data_dir + ": " + ec.message());
    ::chmod(data_dir.c_str(), 0700);

    // Worked on under another name, moved into place once complete: a restore killed half way
    // leaves no store a server would start on (and the next restore replaces the leftover).
    const std::string restoring = store_path + ".restoring";
    discard(restoring);
    fs::copy_file(backup, restoring, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot copy " + backup + " into " + data_dir + ": " + ec.message());
    ::chmod(restoring.c_str(), 0600);
    Status restored = [&]() -> Status {
        if (Status checked = check_whole(restoring, *key); !checked) {
            return Status(checked.code(), "the backup " + backup + " cannot be restored: " + checked.message());
        }
        // A data key of its own, and the fastest cipher of this machine (a backup is sealed with
        // the portable one).
        auto store = Store::open(restoring, *key);
        TSUNAGU_TRY(store);
        TSUNAGU_TRY(store->rekey());
        {
            // Devices may hold cursors beyond the backup's last change: numbering jumps past them.
            auto upstream = sync::Upstream::open(*store, domain::care_schema());
            TSUNAGU_TRY(upstream);
            TSUNAGU_TRY(upstream->after_restore());
        }
        store->close();
        fs::rename(restoring, store_path, ec);
        if (ec) return Status(ErrorCode::io_error, "cannot move the restored store into place: " + ec.message());
        return sync_folder_of(store_path);
    }();
    if (!restored) discard(restoring);
    return restored;
}

}  // namespace tsunagu::api
