// Salvage: the store Store::open refuses as damaged is rebuilt into a new one holding every commit
// its files still hold, saying exactly what, if anything, is missing; the damaged files are only read.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "crypto/salvage.h"
#include "crypto/store.h"
#include "support/journal_layout.h"
#include "support/temp_dir.h"
#include "tests/crypto/damaged_stores.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using namespace tsunagu::testing;
namespace fs = std::filesystem;

namespace {

// The bytes of a store's files, to show salvage never writes them.
struct FilesAsFound {
    std::string main, wal, journal;
    explicit FilesAsFound(const std::string& path)
        : main(read_bytes(path)),
          wal(fs::exists(path + "-wal") ? read_bytes(path + "-wal") : ""),
          journal(fs::exists(path + "-journal") ? read_bytes(path + "-journal") : "") {}
    bool operator==(const FilesAsFound&) const = default;
};

Result<SalvageReport> salvage(const std::string& path, const std::string& target,
                              JournalMode mode = JournalMode::wal) {
    return salvage_store(path, test_key(), target, options_for(mode));
}

// A store with three commits in its WAL (store_with_three_commits_in_wal), a frame of the first of
// them damaged: one whose page a later frame holds again, or the last version of a page with an
// older one. Returns the damaged frame's page.
std::uint32_t store_with_damaged_frame(const std::string& path, FrameVersion kind) {
    const auto starts = store_with_three_commits_in_wal(path);
    const auto pages = wal_frame_pages(path);
    const std::size_t victim = wal_frame_holding(path, kind, starts[1]);
    REQUIRE(victim < pages.size());
    damage_frame(path, wal_frame_offset(victim));
    return pages[victim];
}

// Salvages the store at `path` into `target`, which must succeed, and opens the new store (the
// same key opens it) after checking its integrity.
Store salvaged_ok(const std::string& path, const std::string& target, SalvageReport& report) {
    auto salvaged = salvage(path, target);
    INFO(salvaged.status().to_string());
    REQUIRE(salvaged.is_ok());
    report = *salvaged;
    Store store = open_ok(target, test_key());
    CHECK(store.integrity_check().is_ok());
    return store;
}

// A store in rollback-journal mode and a copy of its files as a crash in the middle of a
// transaction leaves them (copy_with_hot_journal), with the rows as committed.
struct CrashedJournalStore {
    std::string crashed;
    std::vector<std::string> committed;

    explicit CrashedJournalStore(const TempDir& dir) : crashed(dir.file("crashed.db")) {
        const auto path = dir.file("s.db");
        make_store(path, JournalMode::rollback);
        auto rows = bodies(path);
        REQUIRE(rows.is_ok());
        committed = std::move(*rows);
        copy_with_hot_journal(path, crashed);
    }
};

std::int64_t rows_between(Store& store, int from, int to) {
    return query_int(store, "SELECT count(*) FROM note WHERE id >= " + std::to_string(from) + " AND id < " +
                                std::to_string(to));
}

}  // namespace

TEST_CASE("a store whose files are whole salvages into the same rows, its files untouched") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    const FilesAsFound before(path);

    SalvageReport report;
    Store saved = salvaged_ok(path, dir.file("saved.db"), report);
    CHECK(report.complete());
    CHECK(report.damaged_versions == 0);
    CHECK(report.wal_frames == wal_frame_pages(path).size());
    CHECK_THAT(report.summary(), Catch::Contains("nothing was damaged"));
    CHECK(FilesAsFound(path) == before);
    CHECK(query_int(saved, "SELECT count(*) FROM note") == 400);
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        CHECK_FALSE(fs::exists(dir.file("saved.db.partial") + suffix));  // nothing left beside it
    }
}

TEST_CASE(
    "a damaged WAL frame whose page a later commit wrote again costs nothing: the store open refuses "
    "is salvaged whole, with every commit after the damage") {
    TempDir dir;
    const auto path = dir.file("s.db");
    // The table's root, say, which every transaction rewrites.
    store_with_damaged_frame(path, FrameVersion::superseded);
    REQUIRE(Store::open(path, test_key()).status().code() == ErrorCode::corrupt);
    fs::remove(path + "-shm");
    const FilesAsFound before(path);

    SalvageReport report;
    Store saved = salvaged_ok(path, dir.file("saved.db"), report);
    CHECK(report.complete());
    CHECK(report.damaged_versions == 1);
    CHECK_THAT(report.summary(), Catch::Contains("nothing was lost"));
    CHECK(FilesAsFound(path) == before);
    CHECK(query_int(saved, "SELECT count(*) FROM note") == 400);
    CHECK(rows_between(saved, 400, 500) == 100);  // the last commit, which open refused to reach
}

TEST_CASE(
    "a damaged WAL frame holding its page's last version falls back to the version before it, and "
    "the report names the page whose later rows are missing") {
    TempDir dir;
    const auto path = dir.file("s.db");
    // The table's last leaf at the checkpoint, which the first transaction in the WAL filled.
    const std::uint32_t page = store_with_damaged_frame(path, FrameVersion::last_with_older);

    SalvageReport report;
    Store saved = salvaged_ok(path, dir.file("saved.db"), report);
    CHECK_FALSE(report.complete());
    CHECK(report.older_versions == std::vector<std::uint32_t>{page});
    CHECK_THAT(report.summary(), Catch::Contains("page " + std::to_string(page) + " fell back"));
    CHECK(rows_between(saved, 0, 100) == 100);    // checkpointed before the damage
    CHECK(rows_between(saved, 200, 300) < 100);   // the rows the damaged frame added to the page
    CHECK(rows_between(saved, 200, 300) > 80);    // ... and only those
    CHECK(rows_between(saved, 300, 500) == 200);  // every later commit
}

TEST_CASE(
    "a WAL frame or WAL header damaged in its clear fields (salts, checksums) still counts where the "
    "sealed bodies open: salvage reaches the commits after it, which open refuses to read past") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const auto starts = store_with_three_commits_in_wal(path);
    bool wal_header = false;
    SECTION("the first salt of the second transaction's first frame") { flip_byte(path + "-wal", starts[1] + 8); }
    SECTION("the checksum of the second transaction's first frame") { flip_byte(path + "-wal", starts[1] + 19); }
    SECTION("the WAL header's salts") {
        flip_byte(path + "-wal", 18);
        wal_header = true;
    }
    SECTION("the WAL header's checksum") {
        flip_byte(path + "-wal", 27);
        wal_header = true;
    }
    REQUIRE(Store::open(path, test_key()).status().code() == ErrorCode::corrupt);
    fs::remove(path + "-shm");

    SalvageReport report;
    Store saved = salvaged_ok(path, dir.file("saved.db"), report);
    CHECK(report.complete());
    CHECK(query_int(saved, "SELECT count(*) FROM note") == 400);
    CHECK(report.wal_header_damaged == wal_header);
    if (wal_header) CHECK_THAT(report.summary(), Catch::Contains("the WAL's header was damaged") && Catch::EndsWith("nothing was lost"));
}

TEST_CASE(
    "salvage follows SQLite's checksum chain: frames that do not continue it are left out whole, and it "
    "rebuilds the state the store opens at") {
    // Crash images the store itself opens at the last commit that chains (see the tamper tests).
    TempDir dir;
    const auto copy = dir.file("copy.db");
    std::string a, b, c;  // the values that state holds in tables a, b and (when there) c
    SECTION("a torn last transaction over an older generation's frames: neither the older frame taken as its "
            "page's newest version nor the torn commit frame as committed") {
        store_with_torn_tail_over_older_generation(dir.file("s.db"), copy);
        a = "a4", b = "b0";
    }
    SECTION("a longer transaction's stale frames beyond a shorter one written over them under the same salts") {
        store_with_stale_frames_beyond_a_shorter_transaction(dir.file("s.db"), copy);
        a = "a1", b = "b0", c = "u";
    }
    SalvageReport report;
    Store saved = salvaged_ok(copy, dir.file("saved.db"), report);
    CHECK(query_text(saved, "SELECT v FROM a WHERE id = 1") == a);
    CHECK(query_text(saved, "SELECT v FROM b WHERE id = 1") == b);
    if (!c.empty()) CHECK(query_text(saved, "SELECT v FROM c WHERE id = 1") == c);
}

TEST_CASE("a WAL whose first block is damaged (its header and the first frame's) is salvaged from the frames after it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    {
        std::string wal = read_bytes(path + "-wal");
        wal.replace(0, 32 + 24, std::string(32 + 24, '\0'));
        write_bytes(path + "-wal", wal);
    }
    REQUIRE(Store::open(path, test_key()).status().code() == ErrorCode::corrupt);
    fs::remove(path + "-shm");

    SalvageReport report;
    Store saved = salvaged_ok(path, dir.file("saved.db"), report);
    CHECK(report.wal_header_damaged);
    CHECK(report.wal_frames > 0);           // the commits were found, not taken for an empty WAL
    CHECK_FALSE(report.complete());         // the first frame's page cannot be placed
    CHECK(report.unplaced_frames == 1);
    CHECK(query_int(saved, "SELECT count(*) FROM note WHERE id >= 400") == 100);  // the last commit, whole
}

TEST_CASE("a page with no readable version is named, and nothing is left at the target") {
    TempDir dir;
    const auto path = dir.file("s.db");
    const std::uint32_t pages = make_store(path, JournalMode::wal);  // all in the main file, no WAL
    flip_byte(path, page_offset(pages / 2) + 700);
    const FilesAsFound before(path);

    auto report = salvage(path, dir.file("saved.db"));
    REQUIRE_FALSE(report.is_ok());
    CHECK(report.status().code() == ErrorCode::corrupt);
    CHECK_THAT(report.status().message(),
               Catch::Contains("page " + std::to_string(pages / 2) + " with no readable version") &&
                   Catch::Contains("keep them"));
    CHECK(FilesAsFound(path) == before);
    CHECK_FALSE(fs::exists(dir.file("saved.db")));
    CHECK_FALSE(fs::exists(dir.file("saved.db.partial")));
}

TEST_CASE("a hot rollback journal is played back by salvage: the committed rows, every one") {
    TempDir dir;
    const CrashedJournalStore store(dir);
    const std::string& crashed = store.crashed;
    const FilesAsFound before(crashed);

    auto report = salvage(crashed, dir.file("saved.db"), JournalMode::rollback);
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->complete());
    CHECK(report->journal_records == journal_layout(before.journal).records.size());
    CHECK(FilesAsFound(crashed) == before);
    const auto saved = bodies(dir.file("saved.db"));
    REQUIRE(saved.is_ok());
    CHECK(*saved == store.committed);
}

TEST_CASE(
    "a hot journal with a damaged record is salvaged with that page's version in the main file, "
    "which the report names as possibly the interrupted transaction's") {
    TempDir dir;
    const CrashedJournalStore store(dir);
    const std::string& crashed = store.crashed;
    const std::string journal = read_bytes(crashed + "-journal");
    const std::size_t record = journal_layout(journal).records.at(1);
    const std::uint32_t page = big_endian_at(journal, record);
    flip_byte(crashed + "-journal", record + 4 + 100);
    REQUIRE_FALSE(bodies(crashed).is_ok());  // open refuses it

    auto report = salvage(crashed, dir.file("saved.db"), JournalMode::rollback);
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->uncommitted_versions == std::vector<std::uint32_t>{page});
    CHECK(report->older_versions.empty());
    CHECK_THAT(report->summary(), Catch::Contains("page " + std::to_string(page) + " fell back to the version in the main file"));
    const auto saved = bodies(dir.file("saved.db"));
    REQUIRE(saved.is_ok());
    REQUIRE(saved->size() == store.committed.size());
    std::size_t differing = 0;  // at most the rows of that one page: a page holds about 13
    for (std::size_t i = 0; i < saved->size(); ++i) differing += (*saved)[i] != store.committed[i];
    CHECK(differing <= 13);
}

TEST_CASE("salvage refuses a wrong key, an existing target and a plain SQLite file, changing nothing") {
    TempDir dir;
    const auto path = dir.file("s.db");
    store_with_three_commits_in_wal(path);
    const FilesAsFound before(path);

    SECTION("a wrong key") {
        auto report = salvage_store(path, test_key(2), dir.file("saved.db"));
        CHECK(report.status().code() == ErrorCode::wrong_key);
        CHECK_FALSE(fs::exists(dir.file("saved.db")));
    }
    SECTION("a target that exists") {
        write_bytes(dir.file("saved.db"), "someone's file");
        auto report = salvage(path, dir.file("saved.db"));
        CHECK(report.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(report.status().message(), Catch::Contains("already exists"));
        CHECK(read_bytes(dir.file("saved.db")) == "someone's file");
    }
    SECTION("a plain SQLite database") {
        write_bytes(dir.file("plain.db"), std::string("SQLite format 3") + '\0' + std::string(4080, 'x'));
        auto report = salvage(dir.file("plain.db"), dir.file("saved.db"));
        CHECK(report.status().code() == ErrorCode::not_a_store);
    }
    SECTION("no store at all") {
        auto report = salvage(dir.file("absent.db"), dir.file("saved.db"));
        CHECK(report.status().code() == ErrorCode::not_found);
    }
    CHECK(FilesAsFound(path) == before);
}
