// Device::Impl::keep_lost_heads: a page's version of a record whose copy here holds values the
// upstream lost (restored from a backup older than them) does not replace those values unseen.
#include <algorithm>
#include <map>
#include <unordered_set>

#include "sync/src/device_impl.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"

namespace tsunagu::sync {
namespace {

// Whether `heads` hold a value equal to `value`.
bool holds_value(const std::vector<Head>& heads, const FieldValue& value) {
    return std::any_of(heads.begin(), heads.end(), [&](const Head& h) { return h.value == value; });
}

}  // namespace

Result<std::size_t> Device::Impl::keep_lost_heads(const RecordSnapshot& snapshot, bool ancestor) {
    const detail::IdBytes id = detail::id_to_bytes(snapshot.id);
    TSUNAGU_TRY(store.cached("DELETE FROM sync_release_asks WHERE record_id = ?1").bind_blob(1, id).run());
    auto held = records.load(snapshot.id);
    TSUNAGU_TRY(held);
    if (!*held) {
        TSUNAGU_TRY(rebase(snapshot));
        return std::size_t{0};
    }
    const RecordState& copy = (*held)->state;
    auto upstream = decode_state(snapshot.fields, snapshot.meta);
    TSUNAGU_TRY(upstream);

    // The versions accounted for: those the page's version holds, and this device's own changes
    // still to be sent (the rebase below applies them again) or kept as acknowledged.
    std::unordered_set<std::string> known;
    for (const StateVersion& v : upstream->versions) known.insert(v.version.change_id);
    Statement& own = store.cached(
        "SELECT change_id FROM sync_outbox WHERE record_id = ?1"
        " UNION ALL SELECT change_id FROM sync_journal WHERE record_id = ?1");
    TSUNAGU_TRY(detail::each_row(own.bind_blob(1, id), [&](const Statement& row) {
        known.insert(detail::id_from_bytes(row.column_blob(0)));
    }));

    // One change per lost version, keyed by the version's place in the copy's state.
    std::map<std::size_t, ChangeSet> lost;
    for (const auto& [field, heads] : copy.fields) {
        // A lost delete is not made again: the record stays, which loses nothing.
        if (field == kDeletedField) continue;
        const auto there = upstream->fields.find(field);
        for (const Head& head : heads) {
            if (known.contains(copy.version_of(head).change_id)) continue;
            if (there != upstream->fields.end() && holds_value(there->second, head.value)) continue;
            ChangeSet& change = lost[head.version];
            change.set[field] = head.value.json();
            if (!ancestor || there == upstream->fields.end()) continue;
            // Grown from the page's version, the copy's value superseded the page's values it no
            // longer holds: so does the change that makes it again.
            std::vector<std::string>& base = change.base[field];
            for (const Head& old : there->second) {
                const std::string& old_id = upstream->version_of(old).change_id;
                const bool still_here = std::any_of(heads.begin(), heads.end(), [&](const Head& h) {
                    return copy.version_of(h).change_id == old_id;
                });
                if (!still_here && std::find(base.begin(), base.end(), old_id) == base.end()) base.push_back(old_id);
            }
        }
    }

    // In the order the lost versions were made, so that their values win over each other as they did.
    std::vector<std::pair<std::size_t, ChangeSet*>> ordered;
    for (auto& [version, change] : lost) ordered.emplace_back(version, &change);
    std::sort(ordered.begin(), ordered.end(), [&](const auto& a, const auto& b) {
        return wins_over(copy.versions[b.first].version, copy.versions[a.first].version);
    });
    for (auto& [version, change] : ordered) {
        change->id = options.ids();
        change->collection = snapshot.collection;
        change->record = snapshot.id;
        change->hlc = clock.tick();
        change->replica = replica;
        change->user = options.user;
        change->schema_version = schema.version;
        TSUNAGU_TRY(queue(*change));
    }
    TSUNAGU_TRY(rebase(snapshot));
    return ordered.size();
}

}  // namespace tsunagu::sync
