// Store: opening, connection rules, error mapping and transactions.
#include "crypto/store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "crypto/src/file_util.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/store_impl.h"

namespace tsunagu {

using namespace crypto_detail;

void StoreImpl::close_connection() noexcept {
    cache.clear();
    if (db) sqlite3_close_v2(db);
    db = nullptr;
    registration.release();
}

Status StoreImpl::error(int rc) const { return error(rc, ""); }

Status StoreImpl::error(int rc, const std::string& doing) const {
    const std::string context = doing.empty() ? "" : " while " + doing;
    FileKeys* keys = registration.keys();
    if (keys && (rc == SQLITE_IOERR_DATA || rc == SQLITE_CORRUPT || rc == SQLITE_IOERR) &&
        keys->corrupt_kind.load() != 0) {
        const auto kind = static_cast<FileKind>(keys->corrupt_kind.exchange(0));
        const auto part = static_cast<CorruptPart>(keys->corrupt_part.exchange(0));
        const std::string file = kind == FileKind::wal ? path + "-wal"
                                 : kind == FileKind::journal ? path + "-journal"
                                                             : path;
        const std::string page = std::to_string(keys->corrupt_page.load());
        const std::string what =
            part == CorruptPart::wal_header
                ? "corrupt header of " + file + context +
                      ": it fails its checksum, yet committed frames follow it (damaged or tampered)"
            : part == CorruptPart::frame_header
                ? "corrupt frame header (page " + page + ") in " + file + context +
                      ": its salts or checksum no longer follow the frames before it, yet later commits "
                      "follow it (damaged or tampered)"
                : "corrupt page " + page + " in " + file + context +
                      ": it fails authentication (damaged or tampered)";
        return Status(ErrorCode::corrupt, what + "; restore the store from a backup");
    }
    if (keys && keys->bad_layout.exchange(false)) {
        return Status(ErrorCode::internal,
                      "refused to write " + path +
                          ": page 1 lacks the 4096-byte page size and 40 reserved bytes that "
                          "encryption needs (they must be set before the first write)");
    }
    const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return Status(ErrorCode::corrupt, "corrupt store " + path + context + ": " + message +
                                                  " (truncated or damaged; restore from a backup)");
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return Status(ErrorCode::busy, "store " + path + " is busy" + context +
                                               " (another connection holds the lock); retry");
        case SQLITE_CONSTRAINT:
            return Status(ErrorCode::constraint, std::string(message) + context);
        case SQLITE_FULL:
            return Status(ErrorCode::storage_full, "disk full writing " + path + context +
                                                       ": this change was not written (what was saved "
                                                       "before is intact); free space and retry");
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PROTOCOL:
            return Status(ErrorCode::io_error,
                          "I/O error on " + path + context + ": " + message);
        default:
            return Status(ErrorCode::internal, "SQLite error on " + path + context + ": " + message);
    }
}

PageCipher cipher_for_new_pages(const StoreOptions& options) {
    return options.portable_cipher ? PageCipher::xchacha20_poly1305 : fastest_page_cipher();
}

Status create_store_file(const std::string& path, const KekRecipe& recipe, const Secret& kek,
                         const Secret& data_key, PageCipher cipher) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return errno_status("cannot create store " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return errno_status("cannot stat " + path);
    if (st.st_size != 0) {
        return Status(ErrorCode::already_exists, "refusing to create store " + path +
                                                     ": the file already has content");
    }
    TSUNAGU_TRY(write_new_header(fd.get(), recipe, kek, data_key, cipher, path));
    return sync_parent_dir(path);
}

// A creation still building when the store appeared fails its link, harmlessly, having written
// nothing of its caller's. The single ".new" name older versions built under goes too.
void remove_abandoned_builds(const std::string& path) {
    ::unlink((path + ".new").c_str());
    const std::filesystem::path store(path);
    const std::string prefix = store.filename().string() + ".new.";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(store.parent_path(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) == 0) ::unlink(entry.path().c_str());
    }
}

Status create_initialised_store(const StoreImpl& s, const Secret& data_key) {
    // A name of this creation's own: two processes creating one store at once must each build in
    // a file nobody else unlinks or replaces (with one shared name, one opened the other's file
    // and sealed its pages under a data key that file's header does not hold: all lost).
    unsigned char nonce[8];
    randombytes_buf(nonce, sizeof nonce);
    char hex[2 * sizeof nonce + 1];
    sodium_bin2hex(hex, sizeof hex, nonce, sizeof nonce);
    const std::string building = s.path + ".new." + hex;
    TSUNAGU_TRY(create_store_file(building, s.recipe, s.kek, data_key, s.cipher));
    Status built = [&]() -> Status {
        StoreImpl fresh;
        fresh.path = building;
        fresh.options = s.options;
        fresh.vfs_name = s.vfs_name;
        auto registration =
            KeyRegistration::add(building, Secret::copy_of(data_key.bytes()), s.cipher);
        if (!registration) return registration.status();
        fresh.registration = std::move(*registration);
        return open_connection(fresh);  // writes page 1; closing makes the main file complete
    }();
    // link, not rename: a store another process created meanwhile is never replaced. (ENOENT:
    // that process's open removed this build, taking it for a crash's leftover.)
    if (built.is_ok() && ::link(building.c_str(), s.path.c_str()) != 0) {
        built = errno == EEXIST || errno == ENOENT ? Status(ErrorCode::busy, "store " + s.path +
                                                                               " was created by another process "
                                                                               "meanwhile; open it again")
                                                   : errno_status("cannot create store " + s.path);
    }
    ::unlink(building.c_str());
    TSUNAGU_TRY(built);
    return sync_parent_dir(s.path);
}

namespace {

Result<std::string> pragma_text(StoreImpl& s, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(s.db, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return s.error(rc, "reading settings");
    rc = sqlite3_step(stmt);
    std::string value;
    if (rc == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(stmt, 0);
        value = text ? reinterpret_cast<const char*>(text) : "";
        rc = SQLITE_DONE;
    }
    int final_rc = sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return s.error(rc, "reading settings");
    if (final_rc != SQLITE_OK) return s.error(final_rc, "reading settings");
    return value;
}

Status exec_raw(StoreImpl& s, const char* sql, const char* doing) {
    int rc = sqlite3_exec(s.db, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::ok() : s.error(rc, doing);
}

}  // namespace

Status open_connection(StoreImpl& s) {
    int rc = sqlite3_open_v2(s.path.c_str(), &s.db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE,
                             s.vfs_name.c_str());
    if (rc != SQLITE_OK) {
        Status status = s.error(rc, "opening");
        s.close_connection();
        return status;
    }
    sqlite3_extended_result_codes(s.db, 1);
    sqlite3_db_config(s.db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(s.db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    sqlite3_db_config(s.db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
    sqlite3_busy_timeout(s.db, s.options.busy_timeout_ms);
    // Sorts, temp tables and VACUUM must never spill plaintext; the VFS also refuses temp files.
    // Deleted content is overwritten with zeros (secure_delete): a client evicted from a worker's
    // caseload leaves nothing in the replica's free space for whoever knows its passphrase to dig
    // out. Debian's SQLite is built that way; the SQLite a phone's app bundles usually is not.
    TSUNAGU_TRY(exec_raw(s,
                         "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; PRAGMA cell_size_check=ON; "
                         "PRAGMA secure_delete=ON;",
                         "configuring"));

    auto pages = pragma_text(s, "PRAGMA page_count");  // reads and authenticates page 1
    if (!pages) return pages.status();
    if (std::stoll(*pages) == 0) {
        // A new store: fix the page layout before anything is written.
        TSUNAGU_TRY(exec_raw(s, "PRAGMA page_size=4096", "setting the page size"));
        int reserve = static_cast<int>(kReservedBytes);
        sqlite3_file_control(s.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
        // Writing the application id makes page 1 exist, with the fixed layout, at once.
        TSUNAGU_TRY(exec_raw(s, "PRAGMA application_id=1414745671", "initialising"));  // 'TSNG'
    } else {
        auto page_size = pragma_text(s, "PRAGMA page_size");
        if (!page_size) return page_size.status();
        int reserve = -1;
        sqlite3_file_control(s.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
        if (std::stoll(*page_size) != static_cast<long long>(kPageSize) ||
            reserve != static_cast<int>(kReservedBytes)) {
            return Status(ErrorCode::corrupt, "store " + s.path + " has page size " + *page_size +
                                                  " and " + std::to_string(reserve) +
                                                  " reserved bytes; an encrypted store needs 4096 "
                                                  "and 40");
        }
    }
    const char* mode = s.options.journal_mode == JournalMode::wal ? "wal" : "delete";
    auto set_mode = pragma_text(s, s.options.journal_mode == JournalMode::wal
                                       ? "PRAGMA journal_mode=WAL"
                                       : "PRAGMA journal_mode=DELETE");
    if (!set_mode) return set_mode.status();
    if (*set_mode != mode) {
        return Status(ErrorCode::io_error, "cannot switch " + s.path + " to journal mode " + mode +
                                               " (got " + *set_mode + ")");
    }
    // A transaction that reported commit survives a crash or power cut: field work that was saved
    // must never vanish; the cost is one fsync per commit. In WAL mode FULL does it. In rollback
    // mode the commit is the journal's deletion, which FULL does not make durable (the folder is
    // not synced): after a power cut the journal could come back, be taken as hot and undo the
    // commit. EXTRA syncs the folder too.
    return exec_raw(s,
                    s.options.journal_mode == JournalMode::wal ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=EXTRA",
                    "configuring");
}

Result<BaseVfsFile> BaseVfsFile::open(const std::string& path, const std::string& vfs_name, int flags) {
    sqlite3_vfs* vfs = sqlite3_vfs_find(vfs_name.empty() ? nullptr : vfs_name.c_str());
    if (!vfs) return Status(ErrorCode::invalid_argument, "no SQLite VFS named \"" + vfs_name + "\"");
    BaseVfsFile file(static_cast<std::size_t>(vfs->szOsFile));
    int out_flags = 0;
    const int opened = vfs->xOpen(vfs, path.c_str(), file.get(), SQLITE_OPEN_MAIN_DB | flags, &out_flags);
    if (opened != SQLITE_OK) {
        return Status(ErrorCode::io_error, "cannot open store " + path + " (SQLite I/O error " +
                                               std::to_string(opened) + "); check that it exists and is " +
                                               ((flags & SQLITE_OPEN_READWRITE) ? "writable" : "readable"));
    }
    return file;
}

BaseVfsFile::~BaseVfsFile() {
    if (!memory_.empty() && get()->pMethods) get()->pMethods->xClose(get());
}

Result<std::vector<std::uint8_t>> read_key_header_bytes(const std::string& path, const std::string& vfs_name) {
    auto file = BaseVfsFile::open(path, vfs_name, SQLITE_OPEN_READONLY);
    if (!file) return file.status();
    sqlite3_file* f = file->get();
    std::vector<std::uint8_t> bytes(kHeaderBytes);
    sqlite3_int64 size = 0;
    int read = f->pMethods->xFileSize(f, &size);
    if (read == SQLITE_OK) {
        bytes.resize(static_cast<std::size_t>(std::min<sqlite3_int64>(size, static_cast<sqlite3_int64>(kHeaderBytes))));
        read = bytes.empty() ? SQLITE_OK : f->pMethods->xRead(f, bytes.data(), static_cast<int>(bytes.size()), 0);
    }
    if (read != SQLITE_OK) {
        return Status(ErrorCode::io_error, "cannot read the key header of store " + path + " (SQLite I/O error " +
                                               std::to_string(read) + ")");
    }
    return bytes;
}

Result<Store> Store::open(const std::string& path, const KeySource& key, const StoreOptions& options) {
    ensure_sodium();
    auto absolute = absolute_path(path);
    if (!absolute) return absolute.status();
    auto vfs = encrypting_vfs_over(options.base_vfs);
    if (!vfs) return vfs.status();

    auto impl = std::make_unique<StoreImpl>();
    impl->path = *absolute;
    impl->options = options;
    impl->vfs_name = *vfs;
    const std::string& p = impl->path;

    // The store's own file may not be a symbolic link: SQLite would open the target under its
    // name, not the one the key is registered under, and a re-key, restore or erasure would
    // replace or remove the link, not the store.
    if (struct stat link; ::lstat(p.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
        std::error_code ec;
        const std::string target = std::filesystem::read_symlink(p, ec).string();
        return Status(ErrorCode::invalid_argument,
                      "store " + p + " is a symbolic link" + (ec ? std::string() : " to " + target) +
                          ", which is refused (a re-key, restore or erasure would replace the link, not the "
                          "store): open the file it points to");
    }

    // A re-key that crashed before its rename leaves a partial copy: the original is intact.
    ::unlink((p + ".rekey").c_str());
    // A destroy killed part way leaves the store renamed away, to be erased.
    TSUNAGU_TRY(finish_destroying(p));

    struct stat st;
    const bool exists = ::stat(p.c_str(), &st) == 0;
    Secret data_key;
    if (!exists) {
        if (!options.create_if_missing) {
            return Status(ErrorCode::not_found, "no store at " + p + "; create it first");
        }
        impl->recipe = KekRecipe::fresh_for(key);
        impl->cipher = cipher_for_new_pages(options);
        auto kek = derive_kek(key, impl->recipe, p);
        if (!kek) return kek.status();
        impl->kek = std::move(*kek);
        data_key = Secret::random(kDataKeyBytes);
        TSUNAGU_TRY(create_initialised_store(*impl, data_key));
        impl->generation = 2;
    } else {
        // A creation that crashed after (or before) its link leaves its temporary name behind.
        remove_abandoned_builds(p);
        auto header_bytes = read_key_header_bytes(p, options.base_vfs);
        if (!header_bytes) return header_bytes.status();
        auto header = open_key_header(std::move(*header_bytes), key, p);
        if (!header) return header.status();
        const auto body = static_cast<std::uint64_t>(st.st_size) - kHeaderBytes;
        if (body == 0) {
            return Status(ErrorCode::corrupt, "corrupt store " + p +
                                                  ": truncated to its key header, no page is "
                                                  "left; restore from a backup");
        }
        if (body % kPageSize != 0) {
            return Status(ErrorCode::corrupt,
                          "corrupt store " + p + ": truncated inside page " +
                              std::to_string(body / kPageSize + 1) + "; restore from a backup");
        }
        impl->recipe = header->slot.recipe;
        impl->cipher = header->slot.cipher;
        impl->kek = std::move(header->kek);
        impl->generation = header->slot.generation;
        data_key = std::move(header->data_key);
    }

    auto registration = KeyRegistration::add(p, std::move(data_key), impl->cipher);
    if (!registration) return registration.status();
    impl->registration = std::move(*registration);
    TSUNAGU_TRY(open_connection(*impl));
    return Store(std::move(impl));
}

Store::Store(std::unique_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

void Store::close() noexcept { impl_.reset(); }

Status Store::close_folded() {
    if (!impl_ || impl_->backend) {
        close();
        return Status::ok();
    }
    const std::string wal = impl_->path + "-wal";
    const std::string path = impl_->path;
    close();
    std::error_code ec;
    const auto size = std::filesystem::file_size(wal, ec);
    if (ec == std::errc::no_such_file_or_directory || (!ec && size == 0)) {
        return Status::ok();  // none left (or an empty one, which holds nothing)
    }
    if (ec) {
        return Status(ErrorCode::io_error, "cannot tell whether " + wal + " still holds commits (" + ec.message() +
                                               "): make it readable, and try again");
    }
    return Status(ErrorCode::io_error,
                  "the write-ahead log " + wal + " was not folded into " + path +
                      " when it closed (another process has it open, or the disk is full): the file alone lacks "
                      "its latest commits; stop what else uses it, or free some space, and try again");
}

Store Store::over(std::unique_ptr<StoreBackend> backend) {
    auto impl = std::make_unique<StoreImpl>();
    impl->path = backend->describe();
    impl->backend = std::move(backend);
    return Store(std::move(impl));
}

bool Store::is_sqlite() const noexcept { return impl_->backend == nullptr; }
const std::string& Store::path() const noexcept { return impl_->path; }
JournalMode Store::journal_mode() const noexcept { return impl_->options.journal_mode; }

const char* Store::page_cipher() const noexcept {
    return is_sqlite() ? page_cipher_name(impl_->cipher) : "";
}
sqlite3* Store::handle() const noexcept { return impl_->db; }

Status Store::exec(std::string_view sql) {
    if (impl_->backend) return impl_->backend->exec(sql);
    std::string text(sql);
    int rc = sqlite3_exec(impl_->db, text.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::ok() : impl_->error(rc);
}

Result<Statement> Store::prepare(std::string_view sql) {
    if (impl_->backend) {
        auto statement = impl_->backend->prepare(sql);
        TSUNAGU_TRY(statement);
        return Statement(std::move(*statement));
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(impl_->db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return impl_->error(rc, "preparing a statement");
    return Statement(impl_.get(), stmt, Status::ok());
}

Statement& Store::cached(std::string_view sql) {
    auto it = impl_->cache.find(sql);
    // A statement that failed to prepare (a table not made yet) is prepared again when asked for
    // again, in place: the failure is not kept for the connection's life.
    if (it == impl_->cache.end() || !it->second->error_.is_ok()) {
        auto prepared = prepare(sql);
        Statement statement = prepared ? std::move(*prepared) : Statement(impl_.get(), nullptr, prepared.status());
        if (it == impl_->cache.end()) {
            it = impl_->cache.emplace(std::string(sql), std::make_unique<Statement>(std::move(statement))).first;
        } else {
            *it->second = std::move(statement);
        }
    }
    it->second->reset();
    return *it->second;
}

Status Store::begin_immediate() {
    return impl_->backend ? impl_->backend->begin_immediate() : exec("BEGIN IMMEDIATE");
}
Status Store::begin_deferred() {
    return impl_->backend ? impl_->backend->begin_deferred() : exec("BEGIN DEFERRED");
}
Status Store::commit() { return impl_->backend ? impl_->backend->commit() : exec("COMMIT"); }
Status Store::rollback() {
    if (impl_->backend) return impl_->backend->rollback();
    if (!in_transaction()) return Status::ok();
    return exec("ROLLBACK");
}
bool Store::healthy() const { return !impl_->backend || impl_->backend->healthy(); }
bool Store::in_transaction() const {
    return impl_->backend ? impl_->backend->in_transaction() : sqlite3_get_autocommit(impl_->db) == 0;
}

Result<std::int64_t> Store::data_version() {
    Statement& pragma = cached("PRAGMA data_version");
    auto row = pragma.step();
    TSUNAGU_TRY(row);
    if (!*row) return Status(ErrorCode::internal, "PRAGMA data_version answered nothing on " + path());
    const std::int64_t version = pragma.column_int(0);
    pragma.reset();
    return version;
}

std::int64_t Store::last_insert_rowid() const {
    return impl_->backend ? impl_->backend->last_insert_rowid() : sqlite3_last_insert_rowid(impl_->db);
}
int Store::changes() const {
    return impl_->backend ? impl_->backend->changes() : sqlite3_changes(impl_->db);
}

Status with_transaction(Store& store, const std::function<Status()>& body) {
    if (store.in_transaction()) {
        // Nested: a savepoint inside the caller's transaction, so a caller can make several
        // steps (e.g. a sync push and its audit entry) one atomic commit.
        TSUNAGU_TRY(store.exec("SAVEPOINT tsunagu_nested"));
        Status outcome;
        try {
            outcome = body();
        } catch (...) {
            (void)store.exec("ROLLBACK TO tsunagu_nested; RELEASE tsunagu_nested");
            throw;
        }
        if (!outcome.is_ok()) {
            (void)store.exec("ROLLBACK TO tsunagu_nested; RELEASE tsunagu_nested");
            return outcome;
        }
        return store.exec("RELEASE tsunagu_nested");
    }
    TSUNAGU_TRY(store.begin_immediate());
    Status outcome;
    try {
        outcome = body();
    } catch (...) {
        (void)store.rollback();
        throw;
    }
    if (!outcome.is_ok()) {
        (void)store.rollback();
        return outcome;
    }
    Status committed = store.commit();
    if (!committed.is_ok()) (void)store.rollback();
    return committed;
}

}  // namespace tsunagu
