// store_bench: what does encryption cost? The same workload on plain SQLite (default unix VFS) and
// on the encrypted store, in one process, with the store's settings on both (page_size 4096, WAL,
// synchronous=FULL, temp_store=MEMORY, mmap off, cell_size_check on): 100k inserts in one
// transaction, 1,000 transactions of 100 inserts, 100k point selects by key and a full scan, the
// reads both with a warm page cache (the whole database cached) and a cold one (cache_size=-256:
// nearly every page is read and, on the encrypted store, decrypted again). Both run the very same
// sqlite3 calls; the store's connection is reached through Store::handle(). Also the raw cost of
// sealing and opening one 4 KiB page with each of the store's page ciphers: XChaCha20-Poly1305,
// and AES-256-GCM under per-page subkeys (where the CPU has AES-NI; new stores take it there). And
// a backup of the live database: VACUUM INTO against Store::backup_to; a key rotation: VACUUM
// against Store::rekey; a salvage (crypto/salvage.h): VACUUM INTO against salvage_store. And the
// recovery of a WAL a crash left (every frame read, its checksum chained; on the store each page
// opened too, and each frame header checked against the frames before it): the first read after
// opening the files of a process killed with its commits in the WAL.
//
// Usage: store_bench [--json] [--rows N] [--dir FOLDER]
// Prints readable lines; with --json, one JSON object of every figure on the last line, each
// encrypted/plain ratio (of elapsed times; 1.0 = no cost) under a key ending in "_ratio".
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "crypto/src/page_cipher.h"
#include "crypto/salvage.h"
#include "crypto/store.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
namespace crypto_detail = tsunagu::crypto_detail;

namespace {

// ---- the workload ------------------------------------------------------------------------------

// A home-visit record as the care domain stores it: ids, a time, a duration, a kind, a note.
struct Visit {
    std::string client;
    std::string worker;
    std::int64_t visited_at;
    int duration_min;
    std::string kind;
    std::string note;  // 150-400 characters: the bulk of a 250-500 byte row
};

std::vector<Visit> make_visits(std::size_t count) {
    static const char* kWords[] = {"client",  "calm",  "visit",  "reported", "sleep",  "better",
                                   "meds",    "taken", "family", "present",  "follow", "up",
                                   "anxious", "walk",  "talked", "about",    "work",   "plan"};
    static const char* kKinds[] = {"home_visit", "phone_call", "crisis", "group", "review"};
    std::mt19937_64 random(20240611);
    auto hex = [&](int digits) {
        std::string s;
        for (int i = 0; i < digits; ++i) s += "0123456789abcdef"[random() % 16];
        return s;
    };
    std::vector<Visit> visits(count);
    for (auto& v : visits) {
        v.client = "client-" + hex(32);
        v.worker = "worker-" + hex(8);
        v.visited_at = 1700000000 + static_cast<std::int64_t>(random() % 31536000);
        v.duration_min = static_cast<int>(5 + random() % 120);
        v.kind = kKinds[random() % 5];
        const std::size_t length = 150 + random() % 251;
        while (v.note.size() < length) {
            v.note += kWords[random() % (sizeof kWords / sizeof kWords[0])];
            v.note += ' ';
        }
        v.note.resize(length);
    }
    return visits;
}

[[noreturn]] void die(sqlite3* db, const char* doing) {
    std::fprintf(stderr, "store_bench: %s: %s\n", doing, db ? sqlite3_errmsg(db) : "no database");
    std::exit(1);
}

void exec(sqlite3* db, const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) die(db, sql);
}

// RAII for a prepared statement; the workload is the same code on both databases.
class Query {
  public:
    Query(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) die(db, sql);
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() { sqlite3_finalize(stmt_); }
    sqlite3_stmt* get() const { return stmt_; }
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE) die(db_, "step");
        return false;
    }
    void reset() { sqlite3_reset(stmt_); }

  private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// fsync of a file, as the store does for what it writes.
void sync_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        std::fprintf(stderr, "store_bench: cannot sync %s\n", path.c_str());
        std::exit(1);
    }
    ::close(fd);
}

double seconds_of(const std::function<void()>& work) {
    const auto start = Clock::now();
    work();
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void create_schema(sqlite3* db) {
    exec(db,
         "CREATE TABLE visit(id INTEGER PRIMARY KEY, client TEXT NOT NULL, worker TEXT NOT "
         "NULL, visited_at INTEGER NOT NULL, duration_min INTEGER NOT NULL, kind TEXT NOT "
         "NULL, note TEXT NOT NULL)");
}

// Inserts visits [from, from + count) as ids from+1.., `per_transaction` rows per transaction.
void insert_visits(sqlite3* db, const std::vector<Visit>& visits, std::size_t from,
                   std::size_t count, std::size_t per_transaction) {
    Query insert(db, "INSERT INTO visit VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    sqlite3_stmt* s = insert.get();
    for (std::size_t done = 0; done < count;) {
        exec(db, "BEGIN");
        for (std::size_t i = 0; i < per_transaction && done < count; ++i, ++done) {
            const Visit& v = visits[from + done];
            sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(from + done + 1));
            sqlite3_bind_text(s, 2, v.client.data(), static_cast<int>(v.client.size()),
                              SQLITE_STATIC);
            sqlite3_bind_text(s, 3, v.worker.data(), static_cast<int>(v.worker.size()),
                              SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, v.visited_at);
            sqlite3_bind_int(s, 5, v.duration_min);
            sqlite3_bind_text(s, 6, v.kind.data(), static_cast<int>(v.kind.size()), SQLITE_STATIC);
            sqlite3_bind_text(s, 7, v.note.data(), static_cast<int>(v.note.size()), SQLITE_STATIC);
            insert.step();
            insert.reset();
        }
        exec(db, "COMMIT");
    }
}

// Reads every column of the visits with the given ids, one SELECT each; returns bytes read.
std::size_t point_selects(sqlite3* db, const std::vector<std::int64_t>& ids) {
    Query select(db,
                 "SELECT client, worker, visited_at, duration_min, kind, note FROM visit "
                 "WHERE id = ?1");
    std::size_t bytes = 0;
    for (std::int64_t id : ids) {
        sqlite3_bind_int64(select.get(), 1, id);
        if (!select.step()) die(db, "a visit is missing");
        bytes += static_cast<std::size_t>(sqlite3_column_bytes(select.get(), 5));
        select.reset();
    }
    return bytes;
}

// Reads every column of every row; returns the number of rows.
std::size_t full_scan(sqlite3* db) {
    Query scan(db, "SELECT client, worker, visited_at, duration_min, kind, note FROM visit");
    std::size_t rows = 0;
    std::size_t bytes = 0;
    while (scan.step()) {
        ++rows;
        bytes += static_cast<std::size_t>(sqlite3_column_bytes(scan.get(), 5));
    }
    return bytes > 0 ? rows : 0;
}

void set_cache(sqlite3* db, bool warm) {
    exec(db, warm ? "PRAGMA cache_size=-1048576" : "PRAGMA cache_size=-256");  // 1 GiB or 256 KiB
    if (warm) full_scan(db);  // load every page of the table
}

// ---- the two databases -------------------------------------------------------------------------

// Plain SQLite: the default VFS and the settings the encrypted store applies to itself.
sqlite3* open_plain(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
        die(db, "opening the plain database");
    }
    exec(db,
         "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
         "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; PRAGMA cell_size_check=ON");
    return db;
}

tsunagu::Store open_encrypted(const std::string& path) {
    std::vector<std::uint8_t> key(32);
    randombytes_buf(key.data(), key.size());
    auto source = tsunagu::KeySource::raw_key(key);
    auto store = tsunagu::Store::open(path, *source);  // WAL, synchronous=FULL, temp_store=MEMORY
    if (!store) {
        std::fprintf(stderr, "store_bench: %s\n", store.status().to_string().c_str());
        std::exit(1);
    }
    return std::move(*store);
}

// ---- raw page sealing --------------------------------------------------------------------------

struct PageCost {
    double seal_us;
    double open_us;
};

// The store's own seal_page/open_page with `cipher`: nonce draw (batched, as in the store), the
// AES-GCM subkey derivation where that applies, and the AEAD itself.
PageCost page_cipher_cost(crypto_detail::PageCipher cipher) {
    constexpr int kPages = 20000;
    std::uint8_t key[crypto_detail::kDataKeyBytes];
    randombytes_buf(key, sizeof key);
    const crypto_detail::PageKey page_key{key, cipher};
    const auto binding = crypto_detail::PageBinding::main_page(7);
    std::vector<std::uint8_t> plain(crypto_detail::kPageSize), sealed(plain.size()), opened(plain.size());
    randombytes_buf(plain.data(), plain.size());
    for (int i = 0; i < 200; ++i) crypto_detail::seal_page(page_key, plain.data(), sealed.data(), binding);
    const double seal_s = seconds_of([&] {
        for (int i = 0; i < kPages; ++i) crypto_detail::seal_page(page_key, plain.data(), sealed.data(), binding);
    });
    const double open_s = seconds_of([&] {
        for (int i = 0; i < kPages; ++i) {
            if (!crypto_detail::open_page(page_key, sealed.data(), opened.data(), binding)) {
                std::fprintf(stderr, "store_bench: a sealed page did not open\n");
                std::exit(1);
            }
        }
    });
    sodium_memzero(key, sizeof key);
    return {seal_s / kPages * 1e6, open_s / kPages * 1e6};
}

// One randombytes_buf of a 24-byte nonce: a getrandom(2) system call with Debian's libsodium.
double nonce_draw_us() {
    constexpr int kDraws = 20000;
    std::uint8_t nonce[24];
    return seconds_of([&] {
               for (int i = 0; i < kDraws; ++i) randombytes_buf(nonce, sizeof nonce);
           }) /
           kDraws * 1e6;
}

// ---- output ------------------------------------------------------------------------------------

struct Figures {
    std::vector<std::pair<std::string, double>> values;  // in print order, for the JSON line
    void add(const std::string& key, double value) { values.emplace_back(key, value); }
};

void compare(Figures& figures, const char* key, const char* label, std::size_t operations,
             double plain_s, double encrypted_s) {
    const double ratio = encrypted_s / plain_s;
    std::printf("%-34s plain %9.3f s %11.0f ops/s | encrypted %9.3f s %11.0f ops/s | ratio %.2f\n",
                label, plain_s, operations / plain_s, encrypted_s, operations / encrypted_s, ratio);
    figures.add(std::string(key) + "_plain_s", plain_s);
    figures.add(std::string(key) + "_encrypted_s", encrypted_s);
    figures.add(std::string(key) + "_plain_ops_per_s", operations / plain_s);
    figures.add(std::string(key) + "_encrypted_ops_per_s", operations / encrypted_s);
    figures.add(std::string(key) + "_ratio", ratio);
}

// ---- the contest -------------------------------------------------------------------------------

// A plain and an encrypted database holding the same rows.
struct Pair {
    fs::path plain_path;
    fs::path encrypted_path;
    sqlite3* plain = nullptr;
    std::optional<tsunagu::Store> store;

    static Pair open(const fs::path& dir, int round) {
        Pair p;
        p.plain_path = dir / ("plain-" + std::to_string(round) + ".db");
        p.encrypted_path = dir / ("encrypted-" + std::to_string(round) + ".db");
        p.plain = open_plain(p.plain_path.string());
        p.store.emplace(open_encrypted(p.encrypted_path.string()));
        create_schema(p.plain);
        create_schema(p.store->handle());
        return p;
    }
    std::array<sqlite3*, 2> both() const { return {plain, store->handle()}; }
    // Closes both (checkpointing their WALs) and returns their file sizes.
    std::pair<std::uintmax_t, std::uintmax_t> close_and_measure() {
        sqlite3_close(plain);
        plain = nullptr;
        store.reset();
        return {fs::file_size(plain_path), fs::file_size(encrypted_path)};
    }
    void close_and_remove() {
        close_and_measure();
        for (const char* suffix : {"", "-wal", "-shm"}) {
            fs::remove(plain_path.string() + suffix);
            fs::remove(encrypted_path.string() + suffix);
        }
    }
};

// Times `work` on both, plain first in even rounds and encrypted first in odd ones.
std::pair<double, double> alternate(Pair& databases, int round,
                                    const std::function<void(sqlite3*)>& work) {
    double plain_s = 0;
    double encrypted_s = 0;
    for (int turn = 0; turn < 2; ++turn) {
        if ((turn + round) % 2 == 0) {
            plain_s = seconds_of([&] { work(databases.plain); });
        } else {
            encrypted_s = seconds_of([&] { work(databases.store->handle()); });
        }
    }
    return {plain_s, encrypted_s};
}

// For work that leaves the databases as they were (reads): the best of `rounds` alternating runs.
std::pair<double, double> best_alternating(Pair& databases, int rounds,
                                           const std::function<void(sqlite3*)>& work) {
    double plain_s = 1e30;
    double encrypted_s = 1e30;
    for (int round = 0; round < rounds; ++round) {
        const auto [p, e] = alternate(databases, round, work);
        plain_s = std::min(plain_s, p);
        encrypted_s = std::min(encrypted_s, e);
    }
    return {plain_s, encrypted_s};
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    std::size_t rows = 100000;
    std::string dir_arg;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (std::strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            rows = std::stoul(argv[++i]);
        } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir_arg = argv[++i];
        } else {
            std::fprintf(stderr, "usage: store_bench [--json] [--rows N] [--dir FOLDER]\n");
            return 2;
        }
    }
    if (sodium_init() < 0) return 1;
    std::string dir_pattern =
        (fs::path(dir_arg.empty() ? fs::temp_directory_path().string() : dir_arg) /
         "store-bench-XXXXXX")
            .string();
    if (mkdtemp(dir_pattern.data()) == nullptr) {
        std::perror("store_bench: mkdtemp");
        return 1;
    }
    const fs::path dir = dir_pattern;

    const std::size_t small_transactions = 1000;
    const std::size_t rows_per_small = std::max<std::size_t>(1, rows / 1000);
    const std::vector<Visit> visits = make_visits(rows + small_transactions * rows_per_small);
    const std::size_t total = visits.size();
    std::vector<std::int64_t> ids(rows);
    std::mt19937_64 random(7);
    for (auto& id : ids) id = 1 + static_cast<std::int64_t>(random() % total);

    std::size_t bytes = 0;
    for (const auto& v : visits) {
        bytes += v.client.size() + v.worker.size() + v.kind.size() + v.note.size() + 16;
    }
    std::printf(
        "store_bench: %zu rows of about %zu bytes, page_size 4096, WAL, synchronous=FULL, "
        "temp_store=MEMORY, in %s\n",
        total, bytes / total, dir.c_str());
    std::printf(
        "(one-transaction inserts and reads: the best of 3 rounds; plain and encrypted runs "
        "alternate, so a busy machine slows both alike)\n");
    Figures figures;
    figures.add("rows", static_cast<double>(rows));

    // 100k inserts in one transaction: three rounds, each into a fresh pair of databases; the
    // last pair is kept for what follows.
    Pair databases;
    double one_p = 1e30;
    double one_e = 1e30;
    for (int round = 0; round < 3; ++round) {
        databases = Pair::open(dir, round);
        const auto [p, e] = alternate(
            databases, round, [&](sqlite3* db) { insert_visits(db, visits, 0, rows, rows); });
        one_p = std::min(one_p, p);
        one_e = std::min(one_e, e);
        if (round < 2) databases.close_and_remove();
    }
    compare(figures, "insert_one_txn", "inserts, one transaction", rows, one_p, one_e);

    // 1,000 transactions of 100 inserts, interleaved in slices of 20 transactions.
    double small_p = 0;
    double small_e = 0;
    for (std::size_t slice = 0; slice < small_transactions / 20; ++slice) {
        const std::size_t from = rows + slice * 20 * rows_per_small;
        const auto [p, e] = alternate(databases, static_cast<int>(slice), [&](sqlite3* db) {
            insert_visits(db, visits, from, 20 * rows_per_small, rows_per_small);
        });
        small_p += p;
        small_e += e;
    }
    compare(figures, "insert_small_txns", "inserts, 1000 transactions",
            small_transactions * rows_per_small, small_p, small_e);

    for (sqlite3* db : databases.both()) exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    for (bool warm : {true, false}) {
        const char* cache = warm ? "warm" : "cold";
        for (sqlite3* db : databases.both()) set_cache(db, warm);
        const auto [point_p, point_e] =
            best_alternating(databases, 3, [&](sqlite3* db) { point_selects(db, ids); });
        compare(figures, warm ? "point_select_warm" : "point_select_cold",
                (std::string("point selects, ") + cache + " cache").c_str(), ids.size(), point_p,
                point_e);
        const auto [scan_p, scan_e] =
            best_alternating(databases, 3, [&](sqlite3* db) { full_scan(db); });
        compare(figures, warm ? "full_scan_warm" : "full_scan_cold",
                (std::string("full scan (rows/s), ") + cache + " cache").c_str(), total, scan_p,
                scan_e);
    }
    // A consistent copy of the live database, as a nightly backup takes it: SQLite's VACUUM INTO,
    // then an fsync, against Store::backup_to (the same through the encrypting VFS, sealed with
    // XChaCha20-Poly1305 under a fresh data key, fsynced and renamed into place).
    {
        const fs::path plain_copy = dir / "plain-backup.db", sealed_copy = dir / "encrypted-backup.db";
        const double p = seconds_of([&] {
            exec(databases.plain, ("VACUUM INTO '" + plain_copy.string() + "'").c_str());
            sync_file(plain_copy.string());
        });
        std::vector<std::uint8_t> backup_key(32);
        randombytes_buf(backup_key.data(), backup_key.size());
        const double e = seconds_of([&] {
            if (tsunagu::Status s = databases.store->backup_to(sealed_copy.string(), *tsunagu::KeySource::raw_key(backup_key));
                !s) {
                std::fprintf(stderr, "store_bench: backup: %s\n", s.to_string().c_str());
                std::exit(1);
            }
        });
        compare(figures, "backup", "backup of the database (rows/s)", total, p, e);
    }
    // Rotating the key (tsunagu-server rotate-key): every page sealed again under a new data key,
    // into a new file renamed over the old, against SQLite's VACUUM, which rewrites every page too.
    {
        const double p = seconds_of([&] { exec(databases.plain, "VACUUM"); });
        const double e = seconds_of([&] {
            if (tsunagu::Status s = databases.store->rekey(); !s) {
                std::fprintf(stderr, "store_bench: rekey: %s\n", s.to_string().c_str());
                std::exit(1);
            }
        });
        compare(figures, "rekey", "key rotation: every page (rows/s)", total, p, e);
    }
    // Salvaging the store (crypto/salvage.h): every page version gathered, opened and sealed anew
    // into a new file, integrity-checked, renamed into place; against VACUUM INTO of the plain
    // database, which copies every row into a new file too.
    {
        const fs::path plain_copy = dir / "plain-salvage.db", salvaged = dir / "salvaged.db";
        std::vector<std::uint8_t> known(32);
        randombytes_buf(known.data(), known.size());
        auto key = tsunagu::KeySource::raw_key(known);
        if (tsunagu::Status s = databases.store->change_key(*key); !s) {
            std::fprintf(stderr, "store_bench: change_key: %s\n", s.to_string().c_str());
            std::exit(1);
        }
        const double p = seconds_of([&] {
            exec(databases.plain, ("VACUUM INTO '" + plain_copy.string() + "'").c_str());
            sync_file(plain_copy.string());
        });
        const double e = seconds_of([&] {
            auto report = tsunagu::salvage_store(databases.encrypted_path.string(), *key, salvaged.string());
            if (!report || !report->complete()) {
                std::fprintf(stderr, "store_bench: salvage: %s\n",
                             report ? report->summary().c_str() : report.status().to_string().c_str());
                std::exit(1);
            }
        });
        compare(figures, "salvage", "salvage of the database (rows/s)", total, p, e);
    }
    // Recovering a WAL a crash left: `rows` rows in 20 commits, never checkpointed, the shared
    // memory index gone; timed from opening the files to the end of the first read.
    {
        const fs::path plain_path = dir / "plain-crashed.db", encrypted_path = dir / "encrypted-crashed.db";
        std::vector<std::uint8_t> known(32);
        randombytes_buf(known.data(), known.size());
        const auto key = tsunagu::KeySource::raw_key(known);
        const auto open_store = [&] {
            auto store = tsunagu::Store::open(encrypted_path.string(), *key);
            if (!store) {
                std::fprintf(stderr, "store_bench: %s\n", store.status().to_string().c_str());
                std::exit(1);
            }
            return std::move(*store);
        };
        {
            sqlite3* plain = open_plain(plain_path.string());
            tsunagu::Store store = open_store();
            for (sqlite3* db : {plain, store.handle()}) {
                create_schema(db);
                exec(db, "PRAGMA wal_autocheckpoint=0");
                insert_visits(db, visits, 0, rows, std::max<std::size_t>(1, rows / 20));
                sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
            }
            sqlite3_close(plain);
        }
        const auto wal_frames = (fs::file_size(encrypted_path.string() + "-wal") - 32) / (24 + 4096);
        for (const auto& path : {plain_path, encrypted_path}) fs::remove(path.string() + "-shm");
        const auto first_read = [](sqlite3* db) { exec(db, "SELECT count(*) FROM sqlite_master"); };
        const double p = seconds_of([&] {
            sqlite3* db = open_plain(plain_path.string());
            first_read(db);
            sqlite3_close(db);
        });
        const double e = seconds_of([&] {
            tsunagu::Store store = open_store();
            first_read(store.handle());
        });
        compare(figures, "wal_recovery", "WAL recovery, crash (frames/s)", wal_frames, p, e);
        figures.add("wal_recovery_frames", static_cast<double>(wal_frames));
    }
    const auto [plain_size, encrypted_size] = databases.close_and_measure();
    std::printf("%-34s plain %9.1f MiB | encrypted %9.1f MiB | ratio %.3f\n", "file size",
                plain_size / 1048576.0, encrypted_size / 1048576.0,
                static_cast<double>(encrypted_size) / static_cast<double>(plain_size));
    figures.add("file_size_plain_bytes", static_cast<double>(plain_size));
    figures.add("file_size_encrypted_bytes", static_cast<double>(encrypted_size));
    fs::remove_all(dir);

    for (auto cipher : {crypto_detail::PageCipher::xchacha20_poly1305, crypto_detail::PageCipher::aes256gcm}) {
        const std::string name = crypto_detail::page_cipher_name(cipher);
        const std::string key = cipher == crypto_detail::PageCipher::aes256gcm ? "aes256gcm" : "xchacha20poly1305";
        const std::string label = name + (cipher == crypto_detail::fastest_page_cipher() ? " (new stores')" : "");
        if (!crypto_detail::page_cipher_runs_here(cipher)) {
            std::printf("%-34s not available on this CPU (libsodium needs AES-NI and PCLMUL)\n", name.c_str());
            continue;
        }
        const PageCost cost = page_cipher_cost(cipher);
        std::printf("%-34s seal %6.2f us/page | open %6.2f us/page\n", label.c_str(), cost.seal_us, cost.open_us);
        figures.add(key + "_seal_us_per_page", cost.seal_us);
        figures.add(key + "_open_us_per_page", cost.open_us);
    }
    const double draw = nonce_draw_us();
    std::printf("%-34s %6.2f us (randombytes_buf; the store draws 64 nonces at a time)\n",
                "one 24-byte random nonce", draw);
    figures.add("nonce_draw_us", draw);

    if (json) {
        std::string line = "{";
        for (const auto& [key, value] : figures.values) {
            char number[64];
            std::snprintf(number, sizeof number, "%.6g", value);
            line += (line.size() > 1 ? ", \"" : "\"") + key + "\": " + number;
        }
        std::printf("%s}\n", line.c_str());
    }
    return 0;
}
