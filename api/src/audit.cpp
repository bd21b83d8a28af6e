// Hash-chained audit log.
#include "api/src/audit.h"

#include <sodium.h>

namespace tsunagu::api {
namespace {

std::vector<std::uint8_t> chain_hash(std::span<const std::uint8_t> previous, const AuditEntry& e) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
    crypto_generichash_update(&state, previous.data(), previous.size());
    auto add = [&](const std::string& field) {
        const std::uint64_t n = field.size();
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&n), sizeof n);
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(field.data()), n);
    };
    add(std::to_string(e.seq));
    add(std::to_string(e.at));
    add(e.user_id);
    add(e.device_id);
    add(e.action);
    add(e.target);
    add(e.detail);
    std::vector<std::uint8_t> out(crypto_generichash_BYTES);
    crypto_generichash_final(&state, out.data(), out.size());
    return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

// The newest entry's seq and chain hash (seq 0 and no hash: the trail is empty).
struct LastEntry {
    std::int64_t seq = 0;
    std::vector<std::uint8_t> hash;
};
Result<LastEntry> last_entry(Store& store) {
    auto& last = store.cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    auto row = last.step();
    LastEntry entry;
    if (row.is_ok() && *row) {
        entry.seq = last.column_int(0);
        auto h = last.column_blob(1);
        entry.hash.assign(h.begin(), h.end());
    }
    last.reset();
    TSUNAGU_TRY(row);
    return entry;
}

AuditEntry read_entry(const Statement& q) {
    AuditEntry e;
    e.seq = q.column_int(0);
    e.at = q.column_int(1);
    e.user_id = std::string(q.column_text(2));
    e.device_id = std::string(q.column_text(3));
    e.action = std::string(q.column_text(4));
    e.target = std::string(q.column_text(5));
    e.detail = std::string(q.column_text(6));
    return e;
}

}  // namespace

Status AuditLog::create_schema(Store& store) {
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL,
  hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit(target, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT raise(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT raise(ABORT, 'the audit trail is append-only'); END;
)sql");
}

Status AuditLog::append(Store& store, AuditEntry entry) {
    auto body = [&]() -> Status {
        auto last = last_entry(store);
        TSUNAGU_TRY(last);
        entry.seq = last->seq + 1;
        auto hash = chain_hash(last->hash, entry);
        auto& insert = store.cached(
            "INSERT INTO audit(seq, at, user_id, device_id, action, target, detail, hash) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        insert.bind(1, entry.seq).bind(2, entry.at).bind(3, entry.user_id).bind(4, entry.device_id);
        insert.bind(5, entry.action).bind(6, entry.target).bind(7, entry.detail).bind_blob(8, hash);
        return insert.run();
    };
    if (store.in_transaction()) return body();
    return with_transaction(store, body);
}

Result<std::vector<AuditEntry>> AuditLog::list(Store& store, std::int64_t after, int limit,
                                               const std::string& target, const std::string& user_id) {
    auto& q = store.cached(
        "SELECT seq, at, user_id, device_id, action, target, detail FROM audit "
        "WHERE seq > ?1 AND (?3 = '' OR target = ?3) AND (?4 = '' OR user_id = ?4) "
        "ORDER BY seq LIMIT ?2");
    q.bind(1, after).bind(2, limit).bind(3, target).bind(4, user_id);
    std::vector<AuditEntry> entries;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        entries.push_back(read_entry(q));
    }));
    return entries;
}

Result<AuditHead> AuditLog::verify(Store& store, const std::optional<AuditHead>& anchor) {
    auto q = store.prepare(
        "SELECT seq, at, user_id, device_id, action, target, detail, hash FROM audit ORDER BY seq");
    if (!q) return q.status();
    std::vector<std::uint8_t> previous;
    std::int64_t expected_seq = 1;
    bool anchor_found = !anchor || anchor->seq == 0;
    while (true) {
        auto row = q->step();
        if (!row) return row.status();
        if (!*row) break;
        AuditEntry e = read_entry(*q);
        auto stored = q->column_blob(7);
        if (e.seq != expected_seq ||
            !constant_time_equal(stored, chain_hash(previous, e))) {
            return Status(ErrorCode::corrupt, "audit trail broken at entry " + std::to_string(e.seq) +
                                                  ": it was altered, removed or reordered");
        }
        previous.assign(stored.begin(), stored.end());
        if (anchor && e.seq == anchor->seq) {
            // Public values (the hash is an anchor, not a secret): a plain comparison.
            if (to_hex(previous) != anchor->hash) {
                return Status(ErrorCode::corrupt, "audit trail rewritten: entry " + std::to_string(e.seq) +
                                                      " is not the one recorded as the head then");
            }
            anchor_found = true;
        }
        ++expected_seq;
    }
    if (!anchor_found) {
        return Status(ErrorCode::corrupt, "audit trail shortened: it ends at entry " +
                                              std::to_string(expected_seq - 1) + ", but entry " +
                                              std::to_string(anchor->seq) +
                                              " was recorded as its head; entries were removed from its end");
    }
    return AuditHead{expected_seq - 1, to_hex(previous)};
}

Result<AuditHead> AuditLog::head(Store& store) {
    auto last = last_entry(store);
    TSUNAGU_TRY(last);
    return AuditHead{last->seq, last->seq == 0 ? std::string() : to_hex(last->hash)};
}

}  // namespace tsunagu::api
