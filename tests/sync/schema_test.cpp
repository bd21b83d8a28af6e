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
         R"(field "date": must be a date written YYYY-MM-DD, from 1900-01-01, got text that is not such a date)"},
        // A year typed short would be kept where no yearly report shows it.
        {{{"date", "0220-05-01"}},
         R"(field "date": must be a date written YYYY-MM-DD, from 1900-01-01, got text that is not such a date)"},
        {{{"date", 20200401}}, R"(field "date": must be a date written YYYY-MM-DD, from 1900-01-01, got an integer)"},
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

TEST_CASE("a change claiming a schema version no schema had is refused, naming what to send") {
    // Version 0 would skip every required field: the create below lacks "date".
    const std::string message = refusal(visit({{"duration", 30}}, 0, true));
    CHECK_THAT(message, Catch::Contains(R"("schema" is 0)") && Catch::Contains("from schema v1 on") &&
                            Catch::Contains("send the version of the schema"));
    CHECK_FALSE(refusal(visit({{"date", "2020-04-01"}}, -3, true)).empty());
    Schema later = test_schema(3);
    later.collections[1].since = 2;  // visits exist from v2 on
    CHECK_THAT(refusal(visit({{"date", "2020-04-01"}}, 1, true), later), Catch::Contains("from schema v2 on"));
    CHECK(refusal(visit({{"date", "2020-04-01"}}, 2, true), later) == "");
}

TEST_CASE("a field made required by a later version is required of changes made with it, not of older ones") {
    Schema v2 = test_schema(2);
    FieldSchema& duration = v2.collections[1].fields[2];
    duration.required = true;
    duration.required_since = 2;
    CHECK(refusal(visit({{"date", "2020-04-01"}}, 1, true), v2) == "");  // a phone not yet upgraded
    CHECK_THAT(refusal(visit({{"date", "2020-04-01"}}, 2, true), v2),
               Catch::Contains(R"(field "duration" is required)"));
    CHECK(refusal(visit({{"duration", nullptr}}, 1), v2) == "");
    CHECK_THAT(refusal(visit({{"duration", nullptr}}, 2), v2), Catch::Contains("cannot be cleared"));
}

TEST_CASE("a required list must hold at least one item") {
    Schema schema = test_schema();
    FieldSchema& flags = schema.collections[1].fields.back();
    flags.required = true;
    CHECK_THAT(refusal(visit({{"date", "2020-04-01"}, {"flags", Json::array()}}, 1, true), schema),
               Catch::Contains(R"(field "flags" is required: give at least one)"));
    CHECK_THAT(refusal(visit({{"flags", Json::array()}}, 1), schema), Catch::Contains("give at least one"));
    CHECK(refusal(visit({{"date", "2020-04-01"}, {"flags", {"risk"}}}, 1, true), schema) == "");
}

namespace {

// A schema with rules between fields of a course: completed <= enrolled, end >= start, a
// result date once there is a result (other than "pending"), and a certification date for a pass.
Schema course_schema() {
    Schema schema = test_schema();
    CollectionSchema course{"course", {}, {}, 1};
    course.fields = {{.name = "start", .type = FieldType::date},
                     {.name = "end", .type = FieldType::date},
                     {.name = "enrolled", .type = FieldType::integer},
                     {.name = "completed", .type = FieldType::integer},
                     {.name = "result", .type = FieldType::enumeration, .choices = {"pending", "passed", "failed"}},
                     {.name = "result_date", .type = FieldType::date},
                     {.name = "certified_on", .type = FieldType::date}};
    course.rules = {{RecordRule::Kind::at_most, "completed", "enrolled"},
                    {RecordRule::Kind::not_before, "end", "start"},
                    {RecordRule::Kind::required_with, "result_date", "result", {"pending"}},
                    {RecordRule::Kind::required_with, "certified_on", "result", {}, {"passed"}}};
    schema.collections.push_back(course);
    REQUIRE(schema.check());
    return schema;
}

std::string rule_refusal(Json set, Json current = Json::object()) {
    ChangeSet c = visit(std::move(set));
    c.collection = "course";
    Status status = validate_rules(course_schema(), c, current);
    return status ? "" : status.message();
}

}  // namespace

TEST_CASE("rules between fields are checked on the record as the change leaves it") {
    CHECK_THAT(rule_refusal({{"enrolled", 2}, {"completed", 50}}),
               Catch::Contains(R"(field "completed": must be at most field "enrolled")"));
    CHECK_THAT(rule_refusal({{"completed", 50}}, {{"enrolled", 2}}), Catch::Contains(R"("completed")"));
    CHECK_THAT(rule_refusal({{"enrolled", 1}}, {{"enrolled", 2}, {"completed", 2}}),
               Catch::Contains(R"("enrolled")"));
    CHECK(rule_refusal({{"enrolled", 10}, {"completed", 8}}) == "");
    CHECK(rule_refusal({{"completed", 8}}) == "");  // nothing to compare with yet
    CHECK_THAT(rule_refusal({{"start", "2020-09-01"}, {"end", "2020-08-31"}}),
               Catch::Contains(R"(field "end": must not be before field "start")"));
    CHECK(rule_refusal({{"start", "2020-09-01"}, {"end", "2020-09-01"}}) == "");
    CHECK_THAT(rule_refusal({{"result", "passed"}}), Catch::Contains(R"(field "result_date": is required when)"));
    CHECK(rule_refusal({{"result", "pending"}}) == "");
    CHECK(rule_refusal({{"result", "failed"}, {"result_date", "2020-10-01"}}) == "");
    CHECK_THAT(rule_refusal({{"result", "passed"}, {"result_date", "2020-10-01"}}),
               Catch::Contains(R"(field "certified_on": is required when field "result" is "passed")"));
    CHECK(rule_refusal({{"result", "passed"}, {"result_date", "2020-10-01"}, {"certified_on", "2020-10-02"}}) == "");
    // A value that no longer needs the field leaves it where it was; one that needs it keeps it.
    CHECK(rule_refusal({{"result", "failed"}}, {{"result", "passed"}, {"result_date", "2020-10-01"}}) == "");
    CHECK_THAT(rule_refusal({{"certified_on", nullptr}},
                            {{"result", "passed"}, {"result_date", "2020-10-01"}, {"certified_on", "2020-10-02"}}),
               Catch::Contains(R"("certified_on")"));
    CHECK_THAT(rule_refusal({{"result_date", nullptr}}, {{"result", "passed"}, {"result_date", "2020-10-01"}}),
               Catch::Contains("is required when"));
    // A change that touches neither field of a rule is not refused for an older breach of it.
    CHECK(rule_refusal({{"notes", "x"}}, {{"enrolled", 2}, {"completed", 50}}) == "");
}

TEST_CASE("rules round-trip through JSON, and a rule naming an undeclared field is unsound") {
    Json published;
    to_json(published, course_schema());
    auto again = schema_from_json(published);
    REQUIRE(again);
    const CollectionSchema* course = again->find("course");
    REQUIRE(course->rules.size() == 4);
    CHECK(course->rules[2].kind == RecordRule::Kind::required_with);
    CHECK(course->rules[2].unless == std::vector<std::string>{"pending"});
    CHECK(course->rules[3].when == std::vector<std::string>{"passed"});
    Schema broken = course_schema();
    broken.collections.back().rules.push_back({RecordRule::Kind::at_most, "completed", "capacity"});
    CHECK_FALSE(broken.check());
    Schema both = course_schema();
    both.collections.back().rules.push_back(
        {RecordRule::Kind::required_with, "certified_on", "result", {"pending"}, {"passed"}});
    CHECK_THAT(both.check().message(), Catch::Contains("either \"when\" or \"unless\""));
    Schema misplaced = course_schema();
    misplaced.collections.back().rules.push_back({RecordRule::Kind::not_before, "end", "start", {}, {"x"}});
    CHECK_FALSE(misplaced.check());
}

TEST_CASE("the latest event date is tomorrow in the schema's local time, and unset without an offset") {
    Schema schema = test_schema();
    CHECK(latest_event_date(schema, 1'704'121'200'000, 1).empty());  // no offset: nothing checked
    schema.utc_offset_minutes = 540;  // Japan
    // 2024-01-01 14:59:59.999 UTC is still January 1 in Japan; a millisecond later it is the 2nd.
    CHECK(latest_event_date(schema, 1'704'121'199'999, 0) == "2024-01-01");
    CHECK(latest_event_date(schema, 1'704'121'200'000, 0) == "2024-01-02");
    CHECK(latest_event_date(schema, 1'704'121'200'000, 1) == "2024-01-03");
    CHECK(latest_event_date(schema, 1'709'164'800'000, 1) == "2024-03-01");  // 2024-02-29 09:00 JST
    Json published;
    to_json(published, schema);
    CHECK(schema_from_json(published)->utc_offset_minutes == 540);
}

TEST_CASE("an event date after the latest is refused, naming the field, and a planned date is not") {
    Schema schema = test_schema();
    schema.collections[1].fields.push_back({.name = "next", .type = FieldType::date, .future = true});
    auto dated = [&](Json set) {
        Status s = validate_event_dates(schema, visit(std::move(set)), "2024-01-02");
        return s ? std::string() : s.message();
    };
    CHECK_THAT(dated({{"date", "2099-12-31"}}),
               Catch::Contains(R"(field "date": must not be after 2024-01-02)") && !Catch::Contains("2099"));
    CHECK(dated({{"date", "2024-01-02"}}) == "");
    CHECK(dated({{"next", "2099-12-31"}}) == "");
    CHECK(validate_event_dates(schema, visit({{"date", "2099-12-31"}}), ""));  // unchecked
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

TEST_CASE("a reference field may default to the record's author, and only a reference field") {
    Schema schema = test_schema();
    schema.collections[2].fields.push_back({.name = "host", .type = FieldType::reference, .defaults_to_author = true});
    REQUIRE(schema.check());
    const Json json = schema;
    auto back = schema_from_json(json);
    REQUIRE(back.is_ok());
    CHECK(back->find("meeting")->find("host")->defaults_to_author);
    CHECK(Json(*back) == json);
    schema.collections[2].fields.back().type = FieldType::string;
    CHECK_THAT(schema.check().message(), Catch::Contains("defaults to its author but is not a reference"));
    Json unknown = json;
    for (Json& c : unknown["collections"])
        for (Json& f : c["fields"])
            if (f["name"] == "host") f["default"] = "today";
    CHECK_FALSE(schema_from_json(unknown).is_ok());
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
