// JSON forms of the device library's reports.
#include "clients/device.h"

namespace tsunagu::client {

void to_json(sync::Json& out, const RefusedChange& r) {
    out = {{"change", r.change_id}, {"record", r.record}, {"collection", r.collection},
           {"code", error_code_name(r.code)}, {"reason", r.reason}, {"cause", r.cause}};
}

void to_json(sync::Json& out, const KeptRefusal& k) {
    out = {{"change", k.change_id},
           {"record", k.record},
           {"collection", k.collection},
           {"device", k.device_id},
           {"this_device", k.this_device},
           {"code", error_code_name(k.code)},
           {"cause", k.cause},
           {"reason", k.reason},
           {"first_refused_at", k.first_refused_at},
           {"last_refused_at", k.last_refused_at},
           {"times", k.times},
           {"status", k.dismissed ? "dismissed" : "open"},
           {"comment", k.comment}};
}

void to_json(sync::Json& out, const SyncReport& r) {
    out = {{"pushed", r.pushed},   {"pulled", r.pulled},   {"evicted", r.evicted},
           {"retries", r.retries}, {"wiped", r.wiped}, {"wiped_unsent", r.wiped_unsent ? sync::Json(*r.wiped_unsent) : sync::Json()},     {"refused", r.refused},
           {"resent", r.resent},   {"recovered", r.recovered}, {"new_conflicts", r.new_conflicts}, {"evicted_pending", r.evicted_pending}};
}

void to_json(sync::Json& out, const DeviceStatus& s) {
    out = {{"signed_in", s.signed_in}, {"server", s.server_url}, {"username", s.username},
           {"user_id", s.user_id},     {"role", s.role},         {"device_id", s.device_id},
           {"pending", s.pending},     {"refused", s.refused},   {"held", s.held},
           {"conflicts", s.conflicts}, {"cursor", s.cursor},     {"last_sync_ms", s.last_sync_ms}};
    out["clock_offset_ms"] = s.clock_offset_ms ? sync::Json(*s.clock_offset_ms) : sync::Json(nullptr);
}

}  // namespace tsunagu::client

namespace tsunagu {

void to_json(sync::Json& out, const SalvageReport& r) {
    out = {{"complete", r.complete()},
           {"pages", r.pages},
           {"wal_frames", r.wal_frames},
           {"journal_records", r.journal_records},
           {"damaged_versions", r.damaged_versions},
           {"older_versions", r.older_versions},
           {"uncommitted_versions", r.uncommitted_versions},
           {"lost_pages", r.lost_pages},
           {"unplaced_frames", r.unplaced_frames},
           {"reindexed", r.reindexed},
           {"wal_header_damaged", r.wal_header_damaged},
           {"summary", r.summary()}};
}

}  // namespace tsunagu
