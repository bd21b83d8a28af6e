// The audit trail: who read or wrote which record, when, from which device. Append-only and
// hash-chained (each entry's BLAKE2b covers the previous entry's hash), so an edited, removed or
// reordered entry breaks the chain from that point on. Never holds record content.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/store.h"

namespace tsunagu::api {

struct AuditEntry {
    std::int64_t seq = 0;
    std::int64_t at = 0;          // unix seconds
    std::string user_id;          // "" for anonymous (failed sign-in)
    std::string device_id;
    std::string action;           // "sync.push", "record.read", "auth.sign_in_failed", ...
    std::string target;           // a record id, user id or "" (never content)
    std::string detail;           // counts or outcome, never content
};

class AuditLog {
public:
    static Status create_schema(Store& store);
    // Appends inside the caller's transaction if one is open, else in its own.
    static Status append(Store& store, AuditEntry entry);
    // Entries with seq > after, oldest first, at most `limit`, optionally for one target or user.
    static Result<std::vector<AuditEntry>> list(Store& store, std::int64_t after, int limit,
                                                const std::string& target, const std::string& user_id);
    // Walks the chain; corrupt naming the first entry whose hash does not follow.
    static Status verify(Store& store);
};

}  // namespace tsunagu::api
