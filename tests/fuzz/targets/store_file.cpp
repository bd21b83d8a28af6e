// Fuzz target store_file: an encrypted store's files as whoever holds them may alter them (a lost
// phone's replica, a backup in someone else's storage: backups are stores too). The input is a
// script of edits to a store made once per process with the project's own writer: one table,
// whose rows were committed four times, the first two checkpointed into the main file and the
// last two still in its WAL (copied while the store was open, as a crash would leave it).
// The altered files are opened with the right passphrase and every row is read:
//   - opening, or reading, refuses with a message; it never crashes or throws;
//   - what is read is a state that was committed: rows 0..n-1 of one commit, each exactly as
//     written, never a shortened, altered or mixed table (losing the WAL, or its tail, goes back
//     to an earlier commit: the files alone cannot tell, see the README);
//   - a commit is dropped only if it is the WAL's last, or the WAL was altered where it is not
//     sealed (its header, a frame's header, its length, or a frame body copied over another, which
//     opens as the same page): damage to a frame that a later commit follows is refused, never
//     read as a crash's torn frame (which would drop the later commits without a word);
//   - where the open refuses, salvage (crypto/salvage.h) never writes the altered files; a store
//     it makes passes SQLite's integrity check and holds only rows as written (unless it names a
//     page it took from the main file, a hot journal's version of it damaged, or the journal was
//     altered where it is not sealed); when it reports
//     itself complete and nothing unsealed was touched, it holds the last commit whole;
//   - it answers within seconds: a header may ask for any passphrase cost (its checksum is not
//     keyed, so the script can make it hold again), and a store must not be worked through for
//     days before it is found altered.
//
// With flag 4 the store is in rollback-journal mode instead, with the files a crash in the middle
// of a transaction leaves: the first two commits in the main file, some pages of a third, never
// committed, spilled into it, and the hot journal holding those pages' committed content. Its
// one committed state is the first two commits'. The journal's header fields, its records' page
// numbers and checksums are SQLite's own and not sealed, so where an edit touched one of them,
// cut the journal short or dropped it, the read may be a half-rolled-back state (SQLite alone
// behaves so; the README names it) and only the other properties are checked.
//
// The script: a byte of flags (1: make each key slot's checksum hold again after the edits;
// 2: drop the WAL, or the journal, as if it were lost; 4: the rollback-journal store), then
// edits. Each edit is a byte saying what and where (what % 4; 4: in the WAL or journal rather
// than the main file), an offset (3 bytes, little-endian, taken modulo the file's size plus one),
// a length byte, and what the edit needs:
//   0 write the bytes that follow, 1 xor them in, 2 cut the file there (the length unused),
//   3 copy length * 64 bytes from the offset in the next 3 bytes (pages and frames moved).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sodium.h>

#include "crypto/salvage.h"
#include "crypto/store.h"
#include "fuzz/files.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/watchdog.h"
#include "support/journal_layout.h"
#include "support/temp_dir.h"

namespace tsunagu::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr int kCommits = 4, kRowsPerCommit = 25, kCheckpointed = 2;
constexpr std::size_t kSlotBytes = 4096, kChecksumAt = 136;  // crypto/src/key_header.cpp's layout
constexpr auto kPatience = std::chrono::seconds(10);  // the dearest cost a header may ask is about 1 s

std::string body_of(int row) { return "note " + std::to_string(row) + std::string(180, static_cast<char>('a' + row % 26)); }

KeySource passphrase() { return KeySource::passphrase("a phone's passphrase", KdfParams::fast_for_tests()); }

StoreOptions options_for(JournalMode mode) {
    StoreOptions options;
    options.journal_mode = mode;
    return options;
}

void ok(const Status& s) {
    if (!s.is_ok()) fail("making the pristine store failed: " + s.message(), "");
}

Status commit_rows(Store& store, int commit) {
    return with_transaction(store, [&]() -> Status {
        for (int row = commit * kRowsPerCommit; row < (commit + 1) * kRowsPerCommit; ++row) {
            auto& insert = store.cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
            insert.bind(1, row).bind(2, body_of(row));
            TSUNAGU_TRY(insert.run());
        }
        return Status::ok();
    });
}

// The pristine files, made once per mode: the main file and the WAL, or the main file and the
// hot journal.
struct Pristine {
    std::string main, log;
    std::vector<std::pair<std::size_t, std::size_t>> unsealed;  // the log's [from, to) ranges
    std::size_t played_to = 0;  // the end of the log's last frame, or last record played back
    JournalMode mode = JournalMode::wal;
};

Pristine make_wal_store(const std::string& path) {
    auto store = Store::open(path, passphrase());
    if (!store) fail("the pristine store did not open: " + store.status().message(), "");
    ok(store->exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"));
    for (int commit = 0; commit < kCommits; ++commit) {
        ok(commit_rows(*store, commit));
        if (commit + 1 == kCheckpointed) ok(store->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    }
    Pristine p{read_file(path), read_file(path + "-wal"), {}, 0};
    if (p.log.empty()) fail("the pristine store left nothing in its WAL", "");
    // SQLite's WAL: a 32-byte header, then frames of a 24-byte header and a sealed page.
    p.unsealed.emplace_back(0, 32);
    for (std::size_t frame = 32; frame + 24 + 4096 <= p.log.size(); frame += 24 + 4096) {
        p.unsealed.emplace_back(frame, frame + 24);
        p.played_to = frame + 24 + 4096;
    }
    return p;
}

// The journal's ranges an edit may not touch for the exact property: see the top.
void map_journal(Pristine& p) {
    const testing::JournalLayout layout = testing::journal_layout(p.log);
    if (layout.records.empty()) fail("the pristine journal holds no record a playback would read", "");
    for (const std::size_t header : layout.segments) p.unsealed.emplace_back(header, header + layout.kHeaderFields);
    for (const std::size_t at : layout.records) {
        p.unsealed.emplace_back(at, at + 4);
        p.unsealed.emplace_back(at + 4 + 4096, at + layout.kRecordBytes);
    }
    p.played_to = layout.played_to;
}

Pristine make_journal_store(const std::string& path) {
    auto store = Store::open(path, passphrase(), options_for(JournalMode::rollback));
    if (!store) fail("the pristine store did not open: " + store.status().message(), "");
    ok(store->exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"));
    for (int commit = 0; commit < kCheckpointed; ++commit) ok(commit_rows(*store, commit));
    const std::string committed = read_file(path);
    ok(store->exec("PRAGMA cache_size=2"));  // the transaction spills pages into the main file
    Pristine p;
    p.mode = JournalMode::rollback;
    const Status abandoned = with_transaction(*store, [&]() -> Status {
        TSUNAGU_TRY(store->exec("UPDATE note SET body = 'never committed ' || id"));
        TSUNAGU_TRY(commit_rows(*store, kCheckpointed));
        p.main = read_file(path);
        p.log = read_file(path + "-journal");
        return Status(ErrorCode::conflict, "abandoned, as a crash would");
    });
    if (abandoned.code() != ErrorCode::conflict) ok(abandoned);
    if (p.log.empty() || p.main == committed) fail("the pristine transaction left no hot journal or spilled nothing", "");
    map_journal(p);
    return p;
}

const Pristine& pristine(const fs::path& dir, JournalMode mode) {
    static const Pristine wal = make_wal_store((dir / "pristine.db").string());
    static const Pristine journal = make_journal_store((dir / "pristine-journal.db").string());
    return mode == JournalMode::wal ? wal : journal;
}

// Reads the script's bytes in order; past its end, zeros.
class Script {
  public:
    explicit Script(std::string_view bytes) : bytes_(bytes) {}
    bool done() const { return at_ >= bytes_.size(); }
    std::uint8_t byte() { return at_ < bytes_.size() ? static_cast<std::uint8_t>(bytes_[at_++]) : 0; }
    std::size_t offset_in(std::size_t size) {
        const std::size_t raw = byte() | (std::size_t{byte()} << 8) | (std::size_t{byte()} << 16);
        return raw % (size + 1);
    }

  private:
    std::string_view bytes_;
    std::size_t at_ = 0;
};

// Applies one edit. Returns whether it touched what the WAL or journal leaves unsealed (see the top).
bool apply_edit(Script& script, std::string& main, std::string& log, const Pristine& pristine) {
    const std::uint8_t what = script.byte();
    std::string& file = (what & 4) ? log : main;
    const std::size_t at = script.offset_in(file.size());
    const std::size_t length = script.byte();
    const auto touches_unsealed = [&](std::size_t from, std::size_t to) {
        if (&file != &log) return false;
        for (const auto& [begin, end] : pristine.unsealed) {
            if (from < end && begin < to) return true;
        }
        return false;
    };
    bool unsealed = false;
    switch (what % 4) {
        case 0:
        case 1:
            unsealed = touches_unsealed(at, at + length);
            for (std::size_t i = 0; i < length && !script.done(); ++i) {
                const char b = static_cast<char>(script.byte());
                if (at + i < file.size()) {
                    file[at + i] = what % 4 == 0 ? b : static_cast<char>(file[at + i] ^ b);
                } else {
                    file.push_back(b);
                }
            }
            break;
        case 2:
            unsealed = &file == &log && pristine.played_to > 0 && at < pristine.played_to;
            file.resize(at);
            break;
        case 3: {
            const std::size_t from = script.offset_in(file.size());
            const std::string moved = file.substr(from, length * 64);
            // In the WAL a page is in many frames, bound to its number only: a body copied over
            // another of the same page opens, and SQLite's checksum then ends recovery there.
            unsealed = touches_unsealed(at, at + moved.size()) || (&file == &log && pristine.mode == JournalMode::wal);
            file.replace(at, std::min(moved.size(), file.size() - at), moved);
            break;
        }
    }
    return unsealed;
}

// Makes each slot's BLAKE2b checksum hold over its first 136 bytes, as key_header.cpp checks it.
void make_checksums_hold(std::string& main) {
    for (std::size_t slot = 0; slot < 2 && (slot + 1) * kSlotBytes <= main.size(); ++slot) {
        auto* at = reinterpret_cast<std::uint8_t*>(main.data()) + slot * kSlotBytes;
        crypto_generichash(at + kChecksumAt, 32, at, kChecksumAt, nullptr, 0);
    }
}

// Opens the store at `path` and reads every row: the refusal met on the way, if any. `log_intact`:
// the WAL or journal was not altered where it is not sealed, nor lost. A journal altered so may
// read as a half-rolled-back state; a WAL may then drop commits, but each it keeps is whole.
Status open_and_read(const std::string& path, JournalMode mode, bool log_intact, std::string_view input) {
    const bool exact = mode == JournalMode::wal || log_intact;
    auto store = Store::open(path, passphrase(), options_for(mode));
    if (!store) return store.status();
    auto scan = store->prepare("SELECT id, body FROM note ORDER BY id");
    int rows = 0;
    Status error = scan.status();
    while (error.is_ok()) {
        auto row = scan->step();
        if (!row) {
            error = row.status();
            break;
        }
        if (!*row) break;
        check(!exact || (scan->column_int(0) == rows && scan->column_text(1) == body_of(rows)),
              "read row " + std::to_string(rows) + " other than it was written", input);
        ++rows;
    }
    if (!error.is_ok() || !exact) return error;
    const int committed = kCheckpointed * kRowsPerCommit;
    check(mode == JournalMode::wal ? rows % kRowsPerCommit == 0 && rows >= committed : rows == committed,
          "read " + std::to_string(rows) + " rows: a state that was never committed", input);
    check(mode != JournalMode::wal || !log_intact || rows >= (kCommits - 1) * kRowsPerCommit,
          "read " + std::to_string(rows) + " rows: a commit that a later one follows was dropped", input);
    return Status::ok();
}

// Salvages the altered store into a new file (crypto/salvage.h): it never writes the altered
// files; a store it makes passes SQLite's integrity check and holds only rows as written (each page
// version it uses authenticates); and where it reports itself complete and nothing unsealed was
// touched, it is the last committed state, whole.
void salvage_and_read(const fs::path& path, const fs::path& log_path, JournalMode mode, bool log_intact,
                      const std::string& main, const std::optional<std::string>& log, std::string_view input) {
    const fs::path target = path.parent_path() / "salvaged.db";
    std::error_code ignored;
    for (const char* suffix : {"", "-shm", "-wal", "-journal"}) fs::remove(target.string() + suffix, ignored);
    auto report = salvage_store(path.string(), passphrase(), target.string(), options_for(mode));
    check(read_file(path) == main && (!log || read_file(log_path) == *log), "salvage changed the altered files",
          input);
    if (!report) {
        check(!report.status().message().empty(), "a salvage refused without a message", input);
        check(!fs::exists(target), "a refused salvage left a store behind", input);
        return;
    }
    auto store = Store::open(target.string(), passphrase(), options_for(mode));
    check(store.is_ok(), "a salvaged store does not open: " + store.status().message(), input);
    check(store->integrity_check().is_ok(), "a salvaged store fails the integrity check", input);
    auto scan = store->prepare("SELECT id, body FROM note ORDER BY id");
    check(scan.is_ok(), "a salvaged store has no table: " + scan.status().message(), input);
    int rows = 0;
    bool dense = true;  // ids 0..rows-1
    while (true) {
        auto row = scan->step();
        check(row.is_ok(), "reading a salvaged store failed: " + row.status().message(), input);
        if (!*row) break;
        const auto id = static_cast<int>(scan->column_int(0));
        // A page whose committed version in a hot journal is damaged falls back to the main file's,
        // which the interrupted transaction may have written: the report names it. A journal altered
        // where it is not sealed (a record's page number) hides which pages it covers, as from SQLite.
        check(scan->column_text(1) == body_of(id) || !report->uncommitted_versions.empty() ||
                  (mode == JournalMode::rollback && !log_intact),
              "a salvaged row " + std::to_string(id) + " other than written", input);
        dense = dense && id == rows;
        ++rows;
    }
    if (report->complete() && log_intact) {
        const int last = (mode == JournalMode::wal ? kCommits : kCheckpointed) * kRowsPerCommit;
        check(dense && rows == last, "a complete salvage read " + std::to_string(rows) + " rows, not the last commit's",
              input);
    }
}

void run(std::string_view input) {
    static const testing::TempDir dir("fuzz-store-file", scratch_base());
    Script script(input);
    const std::uint8_t flags = script.byte();
    const JournalMode mode = (flags & 4) ? JournalMode::rollback : JournalMode::wal;
    const Pristine& files = pristine(dir.path(), mode);
    std::string main = files.main, log = files.log;
    bool unsealed = (flags & 2) != 0;  // the WAL or the hot journal lost
    while (!script.done()) unsealed = apply_edit(script, main, log, files) || unsealed;
    if (flags & 1) make_checksums_hold(main);

    const fs::path path = dir.path() / "altered.db";
    const std::string log_path = path.string() + (mode == JournalMode::wal ? "-wal" : "-journal");
    std::error_code ignored;
    for (const char* suffix : {"-shm", "-wal", "-journal"}) fs::remove(path.string() + suffix, ignored);
    write_file(path, main);
    if (!(flags & 2)) write_file(log_path, log);

    static Watchdog watchdog(kPatience);
    watchdog.start(input, "took more than 10 s to open and read an altered store");
    const Status read = open_and_read(path.string(), mode, !unsealed, input);
    watchdog.stop();
    check(!read.message().empty() || read.is_ok(), "a refusal without a message", input);
    if (read.is_ok()) return;  // nothing to salvage
    // The files as the failed open left them (a hot journal it refused stays as it was).
    const std::string main_now = read_file(path);
    const std::optional<std::string> log_now =
        fs::exists(log_path) ? std::optional<std::string>(read_file(log_path)) : std::nullopt;
    watchdog.start(input, "took more than 10 s to salvage an altered store");
    salvage_and_read(path, log_path, mode, !unsealed, main_now, log_now, input);
    watchdog.stop();
}

std::vector<std::string> seeds() {
    auto edit = [](std::uint8_t what, std::size_t at, std::uint8_t length, std::string data = "") {
        std::string e{static_cast<char>(what), static_cast<char>(at & 0xff), static_cast<char>((at >> 8) & 0xff),
                      static_cast<char>((at >> 16) & 0xff), static_cast<char>(length)};
        return e + data;
    };
    auto flags = [](char f) { return std::string(1, f); };
    const std::size_t page = 8192 + 4096;  // the store's second page
    return {
        flags(0),                                                          // as written
        flags(2),                                                          // the WAL lost
        flags(0) + edit(1, page + 100, 1, "\x01"),                         // a bit flipped in a page
        flags(0) + edit(5, 32 + 100, 1, "\x01"),                           // and in a WAL frame
        flags(0) + edit(2, page, 0),                                       // cut at a page
        flags(4),                                                          // a hot journal, as a crash left it
        flags(4) + edit(5, 512 + 4 + 100, 1, "\x01"),                      // a bit flipped in its first record
        flags(4) + edit(1, page + 100, 1, "\x01"),                         // a spilled page flipped
        flags(6),                                                          // the hot journal lost
        flags(2) + edit(3, page, 64, std::string("\x00\x40\x00", 3)),     // a page moved over another
        // Absurd costs that libsodium would still run: 2^31 passes, 1 TiB.
        flags(1) + edit(0, 32, 8, std::string("\0\0\0\x80\0\0\0\0", 8)),
        flags(1) + edit(0, 40, 8, std::string("\0\0\0\0\0\1\0\0", 8)),
    };
}

}  // namespace

const Target& target() {
    static const Target t{"store_file", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
