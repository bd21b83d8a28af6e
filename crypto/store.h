// The encrypted SQLite store: the one place in Tsunagu that touches sqlite3* directly.
//
// Every page of the database file, its WAL and its rollback journal is encrypted on its way to
// disk by an SQLite VFS shim (AES-256-GCM under per-page subkeys, or XChaCha20-Poly1305: see
// StoreOptions::portable_cipher; random nonce and tag in the page's reserved bytes, page number
// bound as associated data). The random 256-bit data key lives wrapped in a
// key header at the front of the database file, under a key-encryption key that comes from a
// KeySource: a passphrase (Argon2id), a 32-byte key file, or 32 bytes from the app (Android
// Keystore, iOS Keychain).
//
// Thread safety: a Store is one SQLite connection; use it from one thread at a time. Several
// Stores may open the same file (in one or several processes); SQLite's locking coordinates them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "crypto/secret.h"
#include "crypto/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tsunagu {

struct StoreImpl;

// Argon2id cost, recorded beside the wrapped key so the store opens with the cost it was made with.
struct KdfParams {
    std::uint64_t ops_limit = 0;
    std::size_t mem_limit = 0;

    // Fit for a mid-range phone: about half a second, 64 MiB (libsodium's "interactive" limits
    // are the floor; this is one step harder).
    static KdfParams phone();
    // The cheapest cost libsodium accepts: for tests only, never for real stores.
    static KdfParams fast_for_tests();
};

// Where the key-encryption key comes from. Move-only: it owns secret material.
class KeySource {
public:
    enum class Kind { passphrase, raw_key };

    // A passphrase typed by the worker; the key-encryption key is derived with Argon2id.
    static KeySource passphrase(std::string_view passphrase, KdfParams params = KdfParams::phone());
    // A 32-byte key file (servers). Refuses a file of another size or readable by group/others.
    static Result<KeySource> key_file(const std::string& path);
    // 32 bytes handed in by the app, e.g. unwrapped by the Android Keystore or iOS Keychain.
    static Result<KeySource> raw_key(std::span<const std::uint8_t> key);

    Kind kind() const noexcept { return kind_; }
    const KdfParams& kdf_params() const noexcept { return params_; }
    const Secret& material() const noexcept { return material_; }

private:
    KeySource(Kind kind, Secret material, KdfParams params)
        : kind_(kind), material_(std::move(material)), params_(params) {}
    Kind kind_;
    Secret material_;
    KdfParams params_;
};

// Creates a key file of 32 random bytes with mode 0600. Refuses to overwrite an existing file.
Status create_key_file(const std::string& path);
// Writes `key` (32 bytes: a key file's, e.g. KeySource::key_file(...).material()) as a new key file
// at `path`, mode 0600: written and synced under a temporary name, then linked into place, so that
// a process killed at any point leaves `path` absent or whole. Refuses to overwrite an existing file.
Status write_key_file(const std::string& path, const Secret& key);

enum class JournalMode { wal, rollback };

struct StoreOptions {
    JournalMode journal_mode = JournalMode::wal;
    // Create the store (with a fresh data key) when the file does not exist.
    bool create_if_missing = true;
    // Name of an already registered SQLite VFS to encrypt on top of ("" = the platform default).
    // Tests layer a fault-injecting VFS here.
    std::string base_vfs;
    int busy_timeout_ms = 5000;
    // A new store's pages are sealed with the fastest cipher this machine runs: AES-256-GCM on
    // x86-64 CPUs with AES-NI, XChaCha20-Poly1305 elsewhere (phones). Set this to seal them with
    // XChaCha20-Poly1305 anyway, so that the file opens on any machine. An existing store keeps
    // the cipher its key header records; backups always take XChaCha20-Poly1305.
    bool portable_cipher = false;
};

class Store;

// Another database behind the Store API: the server's PostgreSQL storage (pg/pg_store.h) runs the
// engine's and the server's SQL through it unchanged. A backend translates the SQL it is given
// into its own dialect and seals record contents itself; Store and Statement only forward to it.
class StatementBackend {
public:
    virtual ~StatementBackend() = default;
    // Bind failures are remembered and reported by step(), as for SQLite.
    virtual void bind_int(int index, std::int64_t value) = 0;
    virtual void bind_double(int index, double value) = 0;
    virtual void bind_text(int index, std::string_view text) = 0;
    virtual void bind_blob(int index, std::span<const std::uint8_t> bytes) = 0;
    virtual void bind_null(int index) = 0;
    virtual int parameter_index(const char* name) const = 0;
    virtual Result<bool> step() = 0;
    virtual void reset() = 0;
    virtual int column_count() const = 0;
    virtual bool column_is_null(int column) const = 0;
    virtual std::int64_t column_int(int column) const = 0;
    virtual double column_double(int column) const = 0;
    virtual std::string_view column_text(int column) const = 0;
    virtual std::span<const std::uint8_t> column_blob(int column) const = 0;
};

class StoreBackend {
public:
    virtual ~StoreBackend() = default;
    virtual Status exec(std::string_view sql) = 0;
    virtual Result<std::unique_ptr<StatementBackend>> prepare(std::string_view sql) = 0;
    virtual Status begin_immediate() = 0;
    virtual Status begin_deferred() = 0;
    virtual Status commit() = 0;
    virtual Status rollback() = 0;
    virtual bool in_transaction() const = 0;
    virtual std::int64_t last_insert_rowid() const = 0;
    virtual int changes() const = 0;
    // What Store::path() answers: where the data is, without any password.
    virtual const std::string& describe() const = 0;
    // Whether the connection can still be used: false once it was lost (the database server went
    // away or ended the session); its owner then opens another.
    virtual bool healthy() const { return true; }
};

// A prepared statement. Bind errors are remembered and reported by the next step().
// Columns and parameters are 0-based for columns, 1-based for parameters (as in SQLite).
class Statement {
public:
    Statement() = default;
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement();

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);  // copied by SQLite
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind_blob(int index, std::span<const std::uint8_t> bytes);
    Statement& bind_null(int index);
    // Binds the index of a named parameter (":name"); -1 when absent.
    int parameter_index(const char* name) const;

    // Advances: true when a row is available, false when the statement is done.
    Result<bool> step();
    // Steps until done, ignoring rows; then resets the statement for reuse.
    Status run();
    // Clears bindings and rewinds, ready for the next use.
    void reset();

    int column_count() const;
    bool column_is_null(int column) const;
    std::int64_t column_int(int column) const;
    double column_double(int column) const;
    std::string_view column_text(int column) const;  // valid until the next step/reset
    std::span<const std::uint8_t> column_blob(int column) const;

private:
    friend class Store;
    Statement(const StoreImpl* store, sqlite3_stmt* stmt, Status error);
    explicit Statement(std::unique_ptr<StatementBackend> backend);
    const StoreImpl* store_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
    Status error_;
    std::unique_ptr<StatementBackend> backend_;  // set for a Store over a StoreBackend
};

// An open encrypted store. Move-only; closing is destruction (or close()).
class Store {
public:
    // Opens (or creates, per options) the store at `path`. Fails with wrong_key when the key does
    // not unwrap the data key (the file is not modified), not_a_store for a file that is not an
    // encrypted Tsunagu store, corrupt for a damaged header or page.
    static Result<Store> open(const std::string& path, const KeySource& key,
                              const StoreOptions& options = {});
    // Overwrites the key header with random bytes, then removes the database, WAL, shared-memory
    // and journal files: after this nothing on disk can be decrypted, even if blocks survive. The
    // database is first renamed to `path`.erasing: killed part way, it leaves nothing under the
    // store's name, and the next open (which makes a new store there) or destroy finishes the job.
    static Status destroy(const std::string& path);
    // A Store over another database (see StoreBackend). Key changes, re-keying, backups and the
    // integrity check belong to that database's own tools: they answer invalid_argument here.
    static Store over(std::unique_ptr<StoreBackend> backend);

    Store(Store&& other) noexcept;
    Store& operator=(Store&& other) noexcept;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store();
    void close() noexcept;
    // Closes the store as close() does, and answers whether its database file now holds every
    // commit on its own: io_error when the WAL is left with frames in it (another connection has
    // the file open, or the checkpoint failed, e.g. on a full disk). For a file about to be moved
    // or copied without its WAL (a restore or salvage putting it into place).
    Status close_folded();

    // Runs one or more statements that return no rows.
    Status exec(std::string_view sql);
    // A fresh prepared statement owned by the caller.
    Result<Statement> prepare(std::string_view sql);
    // A prepared statement kept by the store for reuse, reset and with bindings cleared.
    // A prepare failure is reported by the statement's first step(). Valid until close().
    Statement& cached(std::string_view sql);

    // Transactions. `begin_immediate` takes the write lock at once (use it for read-modify-write).
    Status begin_immediate();
    Status begin_deferred();
    Status commit();
    Status rollback();
    bool in_transaction() const;
    // Whether this Store can still be used: false once a backend's connection was lost (see
    // StoreBackend::healthy), when its owner should drop it and open another. An SQLite file
    // store always can.
    bool healthy() const;

    std::int64_t last_insert_rowid() const;
    int changes() const;
    // PRAGMA data_version (SQLite stores): a number that changes when another connection commits
    // to the store, and only then.
    Result<std::int64_t> data_version();

    // Rewraps the data key under a new key source; the database pages are not rewritten.
    // Afterwards the old key no longer opens the store, but the data key is the same: whoever
    // kept the old key and a copy of the old key header reads all the store ever holds. To shut
    // them out of what is written afterwards, use rekey(new_key).
    Status change_key(const KeySource& new_key);
    // Replaces the data key: the whole database is re-encrypted into a new file which then
    // atomically replaces the old one. A crash at any point leaves either the old or the new
    // store, complete. The key source stays the same.
    Status rekey();
    // Replaces the data key and the key source at once: as rekey(), the new file's key header
    // wrapping the new data key under `new_key`. A crash at any point leaves either the old store
    // under the old key or the new store under `new_key`, complete. Afterwards neither the old
    // key nor any copy of the old key header opens a page of the store. Needs room for a second
    // copy of the database beside it; not inside a transaction.
    Status rekey(const KeySource& new_key);
    // Writes a consistent, encrypted copy to `target` (which must not exist) under `key`, with
    // its own fresh data key (VACUUM INTO through the encrypting VFS; never plaintext), sealed
    // with XChaCha20-Poly1305 so that it can be restored on any machine. The copy is made as
    // `target`.partial and renamed once durable: `target` appears complete or not at all, even if
    // the process is killed. Other connections, in this process or others, go on meanwhile.
    Status backup_to(const std::string& target, const KeySource& key);
    // PRAGMA integrity_check; ok or corrupt with SQLite's first complaint.
    Status integrity_check();

    const std::string& path() const noexcept;
    JournalMode journal_mode() const noexcept;
    // The cipher sealing this store's pages: "AES-256-GCM" or "XChaCha20-Poly1305" ("" for a
    // Store over another backend, which seals record contents its own way).
    const char* page_cipher() const noexcept;
    // The raw handle, for the few SQLite calls this API does not wrap (e.g. session extension);
    // null for a Store over another backend.
    sqlite3* handle() const noexcept;
    // Whether this Store is an encrypted SQLite file (false: over a StoreBackend).
    bool is_sqlite() const noexcept;

private:
    explicit Store(std::unique_ptr<StoreImpl> impl);
    // Whether a statement prepared outside the cache (prepare()) is alive on the connection.
    bool prepared_statement_alive() const;
    std::unique_ptr<StoreImpl> impl_;
};

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back when body fails or throws. Called
// inside a transaction already, it runs `body` in a savepoint of that transaction instead, so the
// outer caller's COMMIT (or rollback) decides for both.
Status with_transaction(Store& store, const std::function<Status()>& body);

// Steps `statement` to its end, calling `row(statement)` for each row; `row` returns nothing or a
// Status (a failure stops the walk and is returned). The statement is reset either way, so a
// cached statement never stays mid-walk (holding its read) after an early return.
template <typename Row>
Status each_row(Statement& statement, Row&& row) {
    Status outcome;
    while (true) {
        auto more = statement.step();
        if (!more) {
            outcome = more.status();
            break;
        }
        if (!*more) break;
        if constexpr (std::is_void_v<std::invoke_result_t<Row&, const Statement&>>) {
            row(static_cast<const Statement&>(statement));
        } else {
            outcome = row(static_cast<const Statement&>(statement));
            if (!outcome) break;
        }
    }
    statement.reset();
    return outcome;
}

}  // namespace tsunagu
