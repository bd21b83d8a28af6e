// What a client reads when a request fails: the status and the word it can act on, never a path,
// a SQLite message or anything else of the server's inside.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "api/src/error_response.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

nlohmann::json body_of(const HttpResponse& r) { return nlohmann::json::parse(r.body); }

}  // namespace

TEST_CASE("a full disk answers 507 storage_full telling the device its changes stay on it, and names no server path") {
    const HttpResponse r = error_response(
        Status(ErrorCode::storage_full, "disk full writing /var/lib/tsunagu/tsunagu.db: this change was not written"));
    CHECK(r.status == 507);
    CHECK(body_of(r)["error"] == "storage_full");
    const std::string message = body_of(r)["message"];
    CHECK(message.find("stay on your device") != std::string::npos);
    CHECK(message.find("/var/lib") == std::string::npos);
}

TEST_CASE("every error code answers a JSON error, and what is the server's inside stays in its log") {
    for (int c = 1; c <= static_cast<int>(kLastErrorCode); ++c) {
        const auto code = static_cast<ErrorCode>(c);
        INFO(error_code_name(code));
        const HttpResponse r = error_response(Status(code, "detail /var/lib/tsunagu/secret-path"));
        CHECK(r.status >= 400);
        CHECK(body_of(r).contains("error"));
        CHECK(body_of(r).contains("message"));
        const bool internal_detail = code == ErrorCode::internal || code == ErrorCode::io_error ||
                                     code == ErrorCode::corrupt || code == ErrorCode::not_a_store ||
                                     code == ErrorCode::wrong_key || code == ErrorCode::storage_full;
        if (internal_detail) CHECK(r.body.find("secret-path") == std::string::npos);
    }
    CHECK(error_code_named("storage_full") == ErrorCode::storage_full);
}
