// Shared by the crypto tests: test keys, opening a store, and the raw bytes of its files on disk.
// The on-disk layout these helpers know: an 8 KiB key header (two 4 KiB slots), then SQLite's
// 4096-byte pages, page N at 8192 + (N-1)*4096.
#pragma once

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/src/key_header.h"
#include "crypto/src/page_cipher.h"
#include "crypto/store.h"

namespace tsunagu::testing {

constexpr std::uintmax_t kKeyHeaderBytes = 8192;
constexpr std::uintmax_t kKeySlotBytes = 4096;
constexpr std::uintmax_t kPageBytes = 4096;

// Registers, once per name, a VFS named `name` for tests: SQLite's unix VFS with `open` as its
// xOpen, whose files take `extra_file_bytes` more than unix's (for a wrapper's own fields).
// Returns `name`.
inline const char* unix_vfs_opening_with(const char* name, decltype(sqlite3_vfs::xOpen) open, int extra_file_bytes = 0) {
    static std::map<std::string, std::unique_ptr<sqlite3_vfs>> registered;
    auto& vfs = registered[name];
    if (!vfs) {
        sqlite3_vfs* unix_vfs = sqlite3_vfs_find("unix");
        REQUIRE(unix_vfs != nullptr);
        vfs = std::make_unique<sqlite3_vfs>(*unix_vfs);
        vfs->szOsFile = unix_vfs->szOsFile + extra_file_bytes;
        vfs->zName = name;
        vfs->pNext = nullptr;
        vfs->xOpen = open;
        REQUIRE(sqlite3_vfs_register(vfs.get(), 0) == SQLITE_OK);
    }
    return name;
}

inline std::uintmax_t page_offset(std::uint32_t page_number) {
    return kKeyHeaderBytes + (page_number - 1) * kPageBytes;
}

inline KeySource test_key(std::uint8_t fill = 1) {
    return std::move(*KeySource::raw_key(std::vector<std::uint8_t>(32, fill)));
}

inline StoreOptions options_for(JournalMode mode) {
    StoreOptions options;
    options.journal_mode = mode;
    return options;
}

inline const char* mode_name(JournalMode mode) {
    return mode == JournalMode::wal ? "WAL" : "rollback journal";
}

inline Store open_ok(const std::string& path, const KeySource& key,
                     const StoreOptions& options = {}) {
    auto store = Store::open(path, key, options);
    INFO(store.status().to_string());
    REQUIRE(store.is_ok());
    return std::move(*store);
}

inline std::string read_bytes(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

// Inverts every bit of the byte at `offset`, in place.
inline void flip_byte(const std::filesystem::path& file, std::uintmax_t offset) {
    std::string bytes = read_bytes(file);
    REQUIRE(offset < bytes.size());
    bytes[offset] = static_cast<char>(~bytes[offset]);
    write_bytes(file, bytes);
}

// The WAL's layout: a 32-byte header, then frames of a 24-byte header (the page number first,
// big-endian) and a sealed page.
constexpr std::uintmax_t kWalFrameBytes = 24 + kPageBytes;

inline std::uintmax_t wal_frame_offset(std::size_t frame) { return 32 + frame * kWalFrameBytes; }

// The page number of each whole frame of the WAL of the store at `path`, in order.
inline std::vector<std::uint32_t> wal_frame_pages(const std::string& path) {
    const std::string wal = read_bytes(path + "-wal");
    std::vector<std::uint32_t> pages;
    for (std::size_t at = 32; at + kWalFrameBytes <= wal.size(); at += kWalFrameBytes) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(wal.data() + at);
        pages.push_back((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3]);
    }
    return pages;
}

// The first WAL frame before offset `before` whose page a later frame holds again (superseded), or
// whose page no later frame holds but an earlier frame or the main file does (the last version
// of a page with an older one); the frame count when there is none.
enum class FrameVersion { superseded, last_with_older };
inline std::size_t wal_frame_holding(const std::string& path, FrameVersion kind, std::uintmax_t before) {
    const auto pages = wal_frame_pages(path);
    const auto in_main_file = static_cast<std::uint32_t>((std::filesystem::file_size(path) - kKeyHeaderBytes) / kPageBytes);
    for (std::size_t i = 0; i < pages.size() && wal_frame_offset(i) < before; ++i) {
        const auto at = pages.begin() + static_cast<long>(i);
        const bool later = std::find(at + 1, pages.end(), pages[i]) != pages.end();
        const bool earlier = pages[i] <= in_main_file || std::find(pages.begin(), at, pages[i]) != at;
        if (kind == FrameVersion::superseded ? later : (!later && earlier && pages[i] != 1)) return i;
    }
    return pages.size();
}

// A query stepped to its first row; fails the test on any error or on no row.
inline Statement first_row(Store& store, const std::string& sql) {
    auto statement = store.prepare(sql);
    INFO(sql << ": " << statement.status().to_string());
    REQUIRE(statement.is_ok());
    auto row = statement->step();
    INFO(row.status().to_string());
    REQUIRE(row.is_ok());
    REQUIRE(*row);
    return std::move(*statement);
}

// The single integer a query returns (count(*), max(...)); fails the test on any error.
inline std::int64_t query_int(Store& store, const std::string& sql) { return first_row(store, sql).column_int(0); }

// The single text a query returns; fails the test on any error.
inline std::string query_text(Store& store, const std::string& sql) {
    return std::string(first_row(store, sql).column_text(0));
}

// For stores whose table entry(txn, seq, body) holds rows written by numbered transactions: the
// number of rows of each transaction present (empty when the table was never committed).
inline std::map<std::int64_t, std::int64_t> rows_per_transaction(Store& store) {
    std::map<std::int64_t, std::int64_t> rows;
    if (query_int(store, "SELECT count(*) FROM sqlite_schema WHERE name = 'entry'") == 0) {
        return rows;
    }
    auto q = store.prepare("SELECT txn, count(*) FROM entry GROUP BY txn");
    REQUIRE(q.is_ok());
    while (true) {
        auto row = q->step();
        INFO(row.status().to_string());
        REQUIRE(row.is_ok());
        if (!*row) break;
        rows[q->column_int(0)] = q->column_int(1);
    }
    return rows;
}

// A store's data key, as whoever holds a copy of its key header `header` (the file's first
// kKeyHeaderBytes) and knows `key` unwraps it; fails the test when it does not unwrap.
struct UnwrappedKey {
    Secret data_key;
    crypto_detail::PageCipher cipher;
    crypto_detail::PageKey page_key() const { return {data_key.data(), cipher}; }
};
inline UnwrappedKey unwrapped_data_key(const std::string& header, const std::string& path, const KeySource& key) {
    const auto* head = reinterpret_cast<const std::uint8_t*>(header.data());
    auto slot = crypto_detail::read_newest_slot({head, header.size()}, path);
    REQUIRE(slot.is_ok());
    auto kek = crypto_detail::derive_kek(key, slot->recipe, path);
    REQUIRE(kek.is_ok());
    auto data_key = crypto_detail::unwrap_data_key(*slot, *kek, path);
    REQUIRE(data_key.is_ok());
    return {std::move(*data_key), slot->cipher};
}

// The plaintext the store at `path` holds on disk, read as whoever has its files and its passphrase
// or key file can: the data key unwrapped from the header, then every page of the main file and
// every frame of its WAL (if any) opened, free space and older frames included.
inline std::string decrypted_files(const std::string& path, const KeySource& key) {
    const std::string bytes = read_bytes(path);
    const auto* base = reinterpret_cast<const std::uint8_t*>(bytes.data());
    REQUIRE(bytes.size() >= kKeyHeaderBytes);
    const UnwrappedKey data_key = unwrapped_data_key(bytes.substr(0, kKeyHeaderBytes), path, key);
    const crypto_detail::PageKey page_key = data_key.page_key();
    std::string plain;
    std::vector<std::uint8_t> page(kPageBytes);
    for (std::uint32_t n = 1; page_offset(n + 1) <= bytes.size(); ++n) {
        REQUIRE(crypto_detail::open_page(page_key, base + page_offset(n), page.data(),
                                         crypto_detail::PageBinding::main_page(n)));
        plain.append(reinterpret_cast<const char*>(page.data()), page.size());
    }
    // The WAL: SQLite's 32-byte header, then frames of a 24-byte header (the page number first,
    // big-endian) and a sealed page. A frame that does not open (torn) holds nothing readable.
    const std::string wal = std::filesystem::exists(path + "-wal") ? read_bytes(path + "-wal") : std::string();
    const auto* frames = reinterpret_cast<const std::uint8_t*>(wal.data());
    for (std::size_t at = 32; at + 24 + kPageBytes <= wal.size(); at += 24 + kPageBytes) {
        const std::uint32_t n = (std::uint32_t{frames[at]} << 24) | (std::uint32_t{frames[at + 1]} << 16) |
                                (std::uint32_t{frames[at + 2]} << 8) | frames[at + 3];
        if (crypto_detail::open_page(page_key, frames + at + 24, page.data(), crypto_detail::PageBinding::wal_frame(n))) {
            plain.append(reinterpret_cast<const char*>(page.data()), page.size());
        }
    }
    return plain;
}

}  // namespace tsunagu::testing
