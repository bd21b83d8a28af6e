// Stores in the states the damage and salvage tests start from: rows in a table, commits left in
// the WAL as a crash leaves them, a hot rollback journal as a crash mid-transaction leaves it.
#pragma once

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "support/journal_layout.h"
#include "tests/crypto/store_files.h"

namespace tsunagu::testing {

constexpr int kRows = 400;  // about 30 pages of 300-byte rows, no overflow pages

inline Status insert_rows(Store& store, int from, int count) {
    return with_transaction(store, [&]() -> Status {
        for (int i = from; i < from + count; ++i) {
            auto& insert = store.cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
            insert.bind(1, i).bind(2, "note " + std::to_string(i) + std::string(300, 'n'));
            TSUNAGU_TRY(insert.run());
        }
        return Status::ok();
    });
}

// A store of one table holding kRows rows, all in the main file (checkpointed), closed.
// Pages: 1 is the schema, every other page belongs to the table and is read by a full scan.
inline std::uint32_t make_store(const std::string& path, JournalMode mode) {
    Store store = open_ok(path, test_key(), options_for(mode));
    REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
    REQUIRE(insert_rows(store, 0, kRows).is_ok());
    if (mode == JournalMode::wal) REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    const auto pages = static_cast<std::uint32_t>(query_int(store, "PRAGMA page_count"));
    REQUIRE(query_int(store, "PRAGMA freelist_count") == 0);
    store.close();
    REQUIRE(std::filesystem::file_size(path) == page_offset(pages + 1));
    return pages;
}

// A store whose first transaction (rows 0..99) is checkpointed into the main file and whose next
// three (rows 200..299, 300..399, 400..499) are still in its WAL, as a crash leaves it: committed,
// never checkpointed, no shared-memory index. Returns where each of the three starts in the WAL.
inline std::vector<std::uintmax_t> store_with_three_commits_in_wal(const std::string& path) {
    const auto wal = path + "-wal";
    std::vector<std::uintmax_t> starts;
    Store store = open_ok(path, test_key());
    REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
    REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
    REQUIRE(insert_rows(store, 0, 100).is_ok());
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    for (int transaction = 2; transaction <= 4; ++transaction) {
        starts.push_back(std::filesystem::exists(wal) ? std::max<std::uintmax_t>(std::filesystem::file_size(wal), 32) : 32);
        REQUIRE(insert_rows(store, transaction * 100, 100).is_ok());
    }
    REQUIRE(sqlite3_db_config(store.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) == SQLITE_OK);
    store.close();
    std::filesystem::remove(path + "-shm");
    return starts;
}

constexpr std::uintmax_t kFrameBytes = kWalFrameBytes;

// Flips a byte inside the sealed body of the WAL frame that starts at `frame`.
inline void damage_frame(const std::string& path, std::uintmax_t frame) { flip_byte(path + "-wal", frame + 24 + 500); }

// The files of a store in rollback-journal mode as a crash in the middle of a transaction leaves
// them: a hot journal holding the pages' committed content, and a main file into which some of
// the transaction's pages were already written (the page cache spilled). Copied to `copy`.
// `transaction`: what the transaction does.
inline void copy_with_hot_journal(const std::string& path, const std::string& copy,
                                  const std::string& transaction = "UPDATE note SET body = 'half of an uncommitted transaction' || id") {
    Store store = open_ok(path, test_key(), options_for(JournalMode::rollback));
    REQUIRE(store.exec("PRAGMA cache_size=4").is_ok());  // a few pages: the transaction spills
    const Status rolled_back = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(store.exec(transaction));
        std::filesystem::copy_file(path, copy);
        std::filesystem::copy_file(path + "-journal", copy + "-journal");
        return Status(ErrorCode::conflict, "abandoned on purpose");
    });
    REQUIRE(rolled_back.code() == ErrorCode::conflict);
}

// The rows' bodies, in order; or the error met on the way.
inline Result<std::vector<std::string>> bodies(const std::string& path) {
    auto store = Store::open(path, test_key(), options_for(JournalMode::rollback));
    if (!store) return store.status();
    auto scan = store->prepare("SELECT body FROM note ORDER BY id");
    if (!scan) return scan.status();
    std::vector<std::string> out;
    while (true) {
        auto row = scan->step();
        if (!row) return row.status();
        if (!*row) return out;
        out.emplace_back(scan->column_text(0));
    }
}

// The files a power cut leaves when it kept the last transaction's commit frame but lost its first
// frame, where the WAL's older generation (before SQLite wrote it again from its start) left a
// commit frame of its own: made at `path`, copied to `copy` and its -wal with that frame put back.
// Table a's row 1 was checkpointed as 'a4'; the torn transaction set it and b's row to 'torn'
// (b's was 'b0').
inline void store_with_torn_tail_over_older_generation(const std::string& path, const std::string& copy) {
    Store store = open_ok(path, test_key());
    REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
    REQUIRE(store.exec("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT);"
                       "INSERT INTO a VALUES (1, 'a0'); INSERT INTO b VALUES (1, 'b0')").is_ok());
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    for (int i = 1; i <= 4; ++i) {
        REQUIRE(store.exec("UPDATE a SET v = 'a" + std::to_string(i) + "' WHERE id = 1").is_ok());  // one frame each
    }
    const std::string older_generation = read_bytes(path + "-wal");
    REQUIRE(older_generation.size() == 32 + 4 * kFrameBytes);
    REQUIRE(big_endian_at(older_generation, 32 + 4) != 0);  // its first frame is a commit frame
    REQUIRE(store.exec("PRAGMA wal_checkpoint(PASSIVE)").is_ok());
    REQUIRE(store.exec("BEGIN; UPDATE a SET v = 'torn' WHERE id = 1; UPDATE b SET v = 'torn' WHERE id = 1; COMMIT").is_ok());
    std::string wal = read_bytes(path + "-wal");
    REQUIRE(wal.size() == older_generation.size());         // written again from its start, over the older frames
    REQUIRE(big_endian_at(wal, 32 + 4) == 0);                // the new transaction: its first frame,
    REQUIRE(big_endian_at(wal, 32 + kFrameBytes + 4) != 0);  // then its commit frame
    wal.replace(32, kFrameBytes, older_generation.substr(32, kFrameBytes));  // the first write lost
    write_bytes(copy, read_bytes(path));
    write_bytes(copy + "-wal", wal);
}

// The files SQLite leaves when a transaction was written over the frames of a longer one of the
// same WAL generation, which recovery had ended before (torn by a power cut): the longer one's
// later frames lie beyond, under the same salts, their checksums chaining from the frames written
// over, its commit frame last. Made at `path`, the image at `copy`. Committed: a = 'a1', then
// c = 'u' (the shorter transaction); b stays 'b0'. The stale frames' transaction set b and c to 't'.
inline void store_with_stale_frames_beyond_a_shorter_transaction(const std::string& path, const std::string& copy) {
    // Opens the store, runs `sql`, and closes it as a crash would leave it: no checkpoint, no
    // shared-memory index.
    auto run = [&](const std::string& sql) {
        Store store = open_ok(path, test_key());
        REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
        REQUIRE(store.exec(sql).is_ok());
        REQUIRE(sqlite3_db_config(store.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) == SQLITE_OK);
        store.close();
        std::filesystem::remove(path + "-shm");
    };
    run("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT);"
        "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT);"
        "INSERT INTO a VALUES (1, 'a0'); INSERT INTO b VALUES (1, 'b0'); INSERT INTO c VALUES (1, 'c0');"
        "PRAGMA wal_checkpoint(TRUNCATE);"
        "UPDATE a SET v = 'a1' WHERE id = 1");  // one frame in the WAL
    const std::string main_before = read_bytes(path), wal_before = read_bytes(path + "-wal");
    REQUIRE(wal_before.size() == 32 + kFrameBytes);
    run("BEGIN; UPDATE a SET v = 't' WHERE id = 1; UPDATE b SET v = 't' WHERE id = 1; UPDATE c SET v = 't' WHERE id = 1; COMMIT");
    const std::string longer = read_bytes(path + "-wal");
    REQUIRE(longer.size() == wal_before.size() + 3 * kFrameBytes);
    write_bytes(path, main_before);
    write_bytes(path + "-wal", wal_before);
    run("UPDATE c SET v = 'u' WHERE id = 1");
    std::string wal = read_bytes(path + "-wal");
    REQUIRE(wal.size() == wal_before.size() + kFrameBytes);
    REQUIRE(wal.substr(16, 8) == longer.substr(16, 8));  // one generation: the same salts
    REQUIRE(big_endian_at(wal, 32 + kFrameBytes + 4) != 0);  // the shorter one's commit frame
    wal += longer.substr(wal.size());                          // the longer one's last two frames
    REQUIRE(big_endian_at(wal, wal.size() - kFrameBytes + 4) != 0);  // its commit frame, last
    write_bytes(copy, read_bytes(path));
    write_bytes(copy + "-wal", wal);
}

}  // namespace tsunagu::testing
