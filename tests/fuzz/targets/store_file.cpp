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
//   - it answers within seconds: a header may ask for any passphrase cost (its checksum is not
//     keyed, so the script can make it hold again), and a store must not be worked through for
//     days before it is found altered.
//
// The script: a byte of flags (1: make each key slot's checksum hold again after the edits;
// 2: drop the WAL, as if it were lost), then edits. Each edit is a byte saying what and where
// (what % 4; 4: in the WAL rather than the main file), an offset (3 bytes, little-endian, taken
// modulo the file's size plus one), a length byte, and what the edit needs:
//   0 write the bytes that follow, 1 xor them in, 2 cut the file there (the length unused),
//   3 copy length * 64 bytes from the offset in the next 3 bytes (pages and frames moved).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <sodium.h>

#include "crypto/store.h"
#include "fuzz/files.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/watchdog.h"
#include "support/temp_dir.h"

namespace tsunagu::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr int kCommits = 4, kRowsPerCommit = 25, kCheckpointed = 2;
constexpr std::size_t kSlotBytes = 4096, kChecksumAt = 136;  // crypto/src/key_header.cpp's layout
constexpr auto kPatience = std::chrono::seconds(10);  // the dearest cost a header may ask is about 1 s

std::string body_of(int row) { return "note " + std::to_string(row) + std::string(180, static_cast<char>('a' + row % 26)); }

KeySource passphrase() { return KeySource::passphrase("a phone's passphrase", KdfParams::fast_for_tests()); }

// The pristine files, made once.
struct Pristine {
    std::string main, wal;
};

const Pristine& pristine(const fs::path& dir) {
    static const Pristine files = [&] {
        const std::string path = (dir / "pristine.db").string();
        auto store = Store::open(path, passphrase());
        if (!store) fail("the pristine store did not open: " + store.status().message(), "");
        auto ok = [](Status s) {
            if (!s.is_ok()) fail("making the pristine store failed: " + s.message(), "");
        };
        ok(store->exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"));
        for (int commit = 0; commit < kCommits; ++commit) {
            ok(with_transaction(*store, [&]() -> Status {
                for (int row = commit * kRowsPerCommit; row < (commit + 1) * kRowsPerCommit; ++row) {
                    auto& insert = store->cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
                    insert.bind(1, row).bind(2, body_of(row));
                    TSUNAGU_TRY(insert.run());
                }
                return Status::ok();
            }));
            if (commit + 1 == kCheckpointed) ok(store->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
        }
        Pristine p{read_file(path), read_file(path + "-wal")};
        if (p.wal.empty()) fail("the pristine store left nothing in its WAL", "");
        return p;
    }();
    return files;
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

void apply_edit(Script& script, std::string& main, std::string& wal) {
    const std::uint8_t what = script.byte();
    std::string& file = (what & 4) ? wal : main;
    const std::size_t at = script.offset_in(file.size());
    const std::size_t length = script.byte();
    switch (what % 4) {
        case 0:
        case 1:
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
            file.resize(at);
            break;
        case 3: {
            const std::size_t from = script.offset_in(file.size());
            const std::string moved = file.substr(from, length * 64);
            file.replace(at, std::min(moved.size(), file.size() - at), moved);
            break;
        }
    }
}

// Makes each slot's BLAKE2b checksum hold over its first 136 bytes, as key_header.cpp checks it.
void make_checksums_hold(std::string& main) {
    for (std::size_t slot = 0; slot < 2 && (slot + 1) * kSlotBytes <= main.size(); ++slot) {
        auto* at = reinterpret_cast<std::uint8_t*>(main.data()) + slot * kSlotBytes;
        crypto_generichash(at + kChecksumAt, 32, at, kChecksumAt, nullptr, 0);
    }
}

// Opens the store at `path` and reads every row, checking each: the refusal met on the way, if any.
Status open_and_read(const std::string& path, std::string_view input) {
    auto store = Store::open(path, passphrase());
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
        check(scan->column_int(0) == rows && scan->column_text(1) == body_of(rows),
              "read row " + std::to_string(rows) + " other than it was written", input);
        ++rows;
    }
    if (!error.is_ok()) return error;
    check(rows % kRowsPerCommit == 0 && rows >= kCheckpointed * kRowsPerCommit,
          "read " + std::to_string(rows) + " rows: a state that was never committed", input);
    return Status::ok();
}

void run(std::string_view input) {
    static const testing::TempDir dir("fuzz-store-file", scratch_base());
    const Pristine& files = pristine(dir.path());
    std::string main = files.main, wal = files.wal;
    Script script(input);
    const std::uint8_t flags = script.byte();
    while (!script.done()) apply_edit(script, main, wal);
    if (flags & 1) make_checksums_hold(main);

    const fs::path path = dir.path() / "altered.db";
    std::error_code ignored;
    fs::remove(path.string() + "-shm", ignored);
    write_file(path, main);
    if (flags & 2) {
        fs::remove(path.string() + "-wal", ignored);
    } else {
        write_file(path.string() + "-wal", wal);
    }

    static Watchdog watchdog(kPatience);
    watchdog.start(input, "took more than 10 s to open and read an altered store");
    const Status read = open_and_read(path.string(), input);
    watchdog.stop();
    check(!read.message().empty() || read.is_ok(), "a refusal without a message", input);
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
