// The checksums SQLite logs beside sealed pages, on disk: a WAL frame's (two sums of its page's
// words) and a rollback-journal record's (a sum of its page's bytes). SQLite computes them over
// plaintext pages, so the store keeps them masked (crypto/src/checksum_masking.h), and a log an
// earlier version wrote in clear still recovers. Each test reads the files as whoever holds the
// store's key would, and checks what lies on disk against SQLite's own sums of the opened pages.
#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/src/big_endian.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/wal_format.h"
#include "crypto/src/checksum_masking.h"
#include "crypto/salvage.h"
#include "support/journal_layout.h"
#include "support/temp_dir.h"
#include "tests/crypto/damaged_stores.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using namespace tsunagu::crypto_detail;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFrameHeaderBytes = kWalFrameHeaderBytes;

std::uint8_t* bytes_at(std::string& bytes, std::size_t at) { return reinterpret_cast<std::uint8_t*>(bytes.data() + at); }

// How the checksums of the WAL of the store at `path` lie on disk, frame by frame, against SQLite's
// own: the chain of sums over each frame's opened page, from the WAL header's checksum on.
struct ChecksumsOnDisk {
    bool magic_is_sqlites = false;  // SQLite's own magic number on disk (a WAL in clear)
    int frames = 0;                 // whole frames, all of the WAL's current generation
    int stored_as_sqlites = 0;      // frames whose stored checksum is SQLite's sum, as it is
    int unmasked_as_sqlites = 0;    // frames whose stored checksum, unmasked, is SQLite's sum
};

ChecksumsOnDisk checksums_on_disk(const std::string& path) {
    std::string wal = read_bytes(path + "-wal");
    REQUIRE(wal.size() >= kWalHeaderBytes + kWalFrameBytes);
    const UnwrappedKey key = unwrapped_data_key(read_bytes(path).substr(0, kKeyHeaderBytes), path, test_key());
    const Secret checksum_key = checksum_mask_key(key.data_key.data());
    ChecksumsOnDisk found;
    found.magic_is_sqlites = wal_stored_in_clear(bytes_at(wal, 0));
    wal_magic_from_disk(bytes_at(wal, 0));
    const std::uint8_t* header = bytes_at(wal, 0);
    REQUIRE(wal_header_whole(header, kPageBytes));
    std::array<std::uint8_t, 8> previous{};
    std::copy(header + 24, header + 32, previous.begin());
    std::vector<std::uint8_t> page(kPageBytes);
    for (std::size_t at = kWalHeaderBytes; at + kWalFrameBytes <= wal.size(); at += kWalFrameBytes) {
        std::uint8_t* frame_header = bytes_at(wal, at);
        const std::uint8_t* sealed = frame_header + kFrameHeaderBytes;
        if (std::memcmp(frame_header + 8, header + 16, 8) != 0) break;  // an older generation's
        REQUIRE(open_page(key.page_key(), sealed, page.data(), PageBinding::wal_frame(be32(frame_header))));
        const auto sum = wal_frame_checksum(header, previous.data(), frame_header, page.data(), kPageBytes);
        ++found.frames;
        if (std::equal(sum.begin(), sum.end(), frame_header + 16)) ++found.stored_as_sqlites;
        toggle_checksum_mask(checksum_key.data(), sealed + kUsableBytes, frame_header + 16);
        if (std::equal(sum.begin(), sum.end(), frame_header + 16)) ++found.unmasked_as_sqlites;
        previous = sum;
    }
    return found;
}

// Checks that the WAL `found` describes is this version's: its magic altered, and each of its (at
// least `at_least`) frames' checksums masked, each unmasking to SQLite's own.
void check_masked(const ChecksumsOnDisk& found, int at_least) {
    CHECK_FALSE(found.magic_is_sqlites);
    CHECK(found.frames >= at_least);
    CHECK(found.stored_as_sqlites == 0);
    CHECK(found.unmasked_as_sqlites == found.frames);
}

// Rewrites the WAL of the store at `path` as the version before masked checksums wrote it: SQLite's
// magic number and every frame's checksum in clear.
void rewrite_wal_in_clear(const std::string& path) {
    std::string wal = read_bytes(path + "-wal");
    const UnwrappedKey key = unwrapped_data_key(read_bytes(path).substr(0, kKeyHeaderBytes), path, test_key());
    const Secret checksum_key = checksum_mask_key(key.data_key.data());
    REQUIRE_FALSE(wal_stored_in_clear(bytes_at(wal, 0)));
    wal_magic_from_disk(bytes_at(wal, 0));
    for (std::size_t at = kWalHeaderBytes; at + kWalFrameBytes <= wal.size(); at += kWalFrameBytes) {
        toggle_checksum_mask(checksum_key.data(), bytes_at(wal, at + kFrameHeaderBytes + kUsableBytes), bytes_at(wal, at + 16));
    }
    write_bytes(path + "-wal", wal);
}

// Closes `store` as a crash would leave it: its WAL not checkpointed, no shared-memory index.
void close_leaving_wal(Store& store, const std::string& path) {
    REQUIRE(sqlite3_db_config(store.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) == SQLITE_OK);
    store.close();
    fs::remove(path + "-shm");
}

// A rollback journal's record checksum as SQLite's pager computes it: the segment header's seed plus
// every 200th byte of the page, from the end.
std::uint32_t sqlite_record_checksum(std::uint32_t seed, const std::uint8_t* page) {
    std::uint32_t sum = seed;
    for (int i = static_cast<int>(kPageBytes) - 200; i > 0; i -= 200) sum += page[i];
    return sum;
}

struct JournalChecksumsOnDisk {
    bool magic_is_sqlites = false;  // SQLite's own magic number on disk (a journal in clear)
    int records = 0;                // records the hot journal's playback reads
    int stored_as_sqlites = 0;      // records whose stored checksum is SQLite's sum, as it is
    int unmasked_as_sqlites = 0;    // records whose stored checksum, unmasked, is SQLite's sum
};

JournalChecksumsOnDisk journal_checksums_on_disk(const std::string& path) {
    std::string journal = read_bytes(path + "-journal");
    const JournalLayout layout = journal_layout(journal);
    REQUIRE_FALSE(layout.records.empty());
    const UnwrappedKey key = unwrapped_data_key(read_bytes(path).substr(0, kKeyHeaderBytes), path, test_key());
    const Secret checksum_key = checksum_mask_key(key.data_key.data());
    JournalChecksumsOnDisk found;
    found.magic_is_sqlites = is_sqlite_journal_magic(bytes_at(journal, 0));
    std::vector<std::uint8_t> page(kPageBytes);
    for (const std::size_t record : layout.records) {
        std::size_t segment = 0;
        for (const std::size_t start : layout.segments) {
            if (start < record) segment = start;
        }
        const std::uint8_t* sealed = bytes_at(journal, record + 4);
        REQUIRE(open_page(key.page_key(), sealed, page.data(), PageBinding::journal_page(big_endian_at(journal, record))));
        const std::uint32_t sum = sqlite_record_checksum(big_endian_at(journal, segment + 12), page.data());
        std::uint8_t* stored = bytes_at(journal, record + 4 + kPageBytes);
        ++found.records;
        if (be32(stored) == sum) ++found.stored_as_sqlites;
        toggle_checksum_mask(checksum_key.data(), sealed + kUsableBytes, stored, 4);
        if (be32(stored) == sum) ++found.unmasked_as_sqlites;
    }
    return found;
}

// Rewrites the hot journal of the store at `path` as the version before masked checksums wrote it:
// SQLite's magic number in each segment's header, every record's checksum in clear.
void rewrite_journal_in_clear(const std::string& path) {
    std::string journal = read_bytes(path + "-journal");
    const JournalLayout layout = journal_layout(journal);
    const UnwrappedKey key = unwrapped_data_key(read_bytes(path).substr(0, kKeyHeaderBytes), path, test_key());
    const Secret checksum_key = checksum_mask_key(key.data_key.data());
    for (const std::size_t segment : layout.segments) REQUIRE(journal_magic_from_disk(bytes_at(journal, segment)));
    for (const std::size_t record : layout.records) {
        toggle_checksum_mask(checksum_key.data(), bytes_at(journal, record + 4 + kUsableBytes),
                             bytes_at(journal, record + 4 + kPageBytes), 4);
    }
    write_bytes(path + "-journal", journal);
}

}  // namespace

TEST_CASE("WAL checksums on disk: no frame's stored checksum is SQLite's sum of its page, and each unmasks to it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    check_masked(checksums_on_disk(path), 3);
    // And the store recovers every commit from it.
    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 400);
}

TEST_CASE("WAL checksums on disk: a transaction larger than the page cache, re-checksummed at commit, stays masked and recovers") {
    // A transaction that spills pages to the WAL and then changes them again has SQLite overwrite
    // those frames in place, and write every checksum from the first of them again at commit: each
    // such header goes to disk with its page sealed afresh, so a frame whose nonce did not change
    // since before the commit kept its stored checksum too (no nonce masks two values).
    TempDir dir;
    const auto path = dir.file("s.db");
    std::string before_commit;  // the WAL as the transaction left it just before its commit
    {
        Store store = open_ok(path, test_key());
        REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
        REQUIRE(store.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").is_ok());
        REQUIRE(store.exec("PRAGMA cache_size=8").is_ok());
        const Status spilled = with_transaction(store, [&]() -> Status {
            for (int i = 0; i < 1500; ++i) {
                auto& insert = store.cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
                insert.bind(1, i).bind(2, "first " + std::to_string(i) + std::string(300, 'f'));
                TSUNAGU_TRY(insert.run());
            }
            TSUNAGU_TRY(store.exec("UPDATE note SET body = 'second ' || id || substr(body, 7)"));
            before_commit = read_bytes(path + "-wal");
            return Status::ok();
        });
        REQUIRE(spilled.is_ok());
        REQUIRE(insert_rows(store, 5000, 10).is_ok());  // a later transaction after it
        close_leaving_wal(store, path);
    }
    const std::string after = read_bytes(path + "-wal");
    int resealed = 0, kept = 0;
    for (std::size_t at = kWalHeaderBytes; at + kWalFrameBytes <= before_commit.size(); at += kWalFrameBytes) {
        const std::size_t nonce_at = at + kFrameHeaderBytes + kUsableBytes;
        if (before_commit.compare(nonce_at, kNonceBytes, after, nonce_at, kNonceBytes) != 0) {
            ++resealed;
            continue;
        }
        ++kept;
        INFO("frame at " << at);
        CHECK(before_commit.compare(at, kWalFrameBytes, after, at, kWalFrameBytes) == 0);
    }
    CHECK(resealed > 0);  // the in-place overwrites and the re-checksumming ran
    CHECK(kept > 0);
    check_masked(checksums_on_disk(path), 101);
    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 1510);
    CHECK(query_int(store, "SELECT count(*) FROM note WHERE body LIKE 'second %'") == 1500);
}

TEST_CASE("WAL checksums on disk: a WAL an earlier version wrote in clear recovers whole, and stays in clear until it restarts") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    rewrite_wal_in_clear(path);
    REQUIRE(checksums_on_disk(path).stored_as_sqlites == checksums_on_disk(path).frames);
    {
        Store store = open_ok(path, test_key());
        CHECK(store.integrity_check().is_ok());
        CHECK(query_int(store, "SELECT count(*) FROM note") == 400);
        // Appended to the earlier version's WAL: in clear, or its recovery would end there.
        REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
        REQUIRE(insert_rows(store, 600, 100).is_ok());
        close_leaving_wal(store, path);
    }
    const ChecksumsOnDisk appended = checksums_on_disk(path);
    CHECK(appended.magic_is_sqlites);
    CHECK(appended.stored_as_sqlites == appended.frames);
    {
        Store store = open_ok(path, test_key());
        CHECK(query_int(store, "SELECT count(*) FROM note") == 500);
        // Once checkpointed, the WAL starts again: masked from then on.
        REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
        REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
        REQUIRE(insert_rows(store, 700, 100).is_ok());
        close_leaving_wal(store, path);
    }
    check_masked(checksums_on_disk(path), 1);
    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 600);
}

TEST_CASE("WAL checksums on disk: a WAL restarted over a longer one in clear recovers, and is salvaged, up to its own end") {
    // The usual upgrade: after a checkpoint the next write starts the WAL again from its start,
    // masked, over the earlier version's longer WAL, whose frames stay beyond.
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    rewrite_wal_in_clear(path);
    {
        Store store = open_ok(path, test_key());
        REQUIRE(store.exec("PRAGMA wal_autocheckpoint=0").is_ok());
        REQUIRE(store.exec("PRAGMA wal_checkpoint(PASSIVE)").is_ok());
        REQUIRE(insert_rows(store, 800, 10).is_ok());
        close_leaving_wal(store, path);
    }
    const ChecksumsOnDisk restarted = checksums_on_disk(path);
    check_masked(restarted, 1);
    REQUIRE(fs::file_size(path + "-wal") > kWalHeaderBytes + restarted.frames * kWalFrameBytes);  // the earlier WAL's frames beyond

    const auto copy = dir.file("copy.db");
    fs::copy_file(path, copy);
    fs::copy_file(path + "-wal", copy + "-wal");
    auto report = salvage_store(copy, test_key(), dir.file("saved.db"));
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->complete());
    CHECK(report->wal_frames == static_cast<std::uint32_t>(restarted.frames));
    Store saved = open_ok(dir.file("saved.db"), test_key());
    CHECK(query_int(saved, "SELECT count(*) FROM note") == 410);

    Store store = open_ok(path, test_key());
    CHECK(store.integrity_check().is_ok());
    CHECK(query_int(store, "SELECT count(*) FROM note") == 410);
}

TEST_CASE("WAL checksums on disk: salvage reads a WAL in clear, masked, or with a damaged magic number either way") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    bool damaged_header = false;
    SECTION("masked") {}
    SECTION("in clear, as an earlier version wrote it") { rewrite_wal_in_clear(path); }
    SECTION("masked, its magic number damaged") {
        flip_byte(path + "-wal", 2);
        damaged_header = true;
    }
    SECTION("in clear, its magic number damaged") {
        rewrite_wal_in_clear(path);
        flip_byte(path + "-wal", 2);
        damaged_header = true;
    }
    auto report = salvage_store(path, test_key(), dir.file("saved.db"));
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->complete());
    CHECK(report->wal_header_damaged == damaged_header);
    Store saved = open_ok(dir.file("saved.db"), test_key());
    CHECK(saved.integrity_check().is_ok());
    CHECK(query_int(saved, "SELECT count(*) FROM note") == 400);
}

TEST_CASE("WAL checksums on disk: the stored magic number names the byte order too, and only SQLite's own is altered") {
    for (const std::uint32_t magic : {0x377f0682u, 0x377f0683u}) {
        std::uint8_t header[4] = {static_cast<std::uint8_t>(magic >> 24), static_cast<std::uint8_t>(magic >> 16),
                                  static_cast<std::uint8_t>(magic >> 8), static_cast<std::uint8_t>(magic)};
        CHECK(wal_stored_in_clear(header));
        wal_magic_to_disk(header);
        CHECK_FALSE(wal_stored_in_clear(header));
        CHECK((be32(header) & 1) == (magic & 1));
        wal_magic_from_disk(header);
        CHECK(be32(header) == magic);
    }
    std::uint8_t other[4] = {0x12, 0x34, 0x56, 0x78};
    wal_magic_to_disk(other);
    CHECK(be32(other) == 0x12345678u);
    wal_magic_from_disk(other);
    CHECK(be32(other) == 0x12345678u);
}

TEST_CASE("WAL checksums on disk: a mask applied twice gives the checksum back, and another nonce or data key another mask") {
    const std::vector<std::uint8_t> data_key(kDataKeyBytes, 7), other_data_key(kDataKeyBytes, 8);
    const Secret key = checksum_mask_key(data_key.data());
    const Secret other_key = checksum_mask_key(other_data_key.data());
    std::uint8_t nonce[kNonceBytes] = {1}, other_nonce[kNonceBytes] = {2};
    const std::array<std::uint8_t, 8> checksum{1, 2, 3, 4, 5, 6, 7, 8};
    auto masked = checksum;
    toggle_checksum_mask(key.data(), nonce, masked.data());
    CHECK(masked != checksum);
    auto twice = masked;
    toggle_checksum_mask(key.data(), nonce, twice.data());
    CHECK(twice == checksum);
    auto with_other_nonce = checksum, with_other_key = checksum;
    toggle_checksum_mask(key.data(), other_nonce, with_other_nonce.data());
    toggle_checksum_mask(other_key.data(), nonce, with_other_key.data());
    CHECK(with_other_nonce != masked);
    CHECK(with_other_key != masked);
}

TEST_CASE("journal checksums on disk: no record's stored checksum is SQLite's sum of its page, and each unmasks to it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto crashed = dir.file("crashed.db");
    make_store(path, JournalMode::rollback);
    const auto committed = bodies(path);
    REQUIRE(committed.is_ok());
    copy_with_hot_journal(path, crashed);
    const JournalChecksumsOnDisk found = journal_checksums_on_disk(crashed);
    CHECK_FALSE(found.magic_is_sqlites);
    CHECK(found.records > 3);
    CHECK(found.stored_as_sqlites == 0);
    CHECK(found.unmasked_as_sqlites == found.records);
    // And the hot journal plays back whole: the rows as committed.
    const auto played = bodies(crashed);
    INFO(played.status().to_string());
    REQUIRE(played.is_ok());
    CHECK(*played == *committed);
}

TEST_CASE("journal checksums on disk: a hot journal an earlier version wrote in clear plays back whole, and is salvaged") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto crashed = dir.file("crashed.db");
    make_store(path, JournalMode::rollback);
    const auto committed = bodies(path);
    REQUIRE(committed.is_ok());
    copy_with_hot_journal(path, crashed);
    rewrite_journal_in_clear(crashed);
    const JournalChecksumsOnDisk in_clear = journal_checksums_on_disk(crashed);
    REQUIRE(in_clear.magic_is_sqlites);
    REQUIRE(in_clear.stored_as_sqlites == in_clear.records);

    const auto copy = dir.file("copy.db");
    fs::copy_file(crashed, copy);
    fs::copy_file(crashed + "-journal", copy + "-journal");
    auto report = salvage_store(copy, test_key(), dir.file("saved.db"), options_for(JournalMode::rollback));
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->complete());
    CHECK(report->journal_records == static_cast<std::uint32_t>(in_clear.records));

    const auto played = bodies(crashed);
    INFO(played.status().to_string());
    REQUIRE(played.is_ok());
    CHECK(*played == *committed);
}

TEST_CASE("journal checksums on disk: the stored magic number is not SQLite's, starts with a byte other than zero, and comes back") {
    const std::uint8_t sqlites[kJournalMagicBytes] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};
    std::uint8_t header[kJournalMagicBytes];
    std::memcpy(header, sqlites, sizeof header);
    CHECK(is_sqlite_journal_magic(header));
    CHECK(journal_magic_to_disk(header));
    CHECK_FALSE(is_sqlite_journal_magic(header));
    CHECK(header[0] != 0);  // SQLite takes a journal starting with a zero byte for no hot journal
    CHECK(journal_magic_from_disk(header));
    CHECK(std::memcmp(header, sqlites, sizeof header) == 0);
    std::uint8_t zeros[kJournalMagicBytes] = {};
    CHECK_FALSE(journal_magic_to_disk(zeros));
    CHECK_FALSE(journal_magic_from_disk(zeros));
}
