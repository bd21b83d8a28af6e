// Salvage: a new store rebuilt from the files of a damaged one, holding as much of its last
// committed state as they still hold. For the store Store::open refuses ("corrupt page N in ...",
// "corrupt header of ...-wal")
// whose commits must not be given up: a phone's replica holds the work not yet synced, and a
// phone has no backup to restore.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/status.h"
#include "crypto/store.h"

namespace tsunagu {

struct SalvageReport {
    std::uint32_t pages = 0;            // pages of the rebuilt store
    std::uint32_t wal_frames = 0;       // committed WAL frames read
    std::uint32_t journal_records = 0;  // hot rollback journal records played back
    // Damaged page versions met (main file pages, journal records, WAL frames) that fail to open.
    std::uint32_t damaged_versions = 0;
    // Pages whose last committed version is among them, for which an older one was used: what
    // later commits wrote on these pages is missing. Empty (with the lists below): every damaged
    // version was replaced by a later readable one, and nothing at all was lost.
    std::vector<std::uint32_t> older_versions;
    // Pages whose committed version, in a hot journal, is damaged: the main file's version was
    // used, which the interrupted transaction may have written (never committed).
    std::vector<std::uint32_t> uncommitted_versions;
    // WAL frames before the last commit whose header is damaged (salts altered) and whose body
    // does not open under the page number it names: which page they held is unknown.
    std::uint32_t unplaced_frames = 0;
    // Pages with no readable version at all: written as zeros. SQLite's integrity check refuses
    // such a store unless the page was free.
    std::vector<std::uint32_t> lost_pages;
    // Whether the indexes were rebuilt from their tables, which they disagreed with after pages
    // fell back to older versions.
    bool reindexed = false;
    // Whether the WAL's header failed its checksum: its frames were read by the salts of its first
    // frame, which was written with it. Nothing is lost by it alone.
    bool wal_header_damaged = false;

    // Whether the rebuilt store is the whole last committed state of the damaged one.
    bool complete() const {
        return older_versions.empty() && uncommitted_versions.empty() && lost_pages.empty() && unplaced_frames == 0;
    }
    // For a person: what was read, what was damaged, what is missing.
    std::string summary() const;
};

// Rebuilds the last committed state of the store at `path` into a new store at `target`, opened by
// the same key (the key header is copied): the main file, with a hot rollback journal played back
// and the committed frames of its WAL applied, as SQLite would after a crash, except that each page
// takes its latest committed version that authenticates instead of stopping at the first damaged
// one. The damaged store's files are only read, never written: salvage can be tried again, and
// they stay for whoever investigates. `target` must not exist; it appears complete and durable, or
// not at all. `options.journal_mode` is the mode the salvaged store is checked and kept in.
// Fails with wrong_key or not_a_store as Store::open; with corrupt when a page has no readable
// version at all or the rebuilt store fails SQLite's integrity check (nothing is left at `target`).
Result<SalvageReport> salvage_store(const std::string& path, const KeySource& key, const std::string& target,
                                    const StoreOptions& options = {});

}  // namespace tsunagu
