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

// Text form: a JSON array of [seq, change_id, packed_hlc, base?].
class ChangeList {
  public:
    static Result<ChangeList> parse(std::string_view text);
    // Appends an entry to a list's text without parsing it.
    static void append(std::string& text, const AppliedChange& entry);
    // True when `change_id` may be in the list's text (a cheap test before parsing it).
    static bool may_mention(std::string_view text, std::string_view change_id) {
        return text.find(change_id) != std::string_view::npos;
    }

    const AppliedChange* find(std::string_view change_id) const;
    // The fields for which an applied change set listed `change_id` in its base.
    std::set<std::string> superseded(std::string_view change_id) const;
    std::string text() const;

    std::vector<AppliedChange> entries;
};

// The answer for a change set applied before (a repeated push, or an answer the device lost).
PushOutcome answer_again(const AppliedChange& applied, const std::string& record);

}  // namespace tsunagu::sync::detail
