// The care record types: every field has Japanese and English labels, and every validation rule
// refuses a bad value with the field named in both languages.
#include <catch2/catch.hpp>

#include <algorithm>

#include "domain/care_schema.h"

namespace tsunagu::domain {
namespace {

using sync::FieldSchema;
using sync::FieldType;
using sync::Json;

// Values that break one rule of `field` each.
std::vector<Json> bad_values(const FieldSchema& field) {
    std::vector<Json> out;
    switch (field.type) {
        case FieldType::string:
            out = {Json(42), Json(std::string(static_cast<std::size_t>(field.max.value_or(200)) + 1, 'x'))};
            break;
        case FieldType::text:
            out = {Json::array(), Json(std::string(static_cast<std::size_t>(field.max.value_or(10000)) + 1, 'x'))};
            break;
        case FieldType::integer:
            out = {Json("ten"), Json(1.5), Json(field.max.value_or(0) + 1)};
            if (field.min) out.push_back(Json(*field.min - 1));
            break;
        case FieldType::date: out = {Json("2021-02-30"), Json("30/04/2020"), Json(20200430)}; break;
        case FieldType::enumeration: out = {Json("something else"), Json(1)}; break;
        case FieldType::reference: out = {Json(42)}; break;
        case FieldType::list:
            out = {Json("not a list"), Json(std::vector<Json>(static_cast<std::size_t>(field.max.value_or(1000)) + 1,
                                                              Json("x")))};
            break;
    }
    return out;
}

}  // namespace

TEST_CASE("the care schema has the seven record types of the domain") {
    const auto& schema = care_schema();
    for (const char* name : {"client", "peer_support_dispatch", "home_visit", "discharge_support_case",
                             "post_discharge_plan", "meeting", "training_course"}) {
        CHECK(schema.find(name));
    }
    CHECK(schema.collections.size() == 7);
}

TEST_CASE("every record type, field and choice is labelled in Japanese and English") {
    for (const auto& c : care_schema().collections) {
        INFO(c.name);
        CHECK_FALSE(c.label.ja.empty());
        CHECK_FALSE(c.label.en.empty());
        for (const auto& f : c.fields) {
            INFO(f.name);
            CHECK_FALSE(f.label.ja.empty());
            CHECK_FALSE(f.label.en.empty());
            for (const auto& choice : f.choices) {
                INFO(choice);
                REQUIRE(f.choice_labels.count(choice));
                CHECK_FALSE(f.choice_labels.at(choice).ja.empty());
                CHECK_FALSE(f.choice_labels.at(choice).en.empty());
            }
        }
    }
}

TEST_CASE("the published schema carries the labels to devices and the web page") {
    Json published = Json::parse(care_schema_json());
    const Json& dispatch = published["collections"][1];
    CHECK(dispatch["label_ja"] == "ピアサポーター派遣");
    Json round_trip;
    to_json(round_trip, care_schema());
    auto again = sync::schema_from_json(round_trip);
    REQUIRE(again);
    CHECK(again->find("meeting")->find("kind")->choice_labels.at("council").ja == "精神保健福祉審議会");
}

TEST_CASE("every validation rule refuses a bad value, naming the field in Japanese and English") {
    std::size_t checked = 0;
    for (const auto& c : care_schema().collections) {
        for (const auto& f : c.fields) {
            for (const Json& value : bad_values(f)) {
                INFO(c.name << "." << f.name << " = " << value.dump().substr(0, 40));
                Status refused = sync::validate_value(f, value);
                REQUIRE_FALSE(refused);
                CHECK(refused.code() == ErrorCode::validation);
                CHECK_THAT(refused.message(), Catch::Contains("\"" + f.name + "\"") &&
                                                  Catch::Contains(f.label.ja) && Catch::Contains(f.label.en));
                ++checked;
            }
        }
    }
    CHECK(checked > 100);
}

TEST_CASE("well-formed values of the domain pass") {
    const auto& dispatch = *care_schema().find("peer_support_dispatch");
    CHECK(sync::validate_value(*dispatch.find("date"), "2021-03-31"));
    CHECK(sync::validate_value(*dispatch.find("duration_min"), 90));
    for (const char* source : {"医療機関", "地域援助事業者", "本人・在宅"}) {
        CHECK(sync::validate_value(*dispatch.find("request_source"), source));
    }
    for (const char* format : {"group", "individual", "online"}) CHECK(sync::validate_value(*dispatch.find("format"), format));
    CHECK(sync::validate_value(*dispatch.find("notes"), std::string(2000, 'x')));
}

TEST_CASE("a new record missing a required field is refused, naming it in both languages") {
    sync::ChangeSet c;
    c.id = std::string(32, 'c');
    c.collection = "peer_support_dispatch";
    c.record = std::string(32, 'r');
    c.replica = std::string(32, 'a');
    c.user = "worker";
    c.schema_version = 1;
    c.create = true;
    c.set = {{"date", "2020-05-01"}, {"duration_min", 60}, {"format", "group"}};
    Status refused = sync::validate_change(care_schema(), c);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.message(), Catch::Contains("request_source") && Catch::Contains("依頼元") &&
                                      Catch::Contains("Request source"));
}

namespace {

sync::ChangeSet change_of(const std::string& collection, Json set, int version = 2, bool create = true) {
    sync::ChangeSet c;
    c.id = std::string(32, 'c');
    c.collection = collection;
    c.record = std::string(32, 'r');
    c.replica = std::string(32, 'a');
    c.user = "worker";
    c.schema_version = version;
    c.create = create;
    c.set = std::move(set);
    return c;
}

// The refusal of a change (values, then rules on a new record), or "" when it passes.
std::string refusal(const sync::ChangeSet& c, const Json& current = Json::object()) {
    Status s = sync::validate_change(care_schema(), c);
    if (s) s = sync::validate_rules(care_schema(), c, current);
    return s ? std::string() : s.message();
}

const std::string kPerson(32, 'b');

}  // namespace

TEST_CASE("a push claiming schema version 0 is refused, whatever fields it lacks") {
    // Only date, duration and review status: with "schema": 1 the missing fields are named; with
    // "schema": 0 they used to be skipped.
    const Json bare = {{"date", "2020-05-01"}, {"duration_min", 60}, {"review_status", "submitted"}};
    CHECK_THAT(refusal(change_of("peer_support_dispatch", bare, 1)), Catch::Contains("is required"));
    const std::string message = refusal(change_of("peer_support_dispatch", bare, 0));
    CHECK_THAT(message, Catch::Contains(R"("schema" is 0)") && Catch::Contains("send the version"));
}

TEST_CASE("a dispatch names at least one peer supporter") {
    Json dispatch = {{"date", "2020-05-01"}, {"duration_min", 60}, {"format", "group"}, {"request_source", "医療機関"}};
    CHECK_THAT(refusal(change_of("peer_support_dispatch", dispatch)),
               Catch::Contains("peer_supporters") && Catch::Contains("ピアサポーター") && Catch::Contains("is required"));
    dispatch["peer_supporters"] = Json::array();
    CHECK_THAT(refusal(change_of("peer_support_dispatch", dispatch)), Catch::Contains("give at least one"));
    dispatch["peer_supporters"] = {kPerson};
    CHECK(refusal(change_of("peer_support_dispatch", dispatch)) == "");
    CHECK_THAT(refusal(change_of("peer_support_dispatch", {{"peer_supporters", Json::array()}}, 2, false)),
               Catch::Contains("give at least one"));

}

TEST_CASE("a phone still on schema v1 may create records without the fields v2 made required") {
    // Replicas in the field keep working until upgraded: the server takes what they could send.
    const Json dispatch = {{"date", "2020-05-01"}, {"duration_min", 60}, {"format", "group"}, {"request_source", "医療機関"}};
    CHECK(refusal(change_of("peer_support_dispatch", dispatch, 1)) == "");
}

TEST_CASE("a home visit names its visitor from schema v3 on and a phone still on v2 may leave it out") {
    const Json visit = {{"client", kPerson}, {"date", "2020-06-01"}, {"duration_min", 30}, {"purpose", "check_in"}};
    CHECK(care_schema().version >= 3);  // the rule came with a new version
    CHECK_THAT(refusal(change_of("home_visit", visit, 3)),
               Catch::Contains("visitor") && Catch::Contains("訪問者") && Catch::Contains("is required"));
    CHECK(refusal(change_of("home_visit", visit, 2)) == "");
    Json named = visit;
    named["visitor"] = kPerson;
    CHECK(refusal(change_of("home_visit", named, 3)) == "");
    CHECK_THAT(refusal(change_of("home_visit", {{"visitor", nullptr}}, 3, false)), Catch::Contains("cannot be cleared"));
    // Whoever records a visit is its visitor unless they say otherwise (the engines fill it in).
    CHECK(care_schema().find("home_visit")->find("visitor")->defaults_to_author);
}

TEST_CASE("a training course cannot complete more trainees than it enrolled, nor end before it starts") {
    CHECK_THAT(refusal(change_of("training_course",
                                 {{"course", "養成講座"}, {"start_date", "2020-09-01"}, {"enrolled", 2}, {"completed", 50}})),
               Catch::Contains(R"("completed" (修了者数 / Trainees completed): must be at most field "enrolled")"));
    CHECK_THAT(refusal(change_of("training_course", {{"completed", 50}}, 1, false), {{"enrolled", 2}}),
               Catch::Contains("must be at most"));
    CHECK_THAT(refusal(change_of("training_course",
                                 {{"course", "養成講座"}, {"start_date", "2020-09-01"}, {"end_date", "2020-08-01"}})),
               Catch::Contains(R"("end_date" (終了日 / End date): must not be before field "start_date")"));
    CHECK(refusal(change_of("training_course", {{"course", "養成講座"},
                                                {"start_date", "2020-09-01"},
                                                {"end_date", "2020-12-15"},
                                                {"enrolled", 10},
                                                {"completed", 8}})) == "");
}

TEST_CASE("a discharge-support case with an outcome gives its date and the admission date") {
    Json c = {{"client", kPerson}, {"hospital", "病院"}, {"outcome", "community_transition_support"}};
    CHECK_THAT(refusal(change_of("discharge_support_case", c)), Catch::Contains(R"("outcome_date")"));
    c["outcome_date"] = "2020-10-01";
    CHECK_THAT(refusal(change_of("discharge_support_case", c)), Catch::Contains(R"("admitted_since")"));
    c["admitted_since"] = "2019-01-01";
    CHECK(refusal(change_of("discharge_support_case", c)) == "");
    c["admitted_since"] = "2021-01-01";
    CHECK_THAT(refusal(change_of("discharge_support_case", c)), Catch::Contains("must not be before"));
    CHECK(refusal(change_of("discharge_support_case",
                            {{"client", kPerson}, {"hospital", "病院"}, {"outcome", "ongoing"}})) == "");
}

TEST_CASE("from care schema v5 a visit's next planned visit and a case's outcome date come no earlier than what they follow") {
    CHECK(care_schema().version >= 5);
    const Json v = {{"client", kPerson}, {"visitor", kPerson}, {"date", "2020-10-01"}, {"duration_min", 30},
                    {"purpose", "post_discharge_support"}};
    Json early = v;
    early["next_visit"] = "2020-09-30";
    CHECK_THAT(refusal(change_of("home_visit", early, 5)), Catch::Contains(R"("next_visit")") &&
                                                                 Catch::Contains("must not be before field \"date\""));
    CHECK(refusal(change_of("home_visit", early, 4)) == "");  // a phone on v4 could not check it: taken
    Json same_day = v;
    same_day["next_visit"] = "2020-10-01";
    CHECK(refusal(change_of("home_visit", same_day, 5)) == "");
    // Moving the visit's date past its next one is refused too, judged on the record as it would be.
    CHECK_THAT(refusal(change_of("home_visit", {{"date", "2020-10-08"}}, 5, false), same_day),
               Catch::Contains("must not be before"));

    Json c = {{"client", kPerson}, {"hospital", "病院"}, {"outcome", "discharged"}, {"admitted_since", "2018-01-01"},
              {"transition_date", "2020-10-01"}, {"outcome_date", "2020-09-01"}};
    CHECK_THAT(refusal(change_of("discharge_support_case", c, 5)),
               Catch::Contains(R"("outcome_date")") && Catch::Contains("must not be before"));
    CHECK(refusal(change_of("discharge_support_case", c, 4)) == "");
    c["outcome_date"] = "2021-01-15";
    CHECK(refusal(change_of("discharge_support_case", c, 5)) == "");
}

TEST_CASE("from care schema v4 a training course says its kind and a phone on v3 keeps syncing without it") {
    CHECK(care_schema().version >= 4);
    const Json course = {{"course", "養成講座"}, {"start_date", "2020-09-01"}};
    CHECK_THAT(refusal(change_of("training_course", course, 4)),
               Catch::Contains(R"("course_kind" (講座の種類 / Kind of course))") && Catch::Contains("is required"));
    CHECK(refusal(change_of("training_course", course, 3)) == "");
    Json kinded = course;
    kinded["course_kind"] = "follow_up";
    CHECK(refusal(change_of("training_course", kinded, 4)) == "");
    kinded["course_kind"] = "refresher";
    CHECK_THAT(refusal(change_of("training_course", kinded, 4)), Catch::Contains("course_kind"));
    const auto& kind = *care_schema().find("training_course")->find("course_kind");
    CHECK(kind.choice_labels.at("peer_supporter_training").ja == "ピアサポーター養成講座");
}

TEST_CASE("from care schema v4 a case that reached transition support gives the date it started") {
    Json c = {{"client", kPerson},
              {"hospital", "病院"},
              {"admitted_since", "2018-01-01"},
              {"outcome", "community_transition_support"},
              {"outcome_date", "2020-10-01"}};
    CHECK_THAT(refusal(change_of("discharge_support_case", c, 4)),
               Catch::Contains(R"("transition_date")") &&
                   Catch::Contains(R"(is required when field "outcome" (結果 / Outcome) is set)"));
    // Written with "unless", which every parser of a published schema reads alike.
    const auto& rules = care_schema().find("discharge_support_case")->rules;
    const auto rule = std::find_if(rules.begin(), rules.end(), [](const sync::RecordRule& r) {
        return r.field == "transition_date" && r.kind == sync::RecordRule::Kind::required_with;
    });
    REQUIRE(rule != rules.end());
    CHECK(rule->when.empty());
    CHECK(refusal(change_of("discharge_support_case",
                            {{"client", kPerson}, {"hospital", "病院"}, {"outcome", "ongoing"}}, 4)) == "");
    CHECK(refusal(change_of("discharge_support_case", c, 3)) == "");  // a phone on v3
    c["transition_date"] = "2020-10-01";
    CHECK(refusal(change_of("discharge_support_case", c, 4)) == "");
    // The outcome moves on to discharge; the start of transition support stays, and must stay.
    CHECK(refusal(change_of("discharge_support_case", {{"outcome", "discharged"}, {"outcome_date", "2021-05-20"}}, 4,
                            false),
                  c) == "");
    CHECK_THAT(refusal(change_of("discharge_support_case", {{"transition_date", nullptr}}, 4, false), c),
               Catch::Contains("is required when"));
    CHECK_THAT(refusal(change_of("discharge_support_case", {{"transition_date", "2017-12-31"}}, 4, false), c),
               Catch::Contains("must not be before"));
}

TEST_CASE("the meeting kinds include 関係実務者連携会議, apart from other liaison meetings") {
    const auto& kind = *care_schema().find("meeting")->find("kind");
    REQUIRE(kind.choice_labels.count("practitioner_liaison"));
    CHECK(kind.choice_labels.at("practitioner_liaison").ja == "関係実務者連携会議");
    CHECK(kind.choice_labels.at("liaison").ja == "その他の連絡会");
    CHECK(care_schema().version >= 2);  // the new choice came with version 2
}

TEST_CASE("event dates may not lie after tomorrow in Japan, while planned visits, review dates and course ends may") {
    const auto& schema = care_schema();
    REQUIRE(schema.utc_offset_minutes == 540);
    // 2024-06-30 15:30 UTC is 2024-07-01 00:30 in Japan: tomorrow there is July 2.
    const std::string latest = sync::latest_event_date(schema, 1'719'761'400'000, sync::kEventDateGraceDays);
    CHECK(latest == "2024-07-02");
    auto dated = [&](const std::string& collection, Json set) {
        Status s = sync::validate_event_dates(schema, change_of(collection, std::move(set), 2, false), latest);
        return s ? std::string() : s.message();
    };
    CHECK_THAT(dated("peer_support_dispatch", {{"date", "2099-12-31"}}), Catch::Contains(R"("date" (派遣日 / Date))"));
    CHECK(dated("peer_support_dispatch", {{"date", "2024-07-02"}}) == "");
    // A course is entered as it starts, with the end it is planned to have.
    CHECK_FALSE(dated("training_course", {{"start_date", "2024-07-03"}}).empty());
    CHECK(dated("training_course", {{"start_date", "2024-07-01"}, {"end_date", "2024-09-30"}}) == "");
    CHECK(dated("home_visit", {{"next_visit", "2024-09-01"}}) == "");
    CHECK(dated("post_discharge_plan", {{"review_dates", {"2024-10-01", "2025-01-01"}}}) == "");
}

}  // namespace tsunagu::domain
