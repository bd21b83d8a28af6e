// The merge rules of merge.h: heads per field, last-writer-wins, conflicts, deletion.
#include "sync/merge.h"

#include <algorithm>

namespace tsunagu::sync {
namespace {

const std::vector<std::string> kNoBase;

bool contains(const std::vector<std::string>& list, std::string_view id) {
    return std::find(list.begin(), list.end(), id) != list.end();
}

const std::vector<std::string>& base_for(const ChangeSet& change, const std::string& field) {
    auto it = change.base.find(field);
    return it == change.base.end() ? kNoBase : it->second;
}

void sort_heads(const RecordState& state, std::vector<Head>& heads) {
    std::sort(heads.begin(), heads.end(), [&](const Head& a, const Head& b) {
        return wins_over(state.version_of(a), state.version_of(b));
    });
}

FieldVersion field_version(const RecordState& state, const Head& head) {
    return {head.value.json(), state.version_of(head)};
}

// Every change-set id that a true (deleting) head of kDeletedField saw.
std::set<std::string> seen_by_deletes(const RecordState& state) {
    std::set<std::string> seen;
    auto it = state.fields.find(kDeletedField);
    if (it == state.fields.end()) return seen;
    for (const Head& head : it->second) {
        if (head.value != Json(true)) continue;
        const auto& ids = state.versions[head.version].seen;
        seen.insert(ids.begin(), ids.end());
    }
    return seen;
}

}  // namespace

FieldValue FieldValue::from_text(std::string text) {
    FieldValue value;
    value.text_ = std::move(text);
    value.parsed_ = false;
    return value;
}

namespace {

// A stored string of printable ASCII without escapes (most are) is its text between the quotes.
// (Anything else goes through the parser, which also checks the UTF-8.)
bool is_plain_string(std::string_view text) {
    if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return false;
    }
    return true;
}

}  // namespace

const Json& FieldValue::json() const {
    if (!parsed_) {
        if (is_plain_string(text_)) {
            json_ = text_.substr(1, text_.size() - 2);
        } else {
            json_ = Json::parse(text_, nullptr, false);
            if (json_.is_discarded()) json_ = nullptr;
        }
        parsed_ = true;
    }
    return json_;
}

bool operator==(const FieldValue& a, const FieldValue& b) {
    if (a.is_text() && b.is_text()) return a.text_ == b.text_;
    return a.json() == b.json();
}

bool RecordState::deleted() const {
    const Head* head = winner(kDeletedField);
    return head != nullptr && head->value == Json(true);
}

const Head* RecordState::winner(std::string_view field) const {
    auto it = fields.find(std::string(field));
    return it == fields.end() || it->second.empty() ? nullptr : &it->second.front();
}

bool wins_over(const Version& a, const Version& b) {
    if (a.hlc != b.hlc) return a.hlc > b.hlc;
    if (a.replica != b.replica) return a.replica > b.replica;
    return a.change_id > b.change_id;
}

Applied apply_change(RecordState& state, const ChangeSet& change,
                     const std::set<std::string>& superseded) {
    for (const StateVersion& known : state.versions) {
        if (known.version.change_id == change.id) return Applied::duplicate;
    }
    const std::size_t index = state.versions.size();
    state.versions.push_back({Version{change.id, change.hlc, change.replica, change.user},
                              change.deletes() ? change.seen : std::vector<std::string>{}});
    // The creator owns the record; until its create arrives, the first author holds it.
    if (change.create || state.owner.empty()) state.owner = change.user;

    for (const auto& item : change.set.items()) {
        const std::string& field = item.key();
        auto& heads = state.fields[field];
        const auto& base = base_for(change, field);
        std::erase_if(heads, [&](const Head& head) {
            return contains(base, state.version_of(head).change_id);
        });
        if (!superseded.contains(field)) heads.push_back({index, item.value()});
        if (heads.empty()) {
            state.fields.erase(field);
        } else {
            sort_heads(state, heads);
        }
    }
    return Applied::applied;
}

std::set<std::string> superseded_fields(
    std::string_view change_id, const std::map<std::string, std::vector<std::string>>& base) {
    std::set<std::string> fields;
    for (const auto& [field, ids] : base) {
        if (contains(ids, change_id)) fields.insert(field);
    }
    return fields;
}

bool restamp(RecordState& state, std::string_view change_id, Hlc hlc) {
    auto it = std::find_if(state.versions.begin(), state.versions.end(),
                           [&](const StateVersion& v) { return v.version.change_id == change_id; });
    if (it == state.versions.end()) return false;
    it->version.hlc = hlc;
    for (auto& [field, heads] : state.fields) sort_heads(state, heads);
    return true;
}

std::vector<std::string> current_base(const RecordState& state, std::string_view field) {
    std::vector<std::string> ids;
    auto it = state.fields.find(std::string(field));
    if (it == state.fields.end()) return ids;
    const FieldValue& current = it->second.front().value;
    for (const Head& head : it->second) {
        if (head.value == current) ids.push_back(state.version_of(head).change_id);
    }
    return ids;
}

std::vector<std::string> head_ids(const RecordState& state, std::string_view field) {
    std::vector<std::string> ids;
    auto it = state.fields.find(std::string(field));
    if (it == state.fields.end()) return ids;
    for (const Head& head : it->second) ids.push_back(state.version_of(head).change_id);
    return ids;
}

std::vector<std::string> all_field_head_ids(const RecordState& state) {
    std::set<std::string> ids;
    for (const auto& [field, heads] : state.fields) {
        if (field == kDeletedField) continue;
        for (const Head& head : heads) ids.insert(state.version_of(head).change_id);
    }
    return {ids.begin(), ids.end()};
}

std::vector<Conflict> conflicts_of(const RecordState& state, const std::string& record,
                                   const std::string& collection) {
    std::vector<Conflict> out;
    const bool deleted = state.deleted();
    const std::set<std::string> seen = deleted ? seen_by_deletes(state) : std::set<std::string>{};
    for (const auto& [field, heads] : state.fields) {
        const bool existence = field == kDeletedField;
        if (deleted && !existence) {
            // Heads the delete did not see were edited concurrently with it.
            const Head& del = *state.winner(kDeletedField);
            for (const Head& head : heads) {
                if (seen.contains(state.version_of(head).change_id)) continue;
                out.push_back({record, collection, field, ConflictKind::edit_vs_delete,
                               FieldVersion{Json(), state.version_of(del)},
                               field_version(state, head)});
            }
            continue;
        }
        for (std::size_t i = 1; i < heads.size(); ++i) {
            if (heads[i].value == heads.front().value) continue;  // nothing would be lost
            out.push_back(
                {record, collection, field,
                 existence ? ConflictKind::delete_vs_restore : ConflictKind::concurrent_edit,
                 field_version(state, heads.front()), field_version(state, heads[i])});
        }
    }
    return out;
}

std::size_t conflict_count(const RecordState& state) {
    std::size_t count = 0;
    const bool deleted = state.deleted();
    const std::set<std::string> seen = deleted ? seen_by_deletes(state) : std::set<std::string>{};
    for (const auto& [field, heads] : state.fields) {
        if (deleted && field != kDeletedField) {
            for (const Head& head : heads)
                count += !seen.contains(state.version_of(head).change_id);
            continue;
        }
        for (std::size_t i = 1; i < heads.size(); ++i)
            count += heads[i].value != heads.front().value;
    }
    return count;
}

Json current_values(const RecordState& state) {
    Json values = Json::object();
    for (const auto& [field, heads] : state.fields) {
        if (field != kDeletedField) values[field] = heads.front().value.json();
    }
    return values;
}

Record to_record(const RecordState& state, std::string id, std::string collection,
                 std::string scope_key) {
    Record record;
    record.conflicts = conflicts_of(state, id, collection);
    record.id = std::move(id);
    record.collection = std::move(collection);
    record.scope_key = std::move(scope_key);
    record.owner = state.owner;
    record.deleted = state.deleted();
    record.fields = current_values(state);
    for (const auto& [field, heads] : state.fields) {
        if (field == kDeletedField) continue;
        record.versions[field] = state.version_of(heads.front());
        auto& ids = record.heads[field];
        for (const Head& head : heads) ids.push_back(state.version_of(head).change_id);
    }
    return record;
}

}  // namespace tsunagu::sync
