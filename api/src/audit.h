// The audit trail: who read or wrote which record, when, from which device. Append-only and
// hash-chained (each entry's BLAKE2b covers the previous entry's hash), so an edited, removed or
// reordered entry breaks the chain from that point on. Never holds record content.
#pragma once

#include <cstdint>
#include <optional>
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

// The newest entry of the trail, as an anchor kept elsewhere (the server's log, a monitoring
// system, a printed report): a trail later found without it, or with another hash at its seq,
// lost entries from its end or was rewritten, which the chain alone cannot show (whoever can write
// the store can recompute it).
struct AuditHead {
    std::int64_t seq = 0;  // 0: the trail is empty
    std::string hash;      // its chain hash, hex
};

class AuditLog {
public:
    static Status create_schema(Store& store);
    // Appends inside the caller's transaction if one is open, else in its own.
    static Status append(Store& store, AuditEntry entry);
    // Entries with seq > after, oldest first, at most `limit`, optionally for one target or user.
    static Result<std::vector<AuditEntry>> list(Store& store, std::int64_t after, int limit,
                                                const std::string& target, const std::string& user_id);
    // Walks the chain; corrupt naming the first entry whose hash does not follow, or, with an
    // `anchor`, when the trail no longer holds that entry as it was. Answers the newest entry.
    static Result<AuditHead> verify(Store& store, const std::optional<AuditHead>& anchor = std::nullopt);
    // The newest entry, without walking the chain.
    static Result<AuditHead> head(Store& store);
};

}  // namespace tsunagu::api
