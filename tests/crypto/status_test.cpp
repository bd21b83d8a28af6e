// Status and Result: a failure keeps its code and message wherever it travels, including out of
// a temporary Result, which is how most call sites pass it on (`TSUNAGU_TRY(f().status())`).
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

#include "crypto/status.h"

using namespace tsunagu;

namespace {

// A message long enough to live on the heap, so that reading it after its Result died would
// read freed memory (and AddressSanitizer would say so) rather than a short-string buffer.
const std::string kAdvice =
    "wrong key for store data/tsunagu.db: start with the key file this store was created with";

Result<int> failing() { return Result<int>(ErrorCode::wrong_key, kAdvice); }
Result<int> succeeding() { return 7; }

Status pass_on_temporary() {
    TSUNAGU_TRY(failing().status());
    return Status::ok();
}

Status pass_on_result() {
    TSUNAGU_TRY(failing());
    return Status::ok();
}

}  // namespace

TEST_CASE("the status of a temporary Result is a value that outlives the Result") {
    STATIC_REQUIRE(std::is_same_v<decltype(failing().status()), Status>);
    const Result<int> kept = failing();
    STATIC_REQUIRE(std::is_same_v<decltype(kept.status()), const Status&>);

    const Status& bound = failing().status();  // lifetime-extended, not dangling
    CHECK(bound.code() == ErrorCode::wrong_key);
    CHECK(bound.message() == kAdvice);
}

TEST_CASE("TSUNAGU_TRY passes on the code and message of a temporary Result's failure") {
    const Status from_status = pass_on_temporary();
    CHECK(from_status.code() == ErrorCode::wrong_key);
    CHECK(from_status.message() == kAdvice);

    const Status from_result = pass_on_result();
    CHECK(from_result.code() == ErrorCode::wrong_key);
    CHECK(from_result.message() == kAdvice);
}

TEST_CASE("the status of a successful Result is ok whether or not the Result is a temporary") {
    CHECK(succeeding().status().is_ok());
    const Result<int> kept = succeeding();
    CHECK(kept.status().is_ok());
    CHECK(kept.status().code() == ErrorCode::ok);
    CHECK(*kept == 7);
}

TEST_CASE("moving the status out of a failed Result leaves the Result failed") {
    Result<int> failed = failing();
    const Status taken = std::move(failed).status();
    CHECK(taken.message() == kAdvice);
    CHECK_FALSE(failed.is_ok());  // NOLINT(bugprone-use-after-move): the state is still a Status
}
