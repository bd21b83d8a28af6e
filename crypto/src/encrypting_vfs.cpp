// The encrypting VFS shim. See encrypting_vfs.h for the contract.
//
// File layouts it understands (page size P = 4096, fixed):
//   main database  [8 KiB key header][page 1][page 2]...; SQLite's offset o is file offset o+8192.
//   WAL            [32-byte header] then frames of [24-byte frame header][P-byte page body].
//                  Bodies are sealed with the frame's page number as associated data (not the
//                  salts: SQLite zeroes them in headers it rewrites at commit, see page_cipher.h).
//                  Frame checksums are stored masked, the magic number marking it (checksum_masking.h);
//                  a header goes to disk only with a fresh seal of its body, in one write.
//   rollback journal  [sector-sized header] then records of [4-byte page number][P bytes][4-byte
//                  checksum]. Bodies sit at offsets = 4 (mod 8), which no other write uses.
// An authentication failure reads as an error in the main file (it is damage or tampering). In the
// WAL it is an error in a frame already validated, or in one a later transaction follows (as is a
// frame header whose salts or checksum no longer follow the frames before it, with a later
// transaction after it, and a WAL header failing its checksum with committed frames of its own
// after it); else a torn frame in the recovery scan (zeros: SQLite's own checksum then ends
// recovery there, exactly as after a crash mid-write). In the journal it is an error for a whole record (synced
// before the main file was touched, so never torn) and a torn record only where the file ends.
#include "crypto/src/encrypting_vfs.h"

#include <sodium.h>
#include <sqlite3.h>

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "crypto/src/big_endian.h"
#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/src/wal_format.h"
#include "crypto/src/checksum_masking.h"

namespace tsunagu::crypto_detail {
namespace {

constexpr sqlite3_int64 kPage = static_cast<sqlite3_int64>(kPageSize);
constexpr sqlite3_int64 kMainOffset = static_cast<sqlite3_int64>(kHeaderBytes);
constexpr sqlite3_int64 kWalHeader = kWalHeaderBytes;
constexpr sqlite3_int64 kFrameHeader = kWalFrameHeaderBytes;
constexpr sqlite3_int64 kFrame = kFrameHeader + kPage;

// ---- key registry -------------------------------------------------------------------------

struct RegistryEntry {
    std::shared_ptr<FileKeys> keys;
    int users = 0;
};

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, RegistryEntry>& registry() {
    static std::map<std::string, RegistryEntry> r;
    return r;
}

std::shared_ptr<FileKeys> find_keys(const char* path) {
    if (path == nullptr) return nullptr;
    std::lock_guard lock(registry_mutex());
    auto it = registry().find(path);
    return it == registry().end() ? nullptr : it->second.keys;
}

// ---- files ------------------------------------------------------------------------------

struct FileState {
    FileState() = default;
    FileState(const FileState&) = delete;
    FileState& operator=(const FileState&) = delete;
    // Scratch holds plaintext (a page opened for a partial read, a frame read in pieces).
    ~FileState() { sodium_memzero(scratch.data(), scratch.size()); }

    sqlite3_file* real = nullptr;
    FileKind kind = FileKind::none;
    std::shared_ptr<FileKeys> keys;
    std::vector<std::uint8_t> scratch = std::vector<std::uint8_t>(kFrame);
    // The last small metadata write, so sealing the body that follows needs no read-back:
    // a WAL frame header (24 bytes) or a journal record's page number (4 bytes).
    sqlite3_int64 last_meta_offset = -1;
    std::uint8_t last_meta[kFrameHeader] = {};
    int last_meta_size = 0;
    // A WAL frame header held back (in last_meta) to go to disk in one write with its body:
    // see hold_frame_header().
    bool header_held = false;
    // WAL only: SQLite's recovery scan is under way on this handle. It begins by reading the WAL
    // header alone and then reads whole frames, without writing and without reading a body alone.
    // Only that scan needs a whole frame's fit with the frames before and after it (damage that
    // recovery would take for a tear); the only other whole-frame reads, the re-checksumming of
    // a transaction's frames that SQLite overwrote in place, read frames that by design no longer
    // follow, and checking each against the rest of the WAL made a large transaction quadratic.
    bool recovering = false;
    // The lock SQLite holds on this file (SQLITE_LOCK_NONE ... EXCLUSIVE), as its xLock and xUnlock
    // last set it.
    int lock_level = SQLITE_LOCK_NONE;
    // Journal only: where the body this handle last sealed or read lies, and its nonce, for the
    // record's checksum, which SQLite writes or reads right after it (checksum_masking.h); and
    // whether the journal's header named it one an earlier version wrote, checksums in clear.
    sqlite3_int64 journal_body_at = -1;
    std::uint8_t journal_body_nonce[kNonceBytes] = {};
    bool journal_in_clear = false;

    PageKey key() const { return {keys->data_key.data(), keys->cipher}; }
    const std::uint8_t* checksum_key() const { return keys->checksum_key.data(); }

    void note_corrupt(std::uint32_t page, FileKind where, CorruptPart part = CorruptPart::page) {
        keys->corrupt_page.store(page);
        keys->corrupt_part.store(static_cast<int>(part));
        keys->corrupt_kind.store(static_cast<int>(where));
    }
    // Bytes [offset, offset+size) as last written, or read back from the file.
    int metadata_at(sqlite3_int64 offset, int size, std::uint8_t* out) {
        if (last_meta_offset == offset && last_meta_size == size) {
            std::memcpy(out, last_meta, static_cast<std::size_t>(size));
            return SQLITE_OK;
        }
        return real->pMethods->xRead(real, out, size, offset);
    }
    void remember_metadata(const void* data, int size, sqlite3_int64 offset) {
        if (size != kFrameHeader && size != 4) return;
        std::memcpy(last_meta, data, static_cast<std::size_t>(size));
        last_meta_offset = offset;
        last_meta_size = size;
    }
};

struct EncryptedFile {
    sqlite3_file base;  // what SQLite sees; must be first
    FileState* state;
};

FileState& state_of(sqlite3_file* f) { return *reinterpret_cast<EncryptedFile*>(f)->state; }

// ---- held frame headers ------------------------------------------------------------------------
// SQLite writes each WAL frame as two writes, its 24-byte header and then its page. The shim holds
// the header back and writes it together with the sealed page: one system call per frame instead
// of two. A held header reaches the disk before anything else can observe the file: before any
// other operation on the WAL file, and before this thread publishes the WAL index (shared-memory
// lock or barrier, file lock or unlock, sync, on any file), since SQLite writes frames and then
// publishes them on one thread within one call.

thread_local FileState* held_on_this_thread = nullptr;

// `s` holds no header any more: it was written, goes with its body, or the file is closing.
void let_go_of_header(FileState& s) {
    s.header_held = false;
    if (held_on_this_thread == &s) held_on_this_thread = nullptr;
}

int write_header_with_body_resealed(FileState& s);
int generation_masked(FileState& s, bool& masked);

// Writes the held header, if any. On failure the error is returned and the header stays held by
// its file, to be written (or the error reported again) before anything else on that file and at
// its close; but no longer by this thread: the file may be closed on another thread (a store
// moves between threads), which could not clear this thread's pointer, and the next operation of
// this thread on any file would read the freed state. (SQLite publishes no frame whose write
// failed: the pointer is only there for headers written with their bodies.)
int write_held_header(FileState& s) {
    if (!s.header_held) return SQLITE_OK;
    bool masked = true;
    int rc = generation_masked(s, masked);
    if (rc == SQLITE_OK) {
        rc = masked ? write_header_with_body_resealed(s)
                    : s.real->pMethods->xWrite(s.real, s.last_meta, static_cast<int>(kFrameHeader), s.last_meta_offset);
    }
    if (rc != SQLITE_OK) {
        if (held_on_this_thread == &s) held_on_this_thread = nullptr;
        return rc;
    }
    let_go_of_header(s);
    return SQLITE_OK;
}

// Before anything that can publish frames to other connections.
int write_headers_held_by_this_thread() {
    return held_on_this_thread ? write_held_header(*held_on_this_thread) : SQLITE_OK;
}

// Called with no header held by `s`. One held header per thread: another file's goes first.
int hold_frame_header(FileState& s, const std::uint8_t* header, sqlite3_int64 offset) {
    if (int rc = write_headers_held_by_this_thread(); rc != SQLITE_OK) return rc;
    std::memcpy(s.last_meta, header, kFrameHeader);
    s.last_meta_offset = offset;
    s.last_meta_size = kFrameHeader;
    s.header_held = true;
    held_on_this_thread = &s;
    return SQLITE_OK;
}

int write_held_headers(FileState& s) {
    if (int rc = write_held_header(s); rc != SQLITE_OK) return rc;
    return write_headers_held_by_this_thread();
}

// Runs `op` on the state of `f` once the headers it and this thread hold are on disk.
template <typename Op>
int after_held_headers(sqlite3_file* f, Op op) {
    FileState& s = state_of(f);
    if (int rc = write_held_headers(s); rc != SQLITE_OK) return rc;
    return op(s);
}

// For releasing a lock: `op` runs even when writing a held header fails (a lock must never be
// kept by an error), and that failure is returned after it.
template <typename Op>
int releasing_after_held_headers(sqlite3_file* f, Op op) {
    FileState& s = state_of(f);
    const int held = write_held_headers(s);
    const int rc = op(s);
    return rc != SQLITE_OK ? rc : held;
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i]) return false;
    return true;
}

// Page 1 must carry the fixed page size and reserve, or pages could not hold nonce and tag.
bool page_one_layout_ok(const std::uint8_t* page) {
    const unsigned page_size = (unsigned(page[16]) << 8) | page[17];
    return page_size == kPageSize && page[20] == kReservedBytes;
}

// ---- main database file ------------------------------------------------------------------

// `noted`: whether a page that fails is noted as corrupt (for the error SQLite's answer becomes).
int read_main_page(FileState& s, std::uint8_t* page, sqlite3_int64 page_index, bool noted = true) {
    const auto page_number = static_cast<std::uint32_t>(page_index + 1);
    int rc = s.real->pMethods->xRead(s.real, page, static_cast<int>(kPage),
                                     page_index * kPage + kMainOffset);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        if (all_zero(page, kPageSize)) return rc;  // past the end: SQLite expects zeros
        if (noted) s.note_corrupt(page_number, FileKind::main);  // the file ends inside this page
        return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK) return rc;
    if (!open_page(s.key(), page, page, PageBinding::main_page(page_number))) {
        if (noted) s.note_corrupt(page_number, FileKind::main);
        return SQLITE_IOERR_DATA;
    }
    return SQLITE_OK;
}

int read_main(FileState& s, std::uint8_t* out, int amount, sqlite3_int64 offset) {
    if (offset % kPage == 0 && amount == kPage) return read_main_page(s, out, offset / kPage);
    // Partial reads (the 100-byte header, the change counter): whole pages through scratch.
    const sqlite3_int64 end = offset + amount;
    for (sqlite3_int64 start = offset - offset % kPage; start < end; start += kPage) {
        const bool header_before_lock = start == 0 && s.lock_level == SQLITE_LOCK_NONE;
        int rc = read_main_page(s, s.scratch.data(), start / kPage, !header_before_lock);
        if (rc == SQLITE_IOERR_DATA && header_before_lock) {
            // The database header, read once as the store opens, before any lock and so before a
            // hot journal is played back or the WAL recovered. A page 1 torn by a power cut (a
            // checkpoint copying it, a commit rewriting it) fails to open here, yet the journal or
            // the WAL holds it whole; SQLite reads it again, whole and under its lock, once that
            // has run. So it reads as an empty header now (as from an empty file), and is not
            // noted as corrupt (a note left here would name page 1 in the next unrelated error):
            // a page 1 damaged for good is refused, and noted, by that later read.
            rc = SQLITE_IOERR_SHORT_READ;
        }
        const sqlite3_int64 from = std::max(start, offset);
        const sqlite3_int64 to = std::min(start + kPage, end);
        if (rc == SQLITE_IOERR_SHORT_READ) {
            std::memset(out + (from - offset), 0, static_cast<std::size_t>(end - from));
            return rc;
        }
        if (rc != SQLITE_OK) return rc;
        std::memcpy(out + (from - offset), s.scratch.data() + (from - start),
                    static_cast<std::size_t>(to - from));
    }
    return SQLITE_OK;
}

int write_main(FileState& s, const std::uint8_t* in, int amount, sqlite3_int64 offset) {
    if (offset % kPage != 0 || amount % kPage != 0) return SQLITE_IOERR_WRITE;
    for (sqlite3_int64 done = 0; done < amount; done += kPage) {
        const sqlite3_int64 page_index = (offset + done) / kPage;
        const std::uint8_t* page = in + done;
        if (page_index == 0 && !page_one_layout_ok(page)) {
            s.keys->bad_layout.store(true);
            return SQLITE_IOERR_WRITE;
        }
        seal_page(s.key(), page, s.scratch.data(),
                  PageBinding::main_page(static_cast<std::uint32_t>(page_index + 1)));
        int rc = s.real->pMethods->xWrite(s.real, s.scratch.data(), static_cast<int>(kPage),
                                          page_index * kPage + kMainOffset);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

// ---- WAL file ----------------------------------------------------------------------------

sqlite3_int64 frame_start(sqlite3_int64 frame) { return kWalHeader + frame * kFrame; }

PageBinding wal_binding(const std::uint8_t* frame_header) {
    return PageBinding::wal_frame(be32(frame_header));
}

// True when [offset, offset + amount) is exactly one frame's page body.
bool is_frame_body(int amount, sqlite3_int64 offset) {
    return amount == kPage && offset >= kWalHeader + kFrameHeader &&
           (offset - kWalHeader) % kFrame == kFrameHeader;
}

// Sets `masked` to whether the frames of the WAL's current generation are stored masked
// (checksum_masking.h): unless its header, as on disk, carries SQLite's own magic (an earlier version's
// WAL, in clear). A WAL too short to have a header is empty: the one this version writes will be.
// A failed read is an error: taken for either answer, it would misread every checksum.
int generation_masked(FileState& s, bool& masked) {
    masked = true;
    if (s.keys->wal_masked.load(std::memory_order_acquire)) return SQLITE_OK;
    std::uint8_t magic[4];
    const int rc = s.real->pMethods->xRead(s.real, magic, 4, 0);
    if (rc == SQLITE_IOERR_SHORT_READ) return SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    if (wal_stored_in_clear(magic)) {
        masked = false;
        return SQLITE_OK;
    }
    std::uint8_t translated[4];
    std::memcpy(translated, magic, 4);
    wal_magic_from_disk(translated);
    if (std::memcmp(translated, magic, 4) != 0) s.keys->wal_masked.store(true, std::memory_order_release);
    return SQLITE_OK;  // ours, or a damaged header (read as ours: recovery then judges it)
}

// Turns bytes [offset, offset + amount) of the WAL as read from disk into `bytes` back into what
// SQLite wrote: its magic number, and each frame checksum they hold (in whole or in part), unmasked
// with the nonce of the frame's body (in `bytes` too, or read from disk; a body past the file's
// end leaves its checksum as it is: a torn frame). Runs before any body in `bytes` is opened,
// which wipes its nonce.
int as_sqlite_wrote(FileState& s, std::uint8_t* bytes, int amount, sqlite3_int64 offset) {
    const sqlite3_int64 end = offset + amount;
    if (offset == 0 && amount >= 4) wal_magic_from_disk(bytes);
    constexpr sqlite3_int64 kChecksumAt = 16;
    if (end <= kWalHeader + kChecksumAt) return SQLITE_OK;
    bool masked = true;
    if (int rc = generation_masked(s, masked); rc != SQLITE_OK || !masked) return rc;
    for (sqlite3_int64 frame = offset <= kWalHeader ? 0 : (offset - kWalHeader) / kFrame;
         frame_start(frame) + kChecksumAt < end; ++frame) {
        const sqlite3_int64 field = frame_start(frame) + kChecksumAt;
        if (field + 8 <= offset) continue;
        const sqlite3_int64 nonce_at = frame_start(frame) + kFrameHeader + kUsableBytes;
        std::uint8_t nonce[kNonceBytes];
        if (nonce_at >= offset && nonce_at + static_cast<sqlite3_int64>(kNonceBytes) <= end) {
            std::memcpy(nonce, bytes + (nonce_at - offset), kNonceBytes);
        } else {
            const int rc = s.real->pMethods->xRead(s.real, nonce, static_cast<int>(kNonceBytes), nonce_at);
            if (rc == SQLITE_IOERR_SHORT_READ) continue;
            if (rc != SQLITE_OK) return rc;
        }
        std::uint8_t checksum[8] = {};
        const sqlite3_int64 from = std::max(field, offset);
        const sqlite3_int64 to = std::min(field + 8, end);
        std::memcpy(checksum + (from - field), bytes + (from - offset), static_cast<std::size_t>(to - from));
        toggle_checksum_mask(s.checksum_key(), nonce, checksum);
        std::memcpy(bytes + (from - offset), checksum + (from - field), static_cast<std::size_t>(to - from));
    }
    return SQLITE_OK;
}

// The header of the frame at `header_at` as SQLite last wrote it: as this handle last wrote it, or
// read back from disk and unmasked.
int frame_header_as_written(FileState& s, sqlite3_int64 header_at, std::uint8_t* out) {
    if (s.last_meta_offset == header_at && s.last_meta_size == kFrameHeader) {
        std::memcpy(out, s.last_meta, kFrameHeader);
        return SQLITE_OK;
    }
    if (int rc = s.real->pMethods->xRead(s.real, out, static_cast<int>(kFrameHeader), header_at); rc != SQLITE_OK) {
        return rc;
    }
    return as_sqlite_wrote(s, out, static_cast<int>(kFrameHeader), header_at);
}

// `frame` (header and body, as SQLite wrote them) sealed in place: the body sealed with a fresh
// nonce, and the header's checksum masked with it when the generation is stored masked.
void seal_frame(FileState& s, std::uint8_t* frame, bool masked) {
    std::uint8_t* body = frame + kFrameHeader;
    seal_page(s.key(), body, body, wal_binding(frame));
    if (masked) toggle_checksum_mask(s.checksum_key(), body + kUsableBytes, frame + 16);
}

// The held header of a frame whose body SQLite does not write after it (it rewrites the checksums
// of a transaction's frames at commit once it has overwritten one in place): written with its body
// as on disk, opened and sealed afresh, so that no nonce masks two checksums. A body that does not
// open was never this header's (SQLite read it whole, through the shim, just before): refused.
int write_header_with_body_resealed(FileState& s) {
    std::uint8_t* frame = s.scratch.data();
    std::memcpy(frame, s.last_meta, kFrameHeader);
    const sqlite3_int64 header_at = s.last_meta_offset;
    int rc = s.real->pMethods->xRead(s.real, frame + kFrameHeader, static_cast<int>(kPage), header_at + kFrameHeader);
    if (rc == SQLITE_IOERR_SHORT_READ) return SQLITE_IOERR_WRITE;  // no body: no frame SQLite writes
    if (rc != SQLITE_OK) return rc;
    if (!open_page(s.key(), frame + kFrameHeader, frame + kFrameHeader, wal_binding(frame))) {
        s.note_corrupt(be32(frame), FileKind::wal);
        return SQLITE_IOERR_DATA;
    }
    seal_frame(s, frame, true);
    return s.real->pMethods->xWrite(s.real, frame, static_cast<int>(kFrame), header_at);
}

// The pager's and the checkpoint's read of one body: the frame header comes in the same read.
int read_wal_body(FileState& s, std::uint8_t* out, sqlite3_int64 offset) {
    s.recovering = false;  // recovery reads whole frames only
    std::uint8_t* frame = s.scratch.data();
    int rc =
        s.real->pMethods->xRead(s.real, frame, static_cast<int>(kFrame), offset - kFrameHeader);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    if (!open_page(s.key(), frame + kFrameHeader, out, wal_binding(frame))) {
        // A frame SQLite already validated no longer authenticates: damage, not a tear.
        s.note_corrupt(be32(frame), FileKind::wal);
        return SQLITE_IOERR_DATA;
    }
    return SQLITE_OK;
}

// The WAL's header as on disk; false when it cannot be read.
bool read_wal_header(FileState& s, std::uint8_t* out) {
    if (s.real->pMethods->xRead(s.real, out, static_cast<int>(kWalHeader), 0) != SQLITE_OK) return false;
    wal_magic_from_disk(out);
    return true;
}

// The first commit frame carrying `salts` (8 bytes) from frame `from` on, or -1. Frames are told
// by their headers alone (salts and commit size, in clear): their bodies may be damaged too.
sqlite3_int64 next_commit(FileState& s, sqlite3_int64 from, const std::uint8_t* salts) {
    sqlite3_int64 size = 0;
    if (s.real->pMethods->xFileSize(s.real, &size) != SQLITE_OK) return -1;
    for (sqlite3_int64 next = from; frame_start(next) + kFrame <= size; ++next) {
        std::uint8_t header[kFrameHeader];
        if (s.real->pMethods->xRead(s.real, header, static_cast<int>(kFrameHeader), frame_start(next)) != SQLITE_OK) {
            return -1;
        }
        if (be32(header + 4) != 0 && std::memcmp(header + 8, salts, 8) == 0) return next;
    }
    return -1;
}

// Whether a later transaction of this WAL's generation (its header's salts) follows `frame`, whose
// commit size is `commit_size`: a commit frame after the commit of `frame`'s own transaction (the
// first commit frame from `frame` on). Then `frame` cannot have been torn by a crash: the store
// syncs the WAL at every commit (synchronous=FULL) and writes a transaction's frames only once the
// commit before it is synced, so `frame` was on disk before that later transaction began. Read as
// torn, a damaged `frame` would end recovery there, drop every later commit without a word, and
// the next write would overwrite them for good. A header a crash left behind is either whole or of
// another generation (a transaction being written keeps zeroed salts until its commit).
bool later_transaction_follows(FileState& s, sqlite3_int64 frame, std::uint32_t commit_size) {
    std::uint8_t wal_header[kWalHeader];
    if (!read_wal_header(s, wal_header)) return false;
    const std::uint8_t* salts = wal_header + 16;
    // A commit frame ends its own transaction (fit_of says when its commit size counts).
    const sqlite3_int64 own_commit = commit_size != 0 ? frame : next_commit(s, frame + 1, salts);
    return own_commit >= 0 && next_commit(s, own_commit + 1, salts) >= 0;
}

// How a whole frame whose page opens stands against the frames before it.
struct FrameFit {
    bool follows = false;          // it carries the WAL header's salts, and its checksum continues
                                   // the one before it (recovery ends at a frame that does not)
    std::uint32_t commit_size = 0;  // as written: see wal_frame_commit_size_written
};

// The fit of frame `frame`, whose header is `header` and whose page opened into `page` (null when
// it did not open).
//
// Its commit size counts only for a frame of this generation: one carrying the WAL header's salts,
// or one whose salts alone were altered (its checksum still continues the frame before it, which
// covers everything but the salts). A frame of an older generation that a crash left in place of
// the last transaction's first frames (a power cut may keep a transaction's later writes and lose
// its earlier ones) does neither, and its commit size would make that transaction's own commit
// frame look like a later transaction's: a torn tail refused as damage, and the store with it.
FrameFit fit_of(FileState& s, sqlite3_int64 frame, const std::uint8_t* header, const std::uint8_t* page) {
    FrameFit fit{false, 0};
    std::uint8_t wal_header[kWalHeader];
    if (!read_wal_header(s, wal_header)) return fit;
    const bool same_salts = std::memcmp(header + 8, wal_header + 16, 8) == 0;
    if (same_salts) fit.commit_size = be32(header + 4);
    if (page == nullptr) return fit;
    std::uint8_t previous[8];
    if (frame == 0) {
        std::memcpy(previous, wal_header + 24, 8);
    } else if (s.real->pMethods->xRead(s.real, previous, 8, frame_start(frame - 1) + 16) != SQLITE_OK ||
               as_sqlite_wrote(s, previous, 8, frame_start(frame - 1) + 16) != SQLITE_OK) {
        return fit;
    }
    const bool chains = wal_frame_chains(wal_header, previous, header, page, kPageSize);
    if (!same_salts) {
        if (chains) fit.commit_size = be32(header + 4);  // written in sequence; its salts altered since
        return fit;
    }
    fit.follows = chains;
    // A commit frame whose commit size was zeroed would otherwise hide where its transaction ends.
    if (!fit.follows) fit.commit_size = wal_frame_commit_size_written(wal_header, previous, header, page, kPageSize);
    return fit;
}

// Whether the WAL header `header` that recovery just read is damaged rather than absent or torn:
// it fails SQLite's checks, yet a frame written after it opens and a commit of that frame's
// generation follows it. The first frame counts when it carries the header's salts or continues the
// header's checksum (whichever of the two the damage spared); a later one, when its salts are those
// of a commit after it: damage to the file's first block takes the first frame's header with the
// WAL's (its page number, so its body no longer opens). Read as it is, recovery would take the WAL
// as empty, drop every commit since the last checkpoint, and the next write would overwrite them.
// The store syncs a new header before it writes any frame after it (synchronous=FULL), and a
// header write is one sector (never torn: SQLite's powersafe overwrite), so a frame of a generation
// with a commit after a header that fails its checks means the header was once whole. (The WAL's
// frames are scanned only when its header fails, which no crash leaves.)
bool wal_header_damaged(FileState& s, const std::uint8_t* header) {
    if (wal_header_whole(header, kPageSize)) return false;
    sqlite3_int64 size = 0;
    if (s.real->pMethods->xFileSize(s.real, &size) != SQLITE_OK) return false;
    std::vector<std::uint8_t> frame(kFrame);
    std::uint8_t* page = frame.data() + kFrameHeader;
    for (sqlite3_int64 k = 0; frame_start(k) + kFrame <= size; ++k) {
        if (s.real->pMethods->xRead(s.real, frame.data(), static_cast<int>(kFrame), frame_start(k)) != SQLITE_OK ||
            as_sqlite_wrote(s, frame.data(), static_cast<int>(kFrame), frame_start(k)) != SQLITE_OK) {
            return false;
        }
        const bool opens = open_page(s.key(), page, page, wal_binding(frame.data()));
        const bool of_this_header = opens && (k > 0 || std::memcmp(frame.data() + 8, header + 16, 8) == 0 ||
                                              wal_frame_chains(header, header + 24, frame.data(), page, kPageSize));
        sodium_memzero(page, kPage);  // the plaintext of a page
        if (of_this_header) return next_commit(s, k, frame.data() + 8) >= 0;
        if (opens) return false;  // a first frame of another generation: the header is not its
    }
    return false;  // no frame opens: an empty WAL, or one a crash left unwritten
}

int read_wal(FileState& s, std::uint8_t* out, int amount, sqlite3_int64 offset) {
    if (is_frame_body(amount, offset)) return read_wal_body(s, out, offset);
    int rc = s.real->pMethods->xRead(s.real, out, amount, offset);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    if (int mrc = as_sqlite_wrote(s, out, amount, offset); mrc != SQLITE_OK) return mrc;
    const sqlite3_int64 end = offset + amount;
    if (offset == 0 && amount == kWalHeader) s.recovering = true;
    if (offset == 0 && amount == kWalHeader && rc == SQLITE_OK && wal_header_damaged(s, out)) {
        s.note_corrupt(0, FileKind::wal, CorruptPart::wal_header);
        return SQLITE_IOERR_DATA;
    }
    if (end <= kWalHeader) return rc;
    const sqlite3_int64 first = offset <= kWalHeader ? 0 : (offset - kWalHeader) / kFrame;
    for (sqlite3_int64 frame = first; frame_start(frame) < end; ++frame) {
        const sqlite3_int64 header_at = frame_start(frame);
        const sqlite3_int64 body_at = header_at + kFrameHeader;
        if (body_at >= end || body_at + kPage <= offset) continue;  // no body bytes in range
        const bool header_in_range = header_at >= offset;
        if (body_at >= offset && body_at + kPage <= end) {
            std::uint8_t header[kFrameHeader];
            if (header_in_range) {
                std::memcpy(header, out + (header_at - offset), kFrameHeader);
            } else if (int hrc = s.real->pMethods->xRead(s.real, header, kFrameHeader, header_at);
                       hrc != SQLITE_OK) {
                return hrc;  // the disk refused: an I/O error, not a frame that fails to open
            }
            std::uint8_t* body = out + (body_at - offset);
            // A frame SQLite already validated that no longer opens is damage, not a tear; so is
            // one recovery reads whole with a later transaction after it. So too is a frame whose
            // header no longer follows the frames before it (its salts or its checksum) with a
            // later transaction after it: recovery would end there as at a torn frame or at an
            // older generation's, but those only ever follow the current one's commits (a
            // restarted WAL is written from its start), and a transaction's own frames carry the
            // salts and chained checksums once it commits.
            const bool opens = open_page(s.key(), body, body, wal_binding(header));
            bool damaged = !opens;
            if (header_in_range && s.recovering) {
                const FrameFit fit = fit_of(s, frame, header, opens ? body : nullptr);
                damaged = rc == SQLITE_OK && !fit.follows && later_transaction_follows(s, frame, fit.commit_size);
            }
            if (damaged) {
                s.note_corrupt(be32(header), FileKind::wal, opens ? CorruptPart::frame_header : CorruptPart::page);
                return SQLITE_IOERR_DATA;
            }
            // Other failed whole-frame reads (recovery) return a zero body: a torn frame.
        } else {
            // A read that cuts through a body: open the whole frame in scratch, copy the slice.
            std::uint8_t* frame_buf = s.scratch.data();
            int frc = s.real->pMethods->xRead(s.real, frame_buf, static_cast<int>(kFrame), header_at);
            if (frc != SQLITE_OK && frc != SQLITE_IOERR_SHORT_READ) return frc;
            open_page(s.key(), frame_buf + kFrameHeader, frame_buf + kFrameHeader,
                      wal_binding(frame_buf));
            const sqlite3_int64 from = std::max(body_at, offset);
            const sqlite3_int64 to = std::min(body_at + kPage, end);
            std::memcpy(out + (from - offset), frame_buf + (from - header_at),
                        static_cast<std::size_t>(to - from));
        }
    }
    return rc;
}

// True when [offset, offset + amount) is exactly one frame's header.
bool is_frame_header(int amount, sqlite3_int64 offset) {
    return amount == kFrameHeader && offset >= kWalHeader && (offset - kWalHeader) % kFrame == 0;
}

// The usual write of a body, right after its frame header: sealed straight into scratch, behind
// the header when that is held, and written with it. A body SQLite overwrites in place (a page it
// wrote twice in one transaction) goes with its header too when the generation is masked: the
// header as written, masked anew with the body's fresh nonce.
int write_wal_body(FileState& s, const std::uint8_t* in, sqlite3_int64 offset) {
    s.recovering = false;  // recovery does not write
    const sqlite3_int64 header_at = offset - kFrameHeader;
    const bool with_header = s.header_held && s.last_meta_offset == header_at;
    if (!with_header) {
        if (int rc = write_held_header(s); rc != SQLITE_OK) return rc;
    }
    bool masked = true;
    if (int rc = generation_masked(s, masked); rc != SQLITE_OK) return rc;
    std::uint8_t* frame = s.scratch.data();
    if (frame_header_as_written(s, header_at, frame) != SQLITE_OK) return SQLITE_IOERR_WRITE;
    if (be32(frame) == 1 && !page_one_layout_ok(in)) {
        s.keys->bad_layout.store(true);
        return SQLITE_IOERR_WRITE;
    }
    std::memcpy(frame + kFrameHeader, in, kPage);
    seal_frame(s, frame, masked);
    if (!with_header && !masked) {
        return s.real->pMethods->xWrite(s.real, frame + kFrameHeader, static_cast<int>(kPage), offset);
    }
    // Written or failed, the header goes with this write: SQLite handles the failure of the frame.
    if (with_header) let_go_of_header(s);
    return s.real->pMethods->xWrite(s.real, frame, static_cast<int>(kFrame), header_at);
}

// Any other write: the WAL's header (its magic number stored as checksum_masking.h says), or, never
// from SQLite itself, several frames at once (whole frames only, when the generation is masked).
int write_wal(FileState& s, const std::uint8_t* in, int amount, sqlite3_int64 offset) {
    if (is_frame_body(amount, offset)) return write_wal_body(s, in, offset);
    s.recovering = false;  // recovery does not write
    if (int rc = write_held_header(s); rc != SQLITE_OK) return rc;
    if (is_frame_header(amount, offset)) return hold_frame_header(s, in, offset);
    const sqlite3_int64 end = offset + amount;
    std::vector<std::uint8_t> sealed;  // a copy, when the write carries the magic or a body
    // Until every frame in it is sealed it holds plaintext pages: wiped when a check below stops
    // the write part-way (sealed throughout, it is wiped all the same; a few pages at most).
    struct Wipe {
        std::vector<std::uint8_t>& bytes;
        ~Wipe() { sodium_memzero(bytes.data(), bytes.size()); }
    } wipe{sealed};
    const bool writes_magic = offset < 4;
    if (writes_magic) {
        if (offset != 0 || amount < 4) return SQLITE_IOERR_WRITE;  // part of the magic number
        sealed.assign(in, in + amount);
        wal_magic_to_disk(sealed.data());
    }
    if (end > kWalHeader) {
        bool masked = true;
        if (!writes_magic) {
            if (int rc = generation_masked(s, masked); rc != SQLITE_OK) return rc;
        }
        const sqlite3_int64 first = offset <= kWalHeader ? 0 : (offset - kWalHeader) / kFrame;
        for (sqlite3_int64 frame = first; frame_start(frame) < end; ++frame) {
            const sqlite3_int64 header_at = frame_start(frame);
            const sqlite3_int64 body_at = header_at + kFrameHeader;
            if (masked && (header_at < offset || body_at + kPage > end)) return SQLITE_IOERR_WRITE;  // part of a frame
            if (body_at >= end || body_at + kPage <= offset) continue;
            if (body_at < offset || body_at + kPage > end) return SQLITE_IOERR_WRITE;  // partial body
            if (sealed.empty()) sealed.assign(in, in + amount);
            std::uint8_t header[kFrameHeader];
            if (header_at >= offset) {
                std::memcpy(header, sealed.data() + (header_at - offset), kFrameHeader);
            } else if (s.metadata_at(header_at, kFrameHeader, header) != SQLITE_OK) {
                return SQLITE_IOERR_WRITE;
            }
            std::uint8_t* body = sealed.data() + (body_at - offset);
            if (be32(header) == 1 && !page_one_layout_ok(body)) {
                s.keys->bad_layout.store(true);
                return SQLITE_IOERR_WRITE;
            }
            if (masked) seal_frame(s, sealed.data() + (header_at - offset), true);
            else seal_page(s.key(), body, body, wal_binding(header));
        }
    }
    const std::uint8_t* data = sealed.empty() ? in : sealed.data();
    int rc = s.real->pMethods->xWrite(s.real, data, amount, offset);
    if (rc == SQLITE_OK && sealed.empty()) s.remember_metadata(in, amount, offset);
    if (rc == SQLITE_OK && writes_magic) s.keys->wal_masked.store(true, std::memory_order_release);
    return rc;
}

// ---- rollback journal --------------------------------------------------------------------

bool is_journal_body(int amount, sqlite3_int64 offset) {
    return amount == kPage && offset % 8 == 4;
}

// A journal's record checksum: the 4 bytes SQLite reads or writes right after the record's body
// (at the body's end), which this handle just read or sealed.
bool is_record_checksum(const FileState& s, int amount, sqlite3_int64 offset) {
    return amount == 4 && s.journal_body_at >= 0 && offset == s.journal_body_at + kPage;
}

int read_journal(FileState& s, std::uint8_t* out, int amount, sqlite3_int64 offset) {
    int rc = s.real->pMethods->xRead(s.real, out, amount, offset);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    if (!is_journal_body(amount, offset)) {
        if (is_record_checksum(s, amount, offset)) {
            if (!s.journal_in_clear) toggle_checksum_mask(s.checksum_key(), s.journal_body_nonce, out, 4);
        } else if (amount >= static_cast<int>(kJournalMagicBytes)) {  // a header (of a segment)
            if (journal_magic_from_disk(out)) s.journal_in_clear = false;
            else if (is_sqlite_journal_magic(out)) s.journal_in_clear = true;
        }
        return rc;
    }
    std::uint8_t number[4] = {};
    // A refused read must stay an error: read as a torn record it would end playback early and
    // leave the rollback half done.
    if (int nrc = s.real->pMethods->xRead(s.real, number, 4, offset - 4); nrc != SQLITE_OK) {
        return nrc;
    }
    s.journal_body_at = offset;
    std::memcpy(s.journal_body_nonce, out + kUsableBytes, kNonceBytes);
    if (!open_page(s.key(), out, out, PageBinding::journal_page(be32(number)))) {
        if (rc == SQLITE_IOERR_SHORT_READ) {
            std::memset(out, 0, kPageSize);  // a torn tail: SQLite's checksum ends playback here
            return rc;
        }
        // A whole record that fails to open is damage or tampering, never a crash: the store
        // syncs the journal before it writes the header's record count (synchronous=FULL) and
        // before any page of the main file, and a hot journal is played back only up to that
        // count. Read as a torn record it would end playback early and leave the main file
        // holding part of an uncommitted transaction, silently. As an error, the journal stays
        // (hot) and every open refuses until the store is restored.
        s.note_corrupt(be32(number), FileKind::journal);
        return SQLITE_IOERR_DATA;
    }
    return rc;
}

// A body is sealed with a fresh nonce; the record's checksum after it is stored masked with that
// nonce; a header carrying SQLite's magic is stored with the masked journal's (this version writes
// no other).
int write_journal(FileState& s, const std::uint8_t* in, int amount, sqlite3_int64 offset) {
    if (!is_journal_body(amount, offset)) {
        const std::uint8_t* data = in;
        std::uint8_t checksum[4];
        std::vector<std::uint8_t> header;
        if (is_record_checksum(s, amount, offset)) {
            std::memcpy(checksum, in, 4);
            toggle_checksum_mask(s.checksum_key(), s.journal_body_nonce, checksum, 4);
            data = checksum;
        } else if (amount >= static_cast<int>(kJournalMagicBytes) && is_sqlite_journal_magic(in)) {
            header.assign(in, in + amount);
            journal_magic_to_disk(header.data());
            s.journal_in_clear = false;
            data = header.data();
        }
        int rc = s.real->pMethods->xWrite(s.real, data, amount, offset);
        if (rc == SQLITE_OK) s.remember_metadata(in, amount, offset);
        return rc;
    }
    std::uint8_t number[4];
    if (s.metadata_at(offset - 4, 4, number) != SQLITE_OK) return SQLITE_IOERR_WRITE;
    seal_page(s.key(), in, s.scratch.data(), PageBinding::journal_page(be32(number)));
    s.journal_body_at = offset;
    std::memcpy(s.journal_body_nonce, s.scratch.data() + kUsableBytes, kNonceBytes);
    return s.real->pMethods->xWrite(s.real, s.scratch.data(), amount, offset);
}

// ---- sqlite3_io_methods --------------------------------------------------------------------

int x_close(sqlite3_file* f) {
    FileState* s = reinterpret_cast<EncryptedFile*>(f)->state;
    int held_rc = s->real->pMethods ? write_held_header(*s) : SQLITE_OK;
    let_go_of_header(*s);
    int rc = s->real->pMethods ? s->real->pMethods->xClose(s->real) : SQLITE_OK;
    if (rc == SQLITE_OK) rc = held_rc;
    delete s;
    reinterpret_cast<EncryptedFile*>(f)->state = nullptr;
    return rc;
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
    return after_held_headers(f, [&](FileState& s) {
        auto* buf = static_cast<std::uint8_t*>(out);
        switch (s.kind) {
            case FileKind::main: return read_main(s, buf, amount, offset);
            case FileKind::wal: return read_wal(s, buf, amount, offset);
            case FileKind::journal: return read_journal(s, buf, amount, offset);
            case FileKind::none: break;
        }
        return SQLITE_IOERR_READ;
    });
}

int x_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
    FileState& s = state_of(f);
    const auto* buf = static_cast<const std::uint8_t*>(in);
    switch (s.kind) {
        case FileKind::main: return write_main(s, buf, amount, offset);
        case FileKind::wal: return write_wal(s, buf, amount, offset);
        case FileKind::journal: return write_journal(s, buf, amount, offset);
        case FileKind::none: break;
    }
    return SQLITE_IOERR_WRITE;
}

sqlite3_int64 offset_of(const FileState& s) { return s.kind == FileKind::main ? kMainOffset : 0; }

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    return after_held_headers(f, [&](FileState& s) {
        return s.real->pMethods->xTruncate(s.real, size + offset_of(s));
    });
}

int x_sync(sqlite3_file* f, int flags) {
    return after_held_headers(f, [&](FileState& s) { return s.real->pMethods->xSync(s.real, flags); });
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return after_held_headers(f, [&](FileState& s) {
        int rc = s.real->pMethods->xFileSize(s.real, size);
        if (rc == SQLITE_OK) *size = std::max<sqlite3_int64>(0, *size - offset_of(s));
        return rc;
    });
}

int x_lock(sqlite3_file* f, int level) {
    return after_held_headers(f, [&](FileState& s) {
        const int rc = s.real->pMethods->xLock(s.real, level);
        if (rc == SQLITE_OK) s.lock_level = level;
        return rc;
    });
}
int x_unlock(sqlite3_file* f, int level) {
    return releasing_after_held_headers(f, [&](FileState& s) {
        const int rc = s.real->pMethods->xUnlock(s.real, level);
        if (rc == SQLITE_OK) s.lock_level = level;
        return rc;
    });
}
int x_check_reserved_lock(sqlite3_file* f, int* out) {
    FileState& s = state_of(f);
    return s.real->pMethods->xCheckReservedLock(s.real, out);
}

int x_file_control(sqlite3_file* f, int op, void* arg) {
    FileState& s = state_of(f);
    if (op == SQLITE_FCNTL_SIZE_HINT && s.kind == FileKind::main) {
        sqlite3_int64 hint = *static_cast<sqlite3_int64*>(arg) + kMainOffset;
        return s.real->pMethods->xFileControl(s.real, op, &hint);
    }
    if (op == SQLITE_FCNTL_MMAP_SIZE) {
        // Memory-mapped I/O would bypass decryption: never.
        *static_cast<sqlite3_int64*>(arg) = 0;
        return SQLITE_OK;
    }
    return s.real->pMethods->xFileControl(s.real, op, arg);
}

int x_sector_size(sqlite3_file* f) {
    FileState& s = state_of(f);
    return s.real->pMethods->xSectorSize(s.real);
}

int x_device_characteristics(sqlite3_file* f) {
    FileState& s = state_of(f);
    int caps = s.real->pMethods->xDeviceCharacteristics(s.real);
    // Atomic batch writes would let SQLite skip the journal; keep every write going through us.
    return caps & ~(SQLITE_IOCAP_BATCH_ATOMIC | SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 |
                    SQLITE_IOCAP_ATOMIC1K | SQLITE_IOCAP_ATOMIC2K | SQLITE_IOCAP_ATOMIC4K |
                    SQLITE_IOCAP_ATOMIC8K | SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K |
                    SQLITE_IOCAP_ATOMIC64K);
}

int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    return after_held_headers(
        f, [&](FileState& s) { return s.real->pMethods->xShmMap(s.real, region, size, extend, out); });
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    auto lock = [&](FileState& s) { return s.real->pMethods->xShmLock(s.real, offset, n, flags); };
    return (flags & SQLITE_SHM_UNLOCK) ? releasing_after_held_headers(f, lock)
                                       : after_held_headers(f, lock);
}
void x_shm_barrier(sqlite3_file* f) {
    // A failed write stays held, and the next operation reports it.
    (void)releasing_after_held_headers(f, [](FileState& s) {
        s.real->pMethods->xShmBarrier(s.real);
        return SQLITE_OK;
    });
}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    FileState& s = state_of(f);
    return s.real->pMethods->xShmUnmap(s.real, delete_flag);
}

// Version 2: shared memory for WAL, but no xFetch, so SQLite never memory-maps the file.
const sqlite3_io_methods kIoMethods = {
    2,         x_close,      x_read,          x_write,      x_truncate,
    x_sync,    x_file_size,  x_lock,          x_unlock,     x_check_reserved_lock,
    x_file_control, x_sector_size, x_device_characteristics, x_shm_map, x_shm_lock,
    x_shm_barrier,  x_shm_unmap,   nullptr,   nullptr,
};

// ---- sqlite3_vfs -------------------------------------------------------------------------

sqlite3_vfs* base_of(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

std::size_t real_file_offset() {
    return (sizeof(EncryptedFile) + 15) & ~std::size_t(15);
}

int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    auto* enc = reinterpret_cast<EncryptedFile*>(file);
    enc->base.pMethods = nullptr;
    enc->state = nullptr;

    FileKind kind = FileKind::none;
    if (flags & SQLITE_OPEN_MAIN_DB) kind = FileKind::main;
    else if (flags & SQLITE_OPEN_WAL) kind = FileKind::wal;
    else if (flags & SQLITE_OPEN_MAIN_JOURNAL) kind = FileKind::journal;
    // Temp databases, sort spills, statement and super journals would hold plaintext: refuse.
    if (kind == FileKind::none || name == nullptr) return SQLITE_CANTOPEN;

    const char* database = kind == FileKind::main ? name : sqlite3_filename_database(name);
    std::shared_ptr<FileKeys> keys = find_keys(database);
    if (!keys) return SQLITE_CANTOPEN;  // no key registered: never open in the clear

    sqlite3_vfs* base = base_of(vfs);
    auto* real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + real_file_offset());
    std::memset(real, 0, static_cast<std::size_t>(base->szOsFile));
    int rc = base->xOpen(base, name, real, flags, out_flags);
    if (rc == SQLITE_OK && kind == FileKind::wal &&
        (real->pMethods->xDeviceCharacteristics(real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) == 0) {
        // Without powersafe overwrite SQLite pads each commit to a sector boundary and may split
        // a frame's header or body across two writes, with a sync between: the shim writes a
        // header only with its sealed body, and seals whole bodies only (never the case for the
        // stores this library opens: SQLite's default, psow=1).
        rc = SQLITE_CANTOPEN;
    }
    if (rc != SQLITE_OK) {
        if (real->pMethods) real->pMethods->xClose(real);
        return rc;
    }
    auto* state = new FileState();
    state->real = real;
    state->kind = kind;
    state->keys = std::move(keys);
    enc->state = state;
    enc->base.pMethods = &kIoMethods;
    return SQLITE_OK;
}

int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    return base_of(vfs)->xDelete(base_of(vfs), name, sync_dir);
}
int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    return base_of(vfs)->xAccess(base_of(vfs), name, flags, out);
}
int x_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
    return base_of(vfs)->xFullPathname(base_of(vfs), name, size, out);
}
void* x_dl_open(sqlite3_vfs* vfs, const char* name) {
    return base_of(vfs)->xDlOpen(base_of(vfs), name);
}
void x_dl_error(sqlite3_vfs* vfs, int n, char* out) { base_of(vfs)->xDlError(base_of(vfs), n, out); }
void (*x_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
    return base_of(vfs)->xDlSym(base_of(vfs), handle, symbol);
}
void x_dl_close(sqlite3_vfs* vfs, void* handle) { base_of(vfs)->xDlClose(base_of(vfs), handle); }
int x_randomness(sqlite3_vfs* vfs, int n, char* out) {
    return base_of(vfs)->xRandomness(base_of(vfs), n, out);
}
int x_sleep(sqlite3_vfs* vfs, int micros) { return base_of(vfs)->xSleep(base_of(vfs), micros); }
int x_current_time(sqlite3_vfs* vfs, double* out) {
    return base_of(vfs)->xCurrentTime(base_of(vfs), out);
}
int x_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
    sqlite3_vfs* base = base_of(vfs);
    return base->xGetLastError ? base->xGetLastError(base, n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    sqlite3_vfs* base = base_of(vfs);
    if (base->iVersion >= 2 && base->xCurrentTimeInt64) return base->xCurrentTimeInt64(base, out);
    double day = 0;
    int rc = base->xCurrentTime(base, &day);
    *out = static_cast<sqlite3_int64>(day * 86400000.0);
    return rc;
}

struct VfsEntry {
    std::string name;
    sqlite3_vfs vfs{};
};

}  // namespace

Result<std::string> encrypting_vfs_over(const std::string& base_name) {
    static std::mutex mutex;
    static std::map<std::string, std::unique_ptr<VfsEntry>> entries;
    std::lock_guard lock(mutex);
    auto it = entries.find(base_name);
    if (it != entries.end()) return it->second->name;

    sqlite3_vfs* base = sqlite3_vfs_find(base_name.empty() ? nullptr : base_name.c_str());
    if (base == nullptr) {
        return Status(ErrorCode::invalid_argument, "no SQLite VFS named \"" + base_name + "\"");
    }
    auto entry = std::make_unique<VfsEntry>();
    entry->name = "tsunagu-encrypted:" + std::string(base->zName);
    sqlite3_vfs& v = entry->vfs;
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(real_file_offset()) + base->szOsFile;
    v.mxPathname = base->mxPathname;
    v.zName = entry->name.c_str();
    v.pAppData = base;
    v.xOpen = x_open;
    v.xDelete = x_delete;
    v.xAccess = x_access;
    v.xFullPathname = x_full_pathname;
    v.xDlOpen = x_dl_open;
    v.xDlError = x_dl_error;
    v.xDlSym = x_dl_sym;
    v.xDlClose = x_dl_close;
    v.xRandomness = x_randomness;
    v.xSleep = x_sleep;
    v.xCurrentTime = x_current_time;
    v.xGetLastError = x_get_last_error;
    v.xCurrentTimeInt64 = x_current_time_int64;
    if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) {
        return Status(ErrorCode::internal, "cannot register the encrypting SQLite VFS");
    }
    std::string name = entry->name;
    entries.emplace(base_name, std::move(entry));
    return name;
}

Result<KeyRegistration> KeyRegistration::add(const std::string& path, Secret data_key,
                                             PageCipher cipher) {
    std::lock_guard lock(registry_mutex());
    RegistryEntry& entry = registry()[path];
    if (entry.keys) {
        if (!constant_time_equal(entry.keys->data_key.bytes(), data_key.bytes()) ||
            entry.keys->cipher != cipher) {
            if (entry.users == 0) registry().erase(path);
            return Status(ErrorCode::busy, "store " + path +
                                               " is already open in this process under another "
                                               "data key; close it first");
        }
    } else {
        entry.keys = std::make_shared<FileKeys>(std::move(data_key), cipher);
    }
    ++entry.users;
    KeyRegistration r;
    r.path_ = path;
    r.keys_ = entry.keys;
    return r;
}

int KeyRegistration::users(const std::string& path) {
    std::lock_guard lock(registry_mutex());
    const auto found = registry().find(path);
    return found == registry().end() ? 0 : found->second.users;
}

KeyRegistration::KeyRegistration(KeyRegistration&& other) noexcept
    : path_(std::move(other.path_)), keys_(std::move(other.keys_)) {
    other.keys_.reset();
}

KeyRegistration& KeyRegistration::operator=(KeyRegistration&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        keys_ = std::move(other.keys_);
        other.keys_.reset();
    }
    return *this;
}

KeyRegistration::~KeyRegistration() { release(); }

void KeyRegistration::release() noexcept {
    if (!keys_) return;
    std::lock_guard lock(registry_mutex());
    auto it = registry().find(path_);
    if (it != registry().end() && --it->second.users <= 0) registry().erase(it);
    keys_.reset();
}

}  // namespace tsunagu::crypto_detail
