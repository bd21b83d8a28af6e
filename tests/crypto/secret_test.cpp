// Secrets in guarded memory: what Secret and wipe() promise to the code that holds keys, passphrases
// and session tokens.
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

#include "crypto/secret.h"

using namespace tsunagu;

TEST_CASE("a secret cannot be copied, only moved, and the moved-from secret is empty") {
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Secret>);
    STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<Secret>);
    Secret token = Secret::copy_of(std::string_view("a bearer token"));
    Secret moved = std::move(token);
    CHECK(token.empty());  // NOLINT(bugprone-use-after-move): the contract under test
    CHECK(moved.view() == "a bearer token");
}

TEST_CASE("a secret made of text holds exactly its bytes, and an empty one holds no memory") {
    const Secret empty = Secret::copy_of(std::string_view());
    CHECK(empty.empty());
    CHECK(empty.data() == nullptr);
    const Secret text = Secret::copy_of(std::string_view("見守り\0記録", 13));
    CHECK(text.size() == 13);
    CHECK(text.view() == std::string_view("見守り\0記録", 13));
}

TEST_CASE("random secrets of the same size differ") {
    CHECK_FALSE(constant_time_equal(Secret::random(32).bytes(), Secret::random(32).bytes()));
}

TEST_CASE("constant-time equality needs equal lengths and equal bytes") {
    const Secret a = Secret::copy_of(std::string_view("same bytes"));
    const Secret b = Secret::copy_of(std::string_view("same bytes"));
    const Secret longer = Secret::copy_of(std::string_view("same bytes!"));
    const Secret other = Secret::copy_of(std::string_view("same bytez"));
    CHECK(constant_time_equal(a.bytes(), b.bytes()));
    CHECK_FALSE(constant_time_equal(a.bytes(), longer.bytes()));
    CHECK_FALSE(constant_time_equal(a.bytes(), other.bytes()));
}

TEST_CASE("wipe overwrites a string's bytes with zeros in place and keeps its size") {
    std::string header = "Bearer 3q2+7w8aBcD4eF";
    const char* buffer = header.data();
    wipe(header);
    CHECK(header.data() == buffer);  // the same memory, not a fresh buffer beside a freed one
    CHECK(header == std::string(21, '\0'));
    std::string empty;
    wipe(empty);
    CHECK(empty.empty());
}

TEST_CASE("taking a secret out of a string copies it into a Secret and wipes the string in place") {
    std::string password = "a worker's password";  // as it arrives in a parsed request
    const char* buffer = password.data();
    const Secret taken = Secret::take(password);
    CHECK(taken.view() == "a worker's password");
    CHECK(password.data() == buffer);
    CHECK(password == std::string(19, '\0'));
}
