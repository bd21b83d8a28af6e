// The stored and wire form of a RecordState (see encode_state in merge.h).
#include <algorithm>

#include "sync/merge.h"

namespace tsunagu::sync {
namespace {

Status malformed(const std::string& what) {
    return Status(ErrorCode::corrupt, "malformed record state: " + what +
                                          " (the store or the upstream sent damaged data)");
}

}  // namespace

EncodedState encode_state(const RecordState& state) {
    // Renumber the versions still referenced by a head, in first-use order.
    std::vector<std::size_t> renumbered(state.versions.size(), SIZE_MAX);
    std::vector<std::size_t> order;
    auto number = [&](std::size_t index) {
        if (renumbered[index] == SIZE_MAX) {
            renumbered[index] = order.size();
            order.push_back(index);
        }
        return renumbered[index];
    };

    Json fields = Json::object();
    Json winners = Json::object();
    Json losers = Json::object();
    Json existence = Json::array();
    std::map<std::size_t, std::size_t> winner_uses;
    for (const auto& [field, heads] : state.fields) {
        if (field == kDeletedField) {
            for (const Head& head : heads) existence.push_back({number(head.version), head.value});
            continue;
        }
        fields[field] = heads.front().value;
        const std::size_t winner = number(heads.front().version);
        winners[field] = winner;
        ++winner_uses[winner];
        if (heads.size() > 1) {
            Json& list = losers[field];
            for (std::size_t i = 1; i < heads.size(); ++i) {
                list.push_back({number(heads[i].version), heads[i].value});
            }
        }
    }

    Json meta = Json::object();
    if (!state.owner.empty()) meta["o"] = state.owner;
    Json versions = Json::array();
    for (std::size_t index : order) {
        const StateVersion& v = state.versions[index];
        Json entry = {v.version.change_id, v.version.hlc.packed(), v.version.replica,
                      v.version.user};
        if (!v.seen.empty()) entry.push_back(v.seen);
        versions.push_back(std::move(entry));
    }
    meta["v"] = std::move(versions);
    if (!winner_uses.empty()) {
        auto common = std::max_element(winner_uses.begin(), winner_uses.end(),
                                       [](auto& a, auto& b) { return a.second < b.second; });
        meta["d"] = common->first;
        Json exceptions = Json::object();
        for (auto& [field, winner] : winners.items()) {
            if (winner.get<std::size_t>() != common->first) exceptions[field] = winner;
        }
        if (!exceptions.empty()) meta["w"] = std::move(exceptions);
    }
    if (!losers.empty()) meta["l"] = std::move(losers);
    if (!existence.empty()) meta["x"] = std::move(existence);

    EncodedState out;
    out.fields = fields.dump();
    out.meta = meta.dump();
    out.deleted = state.deleted();
    out.conflicts = conflict_count(state);
    return out;
}

Result<RecordState> decode_state(std::string_view fields_text, std::string_view meta_text) {
    Json fields = Json::parse(fields_text, nullptr, false);
    Json meta = Json::parse(meta_text, nullptr, false);
    if (!fields.is_object()) return malformed("fields are not a JSON object");
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
        for (auto& item : fields.items()) {
            const Json& index = winners && winners->contains(item.key()) ? (*winners)[item.key()]
                                                                          : meta.at("d");
            state.fields[item.key()].push_back({checked(index), std::move(item.value())});
        }
        if (meta.contains("l")) {
            for (auto& item : meta["l"].items()) {
                auto it = state.fields.find(item.key());
                if (it == state.fields.end()) return malformed("a losing value of \"" + item.key() + "\" without a current one");
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
