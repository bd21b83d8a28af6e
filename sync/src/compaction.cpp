// Compaction on the upstream: purging what no device can still need.
//
// A device's horizon is the lower of its cursor and its outbox floor (the cursor it had when it
// made its oldest change still in the outbox): it has applied everything up to there, and nothing
// it may still push was based on anything older. A record's horizon is the lowest horizon among
// the devices whose user can see the record's scope key. At or below it, change-log entries of
// versions no longer current are purged (no device will repeat or build on them), and so are
// tombstones without open conflicts (every device that holds the record has the tombstone).
// A record's latest entry stays: a new device's first pull walks the log to it.
#include <algorithm>
#include <limits>
#include <map>
#include <span>

#include "sync/src/change_list.h"
#include "sync/src/ids_bytes.h"
#include "sync/src/rows.h"
#include "sync/src/tables.h"
#include "sync/src/upstream_impl.h"

namespace tsunagu::sync {
namespace {

struct Horizons {
    std::int64_t everything = std::numeric_limits<std::int64_t>::max();  // users holding "*"
    std::int64_t any = std::numeric_limits<std::int64_t>::max();         // every device
    std::map<std::string, std::int64_t> by_key;

    std::int64_t of(const std::string& key, std::int64_t last_seq) const {
        std::int64_t h = std::min(everything, last_seq);
        if (auto it = by_key.find(key); it != by_key.end()) h = std::min(h, it->second);
        return h;
    }
};

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
std::span<const std::uint8_t> as_bytes(const std::string& chars) {
    return {reinterpret_cast<const std::uint8_t*>(chars.data()), chars.size()};
}

// The change sets a record's state still refers to (see encode_state: the "v" list of its meta).
Result<std::vector<detail::IdBytes>> referenced_versions(const std::string& meta) {
    const Json parsed = Json::parse(meta, nullptr, false);
    std::vector<detail::IdBytes> ids;
    if (parsed.is_object() && parsed.contains("v") && parsed["v"].is_array()) {
        for (const Json& version : parsed["v"]) {
            if (version.is_array() && !version.empty() && version[0].is_string() &&
                is_id(version[0].get_ref<const std::string&>())) {
                ids.push_back(detail::id_to_bytes(version[0].get_ref<const std::string&>()));
                continue;
            }
            return Status(ErrorCode::corrupt, "malformed record state: a version without an id");
        }
        return ids;
    }
    return Status(ErrorCode::corrupt, "malformed record state: no version list");
}

Result<Horizons> horizons(Store& store) {
    Horizons out;
    std::map<std::string, std::int64_t> by_user;
    TSUNAGU_TRY(
        detail::each_row(store.cached("SELECT user, min(cursor, outbox_floor) FROM sync_replicas"),
                         [&](const Statement& s) {
                             std::string user(s.column_text(0));
                             const std::int64_t h = s.column_int(1);
                             auto [it, fresh] = by_user.emplace(user, h);
                             if (!fresh) it->second = std::min(it->second, h);
                             out.any = std::min(out.any, h);
                             return Status::ok();
                         }));
    Statement& keys = store.cached("SELECT scope_key FROM sync_scope_members WHERE user = ?1");
    for (const auto& [user, h] : by_user) {
        keys.bind(1, user);
        TSUNAGU_TRY(detail::each_row(keys, [&](const Statement& s) {
            std::string key(s.column_text(0));
            if (key == "*") {
                out.everything = std::min(out.everything, h);
            } else {
                auto [it, fresh] = out.by_key.emplace(key, h);
                if (!fresh) it->second = std::min(it->second, h);
            }
            return Status::ok();
        }));
    }
    return out;
}

}  // namespace

Result<CompactionReport> Upstream::compact() {
    Impl& im = *impl_;
    CompactionReport report;
    Status status = with_transaction(im.store, [&]() -> Status {
        TSUNAGU_TRY(im.read_counters());
        auto h = horizons(im.store);
        TSUNAGU_TRY(h);

        struct Candidate {
            std::int64_t rid;
            std::int64_t seq;
            std::int64_t horizon;
            bool tombstone;
            std::string meta;
            std::string log;
        };
        std::vector<Candidate> candidates;
        TSUNAGU_TRY(detail::each_row(
            im.store.cached(
                "SELECT rid, scope_key, seq, deleted, conflicts, meta, log FROM sync_records"),
            [&](const Statement& s) {
                const std::int64_t seq = s.column_int(2);
                const std::int64_t horizon = h->of(std::string(s.column_text(1)), im.seq);
                const bool tombstone =
                    s.column_int(3) != 0 && s.column_int(4) == 0 && seq <= horizon;
                candidates.push_back({s.column_int(0), seq, horizon, tombstone,
                                      std::string(s.column_text(5)),
                                      std::string(as_chars(s.column_blob(6)))});
                return Status::ok();
            }));

        Statement& drop_line = im.store.cached("DELETE FROM sync_log WHERE seq = ?1");
        for (const Candidate& c : candidates) {
            auto applied = detail::ChangeList::parse(c.log);
            TSUNAGU_TRY(applied);
            if (c.tombstone) {
                for (const auto& entry : applied->entries)
                    TSUNAGU_TRY(drop_line.bind(1, entry.seq).run());
                report.history_purged += applied->entries.size();
                TSUNAGU_TRY(im.store.cached("DELETE FROM sync_records WHERE rid = ?1")
                                .bind(1, c.rid)
                                .run());
                ++report.tombstones_purged;
                continue;
            }
            // Keep the entries of the versions still current (or in conflict): they say who wrote
            // what the record holds; and the latest, which pulls walk to.
            auto current = referenced_versions(c.meta);
            TSUNAGU_TRY(current);
            detail::ChangeList kept;
            for (auto& entry : applied->entries) {
                const detail::IdBytes id = detail::id_to_bytes(entry.change_id);
                const bool needed =
                    entry.seq > c.horizon || entry.seq == c.seq ||
                    std::find(current->begin(), current->end(), id) != current->end();
                if (needed) {
                    kept.entries.push_back(std::move(entry));
                } else {
                    TSUNAGU_TRY(drop_line.bind(1, entry.seq).run());
                    ++report.history_purged;
                }
            }
            if (kept.entries.size() != applied->entries.size()) {
                Statement& rewrite =
                    im.store.cached("UPDATE sync_records SET log = ?2 WHERE rid = ?1");
                const std::string bytes = kept.encoded();
                TSUNAGU_TRY(rewrite.bind(1, c.rid).bind_blob(2, as_bytes(bytes)).run());
            }
        }
        // Fresh-sequence entries that are no longer a record's latest (or whose record is gone).
        TSUNAGU_TRY(im.store
                        .cached("DELETE FROM sync_log WHERE kind = ?1 AND NOT EXISTS (SELECT 1 "
                                "FROM sync_records r"
                                " WHERE r.rid = sync_log.rid AND r.seq = sync_log.seq)")
                        .bind(1, detail::kTouchKind)
                        .run());
        // Filed copies of lines that are no longer their record's latest (or whose record is
        // gone): lookups ignore them, but kept they would hold every line ever written.
        if (im.store.is_sqlite()) {
            TSUNAGU_TRY(im.store
                            .cached("DELETE FROM sync_log_by_key WHERE NOT EXISTS (SELECT 1 "
                                    "FROM sync_records r"
                                    " WHERE r.rid = sync_log_by_key.rid AND r.seq = sync_log_by_key.seq)")
                            .run());
            report.filed_purged = static_cast<std::size_t>(im.store.changes());
        }

        const std::int64_t everyone = std::min(h->any, im.seq);
        TSUNAGU_TRY(im.store.cached("DELETE FROM sync_scope_moves WHERE seq <= ?1")
                        .bind(1, everyone)
                        .run());
        report.log_purged += static_cast<std::size_t>(im.store.changes());
        TSUNAGU_TRY(im.store.cached("DELETE FROM sync_scope_removals WHERE seq <= ?1")
                        .bind(1, everyone)
                        .run());
        report.log_purged += static_cast<std::size_t>(im.store.changes());
        return im.write_counters();
    });
    TSUNAGU_TRY(status);
    return report;
}

}  // namespace tsunagu::sync
