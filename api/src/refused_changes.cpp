// Refused changes, kept for the worker's supervisors (see refused_changes.h).
#include "api/src/refused_changes.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "sync/change.h"

namespace tsunagu::api {
namespace {

// Every query names change_id first: on PostgreSQL the sealed columns are opened with it.
constexpr const char* kColumns =
    "change_id, record_id, collection, user_id, device_id, team_id, code, reason, first_at, last_at, times, "
    "dismissed_by, dismissed_at, comment, change, cause";

RefusedChange read_row(const Statement& q) {
    RefusedChange r;
    r.change_id = std::string(q.column_text(0));
    r.record = std::string(q.column_text(1));
    r.collection = std::string(q.column_text(2));
    r.user_id = std::string(q.column_text(3));
    r.device_id = std::string(q.column_text(4));
    r.team_id = std::string(q.column_text(5));
    r.code = std::string(q.column_text(6));
    r.reason = std::string(q.column_text(7));
    r.first_at = q.column_int(8);
    r.last_at = q.column_int(9);
    r.times = q.column_int(10);
    r.dismissed_by = std::string(q.column_text(11));
    r.dismissed_at = q.column_int(12);
    r.comment = std::string(q.column_text(13));
    r.change = std::string(q.column_text(14));
    r.cause = std::string(q.column_text(15));
    return r;
}

// Drops the kept entries of this device's change sets that were now taken (accepted, or known
// already): they are in their record's history. One probe when the device has none kept.
Status drop_taken(Store& store, const std::string& device_id, const std::vector<sync::PushOutcome>& outcomes) {
    auto& probe = store.cached("SELECT 1 FROM refused_change WHERE device_id = ?1 LIMIT 1");
    probe.bind(1, device_id);
    bool any = false;
    TSUNAGU_TRY(each_row(probe, [&](const Statement&) { any = true; }));
    if (!any) return Status::ok();
    auto& drop = store.cached("DELETE FROM refused_change WHERE change_id = ?1 AND device_id = ?2");
    for (const auto& o : outcomes) {
        if (o.status == sync::PushStatus::refused) continue;
        drop.bind(1, o.change_id).bind(2, device_id);
        TSUNAGU_TRY(drop.run());
    }
    return Status::ok();
}

// How many more open refusals `device_id` of `user_id` may keep.
Result<std::int64_t> room_left(Store& store, const std::string& device_id, const std::string& user_id) {
    auto& count = store.cached(
        "SELECT (SELECT count(*) FROM refused_change WHERE device_id = ?1 AND dismissed_by = ''),"
        " (SELECT count(*) FROM refused_change WHERE user_id = ?2 AND dismissed_by = '')");
    count.bind(1, device_id).bind(2, user_id);
    std::int64_t device = 0, user = 0;
    TSUNAGU_TRY(each_row(count, [&](const Statement& row) {
        device = row.column_int(0);
        user = row.column_int(1);
    }));
    return std::min(static_cast<std::int64_t>(RefusedChanges::kMaxKeptPerDevice) - device,
                    static_cast<std::int64_t>(RefusedChanges::kMaxKeptPerUser) - user);
}

}  // namespace

Status RefusedChanges::create_schema(Store& store) {
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS refused_change(
  change_id TEXT PRIMARY KEY,
  record_id TEXT NOT NULL,
  collection TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  team_id TEXT NOT NULL,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  times INTEGER NOT NULL,
  dismissed_by TEXT NOT NULL,
  dismissed_at INTEGER NOT NULL,
  comment TEXT NOT NULL,
  change TEXT NOT NULL,
  cause TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refused_change_by_device ON refused_change(device_id);
CREATE INDEX IF NOT EXISTS refused_change_by_team ON refused_change(team_id, last_at);
)sql");
}

Result<KeptRefusals> RefusedChanges::keep(Store& store, const sync::PushBatch& batch,
                                          std::vector<sync::PushOutcome>& outcomes, const std::string& team_id,
                                          std::int64_t now) {
    KeptRefusals result;
    bool any_refused = false, any_taken = false;
    for (const auto& o : outcomes) (o.status == sync::PushStatus::refused ? any_refused : any_taken) = true;
    if (any_taken) TSUNAGU_TRY(drop_taken(store, batch.replica, outcomes));
    if (!any_refused) return result;

    auto room_found = room_left(store, batch.replica, batch.user);
    TSUNAGU_TRY(room_found);
    std::int64_t room = *room_found;
    auto& known = store.cached("SELECT change_id, device_id, dismissed_by, comment FROM refused_change WHERE change_id = ?1");
    auto& again = store.cached(
        "UPDATE refused_change SET last_at = ?2, times = times + 1, code = ?3, reason = ?4, cause = ?5 "
        "WHERE change_id = ?1");
    auto& insert = store.cached(
        "INSERT OR IGNORE INTO refused_change(change_id, record_id, collection, user_id, device_id, team_id, code, reason, "
        "first_at, last_at, times, dismissed_by, dismissed_at, comment, change, cause) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, '', 0, ?11, ?10, ?12)");
    // (Sealed columns come from parameters. OR IGNORE: on PostgreSQL, two servers may take the
    // same retried push at once; the first one keeps the change.)
    for (std::size_t i = 0; i < outcomes.size() && i < batch.changes.size(); ++i) {
        sync::PushOutcome& outcome = outcomes[i];
        if (outcome.status != sync::PushStatus::refused) continue;
        const sync::ChangeSet& change = batch.changes[i];
        const char* code = error_code_name(outcome.code);
        // Kept already: by which device, and whether (and why) a supervisor dismissed it.
        std::optional<std::string> kept_for;
        std::string dismissed_by, comment;
        known.bind(1, change.id);
        TSUNAGU_TRY(each_row(known, [&](const Statement& row) {
            kept_for = std::string(row.column_text(1));
            dismissed_by = std::string(row.column_text(2));
            comment = std::string(row.column_text(3));
        }));
        if (kept_for) {
            if (*kept_for != batch.replica) {  // another device's id: nothing of its entry is touched
                ++result.not_kept;
                continue;
            }
            again.bind(1, change.id).bind(2, now).bind(3, code).bind(4, outcome.reason).bind(5, outcome.cause);
            TSUNAGU_TRY(again.run());
            ++result.kept;
            if (!dismissed_by.empty()) {
                outcome.reason += comment.empty() ? " (your supervisor dismissed this change)"
                                                  : " (your supervisor dismissed this change: " + comment + ")";
            }
            continue;
        }
        sync::Json wire;
        sync::to_json(wire, change);
        const std::string text = wire.dump();
        if (room <= 0 || text.size() > kMaxKeptBytes) {
            ++result.not_kept;
            continue;
        }
        insert.bind(1, change.id).bind(2, change.record).bind(3, change.collection).bind(4, batch.user);
        insert.bind(5, batch.replica).bind(6, team_id).bind(7, code).bind(8, outcome.reason).bind(9, now);
        insert.bind(10, text).bind(11, "").bind(12, outcome.cause);
        TSUNAGU_TRY(insert.run());
        --room;
        ++result.kept;
    }
    return result;
}

namespace {

// The kept changes whose `column` (team_id or user_id, from the code, never from input) is `value`:
// open or dismissed, newest refusal first.
Result<std::vector<RefusedChange>> list_by(Store& store, const char* column, const std::string& value,
                                           bool dismissed, std::size_t limit) {
    std::vector<RefusedChange> out;
    if (value.empty()) return out;
    auto& q = store.cached(std::string("SELECT ") + kColumns + " FROM refused_change WHERE " + column +
                           " = ?1 AND ((?2 = 0 AND dismissed_by = '') OR (?2 = 1 AND dismissed_by <> '')) "
                           "ORDER BY last_at DESC, change_id LIMIT ?3");
    q.bind(1, value).bind(2, dismissed ? 1 : 0).bind(3, static_cast<std::int64_t>(limit));
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { out.push_back(read_row(row)); }));
    return out;
}

}  // namespace

Result<std::vector<RefusedChange>> RefusedChanges::list(Store& store, const std::string& team_id, bool dismissed,
                                                        std::size_t limit) {
    return list_by(store, "team_id", team_id, dismissed, limit);
}

namespace {

// How many kept changes list_by would list without its limit.
Result<std::int64_t> count_by(Store& store, const char* column, const std::string& value, bool dismissed) {
    auto& q = store.cached(std::string("SELECT count(*) FROM refused_change WHERE ") + column +
                           " = ?1 AND ((?2 = 0 AND dismissed_by = '') OR (?2 = 1 AND dismissed_by <> ''))");
    q.bind(1, value).bind(2, dismissed ? 1 : 0);
    std::int64_t total = 0;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { total = row.column_int(0); }));
    return total;
}

}  // namespace

Result<std::int64_t> RefusedChanges::count(Store& store, const std::string& team_id, bool dismissed) {
    return count_by(store, "team_id", team_id, dismissed);
}

Result<std::int64_t> RefusedChanges::count_for_worker(Store& store, const std::string& user_id, bool dismissed) {
    return count_by(store, "user_id", user_id, dismissed);
}

Result<std::vector<RefusedChange>> RefusedChanges::list_for_worker(Store& store, const std::string& user_id,
                                                                   bool dismissed, std::size_t limit) {
    return list_by(store, "user_id", user_id, dismissed, limit);
}

Status RefusedChanges::follow_worker(Store& store, const std::string& user_id, const std::string& team_id) {
    auto& move = store.cached("UPDATE refused_change SET team_id = ?2 WHERE user_id = ?1");
    return move.bind(1, user_id).bind(2, team_id).run();
}

Result<std::optional<RefusedChange>> RefusedChanges::get(Store& store, const std::string& change_id) {
    auto& q = store.cached(std::string("SELECT ") + kColumns + " FROM refused_change WHERE change_id = ?1");
    q.bind(1, change_id);
    std::optional<RefusedChange> out;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { out = read_row(row); }));
    return out;
}

Result<std::vector<RefusedChange>> RefusedChanges::open_for_record(Store& store, const std::string& device_id,
                                                                   const std::string& record) {
    auto& q = store.cached(std::string("SELECT ") + kColumns +
                           " FROM refused_change WHERE device_id = ?1 AND record_id = ?2 AND dismissed_by = ''");
    q.bind(1, device_id).bind(2, record);
    std::vector<RefusedChange> out;
    TSUNAGU_TRY(each_row(q, [&](const Statement& row) { out.push_back(read_row(row)); }));
    return out;
}

Result<std::size_t> RefusedChanges::purge_dismissed(Store& store, std::int64_t before) {
    auto& purge = store.cached("DELETE FROM refused_change WHERE dismissed_by <> '' AND dismissed_at < ?1");
    TSUNAGU_TRY(purge.bind(1, before).run());
    return static_cast<std::size_t>(store.changes());
}

Status RefusedChanges::dismiss(Store& store, const std::string& change_id, const std::string& by,
                               const std::string& comment, std::int64_t now) {
    auto current = get(store, change_id);
    TSUNAGU_TRY(current);
    if (!*current) return Status(ErrorCode::not_found, "no refused change " + change_id);
    if (!(*current)->dismissed_by.empty()) {
        return Status(ErrorCode::conflict, "refused change " + change_id + " was dismissed already");
    }
    auto& update = store.cached(
        "UPDATE refused_change SET dismissed_by = ?2, dismissed_at = ?3, comment = ?4 WHERE change_id = ?1");
    update.bind(1, change_id).bind(2, by).bind(3, now).bind(4, comment);
    return update.run();
}

}  // namespace tsunagu::api
