// SQLite's layout of a rollback journal, as the tests that alter a hot journal need to find its
// parts: segments, each a header of one sector (magic 8 bytes, record count, checksum seed,
// database size, sector size, page size: 4 bytes each, big-endian) followed by that many records
// of [page number][page bytes][checksum]; the next segment starts at the next sector boundary (a
// spill of the page cache syncs the journal and starts one). A segment whose count is 0 was never
// synced, and a hot journal's playback stops there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tsunagu::testing {

struct JournalLayout {
    static constexpr std::size_t kHeaderFields = 28;  // the header's bytes that mean something
    static constexpr std::size_t kRecordBytes = 4 + 4096 + 4;
    std::vector<std::size_t> segments;  // where each played segment's header starts
    std::vector<std::size_t> records;   // where each record playback reads starts
    std::size_t played_to = 0;          // the end of the last of them
};

inline std::uint32_t big_endian_at(const std::string& bytes, std::size_t at) {
    return (std::uint32_t(std::uint8_t(bytes[at])) << 24) | (std::uint32_t(std::uint8_t(bytes[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(bytes[at + 2])) << 8) | std::uint32_t(std::uint8_t(bytes[at + 3]));
}

// The layout of a journal's bytes written with 4096-byte pages.
inline JournalLayout journal_layout(const std::string& journal) {
    JournalLayout layout;
    if (journal.size() < JournalLayout::kHeaderFields) return layout;
    const std::size_t sector = big_endian_at(journal, 20);
    if (sector == 0) return layout;
    for (std::size_t header = 0; header + sector <= journal.size();) {
        const std::uint32_t count = big_endian_at(journal, header + 8);
        if (count == 0) break;
        layout.segments.push_back(header);
        for (std::uint32_t i = 0; i < count; ++i) {
            layout.records.push_back(header + sector + i * JournalLayout::kRecordBytes);
        }
        layout.played_to = layout.records.back() + JournalLayout::kRecordBytes;
        header = (layout.played_to + sector - 1) / sector * sector;
    }
    return layout;
}

}  // namespace tsunagu::testing
