// pull_page_text and parse_pull_page_text: a pull page as JSON text without a JSON document in
// between (a streaming writer, and nlohmann's SAX reader with a small state machine).
#include "sync/protocol.h"
#include "sync/src/sax_reader.h"
#include "sync/src/json_writer.h"
#include "sync/src/wire_integer.h"

namespace tsunagu::sync {
namespace {

using detail::write_int;
using detail::write_json_string;
using detail::write_key;

void write_strings(std::string& out, const std::vector<std::string>& items) {
    out.push_back('[');
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out.push_back(',');
        write_json_string(out, items[i]);
    }
    out.push_back(']');
}

// Reads the page's known shape; ignores unknown members (a newer upstream may add some). It
// refuses what from_json(PullPage) refuses (the fuzz target pull_page compares the two): a
// member of the wrong type, a record without one of its members, an id that is not one.
class PageReader : public detail::SaxReader {
  public:
    explicit PageReader(PullPage& page) : page_(page) {}

    // The members every page has, or "" when all were there.
    std::string missing() const {
        static const char* kRequired[] = {"after", "next", "more", "upstream_time", "records"};
        for (int i = 0; i < 5; ++i) {
            if (!(seen_ & (1 << i))) return kRequired[i];
        }
        return "";
    }

    bool null() override { return scalar(Json()); }
    bool boolean(bool value) override { return scalar(Json(value)); }
    bool number_integer(number_integer_t value) override { return scalar(Json(value)); }
    bool number_unsigned(number_unsigned_t value) override { return scalar(Json(value)); }
    bool number_float(number_float_t value, const string_t&) override {
        return scalar(Json(value));
    }
    bool binary(binary_t&) override { return fail("unexpected binary value"); }
    bool string(string_t& value) override {
        if (skipping()) return true;
        if (depth_ == 3 && list_ == List::records) return record_string(value);
        if (depth_ == 3 && list_ == List::kept) {
            if (kept_items_++ != 0 || !is_id(value)) return bad_kept();
            page_.kept.back().record = std::move(value);
            return true;
        }
        if (depth_ == 2) {
            if (std::vector<std::string>* strings = string_list()) {
                strings->push_back(std::move(value));
                return true;
            }
        }
        return scalar(Json(std::move(value)));
    }
    bool start_object(std::size_t) override {
        ++depth_;
        if (skipping()) return true;
        if (depth_ == 1) return true;
        if (depth_ == 2) {
            if (is_list(key_)) return fail("\"" + key_ + "\" must be a list");
            return skip_from(depth_);
        }
        if (depth_ == 3 && list_ == List::records) {
            page_.records.emplace_back();
            record_members_ = 0;
            return true;
        }
        if (depth_ == 3 && list_ == List::acks) {
            ack_ = Json::object();
            return true;
        }
        if (const std::string wrong = nested(Json::object()); !wrong.empty()) return fail(wrong);
        return skip_from(depth_);
    }
    bool end_object() override {
        if (depth_ == 3 && list_ == List::acks && !skipping()) {
            try {
                page_.acks.push_back(ack_.get<PushOutcome>());
            } catch (const std::exception& e) {
                return fail("an ack: " + exception_text(e));
            }
        }
        if (depth_ == 3 && list_ == List::records && !skipping()) {
            if (Status whole = record_complete(); !whole) return fail(whole.message());
        }
        return leave();
    }
    bool start_array(std::size_t) override {
        ++depth_;
        if (skipping()) return true;
        if (depth_ == 1) return fail("a pull page is a JSON object");
        if (depth_ == 2) {
            if (key_ == "records") {
                list_ = List::records;
                seen_ |= 1 << 4;
            } else if (key_ == "evicted_records")
                list_ = List::evicted_records;
            else if (key_ == "evicted_scopes")
                list_ = List::evicted_scopes;
            else if (key_ == "acks")
                list_ = List::acks;
            else if (key_ == "kept")
                list_ = List::kept;
            else if (key_ == "released")
                list_ = List::released;
            else if (key_ == "release_in_scope")
                list_ = List::release_in_scope;
            else if (key_ == "release_not_held")
                list_ = List::release_not_held;
            else
                return skip_from(depth_);
            return true;
        }
        if (depth_ == 3 && list_ == List::kept) {
            page_.kept.emplace_back();  // [record id, sequence number]
            kept_items_ = 0;
            return true;
        }
        if (const std::string wrong = nested(Json::array()); !wrong.empty()) return fail(wrong);
        return skip_from(depth_);
    }
    bool end_array() override {
        if (depth_ == 3 && list_ == List::kept && !skipping() && kept_items_ != 2) return bad_kept();
        if (depth_ == 2) list_ = List::none;
        return leave();
    }
    bool key(string_t& value) override {
        if (skipping()) return true;
        if (depth_ == 1)
            key_ = value;
        else if (depth_ == 3)
            member_ = value;
        return true;
    }

  private:
    std::string where() const override {
        if (list_ != List::records || depth_ < 3) return depth_ >= 1 && !key_.empty() ? " in \"" + key_ + "\"" : "";
        return " in record " + std::to_string(page_.records.size()) +
               (depth_ >= 3 && !member_.empty() ? ", member \"" + member_ + "\"" : "");
    }

    enum class List {
        none,
        records,
        evicted_records,
        evicted_scopes,
        acks,
        kept,
        released,
        release_in_scope,
        release_not_held
    };
    // A record's members, all required but "conflicts".
    enum RecordMember { kId, kCollection, kScope, kSeq, kDeleted, kConflicts, kFields, kMeta, kRecordMembers };
    static constexpr const char* kRecordMemberNames[kRecordMembers] = {"id", "collection", "scope", "seq",
                                                                       "deleted", "conflicts", "fields", "meta"};
    PullPage& page_;
    List list_ = List::none;
    int seen_ = 0;
    unsigned record_members_ = 0;  // the current record's, by RecordMember
    int kept_items_ = 0;           // in the current "kept" entry
    std::string key_, member_;
    Json ack_;

    static bool is_list(std::string_view key) {
        return key == "records" || key == "acks" || key == "kept" || key == "evicted_records" ||
               key == "evicted_scopes" || key == "released" || key == "release_in_scope" ||
               key == "release_not_held";
    }

    // The page's list of strings the current list is, or nullptr for another kind of list.
    std::vector<std::string>* string_list() {
        switch (list_) {
            case List::evicted_records: return &page_.evicted_records;
            case List::evicted_scopes: return &page_.evicted_scopes;
            case List::released: return &page_.release.released;
            case List::release_in_scope: return &page_.release.in_scope;
            case List::release_not_held: return &page_.release.not_held;
            default: return nullptr;
        }
    }

    static std::optional<RecordMember> record_member(std::string_view name) {
        for (int m = 0; m < kRecordMembers; ++m) {
            if (name == kRecordMemberNames[m]) return static_cast<RecordMember>(m);
        }
        return std::nullopt;
    }

    static constexpr const char* kBadKept = "\"kept\" holds an entry that is not [record id, sequence number]";
    bool bad_kept() { return fail(kBadKept); }

    // Why an array or object opened at depth_ (already counted) and not taken as a page's list, a
    // record, an ack or a kept entry, does not belong there, or "" when it is an unknown
    // member's value, to skip.
    std::string nested(Json container) {
        if (skipping() || depth_ < 3) return "";
        if (depth_ == 3) {
            switch (list_) {
                case List::records: return "a record must be an object";
                case List::acks: return "an ack must be an object";
                case List::kept: return kBadKept;
                case List::evicted_records:
                case List::evicted_scopes:
                case List::released:
                case List::release_in_scope:
                case List::release_not_held: return "\"" + key_ + "\" must hold strings";
                case List::none: return "";
            }
        }
        if (depth_ == 4 && list_ == List::records && record_member(member_)) {
            return "record member \"" + member_ + "\" has the wrong type";
        }
        if (depth_ == 4 && list_ == List::acks) ack_[member_] = std::move(container);  // its type is checked whole
        if (depth_ == 4 && list_ == List::kept) return kBadKept;
        return "";
    }

    // The current record, once its object closed: every member there, its ids and texts in shape.
    Status record_complete() const {
        for (int m = 0; m < kRecordMembers; ++m) {
            if (m != kConflicts && !(record_members_ & (1u << m))) {
                return Status(ErrorCode::invalid_argument,
                              std::string("a record has no \"") + kRecordMemberNames[m] + "\"");
            }
        }
        const RecordSnapshot& r = page_.records.back();
        if (!is_id(r.id)) return Status(ErrorCode::invalid_argument, "a record's \"id\" is not an id");
        if (r.fields.empty() || r.fields.front() != '{' || r.meta.empty() || r.meta.front() != '{') {
            return Status(ErrorCode::invalid_argument, "\"fields\" and \"meta\" must hold JSON objects");
        }
        return Status::ok();
    }


    bool scalar(const Json& value) {
        if (skipping()) return true;
        try {
            if (depth_ == 1) {
                if (key_ == "after") {
                    page_.after = detail::integer_from<std::int64_t>(value, "after");
                    seen_ |= 1;
                } else if (key_ == "next") {
                    page_.next = detail::integer_from<std::int64_t>(value, "next");
                    seen_ |= 2;
                } else if (key_ == "more") {
                    page_.more = value.get<bool>();
                    seen_ |= 4;
                } else if (key_ == "upstream_time") {
                    auto hlc = Hlc::parse(value.get_ref<const std::string&>());
                    if (!hlc) return fail("\"upstream_time\" is not a clock reading");
                    page_.upstream_time = *hlc;
                    seen_ |= 8;
                } else if (key_ == "epoch" && value.is_string() && is_id(value.get_ref<const std::string&>())) {
                    page_.epoch = value.get<std::string>();  // advisory: anything else is ignored
                } else if (is_list(key_)) {
                    return fail("\"" + key_ + "\" must be a list");
                }
                return true;
            }
            if (depth_ == 3 && list_ == List::records) {
                RecordSnapshot& r = page_.records.back();
                const auto member = record_member(member_);
                if (!member) return true;
                if (*member == kSeq)
                    r.seq = detail::integer_from<std::int64_t>(value, "seq");
                else if (*member == kDeleted)
                    r.deleted = value.get<bool>();
                else if (*member == kConflicts)
                    r.conflicts = detail::integer_from<std::size_t>(value, "conflicts");
                else
                    return fail("record member \"" + member_ + "\" has the wrong type");
                record_members_ |= 1u << *member;
                return true;
            }
            if (depth_ == 3 && list_ == List::acks) {
                ack_[member_] = value;
                return true;
            }
            if (depth_ == 3 && list_ == List::kept) {
                if (kept_items_++ != 1) return bad_kept();
                page_.kept.back().seq = detail::integer_from<std::int64_t>(value, "kept");
                return true;
            }
        } catch (const std::exception& e) {
            return fail("\"" + (depth_ == 1 ? key_ : member_) + "\": " + exception_text(e));
        }
        return fail("unexpected value in a pull page");
    }

    bool record_string(std::string& value) {
        RecordSnapshot& r = page_.records.back();
        const auto member = record_member(member_);
        if (!member) return true;
        switch (*member) {
            case kId: r.id = std::move(value); break;
            case kCollection: r.collection = std::move(value); break;
            case kScope: r.scope_key = std::move(value); break;
            case kFields: r.fields = std::move(value); break;
            case kMeta: r.meta = std::move(value); break;
            default: return fail("record member \"" + member_ + "\" has the wrong type");
        }
        record_members_ |= 1u << *member;
        return true;
    }
};

}  // namespace

std::string pull_page_text(const PullPage& page) {
    std::string out;
    std::size_t size = 256;
    for (const auto& r : page.records) size += r.fields.size() + r.meta.size() + 200;
    out.reserve(size + size / 8);
    out.push_back('{');
    write_key(out, "acks");
    out.push_back('[');
    for (std::size_t i = 0; i < page.acks.size(); ++i) {
        if (i > 0) out.push_back(',');
        detail::write_push_outcome(out, page.acks[i]);
    }
    out.append("],");
    write_key(out, "after");
    write_int(out, page.after);
    out.push_back(',');
    if (!page.epoch.empty()) {  // in the document form's order: its keys sorted
        write_key(out, "epoch");
        write_json_string(out, page.epoch);
        out.push_back(',');
    }
    write_key(out, "evicted_records");
    write_strings(out, page.evicted_records);
    out.push_back(',');
    write_key(out, "evicted_scopes");
    write_strings(out, page.evicted_scopes);
    out.push_back(',');
    if (!page.kept.empty()) {
        write_key(out, "kept");
        out.push_back('[');
        for (std::size_t i = 0; i < page.kept.size(); ++i) {
            if (i > 0) out.push_back(',');
            out.push_back('[');
            write_json_string(out, page.kept[i].record);
            out.push_back(',');
            write_int(out, page.kept[i].seq);
            out.push_back(']');
        }
        out.append("],");
    }
    write_key(out, "more");
    out.append(page.more ? "true," : "false,");
    write_key(out, "next");
    write_int(out, page.next);
    out.push_back(',');
    write_key(out, "records");
    out.push_back('[');
    for (std::size_t i = 0; i < page.records.size(); ++i) {
        const RecordSnapshot& r = page.records[i];
        if (i > 0) out.push_back(',');
        out.push_back('{');
        write_key(out, "collection");
        write_json_string(out, r.collection);
        out.push_back(',');
        write_key(out, "conflicts");
        write_int(out, static_cast<std::int64_t>(r.conflicts));
        out.push_back(',');
        write_key(out, "deleted");
        out.append(r.deleted ? "true," : "false,");
        write_key(out, "fields");
        write_json_string(out, r.fields);
        out.push_back(',');
        write_key(out, "id");
        write_json_string(out, r.id);
        out.push_back(',');
        write_key(out, "meta");
        write_json_string(out, r.meta);
        out.push_back(',');
        write_key(out, "scope");
        write_json_string(out, r.scope_key);
        out.push_back(',');
        write_key(out, "seq");
        write_int(out, r.seq);
        out.push_back('}');
    }
    out.append("],");
    // (in the document form's order, as above)
    for (const auto& [name, ids] : {std::pair{"release_in_scope", &page.release.in_scope},
                                    std::pair{"release_not_held", &page.release.not_held},
                                    std::pair{"released", &page.release.released}}) {
        if (ids->empty()) continue;
        write_key(out, name);
        write_strings(out, *ids);
        out.push_back(',');
    }
    write_key(out, "upstream_time");
    write_json_string(out, page.upstream_time.to_string());
    out.push_back('}');
    return out;
}

Result<PullPage> parse_pull_page_text(std::string_view text) {
    PullPage page;
    PageReader reader(page);
    const bool parsed =
        Json::sax_parse(text, &reader, nlohmann::detail::input_format_t::json, true, false);
    if (!parsed) {
        return Status(ErrorCode::invalid_argument,
                      "malformed pull page: " +
                          (reader.error.empty() ? std::string("not a pull page") : reader.error));
    }
    if (const std::string missing = reader.missing(); !missing.empty()) {
        return Status(ErrorCode::invalid_argument,
                      "malformed pull page: \"" + missing + "\" is missing");
    }
    for (const auto& [name, ids] : {std::pair{"evicted_records", &page.evicted_records},
                                    std::pair{"released", &page.release.released},
                                    std::pair{"release_in_scope", &page.release.in_scope},
                                    std::pair{"release_not_held", &page.release.not_held}}) {
        for (const auto& id : *ids) {
            if (!is_id(id))
                return Status(ErrorCode::invalid_argument,
                              std::string("malformed pull page: \"") + name + "\" holds a malformed id");
        }
    }
    return page;
}

}  // namespace tsunagu::sync
