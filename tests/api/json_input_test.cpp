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
