// Backing up and restoring the embedded store (tsunagu-server backup / restore).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

#include "api/server.h"
#include "api/src/accounts.h"
#include "api/src/backups.h"
#include "api/src/data_folder.h"
#include "api/src/secret_file.h"
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

// The passphrase in the first line of `path`, read straight into secure memory. The file must be
// its owner's only, as a key file.
Result<KeySource> passphrase_from(const std::string& path) {
    auto text = read_secret_file(path, "passphrase file", 12, "a backup deserves a long one");
    TSUNAGU_TRY(text);
    return KeySource::passphrase(text->view());
}

// The passphrase a backup is sealed with, when a passphrase file is named; none: the key file's.
Result<std::optional<KeySource>> passphrase_if_named(const std::string& passphrase_file) {
    if (passphrase_file.empty()) return std::optional<KeySource>();
    auto passphrase = passphrase_from(passphrase_file);
    TSUNAGU_TRY(passphrase);
    return std::optional<KeySource>(std::move(*passphrase));
}

// The key a backup is read with: the passphrase in `passphrase_file` when one is named, else the
// key file at `key_path`.
Result<KeySource> backup_key(const std::string& passphrase_file, const std::string& key_path, const char* doing) {
    if (!passphrase_file.empty()) return passphrase_from(passphrase_file);
    return key_of(key_path, doing);
}

// Opens the store file at `path` to read it, once it has read whole: no journal-mode change,
// nothing created.
Result<Store> open_whole(const std::string& path, const KeySource& key) {
    StoreOptions read_only;
    read_only.journal_mode = JournalMode::rollback;
    read_only.create_if_missing = false;
    auto store = Store::open(path, key, read_only);
    TSUNAGU_TRY(store);
    TSUNAGU_TRY(store->integrity_check());
    return store;
}

// fsync of `path`'s folder, so that a rename into it survives a power cut.
Status sync_folder_of(const std::string& path) {
    const std::string folder = fs::path(path).parent_path().string();
    return sync_folder(folder.empty() ? "." : folder);
}

// After a store was renamed to `path`: the rename made durable. When that fails the store is in
// place all the same, and the error says so (rather than that nothing was done): whether it is
// still there after a crash depends on the disk, so a restart of the machine calls for a look.
Status placed_durably(const std::string& path, const char* what) {
    Status synced = sync_folder_of(path);
    if (synced) return synced;
    return Status(synced.code(), std::string("the ") + what + " store is in place at " + path +
                                     ", but its folder could not be synced to disk (" + synced.message() +
                                     "): run sync before starting the server; should the machine restart first, "
                                     "check that the store is still there");
}

// Removes a store file that was never complete: its key header first (Store::destroy), so that
// what it held cannot be read from blocks left on the disk.
void discard(const std::string& path) { (void)Store::destroy(path); }

}  // namespace

Status check_passphrase_file(const std::string& path) { return passphrase_from(path).status(); }

Result<Store> open_live_store(const std::string& data_dir, const std::string& key_file, std::optional<KeySource>* key) {
    ensure_sodium();
    const std::string store_path = store_path_in(data_dir);
    if (!fs::exists(store_path)) {
        return Status(ErrorCode::not_found, "no store in " + data_dir + " (expected " + store_path +
                                                "); a server on PostgreSQL is backed up with pg_dump");
    }
    TSUNAGU_TRY(rotation_unfinished(data_dir));
    auto opened_with = key_of(key_path_for(data_dir, key_file), "a backup");
    TSUNAGU_TRY(opened_with);
    StoreOptions live;  // as the server opens it (WAL): a running server goes on meanwhile
    live.create_if_missing = false;
    auto store = Store::open(store_path, *opened_with, live);
    if (store && key != nullptr) key->emplace(std::move(*opened_with));
    return store;
}

Result<std::optional<DataFolderLock>> share_data_folder(const std::string& data_dir, const std::string& doing) {
    if (!fs::exists(store_path_in(data_dir))) return std::optional<DataFolderLock>();
    auto lock = DataFolderLock::take(data_dir, DataFolderLock::Mode::shared);
    if (!lock && lock.status().code() == ErrorCode::busy) {
        return Status(ErrorCode::busy, "the store in " + data_dir + " is being rewritten (a key rotation, restore "
                                       "or salvage holds it): " + doing + " once that has finished");
    }
    TSUNAGU_TRY(lock);
    return std::optional<DataFolderLock>(std::move(*lock));
}

Result<BackupWritten> back_up_data(const std::string& data_dir, const std::string& key_file, const std::string& target,
                                   const std::string& passphrase_file) {
    // Held shared, as the server holds it, for as long as the store is open: a key rotation,
    // restore or salvage, which replace or read the store's files, wait for the backup (its last
    // close would otherwise checkpoint and delete, by name, the WAL of the store put in place).
    auto folder = share_data_folder(data_dir, "take the backup");
    TSUNAGU_TRY(folder);
    std::optional<KeySource> key;
    auto store = open_live_store(data_dir, key_file, &key);
    TSUNAGU_TRY(store);
    if (target.empty()) return Status(ErrorCode::invalid_argument, "name the backup file to write with --to");
    auto passphrase = passphrase_if_named(passphrase_file);
    TSUNAGU_TRY(passphrase);
    const KeySource& sealing = *passphrase ? **passphrase : *key;
    TSUNAGU_TRY(store->backup_to(target, sealing));
    store->close();
    if (Status checked = open_whole(target, sealing).status(); !checked) {
        discard(target);
        return Status(checked.code(), "the backup written to " + target + " did not read back whole, and was "
                                          "removed: " + checked.message());
    }
    std::error_code ec;
    const std::uintmax_t bytes = fs::file_size(target, ec);
    return BackupWritten{target, ec ? 0 : bytes};
}

Status restore_data(const std::string& backup, const std::string& data_dir, const std::string& key_file,
                    const std::string& passphrase_file) {
    ensure_sodium();
    if (!fs::is_regular_file(backup)) return Status(ErrorCode::not_found, "no backup file at " + backup);
    const std::string store_path = store_path_in(data_dir);
    if (fs::exists(store_path)) {
        return Status(ErrorCode::already_exists,
                      data_dir + " already holds a store, which a restore never overwrites: restore into a new "
                                 "folder, then start the server there");
    }
    const std::string key_path = key_path_for(data_dir, key_file);
    // A backup sealed under the key file needs it now; one under a passphrase gets a key file
    // (this machine's, or a new one) once it has read back whole.
    const bool by_passphrase = !passphrase_file.empty();
    auto sealed_with = backup_key(passphrase_file, key_path, "restoring a backup");
    TSUNAGU_TRY(sealed_with);
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create the data folder " + data_dir + ": " + ec.message());
    ::chmod(data_dir.c_str(), 0700);
    // No server starts on the folder meanwhile (it would make a new store the restore then moves
    // its own over), and none was running on it.
    auto lock = DataFolderLock::take(data_dir, DataFolderLock::Mode::exclusive);
    TSUNAGU_TRY(lock);
    if (fs::exists(store_path)) {
        return Status(ErrorCode::already_exists, data_dir + " already holds a store, which a restore never overwrites");
    }

    // Worked on under another name, moved into place once complete: a restore killed half way
    // leaves no store a server would start on (and the next restore replaces the leftover).
    const std::string restoring = store_path + ".restoring";
    discard(restoring);
    fs::copy_file(backup, restoring, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot copy " + backup + " into " + data_dir + ": " + ec.message());
    ::chmod(restoring.c_str(), 0600);
    Status restored = [&]() -> Status {
        if (Status checked = open_whole(restoring, *sealed_with).status(); !checked) {
            return Status(checked.code(), "the backup " + backup + " cannot be restored: " + checked.message());
        }
        auto store = Store::open(restoring, *sealed_with);
        TSUNAGU_TRY(store);
        if (by_passphrase) {
            if (!fs::exists(key_path)) TSUNAGU_TRY(create_key_file(key_path));
            auto found = key_of(key_path, "restoring a backup");
            TSUNAGU_TRY(found);
            TSUNAGU_TRY(store->change_key(*found));
        }
        // A data key of its own, and the fastest cipher of this machine (a backup is sealed with
        // the portable one).
        TSUNAGU_TRY(store->rekey());
        {
            // Devices may hold cursors beyond the backup's last change: numbering jumps past them.
            auto upstream = sync::Upstream::open(*store, domain::care_schema());
            TSUNAGU_TRY(upstream);
            TSUNAGU_TRY(upstream->after_restore());
        }
        // A lost phone's token would open the restored server again: everyone signs in once more
        // (phones keep their work meanwhile).
        TSUNAGU_TRY(end_every_session(*store));
        TSUNAGU_TRY(store->close_folded());
        fs::rename(restoring, store_path, ec);
        if (ec) return Status(ErrorCode::io_error, "cannot move the restored store into place: " + ec.message());
        return placed_durably(store_path, "restored");
    }();
    if (!restored) discard(restoring);
    return restored;
}

Result<SalvageReport> salvage_data(const std::string& data_dir, const std::string& new_dir, const std::string& key_file) {
    ensure_sodium();
    const std::string damaged = store_path_in(data_dir), store_path = store_path_in(new_dir);
    if (!fs::exists(damaged)) return Status(ErrorCode::not_found, "no store in " + data_dir + " to salvage");
    if (fs::exists(store_path)) {
        return Status(ErrorCode::already_exists,
                      new_dir + " already holds a store, which a salvage never overwrites: salvage into a new folder");
    }
    const std::string key_path = key_path_for(data_dir, key_file);
    auto key = key_of(key_path, "salvaging the store");
    TSUNAGU_TRY(key);
    // No server runs on the damaged folder meanwhile, nor starts on the new one.
    auto damaged_lock = DataFolderLock::take(data_dir, DataFolderLock::Mode::exclusive);
    TSUNAGU_TRY(damaged_lock);
    std::error_code ec;
    fs::create_directories(new_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create the data folder " + new_dir + ": " + ec.message());
    ::chmod(new_dir.c_str(), 0700);
    auto lock = DataFolderLock::take(new_dir, DataFolderLock::Mode::exclusive);
    TSUNAGU_TRY(lock);

    // Built under another name and moved into place once sequence numbers are seen to: a salvage
    // killed half way leaves no store a server would start on.
    const std::string salvaging = store_path + ".salvaging";
    discard(salvaging);
    auto report = salvage_store(damaged, *key, salvaging);
    TSUNAGU_TRY(report);
    Status placed = [&]() -> Status {
        if (!report->complete()) {
            auto store = Store::open(salvaging, *key);
            TSUNAGU_TRY(store);
            {
                auto upstream = sync::Upstream::open(*store, domain::care_schema());
                TSUNAGU_TRY(upstream);
                TSUNAGU_TRY(upstream->after_restore());
            }
            // A page that fell back to an older version may have held a device's revocation, an
            // account's disabling, a password reset or a sign-out: as after a restore, everyone
            // signs in again (phones keep their work meanwhile), and those are done again.
            TSUNAGU_TRY(end_every_session(*store));
            TSUNAGU_TRY(store->close_folded());
        }
        if (key_file.empty()) {
            const std::string new_key = key_path_for(new_dir, "");
            if (!fs::exists(new_key)) TSUNAGU_TRY(write_key_file(new_key, key->material()));
        }
        fs::rename(salvaging, store_path, ec);
        if (ec) return Status(ErrorCode::io_error, "cannot move the salvaged store into place: " + ec.message());
        return placed_durably(store_path, "salvaged");
    }();
    if (!placed) {
        discard(salvaging);
        return placed;
    }
    return report;
}

Result<BackupContents> verify_backup(const std::string& backup, const std::string& data_dir,
                                     const std::string& key_file, const std::string& passphrase_file) {
    ensure_sodium();
    if (!fs::is_regular_file(backup)) return Status(ErrorCode::not_found, "no backup file at " + backup);
    auto sealed_with = backup_key(passphrase_file, key_path_for(data_dir, key_file), "verifying a backup");
    TSUNAGU_TRY(sealed_with);
    // Read from a copy (sealed as the backup is), so that the backup itself is never written to.
    // The folder is made new (mkdtemp: a name nobody can guess, 0700, ours): in a shared /tmp, a
    // folder someone else prepared could hold a symbolic link that the copy, and then the copy's
    // destruction, would follow into the live store.
    std::error_code ec;
    std::string folder_template = (fs::temp_directory_path(ec) / "tsunagu-verify-XXXXXX").string();
    if (ec || ::mkdtemp(folder_template.data()) == nullptr) {
        return Status(ErrorCode::io_error, std::string("cannot make a folder to verify the backup in: ") +
                                               (ec ? ec.message() : std::strerror(errno)) +
                                               "; check that TMPDIR (or /tmp) is writable");
    }
    const fs::path folder = folder_template;
    const std::string copy = (folder / "backup.db").string();
    auto verified = [&]() -> Result<BackupContents> {
        std::error_code copy_ec;
        fs::copy_file(backup, copy, fs::copy_options::none, copy_ec);
        if (copy_ec) return Status(ErrorCode::io_error, "cannot read " + backup + ": " + copy_ec.message());
        auto store = open_whole(copy, *sealed_with);
        if (!store && store.status().code() == ErrorCode::wrong_key) {
            return Status(ErrorCode::wrong_key, "the backup " + backup + " is sealed under another key (wrong "
                                                "key or passphrase): check --key-file or --passphrase-file (a backup of "
                                                "another installation needs that installation's key)");
        }
        if (!store) {
            return Status(store.status().code(), "the backup " + backup + " is not whole: " + store.status().message());
        }
        BackupContents contents;
        contents.bytes = fs::file_size(backup, copy_ec);
        TSUNAGU_TRY(each_row(store->cached("SELECT collection, count(*) FROM sync_records WHERE deleted = 0 "
                                           "GROUP BY collection ORDER BY collection"),
                             [&](const Statement& row) {
                                 contents.records[std::string(row.column_text(0))] = row.column_int(1);
                             }));
        TSUNAGU_TRY(each_row(store->cached("SELECT count(*) FROM account"),
                             [&](const Statement& row) { contents.accounts = row.column_int(0); }));
        TSUNAGU_TRY(each_row(store->cached("SELECT value FROM sync_meta WHERE key = 'replica'"),
                             [&](const Statement& row) { contents.installation = std::string(row.column_text(0)); }));
        // The last change the server took: its sequence number and stamp.
        TSUNAGU_TRY(each_row(store->cached("SELECT seq, hlc FROM sync_log ORDER BY seq DESC LIMIT 1"),
                             [&](const Statement& row) {
                                 contents.last_sequence = row.column_int(0);
                                 contents.last_change_ms = sync::Hlc::from_packed(row.column_int(1)).wall_ms;
                             }));
        return contents;
    }();
    discard(copy);
    fs::remove_all(folder, ec);
    return verified;
}

}  // namespace tsunagu::api
