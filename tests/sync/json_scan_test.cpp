// Which records a change set's text names, as the device asks before it sends a batch beside
// another in flight (sync/src/json_scan.h).
#include <catch2/catch.hpp>

#include <string>

#include "sync/src/json_scan.h"

using tsunagu::sync::detail::names_any;

namespace {
const std::string kClient = "0123456789abcdef0123456789abcdef";
const std::string kOther = "fedcba9876543210fedcba9876543210";
}  // namespace

TEST_CASE("a change set names a record when any of its strings is that record's id") {
    const std::set<std::string> waiting = {kClient};
    CHECK(names_any(R"({"record":")" + kClient + R"(","set":{}})", waiting));
    CHECK(names_any(R"({"record":")" + kOther + R"(","set":{"client":")" + kClient + R"("}})", waiting));
    CHECK_FALSE(names_any(R"({"record":")" + kOther + R"(","set":{"notes":"x"}})", waiting));
    CHECK_FALSE(names_any(R"({"notes":")" + kClient + R"(x"})", waiting));  // longer than an id
}

TEST_CASE("a quote escaped inside an earlier value does not hide the ids after it") {
    const std::set<std::string> waiting = {kClient};
    // An agency called 「"ひだまり"」 before the client: an odd and an even count of escaped quotes.
    CHECK(names_any(R"({"set":{"agencies":["\"ひだまり"],"client":")" + kClient + R"("}})", waiting));
    CHECK(names_any(R"({"set":{"agencies":["\"ひだまり\""],"client":")" + kClient + R"("}})", waiting));
    // A backslash that ends a value is itself escaped: the quote after it closes the string.
    CHECK(names_any(R"({"set":{"notes":"C:\\","client":")" + kClient + R"("}})", waiting));
    // An id spelled inside a longer string with escaped quotes is not a value of its own.
    CHECK_FALSE(names_any(R"({"set":{"notes":"\")" + kClient + R"(\""}})", waiting));
}
