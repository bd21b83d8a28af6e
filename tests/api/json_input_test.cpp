// Request bodies: parsed as one JSON object, refused with a reason when malformed or too deep.
#include <catch2/catch.hpp>

#include <string>

#include "api/src/json_input.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

std::string nested_arrays(int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

}  // namespace

TEST_CASE("a body nested up to the limit parses, one level more is refused before parsing") {
    // Depth counts the arrays and objects around an element: {"a": [[1]]} holds 1 at depth 3.
    auto at_limit = parse_json_object("{\"a\":" + nested_arrays(15) + "}", 16);
    REQUIRE(at_limit);
    auto beyond = parse_json_object("{\"a\":" + nested_arrays(16) + "}", 16);
    REQUIRE_FALSE(beyond);
    CHECK(beyond.status().code() == ErrorCode::validation);
    CHECK(beyond.status().message().find("deeper than 16") != std::string::npos);
    // A million open brackets are refused without building anything.
    CHECK_FALSE(parse_json_object(std::string(1'000'000, '['), 16));
}

TEST_CASE("brackets and quotes inside strings do not count as nesting") {
    const std::string text = R"({"note":"[[[[{{{{ \" ]]]] \\","list":[["a"]]})";
    auto parsed = parse_json_object(text, 3);  // "a" is at depth 3: the object and two lists
    REQUIRE(parsed);
    CHECK_FALSE(parse_json_object(text, 2));
    CHECK((*parsed)["note"] == "[[[[{{{{ \" ]]]] \\");
}

TEST_CASE("malformed JSON, invalid UTF-8 and non-objects are refused with what is wrong") {
    auto broken = parse_json_object("{\"a\": }");
    REQUIRE_FALSE(broken);
    CHECK(broken.status().message().find("not valid JSON") != std::string::npos);
    auto latin1 = parse_json_object("{\"a\":\"caf\xe9\"}");
    REQUIRE_FALSE(latin1);
    CHECK(latin1.status().message().find("UTF-8") != std::string::npos);
    // A number too large for a double: the throwing parse threw out_of_range, which no caller
    // caught, and the request failed with a 500 (found by the fuzz target push_body).
    for (const char* huge : {R"({"after": 1e999})", R"({"after": -1e999})", R"({"a": [1, 2e400]})"}) {
        INFO(huge);
        auto overflow = parse_json_object(huge);
        REQUIRE_FALSE(overflow);
        CHECK(overflow.status().code() == ErrorCode::validation);
        CHECK(overflow.status().message().starts_with("the body is not valid JSON (at byte "));
    }
    // A NUL byte, which the parser takes for the end of the text: what follows it was never read
    // (found by the fuzz target push_body).
    auto nul = parse_json_object(std::string("{\"a\": 1}\0{\"b\": [[[[", 16));
    REQUIRE_FALSE(nul);
    CHECK(nul.status().message() == "the body is not valid JSON (at byte 9)");
    auto array = parse_json_object("[1,2]");
    REQUIRE_FALSE(array);
    CHECK(array.status().message().find("must be a JSON object") != std::string::npos);
}

TEST_CASE("a member named twice in one object is refused, however its name is written") {
    const std::vector<std::pair<std::string, std::string>> refused = {
        {R"({"a": 1, "a": 2})", "member \"a\" appears twice in one object (at byte 10): name each member once"},
        {R"({"x": {"b": [1], "c": 0, "b": null}})", "member \"b\" appears twice in one object (at byte 26)"},
        {R"({"a": 1, "\u0061": 2})", "member \"a\" appears twice"},
        {R"({"a\"b": 1, "a\"b": 2})", "member \"a\"b\" appears twice"},
        {R"({"list": [{"k": 1}, {"k": 1, "k": 2}]})", "member \"k\" appears twice"},
    };
    for (const auto& [text, message] : refused) {
        INFO(text);
        auto parsed = parse_json_object(text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.status().code() == ErrorCode::validation);
        CHECK_THAT(parsed.status().message(), Catch::StartsWith(message));
    }
    // The same name in different objects, and a value that spells a member's name, are fine.
    for (const char* fine : {R"({"a": {"a": 1}, "b": {"a": 2}})", R"({"l": [{"a": 1}, {"a": 2}]})",
                             R"({"a": "a", "b": "a", "c": ["a", "a"]})", R"({"a\\": 1, "a": 2})"}) {
        INFO(fine);
        CHECK(parse_json_object(fine).is_ok());
    }
    // Many members: the repeat is found, and a long name is shown by its start only.
    std::string many = "{";
    for (int i = 0; i < 5000; ++i) many += "\"m" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
    const std::string long_name(500, 'n');
    auto big = parse_json_object(many + "\"" + long_name + "\": 1, \"m4321\": 0, \"" + long_name + "\": 2}");
    REQUIRE_FALSE(big);
    CHECK_THAT(big.status().message(), Catch::StartsWith("member \"m4321\" appears twice"));
    auto long_twice = parse_json_object("{\"" + long_name + "\": 1, \"" + long_name + "\": 2}");
    REQUIRE_FALSE(long_twice);
    CHECK(long_twice.status().message().size() < 200);
    CHECK(parse_json_object(many + "\"end\": 0}").is_ok());
}

TEST_CASE("an integer field takes JSON integers a 64-bit signed integer holds, and nothing else") {
    auto check = [](const std::string& value) {
        auto body = parse_json_object("{\"n\": " + value + "}", 16);
        REQUIRE(body.is_ok());
        return check_fields(*body, {{"n", JsonType::integer, true}});
    };
    for (const char* taken : {"0", "-1", "9223372036854775807", "-9223372036854775808"}) {
        INFO(taken);
        CHECK(check(taken).is_ok());
    }
    for (const char* refused : {"9223372036854775808", "18446744073709551615", "1.5", "1e3", "true", "\"7\""}) {
        INFO(refused);
        const Status status = check(refused);
        CHECK(status.code() == ErrorCode::validation);
        CHECK(status.message() == "field \"n\": must be an integer");
    }
}
