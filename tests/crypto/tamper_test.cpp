// Damage and tampering: a flipped, moved or missing byte of the store is a clear error naming what
// is wrong, never a crash and never a silently empty or shortened table.
#include <sodium.h>
#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/store.h"
#include "support/journal_layout.h"
#include "support/temp_dir.h"
#include "tests/crypto/damaged_stores.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using namespace tsunagu::testing;
namespace fs = std::filesystem;

namespace {

// Reads every row: the number of rows, or the error met on the way.
Result<std::int64_t> scan_all(Store& store) {
    auto scan = store.prepare("SELECT id, body FROM note");
    if (!scan) return scan.status();
    std::int64_t rows = 0;
    while (true) {
        auto row = scan->step();
        if (!row) return row.status();
        if (!*row) return rows;
        ++rows;
    }
}

// "corrupt page 7 in /tmp/.../s.db" (the space after the number keeps 7 from matching 70).
std::string corrupt_page_message(std::uint32_t page, const std::string& file) {
    return "corrupt page " + std::to_string(page) + " in " + file;
}

void truncate_file(const std::string& path, std::uintmax_t size) {
    fs::resize_file(path, size);
}

}  // namespace

TEST_CASE("a flipped byte in a data page is reported as corrupt page N by the read that meets it") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        TempDir dir;
        const auto path = dir.file("s.db");
        const std::uint32_t pages = make_store(path, mode);
        const std::string pristine = read_bytes(path);
        for (std::uint32_t page : {2u, 3u, pages / 2, pages}) {
            INFO(mode_name(mode) << ", page " << page << " of " << pages);
            write_bytes(path, pristine);
            flip_byte(path, page_offset(page) + 1000);
            Store store = open_ok(path, test_key(), options_for(mode));  // page 1 is intact
            auto scanned = scan_all(store);
            INFO(scanned.status().to_string());
            REQUIRE_FALSE(scanned.is_ok());
            CHECK(scanned.status().code() == ErrorCode::corrupt);
            CHECK_THAT(scanned.status().message(),
                       Catch::Contains(corrupt_page_message(page, path)));
        }
    }
}

TEST_CASE("a flipped byte in page 1 is reported as corrupt page 1 at open") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::wal);
    flip_byte(path, page_offset(1) + 50);  // inside the SQLite header
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::corrupt);
    CHECK_THAT(store.status().message(), Catch::Contains(corrupt_page_message(1, path)));
}

TEST_CASE("a page 1 torn in the file while the WAL holds it whole opens from the WAL, every row there") {
    // A checkpoint copies page 1 into the file; a power cut tears that write; the WAL, not yet
    // started again, still holds page 1 whole. SQLite reads the header before it recovers the WAL:
    // that read must not refuse the store.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto copy = dir.file("copy.db");
    Store store = open_ok(path, test_key());
    REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
    REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    REQUIRE(insert_rows(store, 0, 300).is_ok());  // the file grows: page 1 (its size) is in the WAL
    const std::string wal = read_bytes(path + "-wal");
    bool page_one_in_wal = false;
    for (std::uintmax_t frame = 32; frame + kFrameBytes <= wal.size(); frame += kFrameBytes) {
        page_one_in_wal = page_one_in_wal || big_endian_at(wal, frame) == 1;
    }
    REQUIRE(page_one_in_wal);
    write_bytes(copy, read_bytes(path));
    write_bytes(copy + "-wal", wal);
    flip_byte(copy, page_offset(1) + 100 + 2000);  // the torn part of page 1

    Store opened = open_ok(copy, test_key());
    CHECK(opened.integrity_check().is_ok());
    CHECK(query_int(opened, "SELECT count(*) FROM note") == 300);
}

TEST_CASE("a torn page 1 opened from the WAL leaves no note: a later malformed page is not called page 1") {
    // The header read before recovery fails on the torn page 1 and reads as empty; a note of that
    // failure, left in place, named "corrupt page 1" in the next error that noted nothing itself.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto copy = dir.file("copy.db");
    Store store = open_ok(path, test_key());
    REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
    REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
    REQUIRE(insert_rows(store, 0, 300).is_ok());
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    REQUIRE(insert_rows(store, 1000, 300).is_ok());  // the file grows: page 1 (its size) is in the WAL
    const auto in_wal = wal_frame_pages(path);
    REQUIRE(std::find(in_wal.begin(), in_wal.end(), 1u) != in_wal.end());
    std::string main = read_bytes(path);
    write_bytes(copy + "-wal", read_bytes(path + "-wal"));
    // A leaf of the first rows, which no frame holds again, sealed with the store's key but
    // malformed inside (its b-tree page type): SQLite's own "malformed", not an authentication failure.
    std::uint32_t leaf = 4;
    while (std::find(in_wal.begin(), in_wal.end(), leaf) != in_wal.end()) ++leaf;
    REQUIRE(page_offset(leaf + 1) <= main.size());
    const UnwrappedKey key = unwrapped_data_key(main.substr(0, kKeyHeaderBytes), copy, test_key());
    auto* page = reinterpret_cast<std::uint8_t*>(main.data() + page_offset(leaf));
    REQUIRE(crypto_detail::open_page(key.page_key(), page, page, crypto_detail::PageBinding::main_page(leaf)));
    REQUIRE(page[0] == 0x0d);  // a table leaf
    page[0] = 0x01;
    crypto_detail::seal_page(key.page_key(), page, page, crypto_detail::PageBinding::main_page(leaf));
    write_bytes(copy, main);
    flip_byte(copy, page_offset(1) + 100 + 2000);  // the torn part of page 1

    Store opened = open_ok(copy, test_key());
    auto scanned = scan_all(opened);
    REQUIRE_FALSE(scanned.is_ok());
    CHECK(scanned.status().code() == ErrorCode::corrupt);
    CHECK_THAT(scanned.status().message(), !Catch::Contains("page 1 "));
}

TEST_CASE("a flipped byte in a page's nonce or tag is reported as a corrupt page") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const std::uint32_t pages = make_store(path, JournalMode::wal);
    const std::string pristine = read_bytes(path);
    for (std::uintmax_t at_end : {40u, 17u, 1u}) {  // nonce start, inside the tag, last tag byte
        INFO("byte " << at_end << " from the end of page " << pages);
        write_bytes(path, pristine);
        flip_byte(path, page_offset(pages) + kPageBytes - at_end);
        Store store = open_ok(path, test_key());
        auto scanned = scan_all(store);
        REQUIRE_FALSE(scanned.is_ok());
        CHECK_THAT(scanned.status().message(), Catch::Contains(corrupt_page_message(pages, path)));
    }
}

TEST_CASE("two swapped pages are reported as a corrupt page, not read in each other's place") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const std::uint32_t pages = make_store(path, JournalMode::wal);
    REQUIRE(pages >= 6);
    std::string bytes = read_bytes(path);
    const std::uint32_t a = 3;
    const std::uint32_t b = pages - 1;
    const std::string page_a = bytes.substr(page_offset(a), kPageBytes);
    bytes.replace(page_offset(a), kPageBytes, bytes.substr(page_offset(b), kPageBytes));
    bytes.replace(page_offset(b), kPageBytes, page_a);
    write_bytes(path, bytes);

    Store store = open_ok(path, test_key());
    auto scanned = scan_all(store);
    INFO(scanned.status().to_string());
    REQUIRE_FALSE(scanned.is_ok());
    CHECK(scanned.status().code() == ErrorCode::corrupt);
    const std::string& message = scanned.status().message();
    CHECK((message.find(corrupt_page_message(a, path)) != std::string::npos ||
           message.find(corrupt_page_message(b, path)) != std::string::npos));
}

TEST_CASE("a page copied from another store under another key is reported as a corrupt page") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto other = dir.file("other.db");
    const std::uint32_t pages = make_store(path, JournalMode::wal);
    make_store(other, JournalMode::wal);  // same content, its own random data key
    std::string bytes = read_bytes(path);
    bytes.replace(page_offset(4), kPageBytes, read_bytes(other).substr(page_offset(4), kPageBytes));
    write_bytes(path, bytes);
    REQUIRE(pages >= 4);

    Store store = open_ok(path, test_key());
    auto scanned = scan_all(store);
    REQUIRE_FALSE(scanned.is_ok());
    CHECK_THAT(scanned.status().message(), Catch::Contains(corrupt_page_message(4, path)));
}

TEST_CASE("a file truncated inside a page or inside its key header is refused at open") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const std::uint32_t pages = make_store(path, JournalMode::wal);
    const std::string pristine = read_bytes(path);
    for (std::uintmax_t size :
         {page_offset(pages) + 100, page_offset(pages / 2) + kPageBytes - 1, page_offset(1) + 1,
          kKeyHeaderBytes - 1, kKeySlotBytes, std::uintmax_t{100}}) {
        INFO("truncated to " << size << " bytes");
        write_bytes(path, pristine);
        truncate_file(path, size);
        auto store = Store::open(path, test_key());
        INFO(store.status().to_string());
        REQUIRE_FALSE(store.is_ok());
        CHECK(store.status().code() == ErrorCode::corrupt);
        CHECK_THAT(store.status().message(), Catch::Contains("truncated"));
    }
}

TEST_CASE("a file truncated at a page boundary fails at open or on read, never as fewer rows") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        TempDir dir;
        const auto path = dir.file("s.db");
        const std::uint32_t pages = make_store(path, mode);
        const std::string pristine = read_bytes(path);
        // Keep 0 .. pages-1 pages: every loss, from all pages down to only the last one.
        for (std::uint32_t kept = 0; kept < pages; ++kept) {
            INFO(mode_name(mode) << ": truncated to " << kept << " of " << pages << " pages");
            write_bytes(path, pristine);
            truncate_file(path, page_offset(kept + 1));
            auto store = Store::open(path, test_key(), options_for(mode));
            if (!store.is_ok()) {
                CHECK(store.status().code() == ErrorCode::corrupt);
                continue;
            }
            auto scanned = scan_all(*store);
            INFO(scanned.status().to_string());
            REQUIRE_FALSE(scanned.is_ok());
            CHECK(scanned.status().code() == ErrorCode::corrupt);
        }
        // The untouched file still reads in full: the failures above come from the truncation.
        write_bytes(path, pristine);
        Store store = open_ok(path, test_key(), options_for(mode));
        auto scanned = scan_all(store);
        REQUIRE(scanned.is_ok());
        CHECK(*scanned == kRows);
    }
}

TEST_CASE("an emptied store file is refused, not silently recreated as an empty store") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::wal);
    truncate_file(path, 0);
    auto store = Store::open(path, test_key());
    INFO(store.status().to_string());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::corrupt);
    CHECK(fs::file_size(path) == 0);  // left as found, for whoever investigates
}

namespace {

// Opens the store at `path` and reads every row, twice (as a phone would try again): refused each
// time as corrupt, the message naming its WAL, what failed there (`naming`) and what to do, and
// both files kept exactly as they were (nothing checkpointed, nothing overwritten). The
// shared-memory index is dropped in between, so that each open recovers the WAL afresh.
void require_wal_refused_twice(const std::string& path, const std::string& naming) {
    const std::string main_before = read_bytes(path), wal_before = read_bytes(path + "-wal");
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto store = Store::open(path, test_key());
        Status read = store.status();
        if (store) read = scan_all(*store).status();
        INFO("attempt " << attempt << ": " << read.to_string());
        REQUIRE_FALSE(read.is_ok());
        CHECK(read.code() == ErrorCode::corrupt);
        CHECK_THAT(read.message(), Catch::Contains(path + "-wal") && Catch::Contains("backup") && Catch::Contains(naming));
        fs::remove(path + "-shm");
    }
    CHECK(read_bytes(path) == main_before);
    CHECK(read_bytes(path + "-wal") == wal_before);
}

}  // namespace

TEST_CASE(
    "a damaged WAL frame that a later transaction follows is refused as corrupt, never read as "
    "torn (which would drop every later commit without a word)") {
    // The store syncs the WAL at every commit, and writes a transaction's frames only once the
    // commit before it is synced: a frame that a later transaction follows was on disk before it,
    // so a crash cannot have torn it.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto starts = store_with_three_commits_in_wal(path);
    SECTION("the first frame of the first of the three") { damage_frame(path, starts[0]); }
    SECTION("the first frame of the second") { damage_frame(path, starts[1]); }
    SECTION("the commit frame of the second, which the third follows") { damage_frame(path, starts[2] - kFrameBytes); }
    SECTION("the first frame of the second and its commit frame too") {
        damage_frame(path, starts[1]);
        damage_frame(path, starts[2] - kFrameBytes);
    }
    require_wal_refused_twice(path, "corrupt page ");
}

TEST_CASE(
    "a WAL frame header whose salts, checksum or commit size no longer follow the frames before it, "
    "with a later transaction after it, is refused as corrupt, not read as the WAL's end") {
    // The salts and checksums are SQLite's and in clear. Recovery ends at a frame whose salts
    // differ, as at the first frame of an older generation, and at one whose checksum does not
    // continue the one before it (they chain from frame to frame), as at a torn frame; but an older
    // generation's frames only ever follow the current one's commits, and a crash tears only the
    // last transaction.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto starts = store_with_three_commits_in_wal(path);
    SECTION("a salt in the first transaction of three") { flip_byte(path + "-wal", starts[0] + 8); }
    SECTION("a salt in the second's commit frame") { flip_byte(path + "-wal", starts[2] - kFrameBytes + 12); }
    SECTION("a checksum in the first transaction") { flip_byte(path + "-wal", starts[0] + 16); }
    SECTION("a checksum in the second's commit frame") { flip_byte(path + "-wal", starts[2] - kFrameBytes + 23); }
    SECTION("the commit size of a frame inside the first") { flip_byte(path + "-wal", starts[0] + kFrameBytes + 7); }
    SECTION("the commit size of the second's commit frame, zeroed, with only the third after it") {
        // The frame no longer says where its transaction ends; its checksum, solved for the
        // field, says what it was.
        std::string wal = read_bytes(path + "-wal");
        wal.replace(starts[2] - kFrameBytes + 4, 4, std::string(4, '\0'));
        write_bytes(path + "-wal", wal);
    }
    require_wal_refused_twice(path, "corrupt frame header (page ");
}

TEST_CASE(
    "a WAL header that fails its checksum while committed frames follow it is refused as corrupt, "
    "not read as an empty WAL (which would drop every commit since the last checkpoint)") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    SECTION("its magic number") { flip_byte(path + "-wal", 1); }
    SECTION("its checkpoint sequence") { flip_byte(path + "-wal", 13); }
    SECTION("its salts") { flip_byte(path + "-wal", 17); }
    SECTION("its checksum") { flip_byte(path + "-wal", 30); }
    SECTION("the whole of it and the first frame's header, as damage to the file's first block leaves them") {
        std::string wal = read_bytes(path + "-wal");
        wal.replace(0, 32 + 24, std::string(32 + 24, '\0'));
        write_bytes(path + "-wal", wal);
    }
    require_wal_refused_twice(path, "corrupt header of " + path + "-wal");
}

TEST_CASE(
    "a frame header of the WAL's last transaction whose salts or checksum no longer follow ends the "
    "WAL there, as a crash or an older generation's frame leaves it: the store opens at the commit "
    "before it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto starts = store_with_three_commits_in_wal(path);
    SECTION("a salt") { flip_byte(path + "-wal", starts[2] + 8); }
    SECTION("a checksum") { flip_byte(path + "-wal", starts[2] + 20); }
    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 300);
}

TEST_CASE("frames past the WAL's checksum chain are not read: the store opens at the last commit that chains") {
    TempDir dir;
    const auto copy = dir.file("copy.db");
    std::string a, b, c;  // the values the store must open with in tables a, b and (when there) c
    SECTION("a power cut that kept the last transaction's commit frame but not its first frame where an older "
            "generation's commit frame still lies") {
        // After a checkpoint SQLite writes the WAL again from its start, under new salts; the older
        // generation's frames stay beyond and still open (one key). A power cut during the next
        // commit's sync may keep its later writes and lose its earlier ones: its first frame is then
        // the older generation's, itself a commit frame. That commit size must not make the torn
        // transaction's own commit frame look like a later transaction (damage, store refused).
        store_with_torn_tail_over_older_generation(dir.file("s.db"), copy);
        a = "a4", b = "b0";  // as checkpointed; the torn transaction is gone whole
    }
    SECTION("a longer transaction's stale frames beyond a shorter one written over them under the same salts") {
        store_with_stale_frames_beyond_a_shorter_transaction(dir.file("s.db"), copy);
        a = "a1", b = "b0", c = "u";  // the shorter one's commit
    }
    Store opened = open_ok(copy, test_key());
    CHECK(opened.integrity_check().is_ok());
    CHECK(query_text(opened, "SELECT v FROM a WHERE id = 1") == a);
    CHECK(query_text(opened, "SELECT v FROM b WHERE id = 1") == b);
    if (!c.empty()) CHECK(query_text(opened, "SELECT v FROM c WHERE id = 1") == c);
}

TEST_CASE(
    "a damaged frame in the WAL's last transaction reads as torn, as a crash leaves it: the store "
    "opens at the commit before it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto starts = store_with_three_commits_in_wal(path);
    SECTION("its first frame") { damage_frame(path, starts[2]); }
    SECTION("its commit frame") { damage_frame(path, fs::file_size(path + "-wal") - kFrameBytes); }
    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 300);
    CHECK(query_int(store, "SELECT count(*) FROM note WHERE id >= 400") == 0);
}

TEST_CASE(
    "a WAL frame tampered after readers indexed it is reported as a corrupt page of the WAL") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store writer = open_ok(path, test_key());
    REQUIRE(writer.exec("PRAGMA wal_autocheckpoint=0").is_ok());
    REQUIRE(writer.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
    REQUIRE(insert_rows(writer, 0, 100).is_ok());
    REQUIRE(writer.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    REQUIRE(insert_rows(writer, 100, 100).is_ok());
    // Every frame is now indexed in shared memory. Tamper with the first one that holds a table
    // page (page 1 would already fail the reader's open, which is right too but tests less).
    const std::string wal = read_bytes(path + "-wal");
    std::uintmax_t frame = 32;  // after the WAL header; a frame's header starts with its page number
    while (frame + kFrameBytes <= wal.size() && big_endian_at(wal, frame) == 1) frame += kFrameBytes;
    REQUIRE(frame + kFrameBytes <= wal.size());
    const std::uint32_t page = big_endian_at(wal, frame);
    damage_frame(path, frame);

    Store reader = open_ok(path, test_key());  // its own page cache: must read the WAL frame
    auto scanned = scan_all(reader);
    INFO(scanned.status().to_string());
    REQUIRE_FALSE(scanned.is_ok());
    CHECK(scanned.status().code() == ErrorCode::corrupt);
    CHECK_THAT(scanned.status().message(),
               Catch::Contains(corrupt_page_message(page, path + "-wal")));
}

TEST_CASE("a key slot failing its checksum is skipped and the other slot opens the store") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::wal);
    const std::string pristine = read_bytes(path);
    for (std::uintmax_t slot : {0u, 1u}) {
        for (std::uintmax_t byte : {20u, 100u, 140u}) {  // generation, wrapped key, checksum
            INFO("slot " << slot << ", byte " << byte);
            write_bytes(path, pristine);
            flip_byte(path, slot * kKeySlotBytes + byte);
            Store store = open_ok(path, test_key());
            CHECK(query_int(store, "SELECT count(*) FROM note") == kRows);
        }
    }
}

TEST_CASE("a key header with both slots damaged is refused as a corrupt key header") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::wal);
    flip_byte(path, 100);
    flip_byte(path, kKeySlotBytes + 140);
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::corrupt);
    CHECK_THAT(store.status().message(), Catch::Contains("corrupt key header in " + path));
}

TEST_CASE("a store whose page 1 lacks the 40 reserved bytes is refused at open") {
    // Crafted from the parts: a valid key header and a correctly sealed page 1 of an SQLite
    // database made without the reserve, as a build that forgot to set it would have written.
    TempDir dir;
    const auto plain = dir.file("plain.db");
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(plain.c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA application_id=7", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    std::string page = read_bytes(plain);
    REQUIRE(page.size() == kPageBytes);
    REQUIRE(page[20] == 0);  // no reserved bytes

    const auto path = dir.file("s.db");
    const KeySource key = test_key();
    const auto recipe = crypto_detail::KekRecipe::fresh_for(key);
    const Secret kek = Secret::copy_of(key.material().bytes());
    const Secret data_key = Secret::random(crypto_detail::kDataKeyBytes);
    const auto cipher = crypto_detail::fastest_page_cipher();
    {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        REQUIRE(fd >= 0);
        Status written = crypto_detail::write_new_header(fd, recipe, kek, data_key, cipher, path);
        ::close(fd);
        REQUIRE(written.is_ok());
    }
    auto* bytes = reinterpret_cast<std::uint8_t*>(page.data());
    crypto_detail::seal_page({data_key.data(), cipher}, bytes, bytes,
                             crypto_detail::PageBinding::main_page(1));
    write_bytes(path, read_bytes(path) + page);

    auto store = Store::open(path, key);
    INFO(store.status().to_string());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::corrupt);
    CHECK_THAT(store.status().message(), Catch::Contains("0 reserved bytes"));
}

TEST_CASE("writing page 1 with another page size is refused and the store stays intact") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::rollback);
    {
        Store store = open_ok(path, test_key(), options_for(JournalMode::rollback));
        for (const char* resize :
             {"PRAGMA page_size=8192; VACUUM", "PRAGMA page_size=1024; VACUUM"}) {
            INFO(resize);
            Status refused = store.exec(resize);
            REQUIRE_FALSE(refused.is_ok());
            CHECK_THAT(refused.message(), Catch::Contains("40 reserved bytes"));
            CHECK(query_int(store, "PRAGMA page_size") == 4096);
        }
    }
    Store store = open_ok(path, test_key(), options_for(JournalMode::rollback));
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == kRows);
}

namespace {

// Writes `value` (8 bytes, little-endian) at `offset` of both key slots and makes each slot's
// checksum hold again, as anyone who can write the file can: the checksum is not keyed.
void rewrite_both_slots(const std::string& path, std::uintmax_t offset, std::uint64_t value) {
    std::string bytes = read_bytes(path);
    for (std::uintmax_t slot = 0; slot < 2; ++slot) {
        auto* at = reinterpret_cast<std::uint8_t*>(bytes.data()) + slot * kKeySlotBytes;
        for (int i = 0; i < 8; ++i) at[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
        crypto_generichash(at + 136, 32, at, 136, nullptr, 0);
    }
    write_bytes(path, bytes);
}

constexpr std::uintmax_t kOpsLimitAt = 32, kMemLimitAt = 40;  // key_header.cpp's slot layout

}  // namespace

TEST_CASE("a key header asking for an absurd passphrase cost is refused at once, not worked through") {
    // Whoever can write a phone's replica or an off-site backup could otherwise make opening it
    // run Argon2id for days, or ask for terabytes, before the altered header is noticed.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto key = KeySource::passphrase("correct horse battery staple", KdfParams::fast_for_tests());
    open_ok(path, key).close();
    const std::string pristine = read_bytes(path);

    struct Case {
        std::uintmax_t offset;
        std::uint64_t value;
        const char* cost;
    };
    // Costs libsodium itself would run (its own maxima are 2^32-1 passes and 4 TiB).
    for (const Case& c : {Case{kOpsLimitAt, std::uint64_t{1} << 31, "2147483648 passes"},
                          Case{kOpsLimitAt, 0, "0 passes"},
                          Case{kMemLimitAt, std::uint64_t{1} << 40, "1073741824 KiB"},
                          Case{kMemLimitAt, 1024, "1 KiB"}}) {
        INFO(c.cost);
        write_bytes(path, pristine);
        rewrite_both_slots(path, c.offset, c.value);
        const auto started = std::chrono::steady_clock::now();
        auto store = Store::open(path, key);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
        REQUIRE_FALSE(store.is_ok());
        CHECK(store.status().code() == ErrorCode::corrupt);
        CHECK_THAT(store.status().message(), Catch::Contains("corrupt key header in " + path) &&
                                                 Catch::Contains(c.cost) && Catch::Contains("altered"));
    }

    write_bytes(path, pristine);
    Store store = open_ok(path, key);  // the store itself was never touched
    CHECK(store.integrity_check().is_ok());
}

TEST_CASE("a passphrase cost written beside a raw key is refused as an altered header") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::wal);
    rewrite_both_slots(path, kOpsLimitAt, 3);
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::corrupt);
    CHECK_THAT(store.status().message(), Catch::Contains("corrupt key header in " + path));
}

TEST_CASE("a store is not made with a passphrase cost it could not be opened with") {
    TempDir dir;
    for (const KdfParams& cost : {KdfParams{1000, KdfParams::phone().mem_limit}, KdfParams{3, std::size_t{1} << 31},
                                  KdfParams{0, KdfParams::phone().mem_limit}}) {
        INFO(cost.ops_limit << " passes, " << cost.mem_limit << " bytes");
        const auto path = dir.file("s.db");
        auto store = Store::open(path, KeySource::passphrase("correct horse battery staple", cost));
        REQUIRE_FALSE(store.is_ok());
        CHECK(store.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(store.status().message(), Catch::Contains("KdfParams::phone()"));
        CHECK_FALSE(fs::exists(path));
    }
}

TEST_CASE("a deleted row leaves no plaintext in the file's free space, even for whoever holds the key") {
    // As when a client leaves a worker's caseload and is evicted from her phone: she knows the
    // passphrase, and the evicted records must not be left to dig out of the replica.
    TempDir dir;
    const std::string marker = "observations of an evicted client #";
    for (const bool as_opened : {false, true}) {
        INFO((as_opened ? "as the store opens" : "with secure_delete turned off: the reading's control"));
        const auto path = dir.file(as_opened ? "secure.db" : "plain.db");
        {
            Store store = open_ok(path, test_key());
            REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
            if (!as_opened) REQUIRE(store.exec("PRAGMA secure_delete=OFF").is_ok());
            REQUIRE(with_transaction(store, [&]() -> Status {
                        for (int i = 0; i < 60; ++i) {
                            auto& insert = store.cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
                            insert.bind(1, i).bind(2, marker + std::to_string(i) + "|" + std::string(200, 'x'));
                            TSUNAGU_TRY(insert.run());
                        }
                        return Status::ok();
                    }).is_ok());
            REQUIRE(store.exec("DELETE FROM note WHERE id % 2 = 0").is_ok());
        }
        CHECK_FALSE(fs::exists(path + "-wal"));  // checkpointed and removed on closing: no older frames
        const std::string plain = decrypted_files(path, test_key());
        CHECK(plain.find(marker + "1|") != std::string::npos);  // a row kept reads: the reading works
        CHECK((plain.find(marker + "0|") != std::string::npos) == !as_opened);
        CHECK((plain.find(marker + "58|") != std::string::npos) == !as_opened);
    }
}


TEST_CASE("a page 1 torn in the file while a hot rollback journal holds it whole opens, the journal played back") {
    // A transaction that changes the schema writes page 1; a power cut tears that write in the
    // file; its hot journal holds page 1 as committed. SQLite reads the header before it looks
    // for a hot journal: that read must not refuse the store.
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto copy = dir.file("crashed.db");
    make_store(path, JournalMode::rollback);
    const auto committed = bodies(path);
    REQUIRE(committed.is_ok());
    copy_with_hot_journal(path, copy, "CREATE TABLE spare(x); UPDATE note SET body = 'uncommitted' || id");
    const std::string journal = read_bytes(copy + "-journal");
    bool page_one_journaled = false;
    for (const std::size_t record : journal_layout(journal).records) {
        page_one_journaled = page_one_journaled || big_endian_at(journal, record) == 1;
    }
    REQUIRE(page_one_journaled);
    flip_byte(copy, page_offset(1) + 100 + 2000);  // the torn part of page 1

    const auto read = bodies(copy);
    INFO(read.status().to_string());
    REQUIRE(read.is_ok());
    CHECK(*read == *committed);
    CHECK_FALSE(fs::exists(copy + "-journal"));
    Store opened = open_ok(copy, test_key(), options_for(JournalMode::rollback));
    CHECK(opened.integrity_check().is_ok());
    CHECK(query_int(opened, "SELECT count(*) FROM sqlite_schema WHERE name = 'spare'") == 0);
}

TEST_CASE("a hot rollback journal with an altered record is refused, never played back halfway") {
    TempDir dir;
    const auto path = dir.file("s.db");
    make_store(path, JournalMode::rollback);
    const auto committed = bodies(path);
    REQUIRE(committed.is_ok());

    SECTION("as the crash left it, the journal is played back: the committed rows, every one") {
        const auto copy = dir.file("crashed.db");
        copy_with_hot_journal(path, copy);
        REQUIRE(read_bytes(copy) != read_bytes(path));  // the spill reached the main file
        const auto read = bodies(copy);
        INFO(read.status().to_string());
        REQUIRE(read.is_ok());
        CHECK(*read == *committed);
        CHECK_FALSE(fs::exists(copy + "-journal"));
    }
    SECTION("with a byte altered in one record, every open refuses and the journal is kept") {
        const auto copy = dir.file("altered.db");
        copy_with_hot_journal(path, copy);
        const std::string journal = read_bytes(copy + "-journal");
        const std::vector<std::size_t> records = journal_layout(journal).records;
        REQUIRE(records.size() >= 4);
        // The first, one in the middle, the last. Read as the journal's end, the first left the
        // transaction's spilled pages (396 of the 400 rows) reading as if committed.
        const std::size_t victim = GENERATE(0, 1, 2);
        const std::size_t at = victim == 0 ? records.front() : victim == 1 ? records[records.size() / 2] : records.back();
        flip_byte(copy + "-journal", at + 4 + 100);
        const std::string altered_journal = read_bytes(copy + "-journal");

        for (int attempt = 0; attempt < 2; ++attempt) {
            const auto read = bodies(copy);
            INFO("record " << victim << ", attempt " << attempt << ": "
                           << (read ? std::to_string(read->size()) + " rows read" : read.status().to_string()));
            REQUIRE_FALSE(read.is_ok());
            CHECK(read.status().code() == ErrorCode::corrupt);
            CHECK_THAT(read.status().message(), Catch::Contains(copy + "-journal") && Catch::Contains("backup"));
            CHECK(read_bytes(copy + "-journal") == altered_journal);
        }
        // The journal put right (as its backup copy would), the store opens at its committed state.
        write_bytes(copy + "-journal", journal);
        const auto read = bodies(copy);
        INFO(read.status().to_string());
        REQUIRE(read.is_ok());
        CHECK(*read == *committed);
    }
}
