// Store maintenance: key change, re-key, encrypted backup, integrity check, destruction.
#include <fcntl.h>
#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <unistd.h>

#include <cerrno>

#include "crypto/src/file_util.h"
#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/store_impl.h"

namespace tsunagu {
namespace {

Status not_on_backend(const char* what, const std::string& where) {
    return Status(ErrorCode::invalid_argument, std::string(what) + " is for encrypted SQLite stores; " + where +
                                                   " has its own tools for it");
}

}  // namespace


using namespace crypto_detail;

namespace {

// VACUUM INTO `target` (already created with its key header and registered with its key).
Status vacuum_into(StoreImpl& s, const std::string& target) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(s.db, "VACUUM INTO ?1", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, target.c_str(), -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if ((rc & 0xff) == SQLITE_FULL) {
        // The copy's disk, which need not be the store's: the operator must free space there.
        const std::string folder = std::filesystem::path(target).parent_path().string();
        return Status(ErrorCode::storage_full, "disk full writing the copy " + target + ": free space in " +
                                                   (folder.empty() ? std::string(".") : folder) +
                                                   " and retry; the store " + s.path + " is unchanged");
    }
    if (rc != SQLITE_OK) return s.error(rc, "copying into " + target);
    UniqueFd fd(::open(target.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return errno_status("cannot reopen " + target);
    return sync_fd(fd.get(), target);
}

// Writes an encrypted copy of `s` to `target`, its pages sealed with `cipher` under a fresh data
// key wrapped by `kek`. On failure nothing is left at `target`.
Status copy_encrypted(StoreImpl& s, const std::string& target, const KekRecipe& recipe,
                      const Secret& kek, const Secret& data_key, PageCipher cipher) {
    TSUNAGU_TRY(create_store_file(target, recipe, kek, data_key, cipher));
    Status copied = [&]() -> Status {
        auto registration = KeyRegistration::add(target, Secret::copy_of(data_key.bytes()), cipher);
        if (!registration) return registration.status();
        return vacuum_into(s, target);
    }();
    if (!copied.is_ok()) ::unlink(target.c_str());
    return copied;
}

// Writes `size` bytes at `offset` of the store file at `path` and syncs them, through a
// BaseVfsFile (the store's connection holds locks on the file that a close of our own would drop).
Status write_through_base_vfs(const std::string& path, const std::string& vfs_name, const std::uint8_t* bytes,
                              std::size_t size, std::uint64_t offset) {
    auto file = BaseVfsFile::open(path, vfs_name, SQLITE_OPEN_READWRITE);
    if (!file) return file.status();
    sqlite3_file* f = file->get();
    int rc = f->pMethods->xWrite(f, bytes, static_cast<int>(size), static_cast<sqlite3_int64>(offset));
    if (rc == SQLITE_OK) rc = f->pMethods->xSync(f, SQLITE_SYNC_FULL);
    if (rc != SQLITE_OK) {
        return Status(ErrorCode::io_error, "cannot rewrite the key header of " + path + " (SQLite I/O error " +
                                               std::to_string(rc) + "); check the disk, and which key opens it");
    }
    return Status::ok();
}

// Whether the re-key's copy at `temporary` opens as a store under `data_key`: its key header is
// there and its first page authenticates. Removes it and fails when not.
Status check_still_ours(StoreImpl& s, const std::string& temporary, const Secret& data_key, PageCipher cipher) {
    std::vector<std::uint8_t> start(kHeaderBytes + kPageSize);  // the key header, then page 1
    auto file = BaseVfsFile::open(temporary, s.options.base_vfs, SQLITE_OPEN_READONLY);
    bool whole = file.is_ok() &&
                 file->get()->pMethods->xRead(file->get(), start.data(), static_cast<int>(start.size()), 0) == SQLITE_OK &&
                 std::any_of(start.begin(), start.begin() + kHeaderBytes, [](std::uint8_t b) { return b != 0; });
    std::uint8_t* page = start.data() + kHeaderBytes;
    whole = whole && open_page({data_key.data(), cipher}, page, page, PageBinding::main_page(1));
    sodium_memzero(page, kPageSize);  // the plaintext of a page
    if (whole) return Status::ok();
    ::unlink(temporary.c_str());
    return Status(ErrorCode::conflict, "the re-key of " + s.path + " stopped: its copy " + temporary +
                                           " was removed or replaced while it was written (was the store opened "
                                           "meanwhile?); the store is unchanged, under its old key: retry with "
                                           "nothing else opening it");
}

// Re-encrypts `store` (whose insides are `s`) under a new random data key wrapped by `kek`
// (made with `recipe`): see Store::rekey. Refused when `prepared_statement_alive`.
Status replace_data_key(Store& store, StoreImpl& s, const KekRecipe& recipe, const Secret& kek,
                        bool prepared_statement_alive) {
    if (store.in_transaction()) {
        return Status(ErrorCode::invalid_argument, "cannot re-key " + s.path +
                                                       " inside a transaction; commit first");
    }
    // A statement prepared outside the cache would keep the old connection open past the switch
    // (closed "v2", as a zombie): writes through it would land in the renamed-away file, and its
    // eventual close would delete the new store's WAL by name.
    if (prepared_statement_alive) {
        return Status(ErrorCode::invalid_argument, "cannot re-key " + s.path + " while a statement prepared on it "
                                                   "(Store::prepare) is alive: destroy it first");
    }
    // Another Store on this file in this process would go on writing to the renamed-away file
    // (its commits lost), and could not open the new one under its old data key.
    if (KeyRegistration::users(s.path) > 1) {
        return Status(ErrorCode::busy, "cannot re-key " + s.path + " while another handle in this process has it "
                                       "open: close the others first; nothing was changed");
    }
    // A cached statement left stepped (a row read, not reset) would stop the copy as "statements
    // in progress": outside a transaction nothing depends on it, and its next use steps anew.
    for (auto& [sql, cached] : s.cache) cached->reset();
    const std::string temporary = s.path + ".rekey";
    ::unlink(temporary.c_str());
    Secret new_key = Secret::random(kDataKeyBytes);
    // Every page is sealed afresh, so the copy takes the fastest cipher this machine runs.
    const PageCipher new_cipher = cipher_for_new_pages(s.options);
    // The copy's key header wraps the new data key under `kek` already: the rename below switches
    // key and key source at once, with no state in between.
    TSUNAGU_TRY(copy_encrypted(s, temporary, recipe, kek, new_key, new_cipher));
    // The copy must still be the file made above, key header and all. Were its name removed
    // meanwhile (an open of the store clears a leftover copy), the copy would have gone into a
    // new file without a key header, and renamed over the store it would leave the data key,
    // which only this process holds, nowhere on disk: nothing could open the store again.
    TSUNAGU_TRY(check_still_ours(s, temporary, new_key, new_cipher));

    // Until the rename the old store is complete; after it, the new one is.
    if (s.options.journal_mode == JournalMode::wal) {
        (void)store.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    Secret old_key = Secret::copy_of(s.registration.keys()->data_key.bytes());
    s.close_connection();
    if (::rename(temporary.c_str(), s.path.c_str()) != 0) {
        Status failed = errno_status("cannot replace " + s.path + " with its re-keyed copy");
        ::unlink(temporary.c_str());
        auto registration = KeyRegistration::add(s.path, std::move(old_key), s.cipher);
        if (!registration) return registration.status();
        s.registration = std::move(*registration);
        TSUNAGU_TRY(open_connection(s));
        return failed;
    }
    s.generation = 2;
    s.cipher = new_cipher;
    s.recipe = recipe;
    s.kek = Secret::copy_of(kek.bytes());
    // From here the store is the re-keyed one: it is opened again whatever else fails, and a
    // failure says that the change was made (a caller told "failed" would go on offering the key
    // that no longer opens it).
    Status durable = sync_parent_dir(s.path);
    // Frames or records under the old key could never be read again: remove them, once the rename
    // is on disk (before it, the old store may still need them), and that too before the store is
    // written again: an old WAL a power cut brought back beside the new store would be recovered
    // under the new key, and refused.
    ::unlink((s.path + "-wal").c_str());
    ::unlink((s.path + "-shm").c_str());
    ::unlink((s.path + "-journal").c_str());
    if (durable) durable = sync_parent_dir(s.path);

    // Said as done: the new key is the only one that opens the store now.
    const auto reopen_failed = [&](const Status& why) {
        return Status(why.code(), "the key of " + s.path + " was changed, and only the new one opens it now, but it "
                                  "could not be opened again here (" + why.message() +
                                  "): close it and open it again with the new key");
    };
    auto registration = KeyRegistration::add(s.path, std::move(new_key), s.cipher);
    if (!registration) return reopen_failed(registration.status());
    s.registration = std::move(*registration);
    if (Status opened = open_connection(s); !opened) return reopen_failed(opened);
    if (!durable) {
        return Status(ErrorCode::io_error, "the key of " + s.path + " was changed and the new one opens it, but its "
                                           "folder could not be synced to disk (" + durable.message() +
                                           "): if the machine loses power before it next syncs, the old key may be "
                                           "the one that opens it");
    }
    return Status::ok();
}

}  // namespace

Status Store::change_key(const KeySource& new_key) {
    if (!is_sqlite()) return not_on_backend("change_key", path());
    StoreImpl& s = *impl_;
    KekRecipe recipe = KekRecipe::fresh_for(new_key);
    auto kek = derive_kek(new_key, recipe, s.path);
    if (!kek) return kek.status();
    const auto write = [&](const std::uint8_t* bytes, std::size_t size, std::uint64_t offset) {
        return write_through_base_vfs(s.path, s.options.base_vfs, bytes, size, offset);
    };
    std::uint64_t written = s.generation;
    const Status rewritten = rewrite_slots(write, recipe, *kek, s.registration.keys()->data_key, s.cipher, s.generation, written);
    if (written == s.generation) return rewritten;  // nothing written: the old key stays
    // The new key is in force from its first slot on: what this handle writes next wraps with it.
    s.generation = written;
    s.recipe = recipe;
    s.kek = std::move(*kek);
    if (!rewritten) {
        return Status(rewritten.code(), rewritten.message() + "; the new key is in force already (the old one no "
                                                              "longer opens " + s.path + "), but its second copy "
                                                              "was not written: change the key again to write both");
    }
    return Status::ok();
}

bool Store::prepared_statement_alive() const {
    std::set<sqlite3_stmt*> cached;
    for (const auto& entry : impl_->cache) {
        if (entry.second && entry.second->stmt_) cached.insert(entry.second->stmt_);
    }
    for (sqlite3_stmt* st = sqlite3_next_stmt(impl_->db, nullptr); st; st = sqlite3_next_stmt(impl_->db, st)) {
        if (!cached.contains(st)) return true;
    }
    return false;
}

Status Store::rekey() {
    if (!is_sqlite()) return not_on_backend("rekey", path());
    return replace_data_key(*this, *impl_, impl_->recipe, impl_->kek, prepared_statement_alive());
}

Status Store::rekey(const KeySource& new_key) {
    if (!is_sqlite()) return not_on_backend("rekey", path());
    KekRecipe recipe = KekRecipe::fresh_for(new_key);
    auto kek = derive_kek(new_key, recipe, impl_->path);
    if (!kek) return kek.status();
    return replace_data_key(*this, *impl_, recipe, *kek, prepared_statement_alive());
}

Status Store::backup_to(const std::string& target, const KeySource& key) {
    if (!is_sqlite()) return not_on_backend("backup_to", path());
    StoreImpl& s = *impl_;
    auto absolute = absolute_path(target);
    if (!absolute) return absolute.status();
    if (file_exists(*absolute)) {
        return Status(ErrorCode::already_exists,
                      "backup target " + *absolute + " already exists; choose a new name");
    }
    KekRecipe recipe = KekRecipe::fresh_for(key);
    auto kek = derive_kek(key, recipe, *absolute);
    if (!kek) return kek.status();
    // Written beside the target and renamed onto it once complete and on disk, so that a process
    // killed mid-copy leaves no file at `target` that looks like a backup (a stale partial copy of
    // an earlier attempt is replaced).
    const std::string partial = *absolute + ".partial";
    ::unlink(partial.c_str());
    // Sealed with the cipher every machine runs: a backup may be restored anywhere.
    TSUNAGU_TRY(copy_encrypted(s, partial, recipe, *kek, Secret::random(kDataKeyBytes),
                               PageCipher::xchacha20_poly1305));
    if (Status moved = move_into_place(partial, *absolute, "backup"); !moved) {
        ::unlink(partial.c_str());
        return moved;
    }
    return sync_parent_dir(*absolute);
}

Status Store::integrity_check() {
    if (!is_sqlite()) return not_on_backend("integrity_check", path());
    auto& check = cached("PRAGMA integrity_check");
    auto row = check.step();
    if (!row) return row.status();
    std::string verdict = *row ? std::string(check.column_text(0)) : "no answer";
    check.reset();
    if (verdict == "ok") return Status::ok();
    return Status(ErrorCode::corrupt, "integrity check of " + impl_->path + " failed: " + verdict);
}

namespace {

// Overwrites the key header of the file at `file` (if there is one) with random bytes, durably:
// without the wrapped data key no page can be decrypted, wherever copies of them survive.
Status scramble_key_header(const std::string& file) {
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return errno == ENOENT ? Status::ok() : errno_status("cannot open " + file + " to destroy it");
    Secret noise = Secret::random(kHeaderBytes);
    TSUNAGU_TRY(write_all_at(fd.get(), noise.data(), noise.size(), 0, file));
    return sync_fd(fd.get(), file);
}

}  // namespace

Status finish_destroying(const std::string& path) {
    bool removed = false;
    const std::string erasing = path + ".erasing";
    if (::access(erasing.c_str(), F_OK) == 0) {
        TSUNAGU_TRY(scramble_key_header(erasing));
        if (::unlink(erasing.c_str()) != 0 && errno != ENOENT) return errno_status("cannot remove " + erasing);
        removed = true;
    }
    // With no store under its name, the files named after it are a destroyed one's (a WAL left
    // there would be played into the next store made under the name).
    if (::access(path.c_str(), F_OK) != 0) {
        for (const char* suffix : {"-wal", "-shm", "-journal", ".rekey"}) {
            const std::string file = path + suffix;
            if (::unlink(file.c_str()) == 0) removed = true;
            else if (errno != ENOENT) return errno_status("cannot remove " + file);
        }
    }
    return removed ? sync_parent_dir(path) : Status::ok();
}

Status Store::destroy(const std::string& path) {
    ensure_sodium();
    auto absolute = absolute_path(path);
    if (!absolute) return Status::ok();  // no folder, so no store
    const std::string& p = *absolute;
    // Renamed first, durably: a destroy killed part way leaves no file under the store's name
    // whose header is noise (which every open would refuse as not a store), but one the next
    // open, or destroy, finishes erasing (finish_destroying).
    if (::rename(p.c_str(), (p + ".erasing").c_str()) != 0 && errno != ENOENT) {
        return errno_status("cannot rename " + p + " to destroy it");
    }
    TSUNAGU_TRY(sync_parent_dir(p));
    TSUNAGU_TRY(finish_destroying(p));
    remove_abandoned_builds(p);
    return sync_parent_dir(p);
}

}  // namespace tsunagu
