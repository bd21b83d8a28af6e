// push_result_text and parse_push_result_text: a push answer written straight to text, and read
// with nlohmann's SAX reader straight into its structs, without a JSON document in between (the
// server writes and a device reads one per batch of up to 1000 change sets).
#include <array>
#include <limits>
#include <optional>

#include "sync/protocol.h"
#include "sync/src/json_writer.h"
#include "sync/src/names.h"
#include "sync/src/sax_reader.h"

namespace tsunagu::sync {
namespace {

// Reads the answer's known shape, the same checks as from_json(PushResult) (the fuzz target
// push_result compares the two); ignores unknown members (a newer upstream may add some). A
// member's error counts only where from_json reads it: "seq" and "hlc" of an accepted or duplicate
// outcome, "code" and "reason" of a refused one, so each is kept until the outcome closes.
class ResultReader : public detail::SaxReader {
  public:
    explicit ResultReader(PushResult& result) : result_(result) {}
    bool has_time = false;
    bool has_outcomes = false;

    bool null() override { return other("null"); }
    bool boolean(bool) override { return other("a boolean"); }
    bool number_integer(number_integer_t value) override { return integer(value); }
    bool number_unsigned(number_unsigned_t value) override {
        if (value > static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) {
            return other("a number out of range");
        }
        return integer(static_cast<std::int64_t>(value));
    }
    bool number_float(number_float_t, const string_t&) override { return other("a fraction"); }
    bool binary(binary_t&) override { return fail("unexpected binary value"); }

    bool string(string_t& value) override {
        if (skipping()) return true;
        if (depth_ == 1) {
            if (key_ == "outcomes") return fail("\"outcomes\" must be a list");
            if (key_ == "epoch") {
                if (is_id(value)) result_.epoch = std::move(value);  // advisory: anything else is ignored
                return true;
            }
            if (key_ != "upstream_time") return true;
            auto hlc = Hlc::parse(value);
            if (!hlc) return fail("\"upstream_time\" is not a clock reading");
            result_.upstream_time = *hlc;
            has_time = true;
            return true;
        }
        if (!in_outcome()) return fail("unexpected string in a push answer");
        PushOutcome& o = result_.outcomes.back();
        if (member_ == "change") {
            o.change_id = std::move(value);
            seen(kChange);
        } else if (member_ == "record") {
            o.record = std::move(value);
            seen(kRecord);
        } else if (member_ == "status") {
            if (value == "accepted")
                o.status = PushStatus::accepted;
            else if (value == "duplicate")
                o.status = PushStatus::duplicate;
            else if (value == "refused")
                o.status = PushStatus::refused;
            else
                return seen(kStatus, "unknown push status \"" + value + "\"");
            seen(kStatus);
        } else if (member_ == "hlc") {
            auto hlc = Hlc::parse(value);
            if (!hlc) return seen(kHlc, "\"hlc\" is not a clock reading like \"1732500000000-0\"");
            o.hlc = *hlc;
            seen(kHlc);
        } else if (member_ == "code") {
            auto code = detail::error_code_named(value);
            if (!code) return seen(kCode, "unknown error code \"" + value + "\"");
            o.code = *code;
            seen(kCode);
        } else if (member_ == "reason") {
            o.reason = std::move(value);
            seen(kReason);
        } else if (member_ == "cause") {
            if (is_cause_word(value)) o.cause = std::move(value);  // advisory: a bad one is dropped
        } else if (member_ == "seq") {
            return seen(kSeq, "\"seq\" must be a number");
        }
        return true;
    }

    bool start_object(std::size_t) override {
        ++depth_;
        if (skipping()) return true;
        if (depth_ == 1) return true;
        if (depth_ == 3 && in_outcomes_) {
            result_.outcomes.emplace_back();
            seen_ = 0;
            for (auto& why : errors_) why.clear();
            return true;
        }
        if (depth_ == 2 && key_ == "outcomes") return fail("\"outcomes\" must be a list");
        if (depth_ == 2 && key_ == "upstream_time")
            return fail("\"upstream_time\" must be a string");
        return skip_from(depth_);
    }
    bool end_object() override {
        if (depth_ == 3 && in_outcomes_ && !skipping() && !outcome_complete()) return false;
        return leave();
    }
    bool start_array(std::size_t) override {
        ++depth_;
        if (skipping()) return true;
        if (depth_ == 1) return fail("a push answer is a JSON object");
        if (depth_ == 2 && key_ == "outcomes") {
            in_outcomes_ = true;
            has_outcomes = true;
            return true;
        }
        if (depth_ == 2 && key_ == "upstream_time")
            return fail("\"upstream_time\" must be a string");
        if (depth_ == 3 && in_outcomes_) return fail("an outcome must be an object");
        return skip_from(depth_);
    }
    bool end_array() override {
        if (depth_ == 2) in_outcomes_ = false;
        return leave();
    }
    bool key(string_t& value) override {
        if (skipping()) return true;
        if (depth_ == 1)
            key_ = std::move(value);
        else if (depth_ == 3)
            member_ = std::move(value);
        return true;
    }

  private:
    enum Member { kChange, kRecord, kStatus, kSeq, kHlc, kCode, kReason, kMembers };
    PushResult& result_;
    bool in_outcomes_ = false;
    unsigned seen_ = 0;                             // the current outcome's members, by Member
    std::array<std::string, kMembers> errors_;      // and what was wrong with them
    std::string key_, member_;

    static std::optional<Member> member_named(std::string_view name) {
        static constexpr const char* kNames[kMembers] = {"change", "record", "status", "seq", "hlc", "code", "reason"};
        for (int m = 0; m < kMembers; ++m) {
            if (name == kNames[m]) return static_cast<Member>(m);
        }
        return std::nullopt;
    }
    // Notes member `m` of the current outcome, well formed or with `why` not (the last one counts,
    // as in a document).
    bool seen(Member m, std::string why = "") {
        seen_ |= 1u << m;
        errors_[m] = std::move(why);
        return true;
    }
    bool has(Member m) const { return (seen_ & (1u << m)) && errors_[m].empty(); }

    bool in_outcome() const { return depth_ == 3 && in_outcomes_; }

    bool integer(std::int64_t value) {
        if (skipping()) return true;
        if (depth_ == 1) {
            if (key_ == "upstream_time") return fail("\"upstream_time\" must be a string");
            if (key_ == "outcomes") return fail("\"outcomes\" must be a list");
            return true;
        }
        if (!in_outcome()) return fail("unexpected number in a push answer");
        if (member_ == "seq") {
            result_.outcomes.back().seq = value;
            return seen(kSeq);
        }
        return other("a number");
    }

    // A scalar that no known member takes: fine for unknown members, an error for known ones.
    bool other(const char* what) {
        if (skipping()) return true;
        const std::string& name = depth_ == 1 ? key_ : member_;
        if (depth_ == 1 && name != "upstream_time" && name != "outcomes") return true;
        if (depth_ == 3 && in_outcomes_) {
            // "cause" too is advisory: anything but a word is dropped.
            const auto member = member_named(name);
            return member ? seen(*member, "\"" + name + "\" holds " + what) : true;
        }
        if (depth_ == 2 && in_outcomes_) return fail("an outcome must be an object");
        return fail("\"" + name + "\" holds " + what);
    }

    // The first error among the members the outcome's status needs.
    bool outcome_complete() {
        const PushOutcome& o = result_.outcomes.back();
        const bool refused = has(kStatus) && o.status == PushStatus::refused;
        for (Member m : {kChange, kRecord, kStatus}) {
            if (!errors_[m].empty()) return fail(errors_[m]);
        }
        if (!has(kChange) || !is_id(o.change_id))
            return fail("\"change\" is not an id of 32 lower-case hex characters");
        if (!has(kRecord) || !is_id(o.record))
            return fail("\"record\" is not an id of 32 lower-case hex characters");
        if (!has(kStatus)) return fail("an outcome without \"status\"");
        const std::array<Member, 2> needed = refused ? std::array{kCode, kReason} : std::array{kSeq, kHlc};
        for (Member m : needed) {
            if (!errors_[m].empty()) return fail(errors_[m]);
        }
        if (refused) {
            if (!has(kCode) || !has(kReason)) return fail("a refused outcome without \"code\" and \"reason\"");
        } else if (!has(kSeq) || !has(kHlc)) {
            return fail("an outcome without \"seq\" and \"hlc\"");
        }
        return true;
    }
};

}  // namespace

namespace detail {

// Members in key order, as a JSON document writes them.
void write_push_outcome(std::string& out, const PushOutcome& o) {
    out.push_back('{');
    if (o.status == PushStatus::refused && !o.cause.empty()) {
        write_key(out, "cause");
        write_json_string(out, o.cause);
        out.push_back(',');
    }
    write_key(out, "change");
    write_json_string(out, o.change_id);
    out.push_back(',');
    if (o.status == PushStatus::refused) {
        write_key(out, "code");
        write_json_string(out, error_code_name(o.code));
        out.push_back(',');
        write_key(out, "reason");
        write_json_string(out, o.reason);
        out.push_back(',');
    } else {
        write_key(out, "hlc");
        write_json_string(out, o.hlc.to_string());
        out.push_back(',');
    }
    write_key(out, "record");
    write_json_string(out, o.record);
    out.push_back(',');
    if (o.status != PushStatus::refused) {
        write_key(out, "seq");
        write_int(out, o.seq);
        out.push_back(',');
    }
    write_key(out, "status");
    write_json_string(out, push_status_name(o.status));
    out.push_back('}');
}

}  // namespace detail

std::string push_result_text(const PushResult& result) {
    std::string out;
    out.reserve(64 + result.outcomes.size() * 160);
    out.push_back('{');
    if (!result.epoch.empty()) {  // in the document form's order: its keys sorted
        detail::write_key(out, "epoch");
        detail::write_json_string(out, result.epoch);
        out.push_back(',');
    }
    detail::write_key(out, "outcomes");
    out.push_back('[');
    for (std::size_t i = 0; i < result.outcomes.size(); ++i) {
        if (i > 0) out.push_back(',');
        detail::write_push_outcome(out, result.outcomes[i]);
    }
    out.append("],");
    detail::write_key(out, "upstream_time");
    detail::write_json_string(out, result.upstream_time.to_string());
    out.push_back('}');
    return out;
}

Result<PushResult> parse_push_result_text(std::string_view text) {
    PushResult result;
    ResultReader reader(result);
    const bool parsed =
        Json::sax_parse(text, &reader, nlohmann::detail::input_format_t::json, true, false);
    if (!parsed) {
        return Status(ErrorCode::invalid_argument,
                      "malformed push result: " +
                          (reader.error.empty() ? std::string("not a push result") : reader.error));
    }
    if (!reader.has_time) {
        return Status(ErrorCode::invalid_argument,
                      "malformed push result: \"upstream_time\" is missing");
    }
    if (!reader.has_outcomes) {
        return Status(ErrorCode::invalid_argument,
                      "malformed push result: \"outcomes\" is missing");
    }
    return result;
}

}  // namespace tsunagu::sync
