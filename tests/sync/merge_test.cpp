// The merge rules of merge.h, as pure functions: last-writer-wins per field, conflicts kept,
// deletion, resolution, and order independence.
#include <catch2/catch.hpp>

#include <algorithm>

#include "sync/merge.h"

namespace tsunagu::sync {
namespace {

// A readable id: "a1" -> "a1000000000000000000000000000000".
std::string id(const std::string& tag) {
    std::string out(32, '0');
    out.replace(0, tag.size(), tag);
    return out;
}

const std::string kRecord = id("e0");
const std::string kAlice = id("aa");  // replicas
const std::string kBob = id("bb");

ChangeSet change(const std::string& tag, std::int64_t ms, const std::string& replica, Json set,
                 std::map<std::string, std::vector<std::string>> base = {}) {
    ChangeSet c;
    c.id = id(tag);
    c.collection = "visit";
    c.record = kRecord;
    c.hlc = Hlc{ms, 0};
    c.replica = replica;
    c.user = replica == kAlice ? "alice" : "bob";
    c.schema_version = 1;
    c.set = std::move(set);
    c.base = std::move(base);
    return c;
}

ChangeSet deletion(const std::string& tag, std::int64_t ms, const std::string& replica,
                   std::vector<std::string> seen, std::vector<std::string> base = {}) {
    ChangeSet c = change(tag, ms, replica, {{kDeletedField, true}}, {{kDeletedField, base}});
    c.seen = std::move(seen);
    return c;
}

// Applies change sets in order, as a replica with a history does: a change set that an earlier
// one listed in its base is superseded there.
RecordState apply_all(const std::vector<ChangeSet>& changes) {
    RecordState state;
    for (std::size_t i = 0; i < changes.size(); ++i) {
        std::set<std::string> superseded;
        for (std::size_t j = 0; j < i; ++j) {
            auto fields = superseded_fields(changes[i].id, changes[j].base);
            superseded.insert(fields.begin(), fields.end());
        }
        apply_change(state, changes[i], superseded);
    }
    return state;
}

// The observable state: what encode_state stores, so two states compare as stored.
std::pair<std::string, std::string> stored(const RecordState& state) {
    auto encoded = encode_state(state);
    return {encoded.fields, encoded.meta};
}

const ChangeSet kCreate = [] {
    ChangeSet c =
        change("c1", 100, kAlice, {{"date", "2020-04-01"}, {"notes", "first"}, {"duration", 30}});
    c.create = true;
    return c;
}();

}  // namespace

TEST_CASE("last writer wins by clock reading") {
    auto state = apply_all(
        {kCreate, change("a2", 300, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 200, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    CHECK(current_values(state)["notes"] == "alice");
    auto flipped = apply_all(
        {kCreate, change("a2", 200, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 300, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    CHECK(current_values(flipped)["notes"] == "bob");
}

TEST_CASE("equal clock readings are decided by replica id") {
    auto state = apply_all(
        {kCreate, change("a2", 200, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 200, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    CHECK(current_values(state)["notes"] == "bob");  // "bb..." > "aa..."
}

TEST_CASE("merge keeps the losing value as a conflict") {
    auto state = apply_all(
        {kCreate, change("a2", 200, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 300, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    auto conflicts = conflicts_of(state, kRecord, "visit");
    REQUIRE(conflicts.size() == 1);
    const Conflict& c = conflicts[0];
    CHECK(c.field == "notes");
    CHECK(c.kind == ConflictKind::concurrent_edit);
    CHECK(c.current.value == "bob");
    CHECK(c.current.version.user == "bob");
    CHECK(c.current.version.hlc == Hlc{300, 0});
    CHECK(c.losing.value == "alice");
    CHECK(c.losing.version.user == "alice");
    CHECK(c.losing.version.replica == kAlice);
    CHECK(c.losing.version.hlc == Hlc{200, 0});
    CHECK(conflict_count(state) == 1);
}

TEST_CASE("an edit that saw the current value replaces it without a conflict") {
    auto state =
        apply_all({kCreate, change("b2", 200, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}}),
                   change("a2", 300, kAlice, {{"notes", "alice"}}, {{"notes", {id("b2")}}})});
    CHECK(current_values(state)["notes"] == "alice");
    CHECK(conflicts_of(state, kRecord, "visit").empty());
    // Only the current version of each field is kept.
    CHECK(head_ids(state, "notes") == std::vector<std::string>{id("a2")});
}

TEST_CASE("applying a change set twice changes nothing") {
    const ChangeSet edit = change("b2", 200, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}});
    RecordState state = apply_all({kCreate, edit});
    const auto before = stored(state);
    CHECK(apply_change(state, edit) == Applied::duplicate);
    CHECK(apply_change(state, kCreate) == Applied::duplicate);
    CHECK(stored(state) == before);
}

TEST_CASE("a change arriving after an edit that saw it is knowingly overwritten") {
    // Alice's two saves arrive in reverse order: a3 was made on top of a2.
    const ChangeSet a2 = change("a2", 200, kAlice, {{"notes", "draft"}}, {{"notes", {id("c1")}}});
    const ChangeSet a3 = change("a3", 300, kAlice, {{"notes", "final"}}, {{"notes", {id("a2")}}});
    RecordState state = apply_all({kCreate, a3});
    CHECK(conflict_count(state) == 1);  // for now c1 and a3 look concurrent
    apply_change(state, a2, superseded_fields(a2.id, a3.base));
    CHECK(current_values(state)["notes"] == "final");
    CHECK(conflicts_of(state, kRecord, "visit").empty());
    CHECK(stored(state) == stored(apply_all({kCreate, a2, a3})));
}

TEST_CASE("change sets applied in any order give the same state") {
    std::vector<ChangeSet> changes = {
        kCreate,
        change("a2", 200, kAlice, {{"notes", "alice"}, {"duration", 45}},
               {{"notes", {id("c1")}}, {"duration", {id("c1")}}}),
        change("b2", 250, kBob, {{"notes", "bob"}, {"purpose", "crisis"}}, {{"notes", {id("c1")}}}),
        change("b3", 400, kBob, {{"duration", 50}}, {{"duration", {id("a2")}}}),
        deletion("a4", 500, kAlice, {id("c1"), id("a2")}),
    };
    std::vector<std::size_t> order = {0, 1, 2, 3, 4};
    std::set<std::pair<std::string, std::string>> outcomes;
    do {
        std::vector<ChangeSet> permuted;
        for (std::size_t i : order) permuted.push_back(changes[i]);
        outcomes.insert(stored(apply_all(permuted)));
    } while (std::next_permutation(order.begin(), order.end()));
    CHECK(outcomes.size() == 1);
}

TEST_CASE("resolving a conflict clears it") {
    RecordState state = apply_all(
        {kCreate, change("a2", 200, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 300, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    REQUIRE(conflict_count(state) == 1);
    apply_change(state, change("r1", 400, kBob, {{"notes", "alice and bob"}},
                               {{"notes", head_ids(state, "notes")}}));
    CHECK(conflict_count(state) == 0);
    CHECK(current_values(state)["notes"] == "alice and bob");
}

TEST_CASE("concurrent edits writing the same value are not a conflict") {
    RecordState state =
        apply_all({kCreate, change("a2", 200, kAlice, {{"notes", "same"}}, {{"notes", {id("c1")}}}),
                   change("b2", 300, kBob, {{"notes", "same"}}, {{"notes", {id("c1")}}})});
    CHECK(conflict_count(state) == 0);
    // An edit that saw the value saw both versions of it.
    CHECK(current_base(state, "notes").size() == 2);
}

TEST_CASE("an edit concurrent with a delete is kept as a conflict") {
    // Bob deletes having seen only the create; Alice edits the notes meanwhile.
    RecordState state = apply_all(
        {kCreate, change("a2", 300, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         deletion("b2", 200, kBob, {id("c1")})});
    CHECK(state.deleted());
    auto conflicts = conflicts_of(state, kRecord, "visit");
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0].kind == ConflictKind::edit_vs_delete);
    CHECK(conflicts[0].field == "notes");
    CHECK(conflicts[0].losing.value == "alice");
    CHECK(conflicts[0].current.version.user == "bob");
}

TEST_CASE("a deleted record stays deleted when an older edit arrives later") {
    const ChangeSet edit = change("a2", 150, kAlice, {{"notes", "old"}}, {{"notes", {id("c1")}}});
    RecordState state = apply_all({kCreate, deletion("b2", 200, kBob, {id("c1")}), edit});
    CHECK(state.deleted());
    CHECK(conflict_count(state) == 1);  // the edit was not seen by the delete: kept
    // An edit the delete had seen is simply gone with the record.
    RecordState seen = apply_all({kCreate, edit, deletion("b2", 200, kBob, {id("c1"), id("a2")})});
    CHECK(seen.deleted());
    CHECK(conflict_count(seen) == 0);
}

TEST_CASE("keeping a record deleted settles the conflict and restoring brings back its values") {
    RecordState state = apply_all(
        {kCreate, change("a2", 300, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         deletion("b2", 200, kBob, {id("c1")})});
    RecordState kept = state;
    apply_change(
        kept, deletion("r1", 400, kBob, all_field_head_ids(kept), head_ids(kept, kDeletedField)));
    CHECK(kept.deleted());
    CHECK(conflict_count(kept) == 0);

    RecordState restored = state;
    apply_change(restored, change("r2", 400, kBob, {{kDeletedField, false}},
                                  {{kDeletedField, head_ids(restored, kDeletedField)}}));
    CHECK_FALSE(restored.deleted());
    CHECK(conflict_count(restored) == 0);
    CHECK(current_values(restored)["notes"] == "alice");
    CHECK(current_values(restored)["duration"] == 30);
}

TEST_CASE("a delete and a concurrent restore are a conflict") {
    RecordState state = apply_all({kCreate, deletion("b2", 200, kBob, {id("c1")})});
    const auto del = head_ids(state, kDeletedField);
    apply_change(state,
                 change("a3", 300, kAlice, {{kDeletedField, false}}, {{kDeletedField, del}}));
    apply_change(state, deletion("b3", 350, kBob, {id("c1")}, del));
    auto conflicts = conflicts_of(state, kRecord, "visit");
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0].kind == ConflictKind::delete_vs_restore);
    CHECK(state.deleted());
}

TEST_CASE("restamping a version re-orders the heads it is in") {
    RecordState state = apply_all(
        {kCreate, change("a2", 200, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}}),
         change("b2", 300, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}})});
    CHECK(current_values(state)["notes"] == "bob");
    CHECK(restamp(state, id("a2"), Hlc{400, 0}));
    CHECK(current_values(state)["notes"] == "alice");
    CHECK_FALSE(restamp(state, id("zz"), Hlc{1, 0}));
}

TEST_CASE("a record state survives encoding and decoding") {
    RecordState state =
        apply_all({kCreate,
                   change("a2", 300, kAlice, {{"notes", "alice"}, {"flags", {"risk"}}},
                          {{"notes", {id("c1")}}}),
                   change("b2", 250, kBob, {{"notes", "bob"}}, {{"notes", {id("c1")}}}),
                   deletion("b3", 260, kBob, {id("c1"), id("b2")})});
    const EncodedState encoded = encode_state(state);
    CHECK(encoded.deleted);
    CHECK(encoded.conflicts == conflict_count(state));
    auto decoded = decode_state(encoded.fields, encoded.meta);
    REQUIRE(decoded.is_ok());
    CHECK(stored(*decoded) == stored(state));
    CHECK(conflicts_of(*decoded, kRecord, "visit").size() ==
          conflicts_of(state, kRecord, "visit").size());
    CHECK(decoded->owner == "alice");
}

TEST_CASE("a record state without conflicts or deletion survives encoding whatever its names") {
    // The common metadata (no losing values, no deletion) is read without a JSON tree; names
    // with escapes or outside ASCII, a delete's seen list, and damage take the full parser.
    for (const std::string user : {"alice", "a \"quoted\" name", "\xe5\x8d\x94\xe5\x8a\x9b"}) {
        ChangeSet create = kCreate;
        create.user = user;
        ChangeSet edit = change("a2", 300, kAlice, {{"notes", "alice"}}, {{"notes", {id("c1")}}});
        edit.user = user;
        const RecordState state = apply_all({create, edit});
        const EncodedState encoded = encode_state(state);
        auto decoded = decode_state(encoded.fields, encoded.meta);
        REQUIRE(decoded.is_ok());
        CHECK(stored(*decoded) == stored(state));
        CHECK(decoded->owner == user);
        REQUIRE(decoded->versions.size() == 2);
        CHECK(decoded->versions[1].version.user == user);
        CHECK(decoded->versions[1].version.hlc == Hlc{300, 0});
        CHECK(decoded->winner("notes")->value == Json("alice"));
        CHECK(decoded->winner("date")->value == Json("2020-04-01"));
    }
    const RecordState deleted = apply_all({kCreate, deletion("b3", 260, kBob, {id("c1")})});
    auto decoded = decode_state(encode_state(deleted).fields, encode_state(deleted).meta);
    REQUIRE(decoded.is_ok());
    CHECK(stored(*decoded) == stored(deleted));
    const auto& versions = decoded->versions;
    auto del = std::find_if(versions.begin(), versions.end(),
                            [](const StateVersion& v) { return v.version.change_id == id("b3"); });
    REQUIRE(del != versions.end());
    CHECK(del->seen == std::vector<std::string>{id("c1")});
}

TEST_CASE("a ten-field save is stored as one version") {
    Json fields;
    for (int i = 0; i < 10; ++i) {
        // (built with append: GCC 12 warns falsely on "literal" + std::string; see GCC PR105651)
        std::string name = "f";
        name.append(std::to_string(i));
        fields[name] = std::string("value ").append(std::to_string(i));
    }
    ChangeSet create = change("c9", 100, kAlice, fields);
    create.create = true;
    const EncodedState encoded = encode_state(apply_all({create}));
    const Json meta = Json::parse(encoded.meta);
    CHECK(meta["v"].size() == 1);
    CHECK_FALSE(meta.contains("w"));  // every field's version is the default one
    CHECK(Json::parse(encoded.fields) == fields);
}

TEST_CASE("damaged stored state is an error, not a crash") {
    CHECK(decode_state("[]", "{}").status().code() == ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[]}").status().code() == ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":5}").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{", "{}").status().code() == ErrorCode::corrupt);
    // A field without a version, a winner out of range, a truncated or trailing text.
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]]}").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":0,\"w\":{\"a\":1}}")
              .status()
              .code() == ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":0").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":0}x").status().code() ==
          ErrorCode::corrupt);
    // A clock or a version index that is not a whole number is not rounded into one.
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1.5,\"r\",\"u\"]],\"d\":0}").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",-5,\"r\",\"u\"]],\"d\":0}").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":0.5}").status().code() ==
          ErrorCode::corrupt);
    CHECK(decode_state("{\"a\":1}", "{\"v\":[[\"x\",1,\"r\",\"u\"]],\"d\":0}").is_ok());
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

TEST_CASE("a record made by one create is encoded from the change set as the merge would encode it") {
    const std::vector<Json> sets = {
        {{"date", "2020-04-01"}, {"notes", "first visit"}, {"duration", 30}},
        {{"notes", "quote \" backslash \\ tab \t newline \n and \u00e9\u4e16"},
         {"flags", Json::array({"risk", "housing"})},
         {"empty", Json::array()},
         {"cleared", nullptr},
         {"ratio", 0.25},
         {"big", std::int64_t{1} << 60},
         {"nested", {{"b", 1}, {"a", {true, false}}}}},
    };
    for (const std::string& user : {std::string("alice"), std::string()}) {
        for (const Json& set : sets) {
            ChangeSet c;
            c.id = std::string(32, 'c');
            c.collection = "visit";
            c.record = std::string(32, 'r');
            c.hlc = Hlc{1'750'000'000'000, 7};
            c.replica = std::string(32, 'a');
            c.user = user;
            c.create = true;
            c.set = set;
            REQUIRE(makes_whole_record(c));
            RecordState state;
            apply_change(state, c);
            const EncodedState merged = encode_state(state);
            const EncodedState direct = encode_created(c);
            CHECK(direct.fields == merged.fields);
            CHECK(direct.meta == merged.meta);
            CHECK(direct.deleted == merged.deleted);
            CHECK(direct.conflicts == merged.conflicts);
        }
    }
}

TEST_CASE("only a create without base that does not delete makes a whole record") {
    ChangeSet c;
    c.create = true;
    c.set = {{"notes", "x"}};
    CHECK(makes_whole_record(c));
    ChangeSet edit = c;
    edit.create = false;
    CHECK_FALSE(makes_whole_record(edit));
    ChangeSet based = c;
    based.base["notes"] = {std::string(32, 'b')};
    CHECK_FALSE(makes_whole_record(based));
    ChangeSet deleting = c;
    deleting.set[kDeletedField] = true;
    CHECK_FALSE(makes_whole_record(deleting));
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

TEST_CASE("a stored value reads back as the JSON value its text holds") {
    const std::vector<std::string> texts = {
        R"("plain words")", R"("")", R"("quote \" inside")", R"("back\\slash")", R"("tab\tnew\nline")",
        "\"caf\xC3\xA9\"", R"("\u00e9")", "42", "-1.5", "true", "null", R"(["a","b"])", R"({"k":"v"})"};
    for (const std::string& text : texts) {
        CHECK(FieldValue::from_text(text).json() == Json::parse(text));
    }
    CHECK(FieldValue::from_text("\"unterminated").json().is_null());  // damaged: null
    CHECK(FieldValue::from_text("\"bad \xFF byte\"").json().is_null());
}

}  // namespace tsunagu::sync
