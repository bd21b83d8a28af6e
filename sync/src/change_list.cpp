// ChangeList: a record's applied change sets, in its row.
#include "sync/src/change_list.h"

#include <span>

#include "sync/merge.h"
#include "sync/src/ids_bytes.h"

namespace tsunagu::sync::detail {
namespace {

constexpr std::size_t kIdBytes = 16;

void put_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out.push_back(static_cast<char>((value & 0x7f) | 0x80));
        value >>= 7;
    }
    out.push_back(static_cast<char>(value));
}

void put_id(std::string& out, std::string_view hex) {
    const IdBytes id = id_to_bytes(hex);
    out.append(reinterpret_cast<const char*>(id.data()), id.size());
}

// Reads the stored form front to back; every read fails (returns false) past the end.
class Reader {
  public:
    explicit Reader(std::string_view bytes) : rest_(bytes) {}

    bool done() const { return rest_.empty(); }
    bool varint(std::uint64_t& value) {
        value = 0;
        for (int shift = 0; shift < 64 && !rest_.empty(); shift += 7) {
            const auto byte = static_cast<std::uint8_t>(rest_.front());
            rest_.remove_prefix(1);
            value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return true;
        }
        return false;
    }
    bool bytes(std::size_t n, std::string_view& out) {
        if (rest_.size() < n) return false;
        out = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return true;
    }
    bool be64(std::uint64_t& value) {
        std::string_view raw;
        if (!bytes(8, raw)) return false;
        value = 0;
        for (char c : raw) value = value << 8 | static_cast<std::uint8_t>(c);
        return true;
    }

  private:
    std::string_view rest_;
};

std::span<const std::uint8_t> as_bytes(std::string_view raw) {
    return {reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()};
}

// Walks the entries, calling visit(seq, id, hlc, base) with the ids raw and `base` as a list of
// (field, raw ids) pairs; false when the bytes end mid-entry.
template <typename Visit>
bool walk(std::string_view bytes, Visit&& visit) {
    Reader in(bytes);
    std::vector<std::pair<std::string_view, std::vector<std::string_view>>> base;
    while (!in.done()) {
        std::uint64_t seq = 0, hlc = 0, fields = 0;
        std::string_view id;
        if (!in.varint(seq) || !in.bytes(kIdBytes, id) || !in.be64(hlc) || !in.varint(fields))
            return false;
        base.clear();
        for (std::uint64_t f = 0; f < fields; ++f) {
            std::uint64_t length = 0, count = 0;
            std::string_view name;
            if (!in.varint(length) || !in.bytes(length, name) || !in.varint(count)) return false;
            auto& ids = base.emplace_back(name, std::vector<std::string_view>{}).second;
            for (std::uint64_t i = 0; i < count; ++i) {
                if (!in.bytes(kIdBytes, ids.emplace_back())) return false;
            }
        }
        if (!visit(seq, id, hlc, base)) break;
    }
    return true;
}

}  // namespace

Result<ChangeList> ChangeList::parse(std::string_view bytes) {
    ChangeList list;
    const bool whole = walk(
        bytes, [&](std::uint64_t seq, std::string_view id, std::uint64_t hlc, const auto& base) {
            AppliedChange entry;
            entry.seq = static_cast<std::int64_t>(seq);
            entry.change_id = id_from_bytes(as_bytes(id));
            entry.hlc = Hlc::from_packed(static_cast<std::int64_t>(hlc));
            for (const auto& [field, ids] : base) {
                auto& out = entry.base[std::string(field)];
                for (std::string_view raw : ids) out.push_back(id_from_bytes(as_bytes(raw)));
            }
            list.entries.push_back(std::move(entry));
            return true;
        });
    if (!whole) return Status(ErrorCode::corrupt, "malformed change list of a record");
    return list;
}

void ChangeList::append(std::string& bytes, const AppliedChange& entry) {
    put_varint(bytes, static_cast<std::uint64_t>(entry.seq));
    put_id(bytes, entry.change_id);
    const auto hlc = static_cast<std::uint64_t>(entry.hlc.packed());
    for (int shift = 56; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(hlc >> shift));
    put_varint(bytes, entry.base.size());
    for (const auto& [field, ids] : entry.base) {
        put_varint(bytes, field.size());
        bytes.append(field);
        put_varint(bytes, ids.size());
        for (const auto& id : ids) put_id(bytes, id);
    }
}

bool ChangeList::may_mention(std::string_view bytes, std::string_view change_id) {
    if (bytes.empty()) return false;
    const IdBytes wanted = id_to_bytes(change_id);
    const std::string_view raw(reinterpret_cast<const char*>(wanted.data()), wanted.size());
    bool found = false;
    const bool whole =
        walk(bytes, [&](std::uint64_t, std::string_view id, std::uint64_t, const auto& base) {
            found = id == raw;
            for (const auto& field : base) {
                for (std::string_view listed : field.second) found = found || listed == raw;
            }
            return !found;
        });
    return found || !whole;
}

bool ChangeList::holds(std::string_view bytes, std::string_view change_id) {
    if (bytes.empty()) return false;
    const IdBytes wanted = id_to_bytes(change_id);
    const std::string_view raw(reinterpret_cast<const char*>(wanted.data()), wanted.size());
    bool found = false;
    walk(bytes, [&](std::uint64_t, std::string_view id, std::uint64_t, const auto&) {
        found = id == raw;
        return !found;
    });
    return found;
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

std::string ChangeList::encoded() const {
    std::string out;
    for (const auto& e : entries) append(out, e);
    return out;
}

}  // namespace tsunagu::sync::detail
