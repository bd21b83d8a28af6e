// parse_push_batch_text: a push request's body read with nlohmann's SAX reader straight into a
// PushBatch, without a JSON document in between (the server reads one per batch of up to 1000
// change sets). It refuses exactly what the document path did (strict body checks, then
// parse_push_batch), with the same messages: the refusals are collected while reading and ranked
// at the end in the order that path would have met them.
#include <array>
#include <map>
#include <optional>

#include "sync/protocol.h"
#include "sync/src/sax_reader.h"
#include "sync/src/wire_integer.h"

namespace tsunagu::sync {
namespace {

// A change set member as from_json(ChangeSet) reads them, in that order.
enum Member { kId, kCollection, kRecord, kHlc, kReplica, kUser, kSchema, kCreate, kSet, kBase, kSeen, kMembers };
constexpr std::array<const char*, kMembers> kMemberNames = {
    "id", "collection", "record", "hlc", "replica", "user", "schema", "create", "set", "base", "seen"};
constexpr unsigned kRequired = (1u << kId) | (1u << kCollection) | (1u << kRecord) | (1u << kHlc) |
                               (1u << kReplica) | (1u << kUser) | (1u << kSchema) | (1u << kSet);

std::optional<Member> member_named(std::string_view name) {
    for (int m = 0; m < kMembers; ++m) {
        if (name == kMemberNames[m]) return static_cast<Member>(m);
    }
    return std::nullopt;
}

// nlohmann's words for a value's type and its conversion errors (no diagnostics: none are built in).
enum class Kind { null, boolean, number, string, object, array };
const char* kind_name(Kind kind) {
    static constexpr const char* kNames[] = {"null", "boolean", "number", "string", "object", "array"};
    return kNames[static_cast<int>(kind)];
}
std::string wrong_type(const char* wanted, Kind got) {
    return std::string("[json.exception.type_error.302] type must be ") + wanted + ", but is " + kind_name(got);
}

// Builds a JSON value from SAX events, the way nlohmann's document parser does (a repeated key
// keeps its last value; a body naming a member twice is refused once read, all the same).
class JsonBuilder {
  public:
    void start(Json& root) { stack_.assign(1, &root); }
    void key(std::string& name) { key_ = std::move(name); }
    void value(Json v) { add(std::move(v)); }
    void open(Json container) { stack_.push_back(add(std::move(container))); }
    void close() { stack_.pop_back(); }

  private:
    std::vector<Json*> stack_;  // the open containers; stable while their elements are added
    std::string key_;

    Json* add(Json v) {
        Json& top = *stack_.back();
        if (top.is_object()) {
            Json& slot = top.get_ref<Json::object_t&>()[key_];
            slot = std::move(v);
            return &slot;
        }
        top.get_ref<Json::array_t&>().push_back(std::move(v));
        return &top.back();
    }
};

// Depths (open arrays and objects around an event) of the body's parts.
constexpr int kTop = 1;      // the body's members
constexpr int kChanges = 2;  // the elements of "changes"
constexpr int kChange = 3;   // a change set's members
constexpr int kInner = 4;    // the elements of a change set's "set", "base" or "seen"
constexpr int kBaseIds = 5;  // the ids of one field's "base"

class BatchReader : public detail::SaxReader {
  public:
    BatchReader(PushBatch& batch, const PushBodyLimits& limits) : batch_(batch), limits_(limits) {}

    bool too_deep = false;      // reading stopped at an element nested deeper than the limit
    bool not_an_object = false;
    bool has_changes = false;
    std::size_t change_count = 0;
    std::map<std::string, std::string> field_errors;  // body member -> why refused ("" when fine)
    std::string change_error;                         // the first malformed change set's error

    // The words of the document path, whose parser met the same error.
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& e) override {
        return fail(json_body_error(position, e));
    }

    bool null() override { return scalar(Kind::null, Json()); }
    bool boolean(bool v) override { return scalar(Kind::boolean, Json(v)); }
    bool number_integer(number_integer_t v) override { return scalar(Kind::number, Json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return scalar(Kind::number, Json(v)); }
    bool number_float(number_float_t v, const string_t&) override { return scalar(Kind::number, Json(v)); }
    bool binary(binary_t&) override { return fail("unexpected binary value"); }

    bool string(string_t& v) override {
        if (!within_depth()) return false;
        if (skipping()) return true;
        if (depth_ == kChange && building_) return member_string(v);
        if (depth_ >= kInner && building_) return inner_string(v);
        return scalar(Kind::string, Json());
    }

    bool key(string_t& name) override {
        if (!within_depth()) return false;
        if (skipping()) return true;
        if (depth_ == kTop) return top_key(name);
        if (!building_) return true;
        if (depth_ == kChange) {
            member_ = member_named(name);
            if (member_) present_ |= 1u << *member_;
        } else if (in_set_) {
            set_builder_.key(name);
        } else if (depth_ == kInner && member_ == kBase) {
            // A repeated field keeps its last list, as in a document (the body is then refused).
            auto& ids = change().base[name];
            ids.clear();
            base_errors_[name].clear();
            base_field_ = std::move(name);
        }
        return true;
    }

    bool start_object(std::size_t) override { return open(Kind::object); }
    bool start_array(std::size_t) override { return open(Kind::array); }

    bool end_object() override {
        if (!skipping()) {
            if (in_set_ && depth_ == kInner) in_set_ = false;
            if (in_set_) set_builder_.close();
            if (depth_ == kChange && building_) finish_change();
        }
        return leave();
    }
    bool end_array() override {
        if (!skipping()) {
            if (in_set_) set_builder_.close();
            if (depth_ == kChanges && top_field_ == "changes") in_changes_ = false;
        }
        return leave();
    }

  private:
    PushBatch& batch_;
    const PushBodyLimits& limits_;
    std::string top_field_;  // the body member being read
    bool in_changes_ = false;
    bool building_ = false;  // reading a change set into batch_.changes.back()
    std::optional<Member> member_;
    unsigned present_ = 0;  // the members the change set has
    std::array<std::string, kMembers> member_errors_;
    std::string hlc_text_;
    bool in_set_ = false;
    JsonBuilder set_builder_;
    std::string base_field_;
    std::map<std::string, std::string> base_errors_;  // base field -> why its list is refused

    ChangeSet& change() { return batch_.changes.back(); }

    // The nesting limit, checked where an element starts: no element sits inside more than
    // limits_.max_depth arrays and objects.
    bool within_depth() {
        if (depth_ <= limits_.max_depth) return true;
        too_deep = true;
        return fail("too deep");
    }

    bool top_key(std::string& name) {
        top_field_ = name;
        if (name == "changes") {
            // A repeated member keeps its last value, as in a document (the body is then refused).
            has_changes = true;
            batch_.changes.clear();
            change_count = 0;
            change_error.clear();
            field_errors[name] = "field \"changes\": must be an array";
        } else if (name == "sent_at") {
            field_errors[name] = "field \"sent_at\": must be an integer";
        } else if (name == "clock_offset") {
            field_errors[name] = "field \"clock_offset\": must be an integer";
        } else {
            field_errors[name] = "unknown field \"" + name + "\"";
        }
        return true;
    }

    bool open(Kind kind) {
        if (!within_depth()) return false;
        ++depth_;
        if (skipping()) return true;
        if (depth_ == kTop) {
            if (kind == Kind::object) return true;
            not_an_object = true;
            return skip_from(depth_);
        }
        if (depth_ == kTop + 1) {
            if (kind == Kind::array && top_field_ == "changes") {
                field_errors[top_field_].clear();
                in_changes_ = true;
                return true;
            }
            return skip_from(depth_);
        }
        if (depth_ == kChange && in_changes_) {
            if (!count_change()) return skip_from(depth_);
            if (kind == Kind::array) {
                change_error = "[json.exception.type_error.304] cannot use at() with array";
                return skip_from(depth_);
            }
            start_change();
            return true;
        }
        if (!building_) return skip_from(depth_);
        if (in_set_) {
            set_builder_.open(kind == Kind::object ? Json::object() : Json::array());
            return true;
        }
        if (depth_ == kInner) return open_member(kind);
        if (depth_ == kBaseIds && member_ == kBase) {
            if (kind != Kind::array) note_base_error(wrong_type("array", kind));
            return kind == Kind::array ? true : skip_from(depth_);
        }
        // An element of a base list or of "seen" that is itself a list or an object.
        if (member_ == kBase)
            note_base_error(wrong_type("string", kind));
        else if (member_ == kSeen && member_errors_[kSeen].empty())
            member_errors_[kSeen] = wrong_type("string", kind);
        return skip_from(depth_);
    }

    // Counts an element of "changes"; false when it is not to be read (too many, or an earlier one
    // was malformed and decides the answer).
    bool count_change() {
        if (++change_count > limits_.max_changes) batch_.changes.clear();
        return change_count <= limits_.max_changes && change_error.empty();
    }

    // A change set member that opens an object or array.
    bool open_member(Kind kind) {
        if (!member_) return skip_from(depth_);
        ChangeSet& c = change();
        switch (*member_) {
            case kSet:
                if (kind == Kind::object) {
                    c.set = Json::object();
                    member_errors_[kSet].clear();
                    set_builder_.start(c.set);
                    in_set_ = true;
                    return true;
                }
                member_errors_[kSet] = "\"set\" must be an object";
                return skip_from(depth_);
            case kBase:
                c.base.clear();
                base_errors_.clear();
                member_errors_[kBase] = kind == Kind::object ? "" : wrong_type("object", kind);
                return kind == Kind::object ? true : skip_from(depth_);
            case kSeen:
                c.seen.clear();
                member_errors_[kSeen] = kind == Kind::array ? "" : wrong_type("array", kind);
                return kind == Kind::array ? true : skip_from(depth_);
            case kSchema:
                member_errors_[kSchema] = detail::not_an_integer("schema");
                return skip_from(depth_);
            case kCreate:
                member_errors_[kCreate] = wrong_type("boolean", kind);
                return skip_from(depth_);
            default:
                member_errors_[*member_] = wrong_type("string", kind);
                return skip_from(depth_);
        }
    }

    void start_change() {
        batch_.changes.emplace_back();
        building_ = true;
        member_.reset();
        present_ = 0;
        for (auto& e : member_errors_) e.clear();
        hlc_text_.clear();
        base_errors_.clear();
    }

    void note_base_error(std::string why) {
        std::string& e = base_errors_[base_field_];
        if (e.empty()) e = std::move(why);
    }

    // Every value other than a string read into a change set, and every scalar elsewhere.
    bool scalar(Kind kind, Json value) {
        if (!within_depth()) return false;
        if (skipping()) return true;
        if (depth_ == 0) {
            not_an_object = true;
            return true;
        }
        if (depth_ == kTop) return top_scalar(kind, value);
        if (depth_ == kChanges && in_changes_) {
            if (count_change()) change_error = std::string("[json.exception.type_error.304] cannot use at() with ") + kind_name(kind);
            return true;
        }
        if (!building_) return true;
        if (in_set_) {
            set_builder_.value(std::move(value));
            return true;
        }
        if (depth_ == kChange) return member_scalar(kind, value);
        if (depth_ == kInner && member_ == kBase) {
            note_base_error(wrong_type("array", kind));
        } else if (depth_ == kBaseIds && member_ == kBase) {
            note_base_error(wrong_type("string", kind));
        } else if (depth_ == kInner && member_ == kSeen && member_errors_[kSeen].empty()) {
            member_errors_[kSeen] = wrong_type("string", kind);
        }
        return true;
    }

    bool top_scalar(Kind, const Json& value) {
        const auto integer = detail::wire_integer<std::int64_t>(value);  // 2^63 and above: refused, not wrapped
        if (top_field_ == "sent_at" && integer) {
            field_errors[top_field_].clear();
            batch_.sent_at_ms = *integer;
        } else if (top_field_ == "clock_offset" && integer) {
            field_errors[top_field_].clear();
            batch_.clock_offset_ms = *integer;
        }
        return true;
    }

    // A scalar other than a string as a change set member: the number and the flag, or a type error.
    bool member_scalar(Kind kind, const Json& value) {
        if (!member_) return true;
        ChangeSet& c = change();
        std::string& why = member_errors_[*member_];
        why.clear();
        switch (*member_) {
            case kSchema:
                if (auto version = detail::wire_integer<int>(value)) {
                    c.schema_version = *version;
                } else {
                    why = detail::not_an_integer("schema");
                }
                return true;
            case kCreate:
                if (kind == Kind::boolean)
                    c.create = value.get<bool>();
                else
                    why = wrong_type("boolean", kind);
                return true;
            case kSet: why = "\"set\" must be an object"; return true;
            case kBase: why = wrong_type("object", kind); return true;
            case kSeen: why = wrong_type("array", kind); return true;
            default: why = wrong_type("string", kind); return true;
        }
    }

    bool member_string(std::string& v) {
        if (!member_) return true;
        ChangeSet& c = change();
        std::string& why = member_errors_[*member_];
        why.clear();
        switch (*member_) {
            case kId: c.id = std::move(v); break;
            case kCollection: c.collection = std::move(v); break;
            case kRecord: c.record = std::move(v); break;
            case kHlc: hlc_text_ = std::move(v); break;
            case kReplica: c.replica = std::move(v); break;
            case kUser: c.user = std::move(v); break;
            case kSchema: why = detail::not_an_integer("schema"); break;
            case kCreate: why = wrong_type("boolean", Kind::string); break;
            case kSet: why = "\"set\" must be an object"; break;
            case kBase: why = wrong_type("object", Kind::string); break;
            case kSeen: why = wrong_type("array", Kind::string); break;
            case kMembers: break;
        }
        return true;
    }

    // A string inside a change set member: a set value, a base id or a seen id.
    bool inner_string(std::string& v) {
        if (in_set_) {
            set_builder_.value(Json(std::move(v)));
        } else if (depth_ == kBaseIds && member_ == kBase) {
            if (base_errors_[base_field_].empty()) change().base[base_field_].push_back(std::move(v));
        } else if (depth_ == kInner && member_ == kBase) {
            note_base_error(wrong_type("array", Kind::string));
        } else if (depth_ == kInner && member_ == kSeen) {
            if (member_errors_[kSeen].empty()) change().seen.push_back(std::move(v));
        }
        return true;
    }

    // At the change set's end: its first problem in from_json(ChangeSet)'s order, if any.
    void finish_change() {
        building_ = false;
        std::string problem = change_problem();
        if (!problem.empty()) {
            change_error = std::move(problem);
            batch_.changes.clear();
        }
    }

    std::string change_problem() {
        ChangeSet& c = change();
        for (int m = 0; m < kMembers; ++m) {
            const std::string name = kMemberNames[m];
            if (!(present_ & (1u << m))) {
                if (kRequired & (1u << m)) return "[json.exception.out_of_range.403] key '" + name + "' not found";
                continue;
            }
            if (m == kBase && member_errors_[kBase].empty()) {
                for (const auto& [field, why] : base_errors_) {
                    if (!why.empty()) return why;
                }
            }
            if (!member_errors_[m].empty()) return member_errors_[m];
            const bool is_an_id = m == kId ? is_id(c.id) : m == kRecord ? is_id(c.record) : m == kReplica ? is_id(c.replica) : true;
            if (!is_an_id) return "\"" + name + "\" is not an id of 32 lower-case hex characters";
            if (m == kHlc) {
                auto hlc = Hlc::parse(hlc_text_);
                if (!hlc) return "\"hlc\" is not a clock reading like \"1732500000000-0\"";
                c.hlc = *hlc;
            }
        }
        for (const auto& [field, ids] : c.base) {
            for (const auto& id : ids) {
                if (!is_id(id)) return "base of \"" + field + "\" holds a malformed id";
            }
        }
        for (const auto& id : c.seen) {
            if (!is_id(id)) return "\"seen\" holds a malformed id";
        }
        return "";
    }
};

}  // namespace

PushBody parse_push_batch_text(std::string_view body, std::string replica, std::string user,
                               const PushBodyLimits& limits) {
    PushBody out;
    PushBatch& batch = out.batch;
    BatchReader reader(batch, limits);
    // The body's checks answered validation, the batch's invalid_argument (both a 400).
    auto refuse = [&](std::string message, ErrorCode code = ErrorCode::validation) {
        out.refusal = Status(code, std::move(message));
        batch.changes.clear();
        return std::move(out);
    };
    const bool parsed = Json::sax_parse(body, &reader, nlohmann::detail::input_format_t::json, true, false);
    // The parser takes a NUL byte for the end of the body: it stopped short then too.
    std::string nul = parsed ? json_nul_error(body) : std::string();
    // A nesting check came first, over the whole text: it outranks an error before the deep part.
    if ((!parsed || !nul.empty()) && (reader.too_deep || json_nests_deeper_than(body, limits.max_depth))) {
        return refuse(json_depth_error(limits.max_depth));
    }
    if (!parsed) return refuse(reader.error);
    if (!nul.empty()) return refuse(std::move(nul));
    if (std::string repeated = json_repeated_member_error(body); !repeated.empty()) return refuse(std::move(repeated));
    if (reader.not_an_object) return refuse("the body must be a JSON object");
    for (const auto& [field, error] : reader.field_errors) {
        if (!error.empty()) return refuse(error);
    }
    if (!reader.has_changes) return refuse("field \"changes\": required");
    if (reader.change_count > limits.max_changes) {
        out.too_many_changes = true;
        return refuse("a push carries at most " + std::to_string(limits.max_changes) +
                      " change sets; push in smaller batches");
    }
    if (!is_id(replica)) {
        return refuse("malformed push batch: \"replica\" is not an id of 32 lower-case hex characters",
                      ErrorCode::invalid_argument);
    }
    if (!reader.change_error.empty()) {
        return refuse("malformed push batch: " + reader.change_error, ErrorCode::invalid_argument);
    }
    batch.replica = std::move(replica);
    batch.user = std::move(user);
    return out;
}

}  // namespace tsunagu::sync
