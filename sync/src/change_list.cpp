// ChangeList: a record's applied change sets, in its row.
#include "sync/src/change_list.h"

#include <nlohmann/json.hpp>

#include "sync/merge.h"

namespace tsunagu::sync::detail {
namespace {

Json entry_json(const AppliedChange& e) {
    Json out = {e.seq, e.change_id, e.hlc.packed()};
    if (!e.base.empty()) out.push_back(e.base);
    return out;
}

}  // namespace

Result<ChangeList> ChangeList::parse(std::string_view text) {
    ChangeList list;
    if (text.empty()) return list;
    const Json parsed = Json::parse(text, nullptr, false);
    try {
        for (const Json& e : parsed) {
            AppliedChange entry;
            entry.seq = e.at(0).get<std::int64_t>();
            entry.change_id = e.at(1).get<std::string>();
            entry.hlc = Hlc::from_packed(e.at(2).get<std::int64_t>());
            if (e.size() > 3)
                entry.base = e.at(3).get<std::map<std::string, std::vector<std::string>>>();
            list.entries.push_back(std::move(entry));
        }
    } catch (const std::exception& e) {
        return Status(ErrorCode::corrupt,
                      std::string("malformed change list of a record: ") + e.what());
    }
    if (!parsed.is_array()) return Status(ErrorCode::corrupt, "malformed change list of a record");
    return list;
}

void ChangeList::append(std::string& text, const AppliedChange& entry) {
    const std::string item = entry_json(entry).dump();
    if (text.size() < 2) {
        text = "[" + item + "]";
    } else {
        text.insert(text.size() - 1, "," + item);
    }
}

const AppliedChange* ChangeList::find(std::string_view change_id) const {
    for (const auto& e : entries) {
        if (e.change_id == change_id) return &e;
    }
    return nullptr;
}

std::set<std::string> ChangeList::superseded(std::string_view change_id) const {
    std::set<std::string> fields;
    for (const auto& e : entries) {
        auto found = superseded_fields(change_id, e.base);
        fields.insert(found.begin(), found.end());
    }
    return fields;
}

PushOutcome answer_again(const AppliedChange& applied, const std::string& record) {
    PushOutcome out;
    out.change_id = applied.change_id;
    out.record = record;
    out.status = PushStatus::duplicate;
    out.seq = applied.seq;
    out.hlc = applied.hlc;
    return out;
}

std::string ChangeList::text() const {
    Json out = Json::array();
    for (const auto& e : entries) out.push_back(entry_json(e));
    return out.dump();
}

}  // namespace tsunagu::sync::detail
