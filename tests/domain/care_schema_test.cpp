// The care record types: every field has Japanese and English labels, and every validation rule
// refuses a bad value with the field named in both languages.
#include <catch2/catch.hpp>

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

}  // namespace tsunagu::domain
