// A push request's body read straight into a batch (parse_push_batch_text) accepts and refuses
// exactly what the server's document path did (parse the body, check its fields, count the change
// sets, parse_push_batch), with the same words: compared on chosen and on randomly broken bodies.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include "support/push_body_reference.h"
#include "sync/protocol.h"

using namespace tsunagu;
using Json = nlohmann::json;

namespace {

const std::string kReplica(32, 'd');
const std::string kUser = "user-1";
const sync::PushBodyLimits kLimits{24, 1000};

sync::PushBody document_path(const std::string& text) {
    return testing::push_body_through_document(text, kReplica, kUser, kLimits);
}

sync::PushBody text_path(const std::string& text) {
    return sync::parse_push_batch_text(text, kReplica, kUser, kLimits);
}

// Both paths give the same answer for `text`: the same refusal in the same words, or the same batch.
void check_same(const std::string& text) {
    INFO("body: " << text.substr(0, 600));
    const sync::PushBody expected = document_path(text);
    const sync::PushBody got = text_path(text);
    CHECK(got.refusal.code() == expected.refusal.code());
    CHECK(got.refusal.message() == expected.refusal.message());
    CHECK(got.too_many_changes == expected.too_many_changes);
    if (expected.refusal.is_ok()) CHECK(Json(got.batch).dump() == Json(expected.batch).dump());
}

std::string id(char c) { return std::string(32, c); }

Json change_set(int i) {
    Json c = {{"id", id('a' + i % 6)},
              {"collection", "home_visit"},
              {"record", id('0' + i % 10)},
              {"hlc", "1750000000000-" + std::to_string(i)},
              {"replica", kReplica},
              {"user", kUser},
              {"schema", 1},
              {"set", {{"date", "2026-01-02"}, {"duration_min", 30}, {"ratio", 0.25},
                       {"flags", {"housing", nullptr, true}}, {"nested", {{"a", {{"b", {1, 2}}}}}},
                       {"note", "caf\u00e9 \"quoted\" \\ \n"}}}};
    if (i % 2 == 0) c["create"] = true;
    if (i % 3 == 0) c["base"] = {{"date", {id('e')}}, {"note", {id('f'), id('e')}}};
    if (i % 3 == 1) c["seen"] = {id('c')};
    return c;
}

Json valid_body(int changes = 4) {
    Json body = {{"changes", Json::array()}, {"sent_at", 1750000000123}, {"clock_offset", -86'400'000}};
    for (int i = 0; i < changes; ++i) body["changes"].push_back(change_set(i));
    return body;
}

std::string nested(int depth, const std::string& inner) {
    return std::string(depth, '[') + inner + std::string(depth, ']');
}

}  // namespace

TEST_CASE("a well-formed push body reads into the same batch as through a JSON document") {
    const std::string text = valid_body().dump();
    check_same(text);
    const auto got = text_path(text);
    REQUIRE(got.refusal.is_ok());
    CHECK(got.batch.replica == kReplica);
    CHECK(got.batch.user == kUser);
    CHECK(got.batch.sent_at_ms == 1750000000123);
    CHECK(got.batch.clock_offset_ms == -86'400'000);  // the phone's clock is a day ahead
    REQUIRE(got.batch.changes.size() == 4);
    CHECK(got.batch.changes[0].set["nested"]["a"]["b"] == Json({1, 2}));
    CHECK(got.batch.changes[0].base.at("note") == std::vector<std::string>{id('f'), id('e')});
    check_same(R"({"changes": []})");
    check_same(" {\"sent_at\": 9223372036854775807, \"changes\": [] } ");
    // A member named twice is refused, by both, in the same words (nlohmann's document kept the
    // last value, while another reader of the same text may take the first).
    for (const std::string twice : {R"({"changes": 1, "changes": [], "sent_at": "x", "sent_at": 5})",
                                    R"({"changes": [{"id": "x", "set": {"note": 1, "n\u006fte": 2}}]})"}) {
        check_same(twice);
        CHECK_THAT(text_path(twice).refusal.message(), Catch::StartsWith("member \"") && Catch::Contains("appears twice"));
    }
    // Unknown members of a change set are ignored, as parse_push_batch() ignores them.
    Json extra = valid_body(1);
    extra["changes"][0]["future_member"] = {{"deep", {1, 2, {{"x", nullptr}}}}};
    check_same(extra.dump());
}

TEST_CASE("a push body is refused with the same words as through a JSON document") {
    const std::vector<std::string> bodies = {
        "",
        "[]",
        "17",
        "\"changes\"",
        "{}",
        "{\"changes\": {}}",
        "{\"changes\": [], \"sent_at\": 1.5}",
        "{\"changes\": [], \"clock_offset\": \"a day\"}",
        "{\"changes\": [], \"clock_offset\": null}",
        "{\"changes\": [], \"sent_at\": null}",
        "{\"changes\": [], \"sent_at\": 18446744073709551615}",
        "{\"changes\": [], \"clock_offset\": 9223372036854775808}",
        "{\"changes\": [], \"extra\": 1}",
        "{\"aaa\": 1, \"changes\": 5}",
        "{\"zzz\": 1, \"changes\": 5}",
        "{\"changes\": [1]}",
        "{\"changes\": [null, {}]}",
        "{\"changes\": [[1, 2]]}",
        "{\"changes\": [{}]}",
        "{\"changes\": [{\"id\": \"nope\"}]}",
        "{\"changes\": [], }",
        "{\"changes\": []} trailing",
        "{\"changes\": [\"\xff\xfe\"]}",
        "{\"changes\": [\"caf\xc3\"]}",
        "{\"changes\": [\"\\ud800\"]}",
        "{\"changes\": " + nested(23, "1") + "}",
        "{\"changes\": " + nested(24, "1") + "}",
        "{\"changes\": " + nested(24, "") + "}",
        "{\"changes\": [1, " + nested(40, "") + "}",     // too deep, and broken later
        "{\"changes\": [1,, " + nested(40, "1") + "]}",  // broken, and too deep later
        std::string(100000, '['),
    };
    for (const auto& text : bodies) check_same(text);
}

TEST_CASE("each member of a change set is checked in parse_push_batch's order and words") {
    const std::vector<Json> odd_values = {
        nullptr, true, false, 7, -7, 2.5, 18446744073709551615u, "", "x", id('a'), "1750000000000-0",
        Json::array(), Json{"x"}, Json{1}, Json{id('b'), 2}, Json::array({Json::array({id('c')})}),
        Json::object(), Json{{"f", Json{id('a')}}}, Json{{"f", "x"}}, Json{{"f", Json{1}}},
        Json{{"a", Json{id('a'), "bad"}}, {"b", 5}}, Json{{"z", Json::object()}, {"y", Json{nullptr}}},
    };
    const std::vector<std::string> members = {"id", "collection", "record", "hlc", "replica", "user",
                                              "schema", "create", "set", "base", "seen", "other"};
    for (const auto& member : members) {
        for (const auto& value : odd_values) {
            Json body = valid_body(2);
            body["changes"][1][member] = value;
            check_same(body.dump());
        }
        Json body = valid_body(2);
        body["changes"][0].erase(member);
        check_same(body.dump());
    }
}

TEST_CASE("more than 1000 change sets are refused as too many before any change set is read") {
    Json body = {{"changes", Json::array()}};
    for (int i = 0; i < 1001; ++i) body["changes"].push_back(i == 5 ? Json(5) : change_set(i));
    check_same(body.dump());
    CHECK(text_path(body.dump()).too_many_changes);
    body["changes"].erase(body["changes"].size() - 1);
    check_same(body.dump());  // 1000: read, and the malformed sixth is named
    body["extra"] = 1;
    body["changes"].push_back(1);
    check_same(body.dump());  // an unknown member outranks the count
}

TEST_CASE("a device clock reading beyond a 64-bit signed integer is refused, never read wrapped") {
    // 2^64-1 read as an int64 was -1: a clock a moment before 1970, which the clock-skew
    // measurement then took for the phone's.
    for (const char* member : {"sent_at", "clock_offset"}) {
        INFO(member);
        const std::string text = std::string("{\"changes\": [], \"") + member + "\": 18446744073709551615}";
        const auto got = text_path(text);
        CHECK(got.refusal.code() == ErrorCode::validation);
        CHECK(got.refusal.message() == std::string("field \"") + member + "\": must be an integer");
        check_same(text);
    }
    const auto lowest = text_path("{\"changes\": [], \"clock_offset\": -9223372036854775808}");
    REQUIRE(lowest.refusal.is_ok());
    CHECK(lowest.batch.clock_offset_ms == INT64_MIN);
}

TEST_CASE("a number too large for a double is refused as not JSON") {
    // The document path threw out of the handler here (a 500); the text path refuses it.
    const auto got = text_path(R"({"changes": [{"set": {"n": 1e999}}]})");
    CHECK(got.refusal.code() == ErrorCode::validation);
    CHECK(got.refusal.message().starts_with("the body is not valid JSON (at byte"));
}

TEST_CASE("randomly broken push bodies are refused or read the same as through a JSON document") {
    const auto seed = std::random_device{}();
    INFO("seed " << seed);
    std::mt19937 random(seed);
    const std::vector<Json> values = {nullptr, true, 3, -1, 0.5, "x", id('a'), "1750000000000-1",
                                      Json::array(), Json{id('b')}, Json{1}, Json::object(),
                                      Json{{"f", Json{id('c')}}}, Json{{"f", Json{"no"}}}};
    const std::vector<std::string> members = {"id", "collection", "record", "hlc", "replica", "user",
                                              "schema", "create", "set", "base", "seen", "other"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    for (int round = 0; round < 3000; ++round) {
        Json body = valid_body(3);
        for (int edits = 1 + static_cast<int>(pick(3)); edits > 0; --edits) {
            Json& change = body["changes"][pick(3)];
            if (!change.is_object()) continue;  // replaced by an earlier edit
            if (change.contains("base") && !change["base"].is_object()) change.erase("base");
            switch (pick(5)) {
                case 0: change[members[pick(members.size())]] = values[pick(values.size())]; break;
                case 1: change.erase(members[pick(members.size())]); break;
                case 2: body[pick(2) ? "sent_at" : "other"] = values[pick(values.size())]; break;
                case 3: change = values[pick(values.size())]; break;
                default: change["base"][pick(2) ? "a" : "b"] = values[pick(values.size())]; break;
            }
        }
        std::string text = body.dump();
        switch (pick(6)) {
            case 0: text.resize(pick(text.size())); break;
            case 1: text[pick(text.size())] = "{}[],:\"\\x\xff 1"[pick(13)]; break;
            case 2: text.insert(pick(text.size()), "\"id\":5,"); break;
            default: break;
        }
        check_same(text);
    }
}

TEST_CASE("a schema version that is not an integer an int holds is refused, never cast") {
    // Both paths cast any number: 2.5 read as 2, true as 1, and 1e300 was undefined behaviour
    // (found by the fuzz target push_body under UBSan's eye).
    for (const Json& version : {Json(2.5), Json(1e300), Json(-1e300), Json(true), Json("1"), Json(2147483648LL),
                                Json(18446744073709551615ULL), Json::array()}) {
        INFO(version.dump());
        Json body = valid_body(1);
        body["changes"][0]["schema"] = version;
        check_same(body.dump());
        const auto got = text_path(body.dump());
        CHECK(got.refusal.code() == ErrorCode::invalid_argument);
        CHECK(got.refusal.message() == "malformed push batch: \"schema\" must be an integer");
    }
    Json body = valid_body(1);
    body["changes"][0]["schema"] = -3;  // an integer: read, and judged against the schema later
    check_same(body.dump());
    CHECK(text_path(body.dump()).refusal.is_ok());
}

TEST_CASE("a body holding a NUL byte is refused where the parser would have stopped") {
    // nlohmann's parser takes a NUL for the end of the input: the text path read the part before
    // it as the whole body, and the deep part after it escaped the nesting limit the document
    // path checks first (found by the fuzz target push_body).
    const std::string valid = valid_body(1).dump();
    const std::string trailed = valid + std::string(1, '\0') + "{\"changes\": 5}";
    check_same(trailed);
    CHECK(text_path(trailed).refusal.message() ==
          "the body is not valid JSON (at byte " + std::to_string(valid.size() + 1) + ")");
    const std::string deep_after = std::string("\"\"") + std::string(1, '\0') + std::string(30, '{');
    check_same(deep_after);
    CHECK(text_path(deep_after).refusal.message() == "the body nests deeper than 24 levels");
}
