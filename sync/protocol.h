// What travels between a device and the upstream: push batches and their results, pull requests
// and pages. Plain structs with JSON forms, so that the server can carry them over HTTP.
//
// Identity: `replica` and `user` in requests are taken as given. The server must set them from the
// authenticated session, never from the request body.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "crypto/status.h"
#include "sync/change.h"

namespace tsunagu::sync {

// Plain HTTP carries a password and then session tokens in clear, so a device signs in over it,
// and a server listens on it, only on the machine itself. True for an http:// or https:// URL
// whose host is written as a loopback address: an IPv4 literal in 127.0.0.0/8, [::1], or
// "localhost". Any other name is false, even "127.lan" (a name is not resolved: it could stand for
// any address), and so is a URL with user information ("http://127.0.0.1@host/").
bool is_loopback_url(std::string_view url);

// A device's outbox entries, oldest first.
struct PushBatch {
    std::string replica;
    std::string user;
    // The device's clock (as it stamps changes) when it made the batch; 0 when unknown. The
    // upstream measures the device's skew with it, to correct readings that are too far ahead.
    std::int64_t sent_at_ms = 0;
    std::vector<ChangeSet> changes;
    // How far the upstream's clock was ahead of the device's own wall clock when the device last
    // learnt it (Device::clock_offset_ms; "clock_offset" on the wire); none when the device has not
    // yet. Not used by the engine: for operators, to see which phones have wrong clocks.
    std::optional<std::int64_t> clock_offset_ms;
};

enum class PushStatus {
    accepted,   // applied now, with sequence number `seq`
    duplicate,  // applied by an earlier push (a retry after a lost answer): harmless
    refused,    // not applied; `code` and `reason` say why (validation, forbidden). Kept by the
                // device and reported; never silently dropped.
};
const char* push_status_name(PushStatus status) noexcept;
// Whether `word` can be a refusal's cause (PushOutcome::cause): 1 to 32 lower-case ASCII letters
// and underscores.
bool is_cause_word(std::string_view word) noexcept;

struct PushOutcome {
    std::string change_id;
    std::string record;
    PushStatus status = PushStatus::accepted;
    std::int64_t seq = 0;  // accepted or duplicate: the upstream's sequence number
    Hlc hlc;               // accepted or duplicate: the stamp the upstream keeps (see Upstream)
    ErrorCode code = ErrorCode::ok;
    std::string reason;
    // Refused: which check refused it, as a stable word for programs to explain it in the
    // reader's language (the reason is for people, in English): "malformed", "not_yours" (made by
    // another user or device), "invalid_value", "wrong_collection", "outside_scope", "held_behind"
    // (an earlier change to its record in the batch was refused), "already_exists" (a create
    // naming a record the upstream holds from another author: creates take fresh ids), "no_record"
    // (a change other than a create to a record the upstream does not hold: deleted and purged, or
    // never created), or "rule" (the PushGate's).
    // On the wire as "cause" since format 6; empty from an older upstream. A device keeps any
    // word of lower-case letters and underscores (a newer upstream may have more causes) and
    // drops anything else.
    std::string cause;
};

struct PushResult {
    Hlc upstream_time;  // the upstream's clock when it answered: devices correct skew with it
    // Device side only, never sent: how long before it is applied the upstream read
    // `upstream_time`, at least (ms; -1: not known, taken as 0). The device's transport counts
    // from when the answer began to arrive (the upstream read its clock before it answered), so a
    // body that took long to download, or waited to be applied, does not make a right clock look
    // ahead by that time. A lower bound: the device's clock is never set ahead by it.
    std::int64_t upstream_time_age_ms = -1;
    std::vector<PushOutcome> outcomes;  // one per change, in the batch's order
    // Which life of the upstream answered (Upstream::epoch): another one than a device last heard
    // means the upstream was restored from a backup, and may lack changes it had acknowledged.
    // On the wire "epoch", advisory: a device keeps it when it is an id, and ignores it otherwise
    // ("" from an upstream that sends none).
    std::string epoch;
};

// A change set the device sent and has no answer for (a lost response), or one refused that the
// upstream may have taken since on its worker's behalf (a supervisor's apply): the upstream says
// whether it has it, so the device can drop it from its outbox.
struct SentChange {
    std::string record;
    std::string change_id;
};

// A record the device kept through a pull from the start after a restore, though no page of it
// brought the record, or a page evicted it (see PullRequest::release): with the ids of every
// version its copy references (every head, current or losing, and any deletion).
struct ReleaseAsk {
    std::string record;
    std::vector<std::string> versions;
};

// The upstream's answers to PullRequest::release, every record asked in exactly one list.
struct ReleaseAnswers {
    // Out of the user's scope, and every version the device named is one the upstream applied:
    // the upstream holds all the device's copy holds, and the device lets the record go.
    std::vector<std::string> released;
    // In the user's scope: pulls keep it current from now on (an eviction comes as usual).
    std::vector<std::string> in_scope;
    // Out of the user's scope, and the upstream lacks the record or one of the versions named
    // (lost with the backup's later changes, or compacted away): the device's copy may be its
    // last, and stays; the device asks again later (a colleague's phone may send the change again).
    std::vector<std::string> not_held;
    bool empty() const noexcept { return released.empty() && in_scope.empty() && not_held.empty(); }
};

// A record the device holds whose changes it pushed and the upstream acknowledged, with the scope
// key the device files it under.
struct HeldRecord {
    std::string record;
    std::string scope_key;
};

struct PullRequest {
    std::string replica;
    std::string user;
    std::int64_t after = 0;    // the device's cursor: the last sequence number it applied
    std::size_t limit = 1000;  // records per page
    // Changes sent without an answer (a lost response) and refused ones, asked after: each is
    // answered in the page's acks when the upstream took it. At most kMaxSent (a device has at
    // most two push batches in flight, and asks after at most 200 refused changes at once).
    std::vector<SentChange> sent;
    static constexpr std::size_t kMaxSent = 5000;
    // Records the device pushed to since its cursor and holds. The upstream leaves out of the page
    // each of them whose every version this device made and whose scope key is the same: the
    // device's copy already is the upstream's (or newer), so a device is not sent back what it
    // just wrote. A record anyone else wrote to, or filed upstream under another key, comes in
    // full; a device that names nothing is sent everything.
    // On the wire: "held": {scope key: [record id, ...], ...}.
    std::vector<HeldRecord> held;
    // The cursor the device had when it made its oldest unsent change (or its cursor when the
    // outbox is empty): the upstream compacts nothing that change might still be based on.
    std::int64_t outbox_floor = 0;
    // Records the device wants whole again, whatever its cursor (at most kMaxRefetch): it discarded
    // refused changes to them (Device::discard_refused) and must go back to the upstream's version.
    // Each comes in the page's records when it is in the user's scope, and in its evicted records
    // otherwise (the device holds no version of it then). On the wire: "refetch": [record id, ...],
    // only when not empty.
    std::vector<std::string> refetch;
    static constexpr std::size_t kMaxRefetch = 100;
    // Records the device kept through its pull from the start after a restore that the upstream
    // may no longer let this user see (no page of that pull brought them, or one evicted them),
    // with the versions its copies reference: the page answers each (PullPage::release). At most
    // kMaxRelease records and kMaxReleaseVersions versions in all. On the wire: "release":
    // [[record id, [change id, ...]], ...], only when not empty.
    std::vector<ReleaseAsk> release;
    static constexpr std::size_t kMaxRelease = 100;
    static constexpr std::size_t kMaxReleaseVersions = 5000;
    // As PushBatch::clock_offset_ms, so that a device that only pulls (a supervisor's phone) has
    // its clock read too. On the wire: "clock_offset", only when known. Not used by the engine.
    std::optional<std::int64_t> clock_offset_ms;
};

// A record of a pull page that the device holds as the upstream has it (see PullRequest::held).
struct KeptRecord {
    std::string record;
    std::int64_t seq = 0;
};

// A record's full merged state (see encode_state in merge.h), as of sequence number `seq`. On the
// wire `fields` and `meta` travel as JSON strings holding the JSON texts, so that neither end has
// to take them apart: the device stores them as they come.
struct RecordSnapshot {
    std::string id;
    std::string collection;
    std::string scope_key;
    std::int64_t seq = 0;
    bool deleted = false;
    std::size_t conflicts = 0;  // open conflicts (see conflicts_of in merge.h)
    std::string fields;         // JSON object text
    std::string meta;           // JSON object text
};

// One page of a pull. Applying it and moving the cursor to `next` is one transaction on the
// device; a page whose `after` is not the device's cursor is stale and ignored.
struct PullPage {
    std::int64_t after = 0;
    std::int64_t next = 0;
    bool more = false;  // another page follows now
    Hlc upstream_time;
    std::int64_t upstream_time_age_ms = -1;  // as PushResult's: device side only, never sent
    std::vector<RecordSnapshot> records;       // in-scope records changed after `after`
    std::vector<std::string> evicted_records;  // records that left the user's scope
    std::vector<std::string> evicted_scopes;   // scope keys the user no longer has
    std::vector<PushOutcome> acks;             // answers for PullRequest::sent
    // Records the device named as held and holds as they are (so they are not in `records`),
    // with the sequence number they have upstream: the device files them as pulled at it. On the
    // wire: "kept": [[record id, sequence number], ...].
    std::vector<KeptRecord> kept;
    // Answers for PullRequest::release. On the wire: "released", "release_in_scope" and
    // "release_not_held", lists of record ids, each only when not empty.
    ReleaseAnswers release;
    std::string epoch;  // as PushResult::epoch
    // Upstream side only, never sent: the device's progress must be recorded
    // (Upstream::record_progress) because this is its last page and what it reported differs
    // from what is stored, or was last recorded a while ago. (A device with none stored gets
    // `unregistered` instead.)
    bool progress_due = false;
    // Upstream side only, never sent: nothing was read, as no progress is recorded for the device
    // (a new phone, or one forgotten). Its progress is recorded first (Upstream::record_progress,
    // at the cursor it asks from), then the page read again: compaction would not wait for a
    // device it does not know, and could purge, between the reading of a page and a later write of
    // its progress, the scope removals and tombstones that the rest of its pull must deliver.
    bool unregistered = false;
};

void to_json(Json& out, const PushBatch& batch);
void to_json(Json& out, const PushOutcome& outcome);
void to_json(Json& out, const PushResult& result);
void to_json(Json& out, const SentChange& sent);
void to_json(Json& out, const KeptRecord& kept);
void to_json(Json& out, const PullRequest& request);
void to_json(Json& out, const RecordSnapshot& snapshot);
void to_json(Json& out, const PullPage& page);

// Throwing forms for nlohmann's get<T>(): they throw std::exception on malformed input.
void from_json(const Json& in, PushBatch& batch);
void from_json(const Json& in, PushOutcome& outcome);
void from_json(const Json& in, PushResult& result);
void from_json(const Json& in, SentChange& sent);
void from_json(const Json& in, KeptRecord& kept);
void from_json(const Json& in, PullRequest& request);
void from_json(const Json& in, RecordSnapshot& snapshot);
void from_json(const Json& in, PullPage& page);

// The fast forms of the largest message, a pull page of thousands of records: the same JSON text
// as Json(page).dump(), written and read without building a JSON document (a tenth of the cost).
std::string pull_page_text(const PullPage& page);
Result<PullPage> parse_pull_page_text(std::string_view text);

// The fast form of a push answer, read by a device once per batch: the same checks as
// parse_push_result(), without building a JSON document.
Result<PushResult> parse_push_result_text(std::string_view text);

// The fast form of a push answer, written by the upstream once per batch: the same JSON text as
// Json(result).dump().
std::string push_result_text(const PushResult& result);

// What a server allows in a push request's body.
struct PushBodyLimits {
    int max_depth = 24;              // arrays and objects any element may sit inside
    std::size_t max_changes = 1000;  // change sets per batch
};

// A push request's body read into a batch, or why it is refused.
struct PushBody {
    Status refusal;                 // ok, or validation / invalid_argument naming what is wrong
    bool too_many_changes = false;  // refused for carrying more than max_changes change sets
    PushBatch batch;                // the batch when the body is accepted
};

// Reads a push request's body, {"changes": [change sets], "sent_at": ms, "clock_offset": ms} and
// nothing else (only "changes" required), into a batch from `replica` and `user` (the session's,
// never the body's), without building a JSON document. Refuses, in this order and with these
// words: nesting deeper than max_depth (before anything else), text that is not JSON or not
// UTF-8, a member named twice in one object, a body that is not an object, an unknown or wrongly
// typed member (the first by name), a missing "changes", more than max_changes change sets, then
// the first change set that parse_change_set() would refuse.
PushBody parse_push_batch_text(std::string_view body, std::string replica, std::string user,
                               const PushBodyLimits& limits);

// Why a request body is refused when nlohmann's parser stopped reading it at byte `position` with
// `error`: "the body is not valid UTF-8 (at byte N)", or "the body is not valid JSON (at byte N)"
// for a syntax error or a number too large for a double ("1e999"). The same words whichever
// reader met it.
std::string json_body_error(std::size_t position, const Json::exception& error);

// An exception's text, fit for a Status message on a path that carries records: nlohmann's parse
// errors end with "last read: '...'", the input just before the error (a record's fields, a
// password), which is cut off here with everything after it. Any other text is kept whole. Every
// place that puts what() of a JSON exception into a message goes through this.
std::string exception_text(const std::exception& error);

// The refusal of a body nesting deeper than `max_depth` (json_nests_deeper_than).
std::string json_depth_error(int max_depth);

// The refusal of a body holding a NUL byte, in json_body_error's words ("... (at byte N)"), or ""
// when it holds none. JSON never allows one raw, and nlohmann's parser takes it for the end of the
// input: `{"changes": []}` NUL `anything` read as a whole body. Checked after a parse succeeded.
std::string json_nul_error(std::string_view text);

// The refusal of a body that names one member twice in an object ("member \"x\" appears twice in
// one object (at byte N): name each member once"), or "" when it names none twice. Names are
// compared as read ("\u0061" is "a"). For text a parse accepted: checked after it succeeded.
std::string json_repeated_member_error(std::string_view text);

// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): the
// only text JSON carries, so text that is not cannot be sent.
bool is_utf8(std::string_view text);

// True when some element of the JSON `text` sits inside more than `max_depth` arrays and objects:
// a scan of the bytes, so that a hostile body is refused before it becomes a deep document.
bool json_nests_deeper_than(std::string_view text, int max_depth);

// Non-throwing forms: invalid_argument naming what is malformed.
Result<ChangeSet> parse_change_set(const Json& in);
Result<PushBatch> parse_push_batch(const Json& in);
Result<PushResult> parse_push_result(const Json& in);
Result<PullRequest> parse_pull_request(const Json& in);
Result<PullPage> parse_pull_page(const Json& in);

}  // namespace tsunagu::sync
