// Sessions recently authenticated, so that checking a request's session reads one small row (the
// accounts' generation) instead of its session, device and account, each read and decrypted again
// after every commit.
//
// Contract: an entry is used only while the store's accounts generation is the one it was read
// under. Triggers in the store (Accounts::create_schema) bump the generation whenever an account,
// a session or a device changes (a device's last-seen time excepted), whoever changes it, this
// process or another one: a revoked device, a disabled or changed account, or an ended session is
// never answered from here. Read the generation before the rows it labels, so that the rows are
// never older than their label, and read both outside any transaction: what an uncommitted
// transaction saw must not be kept, as it may roll back and its generation be given out again
// to other contents. The cache holds token hashes, never tokens. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/src/accounts.h"

namespace tsunagu::api {

class SessionCache {
public:
    using Entry = StoredSession;

    // Holds at most `capacity` sessions; when full, it starts again empty.
    explicit SessionCache(std::size_t capacity = 20000) : capacity_(capacity) {}

    // The session as read under `generation`, if cached. A new generation empties the cache.
    std::optional<Entry> find(const std::string& session_id, std::int64_t generation);
    // Keeps a session read under `generation` (ignored unless it is the one find() last saw).
    void keep(const std::string& session_id, std::int64_t generation, Entry entry);
    // Its device's last-seen time was recorded as `at` (a change the generation leaves out).
    void seen(const std::string& session_id, std::int64_t at);
    // Its device's clock was read (Accounts::record_clock), another change the generation leaves out.
    void clock_read(const std::string& session_id, std::int64_t ahead_ms, std::int64_t at);

private:
    const std::size_t capacity_;
    std::mutex mutex_;
    std::int64_t generation_ = -1;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace tsunagu::api
