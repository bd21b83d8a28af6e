// Salvage of a damaged store (crypto/salvage.h): every committed version of every page gathered
// from the main file, a hot rollback journal and the WAL; the latest one that authenticates kept.
#include "crypto/salvage.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>

#include "crypto/src/big_endian.h"
#include "crypto/src/file_util.h"
#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/wal_format.h"
#include "crypto/src/checksum_masking.h"

namespace tsunagu {

using namespace crypto_detail;

namespace {

constexpr std::uint64_t kPage = kPageSize;
constexpr std::uint64_t kWalHeader = kWalHeaderBytes;
constexpr std::uint64_t kFrameHeader = kWalFrameHeaderBytes;
constexpr std::uint64_t kFrame = kFrameHeader + kPage;
constexpr std::uint64_t kJournalRecord = 4 + kPage + 4;  // page number, page, checksum

// One file of the damaged store, opened read-only; a file that does not exist reads as empty.
struct SourceFile {
    std::string path;
    UniqueFd fd;
    std::uint64_t size = 0;

    static Result<SourceFile> open(const std::string& path) {
        SourceFile file;
        file.path = path;
        file.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!file.fd) {
            if (errno == ENOENT) return file;
            return errno_status("cannot open " + path + " to salvage it");
        }
        struct stat st;
        if (::fstat(file.fd.get(), &st) != 0) return errno_status("cannot read the size of " + path);
        file.size = static_cast<std::uint64_t>(st.st_size);
        return file;
    }
    // Exactly `count` bytes at `offset` (the callers stay inside the file's size).
    Status read(void* out, std::uint64_t count, std::uint64_t offset) const {
        auto got = read_at(fd.get(), out, count, static_cast<off_t>(offset), path);
        if (!got) return got.status();
        if (*got != count) return Status(ErrorCode::io_error, path + " shrank while it was being salvaged");
        return Status::ok();
    }
};

// One sealed version of a page: where it lies and what it is bound to.
struct Version {
    const SourceFile* file;
    std::uint64_t offset;
    PageBinding binding;
    // A WAL frame whose header is damaged: it belongs to this page only if its body opens.
    bool page_unsure = false;
    // A main-file page a hot journal holds the committed version of: it may be the interrupted
    // transaction's, spilled into the file before it committed.
    bool maybe_uncommitted = false;
};

// Every committed version of every page, oldest first, and the database's size in pages.
struct PageVersions {
    std::vector<std::vector<Version>> of_page;  // indexed by page number (0 unused)
    std::uint32_t page_count = 0;

    std::vector<Version>& at(std::uint32_t page) {
        if (page >= of_page.size()) of_page.resize(page + 1);
        return of_page[page];
    }
};

// The main file's pages: the state at its last checkpoint (or commit, in rollback-journal mode).
void gather_main(const SourceFile& main, PageVersions& versions) {
    const std::uint64_t pages = (main.size - kHeaderBytes) / kPage;  // a cut last page has no version
    for (std::uint32_t page = 1; page <= pages; ++page) {
        versions.at(page).push_back({&main, kHeaderBytes + (page - 1) * kPage, PageBinding::main_page(page)});
    }
    versions.page_count = static_cast<std::uint32_t>(pages);
}

// A hot rollback journal: segments of [one sector of header: magic, record count, checksum seed,
// database size, sector size, page size][records], each record the committed content of a page the
// interrupted transaction changed. Its first record of a page is that page's committed version;
// the main file's own stays behind it as the fallback (it may be the transaction's).
Status gather_journal(const SourceFile& journal, PageVersions& versions, SalvageReport& report) {
    std::uint8_t header[28];
    if (journal.size < sizeof header) return Status::ok();
    // A segment's header as SQLite wrote it: its magic number stored as this version or an earlier
    // one wrote it (checksum_masking.h; salvage reads no record checksum).
    const auto read_header = [&](std::uint64_t at) -> Status {
        TSUNAGU_TRY(journal.read(header, sizeof header, at));
        journal_magic_from_disk(header);
        return Status::ok();
    };
    TSUNAGU_TRY(read_header(0));
    // A journal SQLite finished with (deleted, zeroed or cut to nothing) is not hot.
    if (!is_sqlite_journal_magic(header) || be32(header + 8) == 0) return Status::ok();
    const std::uint32_t original_pages = be32(header + 16);
    const std::uint64_t sector = be32(header + 20);
    // The database before the transaction: at most the main file's pages and those it journaled.
    const bool size_possible = original_pages <= versions.page_count + journal.size / kJournalRecord;
    if (be32(header + 24) != kPage || sector < 32 || sector > 65536 || (sector & (sector - 1)) != 0 ||
        !size_possible) {
        return Status(ErrorCode::corrupt, "the hot journal " + journal.path +
                                              " has a damaged header (page size, sector size or database size): it cannot be "
                                              "played back, and the main file may hold an unfinished transaction");
    }
    std::vector<bool> seen(original_pages + 1, false);
    for (std::uint64_t segment = 0; segment + sector <= journal.size;) {
        TSUNAGU_TRY(read_header(segment));
        const std::uint32_t records = be32(header + 8);
        if (!is_sqlite_journal_magic(header) || records == 0) break;  // never synced: not played
        std::uint64_t record = segment + sector;
        for (std::uint32_t i = 0; i < records; ++i, record += kJournalRecord) {
            if (record + kJournalRecord > journal.size) return Status::ok();  // cut short, as SQLite stops
            std::uint8_t number[4];
            TSUNAGU_TRY(journal.read(number, 4, record));
            const std::uint32_t page = be32(number);
            ++report.journal_records;
            if (page == 0 || page > original_pages || seen[page]) continue;  // truncated away, or later copy
            seen[page] = true;
            auto& of_page = versions.at(page);
            for (auto& older : of_page) older.maybe_uncommitted = true;
            of_page.push_back({&journal, record + 4, PageBinding::journal_page(page)});
        }
        segment = (record + sector - 1) / sector * sector;
    }
    versions.page_count = original_pages;  // pages the transaction added are cut off, as SQLite does
    return Status::ok();
}

// A page-sized buffer that holds a page's plaintext (record contents): wiped when dropped.
struct PlaintextPage {
    std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(kPage);
    PlaintextPage() = default;
    PlaintextPage(const PlaintextPage&) = delete;
    PlaintextPage& operator=(const PlaintextPage&) = delete;
    ~PlaintextPage() { sodium_memzero(bytes.data(), bytes.size()); }
};

// The WAL: [header: magic, version, page size, checkpoint, salts (16..24), checksums] then frames
// of [page number, database size after commit (0 if none), salts, checksums][page]. Its committed
// frames are those up to the last commit frame carrying the header's salts (a restarted WAL's
// older frames carry older ones). A frame before it with other salts has a damaged header: its body
// still counts where it opens under the page number the header names, which it is bound to.
Status gather_wal(const SourceFile& wal, const PageKey& key, PageVersions& versions, SalvageReport& report) {
    if (wal.size < kWalHeader + kFrame) return Status::ok();
    std::uint8_t header[kWalHeader];
    TSUNAGU_TRY(wal.read(header, kWalHeader, 0));
    // Frame headers as SQLite wrote them (checksum_masking.h): each checksum unmasked with its frame's
    // nonce, unless the WAL is an earlier version's, in clear. A magic number of neither form (a
    // damaged header) is read both ways, and the reading under which more frames chain is kept.
    const bool in_clear = wal_stored_in_clear(header);
    std::uint8_t magic[4];
    std::memcpy(magic, header, 4);
    wal_magic_from_disk(header);
    const bool marked_masked = std::memcmp(magic, header, 4) != 0;
    const std::uint64_t frames = (wal.size - kWalHeader) / kFrame;
    std::vector<std::uint8_t> headers(frames * kFrameHeader);
    for (std::uint64_t i = 0; i < frames; ++i) {
        TSUNAGU_TRY(wal.read(headers.data() + i * kFrameHeader, kFrameHeader, kWalHeader + i * kFrame));
    }
    std::vector<std::vector<std::uint8_t>> readings;
    if (!in_clear) {
        const Secret checksum_key = checksum_mask_key(key.key);
        std::vector<std::uint8_t> unmasked = headers;
        for (std::uint64_t i = 0; i < frames; ++i) {
            std::uint8_t nonce[kNonceBytes];
            TSUNAGU_TRY(wal.read(nonce, kNonceBytes, kWalHeader + i * kFrame + kFrameHeader + kUsableBytes));
            toggle_checksum_mask(checksum_key.data(), nonce, unmasked.data() + i * kFrameHeader + 16);
        }
        readings.push_back(std::move(unmasked));
    }
    if (in_clear || !marked_masked) readings.push_back(std::move(headers));
    std::size_t reading = 0;  // the one in use: salts, page numbers and commit sizes are alike in all
    const auto frame_header = [&](std::uint64_t i) { return readings[reading].data() + i * kFrameHeader; };
    // A damaged WAL header (its checksum fails): the first frame, written with it, carries the
    // salts it had. Unless that frame's header is plainly damaged too (no page number: damage to
    // the file's first block takes it with the WAL's): then the salts of the first frame that a
    // commit after it carries, and the first frame counts as unplaced. (Not whenever the first
    // frame's salts carry no commit: a restarted WAL whose first transaction was cut short by a
    // crash starts with uncommitted frames, and an older generation's commits follow them.)
    const bool header_whole = wal_header_whole(header, kPage);
    report.wal_header_damaged = !header_whole;
    std::uint8_t salts[8];
    std::memcpy(salts, header_whole ? header + 16 : frame_header(0) + 8, 8);
    if (!header_whole && be32(frame_header(0)) == 0) {
        std::set<std::string> later;  // the salts of the commit frames from frame i on
        for (std::uint64_t i = frames; i-- > 0;) {
            std::string carried(reinterpret_cast<const char*>(frame_header(i) + 8), 8);
            if (be32(frame_header(i) + 4) != 0) later.insert(carried);
            if (later.contains(carried)) std::memcpy(salts, carried.data(), 8);
        }
    }
    const auto current = [&](std::uint64_t i) { return std::memcmp(frame_header(i) + 8, salts, 8) == 0; };
    const auto is_commit = [&](std::uint64_t i) { return be32(frame_header(i) + 4) != 0; };
    // Whether each frame follows the one before it as SQLite wrote them: its body opens and its
    // checksum continues the one stored before it (salts aside: a frame whose salts alone were
    // altered still follows); a frame whose body is damaged, by its salts, and so the frame after
    // it when its checksum is masked (with the nonce in the damaged body's tail: unmasked, the
    // checksum may be garbage). An older generation's frame, or a stale one of this generation
    // beyond a shorter transaction written over a torn one, does not.
    std::vector<bool> follows;
    std::size_t best_follows = 0, best_reading = 0;
    for (std::size_t r = 0; r < readings.size(); ++r) {
        reading = r;
        const bool masked = !in_clear && r == 0;
        std::uint8_t chain_header[kWalHeader];
        std::memcpy(chain_header, header, kWalHeader);
        std::vector<bool> follows_here(frames, false);
        std::vector<std::uint8_t> sealed(kPage);
        PlaintextPage plain;
        const auto follows_with = [&](std::uint64_t i) {
            const std::uint8_t* previous = i == 0 ? chain_header + 24 : frame_header(i - 1) + 16;
            return wal_frame_chains(chain_header, previous, frame_header(i), plain.bytes.data(), kPage);
        };
        bool previous_opened = true;
        for (std::uint64_t i = 0; i < frames; ++i) {
            TSUNAGU_TRY(wal.read(sealed.data(), kPage, kWalHeader + i * kFrame + kFrameHeader));
            const bool opens = open_page(key, sealed.data(), plain.bytes.data(), PageBinding::wal_frame(be32(frame_header(i))));
            if (!opens) {
                follows_here[i] = current(i);
            } else {
                follows_here[i] = follows_with(i) || (masked && !previous_opened && current(i));
                // A damaged header may name the wrong byte order: the one under which frame 1 follows frame 0.
                if (!header_whole && i == 1 && !follows_here[i]) {
                    chain_header[3] ^= 1;
                    if (follows_with(i)) follows_here[i] = true;
                    else chain_header[3] ^= 1;
                }
            }
            previous_opened = opens;
        }
        const auto count = static_cast<std::size_t>(std::count(follows_here.begin(), follows_here.end(), true));
        if (r == 0 || count > best_follows) {  // a tie keeps the first: masked, as this version writes
            follows = std::move(follows_here);
            best_follows = count;
            best_reading = r;
        }
    }
    reading = best_reading;
    // The first commit frame of this generation from frame `from` on, or frames.
    const auto next_commit = [&](std::uint64_t from) {
        for (std::uint64_t j = from; j < frames; ++j) {
            if (current(j) && is_commit(j)) return j;
        }
        return frames;
    };
    // Frames up to and including the last commit, past a frame that does not follow only where a
    // later transaction follows that frame's own (a crash tears only the last transaction: a break
    // before a later one is damage, which salvage reads past; one in the last is where it ends).
    std::uint64_t committed = 0;
    for (std::uint64_t i = 0; i < frames; ++i) {
        if (!follows[i]) {
            const std::uint64_t own = current(i) && is_commit(i) ? i : next_commit(i + 1);
            if (own >= frames || next_commit(own + 1) >= frames) break;
        }
        if ((current(i) || follows[i]) && is_commit(i)) committed = i + 1;
    }
    // A database grows only by pages its WAL writes: no page number or size beyond this is real.
    const std::uint64_t most_pages = versions.page_count + committed;
    for (std::uint64_t i = 0; i < committed; ++i) {
        const std::uint8_t* h = frame_header(i);
        const std::uint32_t number = be32(h);
        if (number == 0 || number > most_pages) {
            ++report.unplaced_frames;
            continue;
        }
        versions.at(number).push_back(
            {&wal, kWalHeader + i * kFrame + kFrameHeader, PageBinding::wal_frame(number), !current(i)});
        if ((current(i) || follows[i]) && be32(h + 4) != 0) {
            versions.page_count = static_cast<std::uint32_t>(std::min<std::uint64_t>(be32(h + 4), most_pages));
        }
    }
    report.wal_frames = static_cast<std::uint32_t>(committed);
    return Status::ok();
}

// Each page's latest version that opens, sealed anew as a main-file page of `out`, after the key
// header. Pages with no readable version are written as zeros (SQLite's integrity check then
// names what they held).
Status write_pages(const PageVersions& versions, const PageKey& key, int out, const std::string& out_path,
                   SalvageReport& report) {
    std::vector<std::uint8_t> sealed(kPage);
    PlaintextPage plain, chosen;
    for (std::uint32_t page = 1; page <= versions.page_count; ++page) {
        static const std::vector<Version> none;
        const auto& candidates = page < versions.of_page.size() ? versions.of_page[page] : none;
        bool found = false, newest_damaged = false, uncommitted = false;
        for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
            TSUNAGU_TRY(it->file->read(sealed.data(), kPage, it->offset));
            if (open_page(key, sealed.data(), plain.bytes.data(), it->binding)) {
                if (!found) {
                    chosen.bytes.swap(plain.bytes);
                    uncommitted = it->maybe_uncommitted;
                }
                found = true;
            } else if (it->page_unsure) {
                ++report.unplaced_frames;  // its header named another page, or no page at all
            } else {
                ++report.damaged_versions;
                if (!found) newest_damaged = true;
            }
        }
        if (!found) {
            report.lost_pages.push_back(page);
            std::fill(chosen.bytes.begin(), chosen.bytes.end(), 0);
        } else if (newest_damaged) {
            (uncommitted ? report.uncommitted_versions : report.older_versions).push_back(page);
        }
        seal_page(key, chosen.bytes.data(), sealed.data(), PageBinding::main_page(page));
        TSUNAGU_TRY(write_all_at(out, sealed.data(), kPage, static_cast<off_t>(kHeaderBytes + (page - 1) * kPage),
                                 out_path));
    }
    report.pages = versions.page_count;
    return Status::ok();
}

// "page 7" or "pages 3, 9 and 12 more".
std::string pages_named(const std::vector<std::uint32_t>& pages) {
    std::string out = pages.size() == 1 ? "page " : "pages ";
    for (std::size_t i = 0; i < pages.size() && i < 10; ++i) out += (i ? ", " : "") + std::to_string(pages[i]);
    if (pages.size() > 10) out += " and " + std::to_string(pages.size() - 10) + " more";
    return out;
}

void remove_store_files(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
}

// Writes the rebuilt store at `partial` and checks it; on failure removes what it wrote.
Status build_checked(const SourceFile& main, const OpenedHeader& header, const PageVersions& versions,
                     const KeySource& key, const StoreOptions& options, const std::string& partial,
                     SalvageReport& report) {
    Status built = [&]() -> Status {
        UniqueFd out(::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out) return errno_status("cannot create " + partial);
        TSUNAGU_TRY(write_all_at(out.get(), header.bytes.data(), header.bytes.size(), 0, partial));
        TSUNAGU_TRY(write_pages(versions, {header.data_key.data(), header.slot.cipher}, out.get(), partial, report));
        TSUNAGU_TRY(sync_fd(out.get(), partial));
        StoreOptions check = options;
        check.create_if_missing = false;
        auto store = Store::open(partial, key, check);
        Status consistent = store ? store->integrity_check() : store.status();
        if (store && consistent.code() == ErrorCode::corrupt && !report.complete()) {
            // Pages that fell back to older versions may leave an index and its table telling
            // different stories. Indexes hold nothing of their own: rebuilt from the tables, they
            // agree again (the tables' b-trees must be sound for that, which the check then says).
            if (store->exec("REINDEX").is_ok()) {
                report.reindexed = true;
                consistent = store->integrity_check();
            }
        }
        if (store) store->close();
        // The last connection's close checkpoints and removes the WAL; a WAL left would not follow
        // the rename, and what REINDEX wrote would be lost with it.
        if (consistent.is_ok() && file_exists(partial + "-wal")) {
            return Status(ErrorCode::io_error, "the salvaged store " + partial +
                                                   " kept a WAL on closing (a full disk?); free space and salvage again");
        }
        ::unlink((partial + "-shm").c_str());  // the closed connections' index: nothing in it
        if (consistent.code() == ErrorCode::corrupt) {
            return Status(ErrorCode::corrupt, "what " + main.path + " still holds does not make a consistent store (" +
                                                  report.summary() + "; SQLite: " + consistent.message() +
                                                  "). Its files are unchanged: keep them");
        }
        return consistent;
    }();
    if (!built) remove_store_files(partial);
    return built;
}

}  // namespace

std::string SalvageReport::summary() const {
    std::string out = "rebuilt " + std::to_string(pages) + " pages from the main file";
    if (journal_records) out += ", " + std::to_string(journal_records) + " records of a hot journal";
    if (wal_frames) out += ", " + std::to_string(wal_frames) + " committed WAL frames";
    if (wal_header_damaged) out += "; the WAL's header was damaged (its frames were read by their first frame's salts)";
    if (damaged_versions == 0 && complete()) return out + (wal_header_damaged ? "; nothing was lost" : "; nothing was damaged");
    out += "; " + std::to_string(damaged_versions) + " damaged page versions";
    if (complete()) return out + ", each replaced by a later readable one: nothing was lost";
    if (!older_versions.empty()) {
        out += "; " + pages_named(older_versions) +
               " fell back to an older version (what later commits wrote on them is missing)";
    }
    if (!uncommitted_versions.empty()) {
        out += "; " + pages_named(uncommitted_versions) +
               " fell back to the version in the main file, which the interrupted transaction may have written";
    }
    if (!lost_pages.empty()) out += "; " + pages_named(lost_pages) + " with no readable version";
    if (reindexed) out += "; the indexes were rebuilt from their tables";
    if (unplaced_frames) {
        out += "; " + std::to_string(unplaced_frames) +
               " WAL frames with damaged headers could not be placed (a page may hold an older version)";
    }
    return out;
}

Result<SalvageReport> salvage_store(const std::string& path, const KeySource& key, const std::string& target,
                                    const StoreOptions& options) {
    ensure_sodium();
    auto source_path = absolute_path(path);
    if (!source_path) return source_path.status();
    auto target_path = absolute_path(target);
    if (!target_path) return target_path.status();
    if (file_exists(*target_path)) {
        return Status(ErrorCode::invalid_argument, *target_path + " already exists; salvage into a new file");
    }
    auto main = SourceFile::open(*source_path);
    if (!main) return main.status();
    if (!main->fd) return Status(ErrorCode::not_found, "no store at " + *source_path + " to salvage");
    auto header = open_key_header(main->fd.get(), key, *source_path);
    if (!header) return header.status();
    auto journal = SourceFile::open(*source_path + "-journal");
    if (!journal) return journal.status();
    auto wal = SourceFile::open(*source_path + "-wal");
    if (!wal) return wal.status();

    SalvageReport report;
    PageVersions versions;
    gather_main(*main, versions);
    TSUNAGU_TRY(gather_journal(*journal, versions, report));
    TSUNAGU_TRY(gather_wal(*wal, {header->data_key.data(), header->slot.cipher}, versions, report));
    if (versions.page_count == 0) {
        return Status(ErrorCode::corrupt, *source_path + " holds no page to salvage: only its key header is left");
    }
    // Built beside the target and renamed once checked and durable: `target` appears whole or not
    // at all, even if the process is killed.
    const std::string partial = *target_path + ".partial";
    remove_store_files(partial);
    TSUNAGU_TRY(build_checked(*main, *header, versions, key, options, partial, report));
    if (Status moved = move_into_place(partial, *target_path, "salvaged store"); !moved) {
        remove_store_files(partial);
        return moved;
    }
    TSUNAGU_TRY(sync_parent_dir(*target_path));
    return report;
}

}  // namespace tsunagu
