// The stored and wire form of a RecordState (see encode_state in merge.h).
#include <algorithm>
#include <charconv>
#include <optional>

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

// The metadata of the common case, read without building a JSON tree: owner, versions, the
// default version and per-field winners (no losing values, no deletion heads). Anything else (and
// anything unexpected: escapes, non-ASCII text, repeated or unknown keys) answers nullopt, and
// the caller parses the text with the full JSON parser, which also reports damage.
struct PlainMeta {
    std::string owner;
    std::vector<StateVersion> versions;
    std::optional<std::size_t> common;
    std::vector<std::pair<std::string_view, std::size_t>> winners;
};

class MetaReader {
  public:
    explicit MetaReader(std::string_view text) : text_(text) {}

    std::optional<PlainMeta> read() {
        PlainMeta meta;
        bool seen_o = false, seen_v = false, seen_w = false;
        if (!take('{')) return std::nullopt;
        if (take('}')) return std::nullopt;  // no "v": the full parser reports it
        do {
            std::string_view key;
            if (!string(key) || !take(':')) return std::nullopt;
            if (key == "o" && !seen_o) {
                seen_o = true;
                std::string_view owner;
                if (!string(owner)) return std::nullopt;
                meta.owner = owner;
            } else if (key == "v" && !seen_v) {
                seen_v = true;
                if (!versions(meta.versions)) return std::nullopt;
            } else if (key == "d" && !meta.common) {
                std::size_t d = 0;
                if (!number(d)) return std::nullopt;
                meta.common = d;
            } else if (key == "w" && !seen_w) {
                seen_w = true;
                if (!take('{')) return std::nullopt;
                do {
                    std::string_view field;
                    std::size_t index = 0;
                    if (!string(field) || !take(':') || !number(index)) return std::nullopt;
                    meta.winners.emplace_back(field, index);
                } while (take(','));
                if (!take('}')) return std::nullopt;
            } else {
                return std::nullopt;
            }
        } while (take(','));
        if (!take('}') || at_ < text_.size() || !seen_v) return std::nullopt;
        return meta;
    }

  private:
    bool take(char c) {
        if (at_ < text_.size() && text_[at_] == c) {
            ++at_;
            return true;
        }
        return false;
    }
    // A string of printable ASCII without escapes.
    bool string(std::string_view& out) {
        if (!take('"')) return false;
        const std::size_t start = at_;
        while (at_ < text_.size() && text_[at_] != '"') {
            const auto c = static_cast<unsigned char>(text_[at_]);
            if (c < 0x20 || c >= 0x80 || c == '\\') return false;
            ++at_;
        }
        if (at_ == text_.size()) return false;
        out = text_.substr(start, at_ - start);
        ++at_;
        return true;
    }
    template <typename Int>
    bool number(Int& out) {
        const char* begin = text_.data() + at_;
        const char* end = text_.data() + text_.size();
        if (begin == end || *begin == '-' || *begin == '+') return false;
        if (*begin == '0' && begin + 1 != end && begin[1] >= '0' && begin[1] <= '9') return false;
        auto [next, error] = std::from_chars(begin, end, out);
        if (error != std::errc() || next == begin) return false;
        if (next != end && (*next == '.' || *next == 'e' || *next == 'E')) return false;
        at_ += static_cast<std::size_t>(next - begin);
        return true;
    }
    // [[change_id, packed_hlc, replica, user, [seen...]?], ...]
    bool versions(std::vector<StateVersion>& out) {
        if (!take('[')) return false;
        if (take(']')) return true;
        do {
            StateVersion v;
            std::string_view id, replica, user;
            std::int64_t hlc = 0;
            if (!take('[') || !string(id) || !take(',') || !number(hlc) || !take(',') ||
                !string(replica) || !take(',') || !string(user)) {
                return false;
            }
            if (take(',')) {
                if (!take('[')) return false;
                if (!take(']')) {
                    do {
                        std::string_view seen;
                        if (!string(seen)) return false;
                        v.seen.emplace_back(seen);
                    } while (take(','));
                    if (!take(']')) return false;
                }
            }
            if (!take(']')) return false;
            v.version.change_id = id;
            v.version.hlc = Hlc::from_packed(hlc);
            v.version.replica = replica;
            v.version.user = user;
            out.push_back(std::move(v));
        } while (take(','));
        return take(']');
    }

    std::string_view text_;
    std::size_t at_ = 0;
};

// The start of a state's meta: `{"o":owner,` (no owner: nothing) and the versions' list, `"v":[`.
void open_meta(std::string& meta, std::string_view owner) {
    meta.reserve(160);
    meta.push_back('{');
    if (!owner.empty()) {
        meta.append("\"o\":");
        detail::write_json_string(meta, owner);
        meta.push_back(',');
    }
    meta.append("\"v\":[");
}

// A version's entry up to its optional seen list, left open: `[change_id,hlc,replica,user`.
void open_version(std::string& meta, std::string_view change_id, const Hlc& hlc, std::string_view replica,
                  std::string_view user) {
    meta.push_back('[');
    detail::write_json_string(meta, change_id);
    meta.push_back(',');
    meta.append(std::to_string(hlc.packed()));
    meta.push_back(',');
    detail::write_json_string(meta, replica);
    meta.push_back(',');
    detail::write_json_string(meta, user);
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
    fields.reserve(1024);
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
    open_meta(meta, state.owner);
    for (std::size_t n = 0; n < order.size(); ++n) {
        const StateVersion& v = state.versions[order[n]];
        if (n > 0) meta.push_back(',');
        open_version(meta, v.version.change_id, v.version.hlc, v.version.replica, v.version.user);
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

bool makes_whole_record(const ChangeSet& change) {
    return change.create && change.base.empty() && change.set.is_object() && !change.set.empty() &&
           !change.set.contains(kDeletedField);
}

EncodedState encode_created(const ChangeSet& change) {
    // As encode_state: one version (index 0), the winner of every field, so the default.
    EncodedState out;
    out.fields.reserve(1024);  // one allocation for a record of ten fields
    detail::write_json(out.fields, change.set);
    std::string& meta = out.meta;
    open_meta(meta, change.user);
    open_version(meta, change.id, change.hlc, change.replica, change.user);
    meta.append("]],\"d\":0}");
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
    RecordState state;
    if (auto plain = MetaReader(meta_text).read()) {
        // Every value must name a version; if one does not, the full parser below reports it.
        std::vector<std::size_t> indexes;
        indexes.reserve(fields.size());
        for (const auto& [key, value] : fields) {
            std::optional<std::size_t> index = plain->common;
            for (const auto& [field, winner] : plain->winners) {
                if (field == key) index = winner;
            }
            if (!index || *index >= plain->versions.size()) break;
            indexes.push_back(*index);
        }
        if (indexes.size() == fields.size()) {
            state.owner = std::move(plain->owner);
            state.versions = std::move(plain->versions);
            for (std::size_t i = 0; i < fields.size(); ++i)
                state.fields[fields[i].first].push_back({indexes[i], std::move(fields[i].second)});
            return state;
        }
    }
    Json meta = Json::parse(meta_text, nullptr, false);
    if (!meta.is_object()) return malformed("metadata is not a JSON object");
    try {
        if (meta.contains("o")) state.owner = meta["o"].get<std::string>();
        for (const Json& entry : meta.at("v")) {
            StateVersion v;
            v.version.change_id = entry.at(0).get<std::string>();
            // A clock is a whole, non-negative number: nlohmann would read 1.5 as 1 and -5 as -5.
            if (!entry.at(1).is_number_unsigned()) return malformed("a version's clock is not a whole number");
            v.version.hlc = Hlc::from_packed(entry.at(1).get<std::int64_t>());
            v.version.replica = entry.at(2).get<std::string>();
            v.version.user = entry.at(3).get<std::string>();
            if (entry.size() > 4) v.seen = entry.at(4).get<std::vector<std::string>>();
            state.versions.push_back(std::move(v));
        }
        const std::size_t count = state.versions.size();
        auto checked = [&](const Json& index) {
            if (!index.is_number_unsigned()) throw std::out_of_range("version index");
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
        return malformed(exception_text(e));
    }
    return state;
}

bool made_only_by(std::string_view meta_text, std::string_view replica) {
    // Most records were written by someone else: their metadata does not even name the replica.
    if (replica.empty() || meta_text.find(replica) == std::string_view::npos) return false;
    // "v" lists exactly the versions some head references (encode_state drops the others).
    if (auto plain = MetaReader(meta_text).read()) {
        return !plain->versions.empty() &&
               std::all_of(plain->versions.begin(), plain->versions.end(),
                           [&](const StateVersion& v) { return v.version.replica == replica; });
    }
    const Json meta = Json::parse(meta_text, nullptr, false);
    if (!meta.is_object()) return false;
    const auto versions = meta.find("v");
    if (versions == meta.end() || !versions->is_array() || versions->empty()) return false;
    return std::all_of(versions->begin(), versions->end(), [&](const Json& entry) {
        return entry.is_array() && entry.size() > 2 && entry[2].is_string() &&
               entry[2].get_ref<const std::string&>() == replica;
    });
}

}  // namespace tsunagu::sync
