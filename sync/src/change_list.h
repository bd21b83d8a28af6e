// The change sets an upstream applied to one record, kept in the record's own row (column
// sync_records.log, NULL on devices): enough to answer a repeated push, to notice a change set
// that arrives after an edit that had seen it, and to find the record's history in sync_log.
// Kept in the row so that applying a change touches no other random page.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "sync/hlc.h"
#include "sync/protocol.h"

namespace tsunagu::sync::detail {

struct AppliedChange {
    std::int64_t seq = 0;
    std::string change_id;
    Hlc hlc;  // as stamped by the upstream
    // The part of its base not applied to the record when it was (a change set that may still
    // arrive, late): field -> change-set ids.
    std::map<std::string, std::vector<std::string>> base;
};

// Stored form (a BLOB), one entry after another, nothing between them:
//   varint seq, 16-byte change id, 8-byte packed hlc (big-endian),
//   varint field count, then per field: varint name length, name, varint id count, 16-byte ids.
// (varint: unsigned LEB128.) About 30 bytes an entry: the list grows with every change set
// applied to the record, and its row is rewritten each time.
class ChangeList {
  public:
    static Result<ChangeList> parse(std::string_view bytes);
    // Appends an entry to a list's stored form without parsing it. Precondition: ids well formed.
    static void append(std::string& bytes, const AppliedChange& entry);
    // True when `change_id` is an entry's or in an entry's base (a walk, cheaper than parsing);
    // also true for a damaged list, so that parsing it reports the damage.
    static bool may_mention(std::string_view bytes, std::string_view change_id);
    // True when `change_id` is an entry's own id: a change set applied to the record (a walk).
    // An id named only in an entry's base is not applied: it may still arrive, late.
    static bool holds(std::string_view bytes, std::string_view change_id);

    const AppliedChange* find(std::string_view change_id) const;
    // The fields for which an applied change set listed `change_id` in its base.
    std::set<std::string> superseded(std::string_view change_id) const;
    std::string encoded() const;

    std::vector<AppliedChange> entries;
};

// The answer for a change set applied before (a repeated push, or an answer the device lost).
PushOutcome answer_again(const AppliedChange& applied, const std::string& record);

}  // namespace tsunagu::sync::detail
