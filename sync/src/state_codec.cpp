// The stored and wire form of a RecordState (see encode_state in merge.h).
#include <algorithm>

#include "sync/merge.h"
#include "sync/src/json_scan.h"
#include "sync/src/json_writer.h"

namespace tsunagu::sync {
namespace {

Status malformed(const std::string& what) {
    return Status(ErrorCode::corrupt, "malformed record state: " + what +
                                          " (the store or the upstream sent damaged data)");
}

void write_value(std::string& out, const FieldValue& value) {
    if (value.is_text()) {
        out.append(value.text());
    } else {
        detail::write_json(out, value.json());
    }
}

}  // namespace

EncodedState encode_state(const RecordState& state) {
    // Number the versions still referenced by a head, in first-use order.
    std::vector<std::size_t> renumbered(state.versions.size(), SIZE_MAX);
    std::vector<std::size_t> order;
    auto number = [&](std::size_t index) {
        if (renumbered[index] == SIZE_MAX) {
            renumbered[index] = order.size();
            order.push_back(index);
        }
        return renumbered[index];
    };
    std::vector<std::size_t> winner_uses;
    for (const auto& [field, heads] : state.fields) {
        for (const Head& head : heads) number(head.version);
        if (field == kDeletedField) continue;
        const std::size_t winner = number(heads.front().version);
        if (winner_uses.size() <= winner) winner_uses.resize(winner + 1);
        ++winner_uses[winner];
    }
    const std::size_t common =
        winner_uses.empty()
            ? 0
            : static_cast<std::size_t>(std::max_element(winner_uses.begin(), winner_uses.end()) -
                                       winner_uses.begin());
    auto write_number = [](std::string& out, std::size_t n) { out.append(std::to_string(n)); };

    EncodedState out;
    std::string& fields = out.fields;
    fields.reserve(512);
    fields.push_back('{');
    std::string winners, losers, existence;
    for (const auto& [field, heads] : state.fields) {
        if (field == kDeletedField) {
            for (const Head& head : heads) {
                existence.append(existence.empty() ? "[" : ",");
                existence.push_back('[');
                write_number(existence, renumbered[head.version]);
                existence.append(head.value == Json(true) ? ",true]" : ",false]");
            }
            continue;
        }
        if (fields.size() > 1) fields.push_back(',');
        detail::write_json_string(fields, field);
        fields.push_back(':');
        write_value(fields, heads.front().value);
        if (renumbered[heads.front().version] != common) {
            winners.append(winners.empty() ? "{" : ",");
            detail::write_json_string(winners, field);
            winners.push_back(':');
            write_number(winners, renumbered[heads.front().version]);
        }
        if (heads.size() > 1) {
            losers.append(losers.empty() ? "{" : ",");
            detail::write_json_string(losers, field);
            losers.append(":[");
            for (std::size_t i = 1; i < heads.size(); ++i) {
                if (i > 1) losers.push_back(',');
                losers.push_back('[');
                write_number(losers, renumbered[heads[i].version]);
                losers.push_back(',');
                write_value(losers, heads[i].value);
                losers.push_back(']');
            }
            losers.push_back(']');
        }
    }
    fields.push_back('}');

    std::string& meta = out.meta;
    meta.reserve(160);
    meta.push_back('{');
    if (!state.owner.empty()) {
        meta.append("\"o\":");
        detail::write_json_string(meta, state.owner);
        meta.push_back(',');
    }
    meta.append("\"v\":[");
    for (std::size_t n = 0; n < order.size(); ++n) {
        const StateVersion& v = state.versions[order[n]];
        if (n > 0) meta.push_back(',');
        meta.push_back('[');
        detail::write_json_string(meta, v.version.change_id);
        meta.push_back(',');
        meta.append(std::to_string(v.version.hlc.packed()));
        meta.push_back(',');
        detail::write_json_string(meta, v.version.replica);
        meta.push_back(',');
        detail::write_json_string(meta, v.version.user);
        if (!v.seen.empty()) {
            meta.append(",[");
            for (std::size_t i = 0; i < v.seen.size(); ++i) {
                if (i > 0) meta.push_back(',');
                detail::write_json_string(meta, v.seen[i]);
            }
            meta.push_back(']');
        }
        meta.push_back(']');
    }
    meta.push_back(']');
    if (!winner_uses.empty()) {
        meta.append(",\"d\":");
        write_number(meta, common);
    }
    if (!winners.empty()) meta.append(",\"w\":").append(winners).push_back('}');
    if (!losers.empty()) meta.append(",\"l\":").append(losers).push_back('}');
    if (!existence.empty()) meta.append(",\"x\":").append(existence).push_back(']');
    meta.push_back('}');

    out.deleted = state.deleted();
    out.conflicts = conflict_count(state);
    return out;
}

Result<RecordState> decode_state(std::string_view fields_text, std::string_view meta_text) {
    // The values stay text until used; only what does not scan as an object is parsed here.
    std::vector<std::pair<std::string, FieldValue>> fields;
    if (auto members = detail::scan_object(fields_text)) {
        fields.reserve(members->size());
        for (auto& [key, value] : *members)
            fields.emplace_back(std::move(key), FieldValue::from_text(std::string(value)));
    } else {
        Json parsed = Json::parse(fields_text, nullptr, false);
        if (!parsed.is_object()) return malformed("fields are not a JSON object");
        for (auto& item : parsed.items())
            fields.emplace_back(item.key(), FieldValue(std::move(item.value())));
    }
    Json meta = Json::parse(meta_text, nullptr, false);
    if (!meta.is_object()) return malformed("metadata is not a JSON object");
    RecordState state;
    try {
        if (meta.contains("o")) state.owner = meta["o"].get<std::string>();
        for (const Json& entry : meta.at("v")) {
            StateVersion v;
            v.version.change_id = entry.at(0).get<std::string>();
            v.version.hlc = Hlc::from_packed(entry.at(1).get<std::int64_t>());
            v.version.replica = entry.at(2).get<std::string>();
            v.version.user = entry.at(3).get<std::string>();
            if (entry.size() > 4) v.seen = entry.at(4).get<std::vector<std::string>>();
            state.versions.push_back(std::move(v));
        }
        const std::size_t count = state.versions.size();
        auto checked = [&](const Json& index) {
            const auto i = index.get<std::size_t>();
            if (i >= count) throw std::out_of_range("version index");
            return i;
        };
        const Json* winners = meta.contains("w") ? &meta["w"] : nullptr;
        for (auto& [key, value] : fields) {
            const Json* index = nullptr;
            if (winners) {
                auto winner = winners->find(key);
                if (winner != winners->end()) index = &*winner;
            }
            state.fields[key].push_back({checked(index ? *index : meta.at("d")), std::move(value)});
        }
        if (meta.contains("l")) {
            for (auto& item : meta["l"].items()) {
                auto it = state.fields.find(item.key());
                if (it == state.fields.end())
                    return malformed("a losing value of \"" + item.key() +
                                     "\" without a current one");
                for (Json& loser : item.value()) {
                    it->second.push_back({checked(loser.at(0)), std::move(loser.at(1))});
                }
            }
        }
        if (meta.contains("x")) {
            auto& heads = state.fields[kDeletedField];
            for (const Json& head : meta["x"]) {
                heads.push_back({checked(head.at(0)), Json(head.at(1).get<bool>())});
            }
        }
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
    return state;
}

}  // namespace tsunagu::sync
