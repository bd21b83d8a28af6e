// I/O faults under the encrypting VFS: whichever read, write or sync the operating system refuses,
// the store reports an I/O error (never corruption), and after reopening it is intact and holds
// exactly the transactions that reported commit.
//
// A fault-injecting VFS ("faulty", over "unix") sits below the encrypting one: it counts every
// read, write and sync of every file (main, WAL, journal) and fails the Nth one of a chosen kind.
// The workload is run for N = 1, 2, 3, ... until it completes without meeting the fault.
//
// With synchronous=FULL a COMMIT that reports an error is rolled back, and here always absent
// after reopening. One case would be undecidable if the process died at once: in WAL mode, a
// failed fsync after the commit frame was written leaves a complete, checksummed transaction in
// the WAL that SQLite did not index; recovery after a crash would find it (present though
// reported failed; the disk may or may not hold it, SQLite cannot know). Without a crash, the
// next transaction overwrites those frames or the close checkpoints only indexed frames and
// deletes the WAL, so this test can demand exactness.
#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "crypto/store.h"
#include "support/temp_dir.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using namespace tsunagu::testing;

namespace {

// ---- the fault-injecting VFS -------------------------------------------------------------------

enum class Operation { read = 0, write = 1, sync = 2 };

const char* operation_name(Operation op) {
    switch (op) {
        case Operation::read:
            return "read";
        case Operation::write:
            return "write";
        case Operation::sync:
            return "sync";
    }
    return "?";
}

// What the VFS does: count while armed, and fail exactly one operation (the fail_at-th of
// `kind`). Tests run on one thread; SQLite calls the VFS on the caller's thread.
struct FaultPlan {
    bool armed = false;
    Operation kind = Operation::read;
    int fail_at = 0;
    int counts[3] = {0, 0, 0};
    bool fired = false;
    std::string phase;     // what the workload is doing, set by it
    std::string fired_in;  // the phase during which the fault struck
    int write_error = SQLITE_IOERR_WRITE;  // what a failed write answers (SQLITE_FULL: a full disk)

    void arm(Operation op, int n, int write_failure = SQLITE_IOERR_WRITE) {
        *this = FaultPlan{true, op, n, {0, 0, 0}, false, "", "", write_failure};
    }
    void disarm() { armed = false; }
    // True when this operation must fail.
    bool strikes(Operation op) {
        if (!armed) return false;
        const int count = ++counts[static_cast<int>(op)];
        if (fired || op != kind || count != fail_at) return false;
        fired = true;
        fired_in = phase;
        return true;
    }
};

FaultPlan& plan() {
    static FaultPlan p;
    return p;
}

struct FaultyFile {
    sqlite3_file base;
    sqlite3_file* real;  // the unix file, in the memory just after this struct
};

sqlite3_file* real_of(sqlite3_file* f) {
    return reinterpret_cast<FaultyFile*>(f)->real;
}

int faulty_close(sqlite3_file* f) {
    return real_of(f)->pMethods->xClose(real_of(f));
}
int faulty_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
    if (plan().strikes(Operation::read)) return SQLITE_IOERR_READ;
    return real_of(f)->pMethods->xRead(real_of(f), out, amount, offset);
}
int faulty_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
    if (plan().strikes(Operation::write)) return plan().write_error;
    return real_of(f)->pMethods->xWrite(real_of(f), in, amount, offset);
}
int faulty_sync(sqlite3_file* f, int flags) {
    if (plan().strikes(Operation::sync)) return SQLITE_IOERR_FSYNC;
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int faulty_truncate(sqlite3_file* f, sqlite3_int64 size) {
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int faulty_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int faulty_lock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xLock(real_of(f), level);
}
int faulty_unlock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
int faulty_check_reserved_lock(sqlite3_file* f, int* out) {
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int faulty_file_control(sqlite3_file* f, int op, void* arg) {
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int faulty_sector_size(sqlite3_file* f) {
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
int faulty_device_characteristics(sqlite3_file* f) {
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int faulty_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int faulty_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void faulty_shm_barrier(sqlite3_file* f) {
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
int faulty_shm_unmap(sqlite3_file* f, int delete_flag) {
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

const sqlite3_io_methods kFaultyMethods = {
    2,
    faulty_close,
    faulty_read,
    faulty_write,
    faulty_truncate,
    faulty_sync,
    faulty_file_size,
    faulty_lock,
    faulty_unlock,
    faulty_check_reserved_lock,
    faulty_file_control,
    faulty_sector_size,
    faulty_device_characteristics,
    faulty_shm_map,
    faulty_shm_lock,
    faulty_shm_barrier,
    faulty_shm_unmap,
    nullptr,
    nullptr,
};

constexpr int kRealOffset = (sizeof(FaultyFile) + 15) & ~15;

sqlite3_vfs* unix_vfs() {
    return sqlite3_vfs_find("unix");
}

int faulty_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    auto* faulty = reinterpret_cast<FaultyFile*>(file);
    faulty->base.pMethods = nullptr;
    faulty->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
    std::memset(faulty->real, 0, static_cast<std::size_t>(unix_vfs()->szOsFile));
    const int rc = unix_vfs()->xOpen(unix_vfs(), name, faulty->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (faulty->real->pMethods) faulty->real->pMethods->xClose(faulty->real);
        return rc;
    }
    faulty->base.pMethods = &kFaultyMethods;
    return SQLITE_OK;
}

// Registers "faulty" (once): the unix VFS with faulty files.
const char* faulty_vfs_name() { return unix_vfs_opening_with("faulty", faulty_open, kRealOffset); }

// ---- the workload ------------------------------------------------------------------------------

constexpr int kTransactions = 8;
constexpr int kRowsPerTransaction = 12;
constexpr int kRolledBack = 3;  // this transaction is rolled back on purpose, never committed

StoreOptions faulty_options(JournalMode mode) {
    StoreOptions options = options_for(mode);
    options.base_vfs = faulty_vfs_name();
    return options;
}

Status insert_transaction(Store& store, int transaction) {
    for (int row = 0; row < kRowsPerTransaction; ++row) {
        auto& insert = store.cached("INSERT INTO entry(txn, seq, body) VALUES(?1, ?2, ?3)");
        insert.bind(1, transaction)
            .bind(2, row)
            .bind(3, "entry " + std::to_string(transaction) + "/" + std::to_string(row) +
                         std::string(300 + 50 * row, 'e'));
        TSUNAGU_TRY(insert.run());
    }
    return Status::ok();
}

// Transaction 0 is committed before any fault can strike.
void create_store(const std::string& path, JournalMode mode) {
    Store store = open_ok(path, test_key(), faulty_options(mode));
    REQUIRE(store
                .exec("CREATE TABLE entry(txn INTEGER NOT NULL, seq INTEGER NOT NULL, "
                      "body TEXT NOT NULL, PRIMARY KEY(txn, seq))")
                .is_ok());
    REQUIRE(store.begin_immediate().is_ok());
    REQUIRE(insert_transaction(store, 0).is_ok());
    REQUIRE(store.commit().is_ok());
}

// What the armed run did: which transactions reported commit, and every error it met.
struct Outcome {
    std::set<int> committed{0};
    std::vector<Status> errors;

    void note(const Status& s) {
        if (!s.is_ok()) errors.push_back(s);
    }
};

// Runs one step of the workload under a name the fault plan records if it strikes there.
Status step(const char* phase, const std::function<Status()>& body) {
    plan().phase = phase;
    return body();
}

// Opens the store (through the fault) and writes transactions 1..kTransactions, each begun,
// filled and committed; on any failure it rolls back and goes on with the next one. A small page
// cache makes transactions spill and re-read pages, so reads and writes happen mid-transaction.
Outcome run_workload(const std::string& path, JournalMode mode) {
    Outcome outcome;
    plan().phase = "open";
    auto opened = Store::open(path, test_key(), faulty_options(mode));
    if (!opened) {
        outcome.note(opened.status());
        return outcome;
    }
    Store store = std::move(*opened);
    outcome.note(step("configure", [&] { return store.exec("PRAGMA cache_size=4"); }));
    for (int transaction = 1; transaction <= kTransactions; ++transaction) {
        Status s = step("begin", [&] { return store.begin_immediate(); });
        if (s) s = step("insert", [&] { return insert_transaction(store, transaction); });
        if (s && transaction == kRolledBack) {
            outcome.note(step("rollback", [&] { return store.rollback(); }));
            continue;
        }
        if (s) s = step("commit", [&] { return store.commit(); });
        if (s) {
            outcome.committed.insert(transaction);
        } else {
            outcome.note(s);
            outcome.note(step("rollback", [&] { return store.rollback(); }));
        }
        outcome.note(step("read", [&]() -> Status {  // through the small cache
            auto& count = store.cached("SELECT count(*), sum(length(body)) FROM entry");
            auto row = count.step();
            count.reset();
            return row.status();
        }));
        if (transaction == kTransactions / 2 && mode == JournalMode::wal) {
            outcome.note(
                step("checkpoint", [&] { return store.exec("PRAGMA wal_checkpoint(TRUNCATE)"); }));
        }
    }
    plan().phase = "close";
    store.close();
    return outcome;
}

// Reopened without faults: intact, and exactly the transactions that reported commit, whole.
void check_store_holds_exactly(const std::string& path, JournalMode mode,
                               const std::set<int>& committed) {
    Store store = open_ok(path, test_key(), options_for(mode));
    Status integrity = store.integrity_check();
    INFO(integrity.to_string());
    REQUIRE(integrity.is_ok());
    std::set<int> present;
    for (const auto& [transaction, rows] : rows_per_transaction(store)) {
        INFO("transaction " << transaction);
        CHECK(rows == kRowsPerTransaction);
        present.insert(static_cast<int>(transaction));
    }
    CHECK(present == committed);
}

std::string describe(const std::set<int>& transactions) {
    std::string text;
    for (int t : transactions) text += (text.empty() ? "" : ",") + std::to_string(t);
    return "{" + text + "}";
}

// `write_failure`: what the failing write answers; the workload's errors must carry `expected`.
void run_every_fault(JournalMode mode, Operation op, int write_failure = SQLITE_IOERR_WRITE,
                     ErrorCode expected = ErrorCode::io_error) {
    int runs = 0;
    for (int n = 1;; ++n) {
        REQUIRE(n < 2000);  // the workload makes a few hundred operations of each kind
        TempDir dir;
        const auto path = dir.file("s.db");
        create_store(path, mode);

        plan().arm(op, n, write_failure);
        Outcome outcome = run_workload(path, mode);
        plan().disarm();
        const bool fired = plan().fired;
        ++runs;

        INFO(mode_name(mode) << ": " << operation_name(op) << " " << n << " failed during "
                             << plan().fired_in << "; committed " << describe(outcome.committed));
        // An operating-system refusal is an I/O error, never "corrupt" (which would send the
        // worker to a backup for nothing). Only a rollback and a close cannot report one: SQLite
        // finishes an interrupted rollback from the journal or WAL at the next access, and the
        // check below proves it did.
        if (outcome.errors.empty()) {
            CHECK((!fired || plan().fired_in == "rollback" || plan().fired_in == "close"));
        } else {
            CHECK(fired);
        }
        for (const Status& error : outcome.errors) {
            INFO(error.to_string());
            CHECK(error.code() == expected);
        }
        check_store_holds_exactly(path, mode, outcome.committed);
        if (!fired) {
            // The fault lay beyond the workload: it ran in full.
            CHECK(outcome.committed.size() == kTransactions);  // 0..8 without the rolled-back 3
            break;
        }
    }
    CHECK(runs > 1);
    WARN(mode_name(mode) << ": " << runs - 1 << " " << operation_name(op) << " faults injected");
}

}  // namespace

TEST_CASE("a failed read at any point leaves the store intact with exactly its commits") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        run_every_fault(mode, Operation::read);
    }
}

TEST_CASE("a failed write at any point leaves the store intact with exactly its commits") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        run_every_fault(mode, Operation::write);
    }
}

TEST_CASE("a full disk at any write leaves the store intact with exactly its commits, and says storage_full") {
    // A phone whose storage fills up: the app can tell the worker that this record was not saved.
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        run_every_fault(mode, Operation::write, SQLITE_FULL, ErrorCode::storage_full);
    }
}

TEST_CASE("a failed sync at any point leaves the store intact with exactly its commits") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        run_every_fault(mode, Operation::sync);
    }
}

TEST_CASE(
    "after a failed commit sync and a crash the transaction is absent with a rollback "
    "journal, and whole or absent with a WAL, where SQLite cannot know") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        int present_after_crash = 0;
        for (int n = 1;; ++n) {
            REQUIRE(n < 100);
            TempDir dir;
            const auto path = dir.file("s.db");
            create_store(path, mode);
            Store store = open_ok(path, test_key(), faulty_options(mode));
            REQUIRE(store.begin_immediate().is_ok());
            REQUIRE(insert_transaction(store, 1).is_ok());
            plan().arm(Operation::sync, n);
            Status committed = store.commit();
            plan().disarm();
            if (!plan().fired) {
                REQUIRE(committed.is_ok());
                break;
            }
            INFO(mode_name(mode) << ": sync " << n << " of the commit failed");
            REQUIRE_FALSE(committed.is_ok());
            // The crash: the files as they are now, opened by another connection.
            const auto crashed = dir.file("crashed.db");
            for (const char* suffix : {"", "-wal", "-journal"}) {
                if (std::filesystem::exists(path + suffix)) {
                    std::filesystem::copy_file(path + suffix, crashed + suffix);
                }
            }
            Store recovered = open_ok(crashed, test_key(), options_for(mode));
            CHECK(recovered.integrity_check().is_ok());
            CHECK(query_int(recovered, "SELECT count(*) FROM entry WHERE txn = 0") ==
                  kRowsPerTransaction);
            const std::int64_t rows =
                query_int(recovered, "SELECT count(*) FROM entry WHERE txn = 1");
            if (mode == JournalMode::rollback) {
                CHECK(rows == 0);
            } else {
                CHECK((rows == 0 || rows == kRowsPerTransaction));
            }
            if (rows != 0) ++present_after_crash;
        }
        // The WAL case exists (the fsync after the commit frame); documented here so that a
        // change in SQLite's behaviour is noticed.
        if (mode == JournalMode::wal) CHECK(present_after_crash > 0);
    }
}

TEST_CASE("a key change whose second key slot fails to be written says the new key is in force, and only it opens the store") {
    TempDir dir;
    const auto path = dir.file("s.db");
    create_store(path, JournalMode::wal);
    {
        Store store = open_ok(path, test_key(), faulty_options(JournalMode::wal));
        plan().arm(Operation::write, 2);  // the first slot is written (and synced), the second fails
        const Status changed = store.change_key(test_key(2));
        plan().disarm();
        REQUIRE(plan().fired);
        REQUIRE_FALSE(changed.is_ok());
        CHECK(changed.code() == ErrorCode::io_error);
        CHECK_THAT(changed.message(), Catch::Contains("the new key is in force already") &&
                                          Catch::Contains("change the key again"));
        // Changed again from the same handle: both slots now hold the new key's wrapping.
        REQUIRE(store.change_key(test_key(3)).is_ok());
    }
    CHECK_FALSE(Store::open(path, test_key()).is_ok());
    CHECK_FALSE(Store::open(path, test_key(2)).is_ok());
    Store reopened = open_ok(path, test_key(3));
    CHECK(query_int(reopened, "SELECT count(*) FROM entry WHERE txn = 0") == kRowsPerTransaction);
}

namespace {

// The reads one WAL transaction of `rows` rows makes, counted by the fault VFS (armed with a fault
// that never strikes). A random unique key and a page cache of 50 pages make it spill pages to the
// WAL and rewrite them there in place, so its commit re-reads every frame from the first rewritten
// one on to recompute their checksums.
int reads_of_one_transaction(int rows) {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key(), faulty_options(JournalMode::wal));
    REQUIRE(store.exec("PRAGMA cache_size=50; CREATE TABLE t(id INTEGER PRIMARY KEY, k BLOB UNIQUE, v TEXT)")
                .is_ok());
    plan().arm(Operation::sync, std::numeric_limits<int>::max());
    Status s = store.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(rows) +
        ") INSERT INTO t(k, v) SELECT randomblob(16), printf('%.1000c', 'v') FROM n");
    plan().disarm();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return plan().counts[static_cast<int>(Operation::read)];
}

}  // namespace

// SQLite recomputes the checksums of a transaction's frames it overwrote in place by reading them
// back whole. The shim checked each such frame against the whole rest of the WAL, as it does in a
// recovery scan: filling a phone's replica with weeks of offline work took minutes instead of a
// second. Measured here, 6,000 rows took about 4,500 reads, and 1.2 million before (16,000 rows:
// 24,000 against 12 million).
TEST_CASE("a large WAL transaction that rewrites its own frames costs reads in proportion to its size") {
    constexpr int kRows = 6000;  // 6 MB in about 1,600 frames
    const int reads = reads_of_one_transaction(kRows);
    INFO("reads: " << reads);
    CHECK(reads > 0);  // the transaction did spill pages and read them back
    CHECK(reads < 2 * kRows);
}
