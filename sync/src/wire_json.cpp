// JSON forms of change sets, record views and the push/pull protocol.
#include <stdexcept>

#include "sync/protocol.h"
#include "sync/src/names.h"
#include "sync/src/wire_integer.h"

namespace tsunagu::sync {

bool is_cause_word(std::string_view word) noexcept {
    if (word.empty() || word.size() > 32) return false;
    for (char c : word) {
        if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
    }
    return true;
}

namespace {

Hlc hlc_from(const Json& in, const char* key) {
    auto hlc = Hlc::parse(in.at(key).get<std::string>());
    if (!hlc)
        throw std::invalid_argument(std::string("\"") + key +
                                    "\" is not a clock reading like \"1732500000000-0\"");
    return *hlc;
}

std::string id_from(const Json& in, const char* key) {
    std::string id = in.at(key).get<std::string>();
    if (!is_id(id))
        throw std::invalid_argument(std::string("\"") + key +
                                    "\" is not an id of 32 lower-case hex characters");
    return id;
}

ErrorCode code_named(const std::string& name) {
    if (auto code = detail::error_code_named(name)) return *code;
    throw std::invalid_argument("unknown error code \"" + name + "\"");
}

PushStatus status_named(const std::string& name) {
    for (PushStatus s : {PushStatus::accepted, PushStatus::duplicate, PushStatus::refused}) {
        if (name == push_status_name(s)) return s;
    }
    throw std::invalid_argument("unknown push status \"" + name + "\"");
}

template <typename T>
Result<T> parse_as(const Json& in, const char* what) {
    try {
        return in.get<T>();
    } catch (const std::exception& e) {
        return Status(ErrorCode::invalid_argument,
                      std::string("malformed ") + what + ": " + exception_text(e));
    }
}

// An answer's "epoch" (PushResult::epoch): an id, or "" for anything else.
std::string epoch_from(const Json& in) {
    auto it = in.find("epoch");
    if (it == in.end() || !it->is_string() || !is_id(it->get_ref<const std::string&>())) return "";
    return it->get<std::string>();
}

}  // namespace

void to_json(Json& out, const ChangeSet& c) {
    out = {{"id", c.id},
           {"collection", c.collection},
           {"record", c.record},
           {"hlc", c.hlc.to_string()},
           {"replica", c.replica},
           {"user", c.user},
           {"schema", c.schema_version},
           {"set", c.set}};
    if (c.create) out["create"] = true;
    if (!c.base.empty()) out["base"] = c.base;
    if (!c.seen.empty()) out["seen"] = c.seen;
}

void from_json(const Json& in, ChangeSet& c) {
    c.id = id_from(in, "id");
    c.collection = in.at("collection").get<std::string>();
    c.record = id_from(in, "record");
    c.hlc = hlc_from(in, "hlc");
    c.replica = id_from(in, "replica");
    c.user = in.at("user").get<std::string>();
    c.schema_version = detail::integer_at<int>(in, "schema");
    c.create = in.value("create", false);
    c.set = in.at("set");
    if (!c.set.is_object()) throw std::invalid_argument("\"set\" must be an object");
    c.base = in.value("base", std::map<std::string, std::vector<std::string>>{});
    c.seen = in.value("seen", std::vector<std::string>{});
    for (const auto& [field, ids] : c.base) {
        for (const auto& id : ids) {
            if (!is_id(id))
                throw std::invalid_argument("base of \"" + field + "\" holds a malformed id");
        }
    }
    for (const auto& id : c.seen) {
        if (!is_id(id)) throw std::invalid_argument("\"seen\" holds a malformed id");
    }
}

void to_json(Json& out, const Version& v) {
    out = {{"change", v.change_id},
           {"hlc", v.hlc.to_string()},
           {"replica", v.replica},
           {"user", v.user}};
}

void to_json(Json& out, const Conflict& c) {
    out = {{"record", c.record},
           {"collection", c.collection},
           {"field", c.field},
           {"kind", conflict_kind_name(c.kind)},
           {"current", {{"value", c.current.value}, {"version", c.current.version}}},
           {"losing", {{"value", c.losing.value}, {"version", c.losing.version}}}};
}

void to_json(Json& out, const Record& r) {
    out = {{"id", r.id},
           {"collection", r.collection},
           {"scope", r.scope_key},
           {"owner", r.owner},
           {"deleted", r.deleted},
           {"fields", r.fields},
           {"versions", r.versions},
           {"heads", r.heads},
           {"conflicts", r.conflicts}};
}

void to_json(Json& out, const HistoryEntry& h) {
    out = {{"change", h.change_id}, {"seq", h.seq},   {"hlc", h.hlc.to_string()},
           {"replica", h.replica},  {"user", h.user}, {"kind", change_kind_name(h.kind)},
           {"fields", h.fields}};
}

void to_json(Json& out, const PushBatch& b) {
    out = {{"replica", b.replica},
           {"user", b.user},
           {"sent_at", b.sent_at_ms},
           {"changes", b.changes}};
    if (b.clock_offset_ms) out["clock_offset"] = *b.clock_offset_ms;
}

void from_json(const Json& in, PushBatch& b) {
    b.replica = id_from(in, "replica");
    b.user = in.at("user").get<std::string>();
    b.sent_at_ms = detail::integer_or<std::int64_t>(in, "sent_at", 0);
    if (auto offset = in.find("clock_offset"); offset != in.end()) {
        b.clock_offset_ms = detail::integer_from<std::int64_t>(*offset, "clock_offset");
    }
    b.changes = in.at("changes").get<std::vector<ChangeSet>>();
}

void to_json(Json& out, const PushOutcome& o) {
    out = {{"change", o.change_id}, {"record", o.record}, {"status", push_status_name(o.status)}};
    if (o.status != PushStatus::refused) {
        out["seq"] = o.seq;
        out["hlc"] = o.hlc.to_string();
    } else {
        out["code"] = error_code_name(o.code);
        out["reason"] = o.reason;
        if (!o.cause.empty()) out["cause"] = o.cause;
    }
}

void from_json(const Json& in, PushOutcome& o) {
    o.change_id = id_from(in, "change");
    o.record = id_from(in, "record");
    o.status = status_named(in.at("status").get<std::string>());
    if (o.status != PushStatus::refused) {
        o.seq = detail::integer_at<std::int64_t>(in, "seq");
        o.hlc = hlc_from(in, "hlc");
    } else {
        o.code = code_named(in.at("code").get<std::string>());
        o.reason = in.at("reason").get<std::string>();
        if (auto cause = in.find("cause"); cause != in.end() && cause->is_string() &&
                                           is_cause_word(cause->get_ref<const std::string&>())) {
            o.cause = cause->get<std::string>();
        }
    }
}

void to_json(Json& out, const PushResult& r) {
    out = {{"upstream_time", r.upstream_time.to_string()}, {"outcomes", r.outcomes}};
    if (!r.epoch.empty()) out["epoch"] = r.epoch;
}

void from_json(const Json& in, PushResult& r) {
    r.upstream_time = hlc_from(in, "upstream_time");
    r.outcomes = in.at("outcomes").get<std::vector<PushOutcome>>();
    r.epoch = epoch_from(in);
}

void to_json(Json& out, const SentChange& s) {
    out = {{"record", s.record}, {"change", s.change_id}};
}

void from_json(const Json& in, SentChange& s) {
    s.record = id_from(in, "record");
    s.change_id = id_from(in, "change");
}

namespace {

// Held records travel grouped by scope key, {"key": [record, ...], ...}: a device's pushes since
// its last pull are mostly about a few clients, so each key is written once.
void to_json(Json& out, const std::vector<HeldRecord>& held) {
    out = Json::object();
    for (const auto& h : held) out[h.scope_key].push_back(h.record);
}

std::vector<HeldRecord> held_from(const Json& in) {
    std::vector<HeldRecord> held;
    if (!in.is_object()) throw std::invalid_argument("\"held\" must map scope keys to lists of record ids");
    for (const auto& [key, records] : in.items()) {
        if (!records.is_array()) throw std::invalid_argument("\"held\" must map scope keys to lists of record ids");
        for (const auto& record : records) {
            if (!record.is_string() || !is_id(record.get_ref<const std::string&>()))
                throw std::invalid_argument("\"held\" holds a malformed record id");
            held.push_back({record.get<std::string>(), key});
        }
    }
    return held;
}

// "release": [[record id, [change id, ...]], ...] (PullRequest::release).
std::vector<ReleaseAsk> release_from(const Json& in) {
    constexpr const char* kShape = "\"release\" must list [record id, [change id, ...]] pairs";
    if (!in.is_array()) throw std::invalid_argument(kShape);
    if (in.size() > PullRequest::kMaxRelease) {
        throw std::invalid_argument("\"release\" may name at most 100 records; name the rest in later pulls");
    }
    std::vector<ReleaseAsk> asks;
    std::size_t versions = 0;
    for (const Json& pair : in) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_array())
            throw std::invalid_argument(kShape);
        ReleaseAsk ask;
        ask.record = pair[0].get<std::string>();
        if (!is_id(ask.record)) throw std::invalid_argument("\"release\" holds a malformed record id");
        // A copy references one version at least; none would ask whether the record exists.
        if (pair[1].empty()) throw std::invalid_argument("\"release\" names a record without its versions");
        versions += pair[1].size();
        if (versions > PullRequest::kMaxReleaseVersions) {
            throw std::invalid_argument("\"release\" may name at most 5000 versions in all; ask after the rest later");
        }
        for (const Json& id : pair[1]) {
            if (!id.is_string() || !is_id(id.get_ref<const std::string&>()))
                throw std::invalid_argument("\"release\" holds a malformed change id");
            ask.versions.push_back(id.get<std::string>());
        }
        asks.push_back(std::move(ask));
    }
    return asks;
}

std::vector<std::string> ids_at(const Json& in, const char* name) {
    std::vector<std::string> ids = in.value(name, std::vector<std::string>{});
    for (const auto& id : ids) {
        if (!is_id(id)) throw std::invalid_argument(std::string("\"") + name + "\" holds a malformed id");
    }
    return ids;
}

}  // namespace

void to_json(Json& out, const KeptRecord& k) {
    out = Json::array({k.record, k.seq});
}

void from_json(const Json& in, KeptRecord& k) {
    if (!in.is_array() || in.size() != 2 || !in[0].is_string() || !is_id(in[0].get_ref<const std::string&>()))
        throw std::invalid_argument("\"kept\" holds an entry that is not [record id, sequence number]");
    k.record = in[0].get<std::string>();
    k.seq = detail::integer_from<std::int64_t>(in[1], "kept");
}

void to_json(Json& out, const PullRequest& r) {
    out = {{"replica", r.replica}, {"user", r.user}, {"after", r.after},
           {"limit", r.limit},     {"sent", r.sent}, {"outbox_floor", r.outbox_floor}};
    if (!r.held.empty()) to_json(out["held"], r.held);
    if (!r.refetch.empty()) out["refetch"] = r.refetch;
    if (!r.release.empty()) {
        Json& asks = out["release"] = Json::array();
        for (const ReleaseAsk& ask : r.release) asks.push_back(Json::array({ask.record, ask.versions}));
    }
    if (r.clock_offset_ms) out["clock_offset"] = *r.clock_offset_ms;
}

void from_json(const Json& in, PullRequest& r) {
    r.replica = id_from(in, "replica");
    r.user = in.at("user").get<std::string>();
    r.after = detail::integer_at<std::int64_t>(in, "after");
    r.limit = detail::integer_or<std::size_t>(in, "limit", 1000);
    if (auto sent = in.find("sent"); sent != in.end() && sent->is_array() && sent->size() > PullRequest::kMaxSent) {
        throw std::invalid_argument("\"sent\" may name at most 5000 changes; ask after the rest in later pulls");
    }
    r.sent = in.value("sent", std::vector<SentChange>{});
    r.outbox_floor = detail::integer_or<std::int64_t>(in, "outbox_floor", r.after);
    if (in.contains("held")) r.held = held_from(in["held"]);
    r.refetch = in.value("refetch", std::vector<std::string>{});
    if (r.refetch.size() > PullRequest::kMaxRefetch) {
        throw std::invalid_argument("\"refetch\" may name at most 100 records; name the rest in later pulls");
    }
    for (const auto& id : r.refetch) {
        if (!is_id(id)) throw std::invalid_argument("\"refetch\" holds something that is not a record id");
    }
    if (auto release = in.find("release"); release != in.end()) r.release = release_from(*release);
    if (auto offset = in.find("clock_offset"); offset != in.end() && !offset->is_null()) {
        r.clock_offset_ms = detail::integer_from<std::int64_t>(*offset, "clock_offset");
    }
}

void to_json(Json& out, const RecordSnapshot& s) {
    out = {{"id", s.id},           {"collection", s.collection},
           {"scope", s.scope_key}, {"seq", s.seq},
           {"deleted", s.deleted}, {"conflicts", s.conflicts},
           {"fields", s.fields},   {"meta", s.meta}};
}

void from_json(const Json& in, RecordSnapshot& s) {
    s.id = id_from(in, "id");
    s.collection = in.at("collection").get<std::string>();
    s.scope_key = in.at("scope").get<std::string>();
    s.seq = detail::integer_at<std::int64_t>(in, "seq");
    s.deleted = in.at("deleted").get<bool>();
    s.conflicts = detail::integer_or<std::size_t>(in, "conflicts", 0);
    s.fields = in.at("fields").get<std::string>();
    s.meta = in.at("meta").get<std::string>();
    if (s.fields.empty() || s.fields.front() != '{' || s.meta.empty() || s.meta.front() != '{') {
        throw std::invalid_argument("\"fields\" and \"meta\" must hold JSON objects");
    }
}

void to_json(Json& out, const PullPage& p) {
    out = {{"after", p.after},
           {"next", p.next},
           {"more", p.more},
           {"upstream_time", p.upstream_time.to_string()},
           {"records", p.records},
           {"evicted_records", p.evicted_records},
           {"evicted_scopes", p.evicted_scopes},
           {"acks", p.acks}};
    if (!p.kept.empty()) out["kept"] = p.kept;
    if (!p.release.released.empty()) out["released"] = p.release.released;
    if (!p.release.in_scope.empty()) out["release_in_scope"] = p.release.in_scope;
    if (!p.release.not_held.empty()) out["release_not_held"] = p.release.not_held;
    if (!p.epoch.empty()) out["epoch"] = p.epoch;
}

void from_json(const Json& in, PullPage& p) {
    p.after = detail::integer_at<std::int64_t>(in, "after");
    p.next = detail::integer_at<std::int64_t>(in, "next");
    p.more = in.at("more").get<bool>();
    p.upstream_time = hlc_from(in, "upstream_time");
    p.records = in.at("records").get<std::vector<RecordSnapshot>>();
    p.evicted_records = in.value("evicted_records", std::vector<std::string>{});
    p.evicted_scopes = in.value("evicted_scopes", std::vector<std::string>{});
    p.acks = in.value("acks", std::vector<PushOutcome>{});
    p.kept = in.value("kept", std::vector<KeptRecord>{});
    p.release.released = ids_at(in, "released");
    p.release.in_scope = ids_at(in, "release_in_scope");
    p.release.not_held = ids_at(in, "release_not_held");
    p.epoch = epoch_from(in);
    for (const auto& id : p.evicted_records) {
        if (!is_id(id)) throw std::invalid_argument("\"evicted_records\" holds a malformed id");
    }
}

Result<AsRead> AsRead::parse(const Json& record) {
    const auto refuse = [](const std::string& what) {
        return Status(ErrorCode::invalid_argument,
                      "the record as read " + what + ": give it as the device answered it (its \"fields\" and \"heads\")");
    };
    if (!record.is_object()) return refuse("is not a JSON object");
    const auto id = record.find("id");
    if (id == record.end() || !id->is_string() || !is_id(id->get<std::string>())) return refuse("names no record \"id\"");
    const auto fields = record.find("fields");
    const auto heads = record.find("heads");
    if (fields == record.end() || !fields->is_object()) return refuse("has no \"fields\" object");
    if (heads == record.end() || !heads->is_object()) return refuse("has no \"heads\" object");
    AsRead read;
    read.record = id->get<std::string>();
    read.fields = *fields;
    if (const auto deleted = record.find("deleted"); deleted != record.end()) {
        if (!deleted->is_boolean()) return refuse("has a \"deleted\" that is not true or false");
        read.deleted = deleted->get<bool>();
    }
    std::size_t count = 0;
    for (const auto& [field, ids] : heads->items()) {
        if (!ids.is_array()) return refuse("names the heads of \"" + field + "\" other than as a list");
        if ((count += ids.size()) > kMaxHeads) return refuse("names more versions than any record holds");
        auto& out = read.heads[field];
        for (const Json& head : ids) {
            if (!head.is_string() || !is_id(head.get<std::string>())) {
                return refuse("names a head of \"" + field + "\" that is not a change id");
            }
            out.push_back(head.get<std::string>());
        }
    }
    return read;
}

Result<ChangeSet> parse_change_set(const Json& in) {
    return parse_as<ChangeSet>(in, "change set");
}
Result<PushBatch> parse_push_batch(const Json& in) {
    return parse_as<PushBatch>(in, "push batch");
}
Result<PushResult> parse_push_result(const Json& in) {
    return parse_as<PushResult>(in, "push result");
}
Result<PullRequest> parse_pull_request(const Json& in) {
    return parse_as<PullRequest>(in, "pull request");
}
Result<PullPage> parse_pull_page(const Json& in) {
    return parse_as<PullPage>(in, "pull page");
}

}  // namespace tsunagu::sync
