// Schema validation, as both ends run it: typed fields, required fields, limits, versions.
#include <catch2/catch.hpp>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using testing::test_schema;

const std::string kRecord(32, 'e');

ChangeSet visit(Json set, int version = 1, bool create = false) {
    ChangeSet c;
    c.id = std::string(32, 'c');
    c.collection = "visit";
    c.record = kRecord;
    c.replica = std::string(32, 'a');
    c.user = "alice";
    c.schema_version = version;
    c.create = create;
    c.set = std::move(set);
    return c;
}

// The refusal's message, or "" when valid.
std::string refusal(const ChangeSet& change, const Schema& schema = test_schema()) {
    Status status = validate_change(schema, change);
    if (status) return "";
    CHECK(status.code() == ErrorCode::validation);
    return status.message();
}

}  // namespace

TEST_CASE("each field type accepts valid values and refuses invalid ones naming the field") {
    const std::string client(32, 'b');
    CHECK(refusal(visit({{"date", "2020-04-01"},
                         {"client", client},
                         {"duration", 90},
                         {"purpose", "crisis"},
                         {"notes", "slept better"},
                         {"flags", {"risk", "housing"}}})) == "");
    struct Case {
        Json set;
        const char* expected;
    };
    const Case cases[] = {
        {{{"date", "2020-02-30"}},
         R"(field "date": must be a date written YYYY-MM-DD, got text that is not such a date)"},
        {{{"date", 20200401}}, R"(field "date": must be a date written YYYY-MM-DD, got an integer)"},
        {{{"duration", -5}}, R"(field "duration": must be an integer from 1 to 1440, got one outside that range)"},
        {{{"duration", 1.5}}, R"(field "duration": must be an integer from 1 to 1440, got a number with a fraction)"},
        {{{"duration", "30"}}, R"(field "duration": must be an integer from 1 to 1440, got text)"},
        {{{"purpose", "party"}},
         R"(field "purpose": must be one of check_in, crisis, discharge, got text that is none of them)"},
        {{{"client", "not-an-id"}},
         R"(field "client": must be a record id (32 lower-case hex characters) of a client)"},
        {{{"flags", "risk"}}, R"(field "flags": must be a list, got text)"},
        {{{"flags", {"risk", "weather"}}},
         R"(field "flags[1]": must be one of risk, housing, medication)"},
        {{{"notes", 7}}, R"(field "notes": must be text)"},
    };
    for (const Case& c : cases) {
        INFO(c.set.dump());
        const std::string message = refusal(visit(c.set));
        CHECK_THAT(message, Catch::Contains(c.expected));
        CHECK_THAT(message, Catch::Contains("record " + kRecord + " (visit)"));
    }
}

TEST_CASE("a refusal names the field and what kind of value it got, never the value itself") {
    // Refusals reach logs, the command line, apps and the server's record of refused changes: a
    // value is part of someone's care record.
    const std::string note = "slept badly, worried about rent";
    const Json values[] = {"2020-13-45 " + note, note, 987654321, Json::array({note}), Json{{"text", note}}};
    for (const char* field : {"date", "duration", "purpose", "client", "flags", "notes"}) {
        for (const Json& value : values) {
            const std::string message = refusal(visit({{field, value}}));
            if (message.empty()) continue;  // e.g. the note is valid notes
            INFO(field << ": " << message);
            CHECK_THAT(message, Catch::Contains(std::string("field \"") + field));
            CHECK_THAT(message, !Catch::Contains("slept") && !Catch::Contains("rent") &&
                                    !Catch::Contains("2020-13") && !Catch::Contains("987654321"));
        }
    }
    CHECK_THAT(refusal(visit({{"date", "2020-02-30"}})), !Catch::Contains("2020-02-30"));
}

TEST_CASE("limits on integers, lengths and list sizes are enforced") {
    CHECK(refusal(visit({{"duration", 1440}})) == "");
    CHECK_THAT(refusal(visit({{"duration", 1441}})), Catch::Contains("from 1 to 1440, got one outside that range"));
    CHECK(refusal(visit({{"notes", std::string(2000, 'x')}})) == "");
    CHECK_THAT(refusal(visit({{"notes", std::string(2001, 'x')}})),
               Catch::Contains("0 to 2000 characters, got 2001"));
    // Lengths count characters, not bytes: 2000 Japanese characters fit.
    std::string japanese;
    for (int i = 0; i < 2000; ++i) japanese += "\u8a2a";  // 訪
    CHECK(refusal(visit({{"notes", japanese}})) == "");
    CHECK_THAT(refusal(visit({{"flags", {"risk", "risk", "risk", "risk"}}})),
               Catch::Contains("0 to 3 items, got 4"));
    ChangeSet client = visit({{"name", "one\ntwo"}});
    client.collection = "client";
    CHECK_THAT(refusal(client), Catch::Contains(R"(field "name": must be one line)"));
}

TEST_CASE("a create must carry every required field") {
    CHECK_THAT(refusal(visit({{"duration", 30}}, 1, true)),
               Catch::Contains(R"(field "date" is required)"));
    CHECK(refusal(visit({{"date", "2020-04-01"}}, 1, true)) == "");
    CHECK(refusal(visit({{"duration", 30}}, 1, false)) == "");  // an edit need not repeat it
}

TEST_CASE("a required field cannot be cleared") {
    CHECK_THAT(refusal(visit({{"date", nullptr}})),
               Catch::Contains(R"(field "date" is required and cannot be cleared)"));
    CHECK(refusal(visit({{"notes", nullptr}})) == "");
}

TEST_CASE("a field from a newer schema is kept and passed on") {
    CHECK(refusal(visit({{"date", "2020-04-01"}, {"mood", "ok"}}, 2)) == "");
    ChangeSet unknown_collection = visit({{"anything", 1}}, 3);
    unknown_collection.collection = "training";
    CHECK(refusal(unknown_collection) == "");
}

TEST_CASE("a field unknown to the schema of the change itself is refused") {
    CHECK_THAT(
        refusal(visit({{"mood", "ok"}}, 1)),
        Catch::Contains(
            R"(field "mood" is not part of visit; the change was made with schema v1 and this peer has v1)"));
    ChangeSet unknown_collection = visit({{"anything", 1}}, 1);
    unknown_collection.collection = "training";
    CHECK_THAT(refusal(unknown_collection),
               Catch::Contains(R"(collection "training" is not in the schema)"));
    CHECK_THAT(refusal(visit({{"_secret", 1}})),
               Catch::Contains(R"(field "_secret" is not part of visit)"));
}

TEST_CASE(
    "a value an older peer cannot validate is refused with a reason naming the field and "
    "versions") {
    const std::string message = refusal(visit({{"purpose", "phone"}}, 2));
    CHECK_THAT(message,
               Catch::Contains(
                   R"(field "purpose": must be one of check_in, crisis, discharge, got text that is none of them)"));
    CHECK_THAT(message,
               Catch::Contains("made with schema v2 and this peer has v1: upgrade this peer"));
    CHECK(refusal(visit({{"purpose", "phone"}}, 2), test_schema(2)) == "");
}

TEST_CASE("a field added by a later version is required only of changes made with it") {
    Schema v2 = test_schema(2);
    v2.collections[1].fields.back().required = true;  // mood, since v2
    CHECK(refusal(visit({{"date", "2020-04-01"}}, 1, true), v2) == "");
    CHECK_THAT(refusal(visit({{"date", "2020-04-01"}}, 2, true), v2),
               Catch::Contains(R"(field "mood" is required)"));
}

TEST_CASE("schemas round-trip through JSON") {
    const Schema schema = test_schema(2);
    const Json json = schema;
    auto back = schema_from_json(json);
    REQUIRE(back.is_ok());
    CHECK(Json(*back) == json);
    CHECK(back->find("visit")->find("flags")->item == FieldType::enumeration);
    CHECK(back->find("visit")->scope.kind == ScopeRule::Kind::field);
    CHECK(back->find("visit")->find("mood")->since == 2);
}

TEST_CASE("unsound schemas are refused") {
    Schema twice = test_schema();
    twice.collections.push_back(twice.collections[0]);
    CHECK_THAT(twice.check().message(), Catch::Contains("declared twice"));
    Schema reserved = test_schema();
    reserved.collections[0].fields[0].name = "_deleted";
    CHECK_THAT(reserved.check().message(), Catch::Contains("starts with '_'"));
    Schema no_choices = test_schema();
    no_choices.collections[1].fields[3].choices.clear();
    CHECK_THAT(no_choices.check().message(), Catch::Contains("has no choices"));
    Schema bad_scope = test_schema();
    bad_scope.collections[1].scope.field = "nowhere";
    CHECK_THAT(bad_scope.check().message(), Catch::Contains("scope field \"nowhere\""));
    CHECK_FALSE(schema_from_json(
                    Json{{"version", 1},
                         {"collections",
                          {{{"name", "x"}, {"fields", {{{"name", "a"}, {"type", "float"}}}}}}}})
                    .is_ok());
}

TEST_CASE("a record's scope key follows its collection's rule") {
    const Schema schema = test_schema();
    const Json client = std::string(32, 'b');
    CHECK(scope_key_of(schema.find("visit"), kRecord, &client, "alice") ==
          "client:" + client.get<std::string>());
    CHECK(scope_key_of(schema.find("visit"), kRecord, nullptr, "alice") == "user:alice");
    CHECK(scope_key_of(schema.find("client"), kRecord, nullptr, "alice") == "client:" + kRecord);
    CHECK(scope_key_of(schema.find("meeting"), kRecord, nullptr, "alice") == "user:alice");
    CHECK(scope_key_of(nullptr, kRecord, nullptr, "bob") == "user:bob");
}

}  // namespace tsunagu::sync
