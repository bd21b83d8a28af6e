// The review workflow's rules for field workers' changes, and supervisors' decisions.
#include <catch2/catch.hpp>

#include "domain/review.h"

namespace tsunagu::domain {
namespace {

using sync::ChangeSet;
using sync::Json;
using sync::RecordState;

ChangeSet change(Json set, const std::string& collection = "home_visit") {
    ChangeSet c;
    c.id = std::string(32, 'c');
    c.collection = collection;
    c.record = std::string(32, 'r');
    c.replica = std::string(32, 'a');
    c.user = "worker";
    c.set = std::move(set);
    return c;
}

// A record state whose review_status is `status`.
RecordState state(const std::string& status) {
    RecordState s;
    s.owner = "worker";
    s.versions.push_back({});
    s.fields["review_status"].push_back({0, sync::FieldValue(Json(status))});
    return s;
}

}  // namespace

TEST_CASE("workers edit drafts, submitted and returned records, and move them between draft and submitted") {
    for (const char* status : {"draft", "submitted", "returned"}) {
        RecordState s = state(status);
        CHECK(check_synced_change(change({{"observations", "better"}}), &s));
        CHECK(check_synced_change(change({{"review_status", "submitted"}}), &s));
        CHECK(check_synced_change(change({{"review_status", "draft"}}), &s));
    }
    CHECK(check_synced_change(change({{"date", "2020-05-01"}, {"review_status", "submitted"}}), nullptr));
}

TEST_CASE("an approved record is locked for workers, and the refusal says why and what to do") {
    RecordState approved = state("approved");
    for (const Json& set : {Json{{"observations", "late edit"}}, Json{{"review_status", "submitted"}},
                            Json{{"_deleted", true}}}) {
        Status refused = check_synced_change(change(set), &approved);
        REQUIRE_FALSE(refused);
        CHECK(refused.code() == ErrorCode::forbidden);
        CHECK_THAT(refused.message(), Catch::Contains("approved") && Catch::Contains("locked") &&
                                          Catch::Contains("return it") && Catch::Contains("kept on your device"));
    }
}

TEST_CASE("workers neither approve nor return records, nor write review comments") {
    RecordState submitted = state("submitted");
    for (const char* status : {"approved", "returned"}) {
        Status refused = check_synced_change(change({{"review_status", status}}), &submitted);
        REQUIRE_FALSE(refused);
        CHECK_THAT(refused.message(), Catch::Contains("only a supervisor"));
    }
    CHECK_FALSE(check_synced_change(change({{"review_status", "approved"}}), nullptr));
    CHECK_FALSE(check_synced_change(change({{"review_comment", "looks fine"}}), &submitted));
}

TEST_CASE("client records are not reviewed, so workers edit them freely") {
    RecordState s = state("approved");
    CHECK(check_synced_change(change({{"notes", "moved"}}, "client"), &s));
    CHECK_FALSE(is_reviewed("client"));
    CHECK(is_reviewed("home_visit"));
}

TEST_CASE("supervisors approve submitted records, return submitted or approved ones, and a return needs a comment") {
    auto approve = review_fields("submitted", "approve", "");
    REQUIRE(approve);
    CHECK((*approve)["review_status"] == "approved");
    CHECK((*approve)["review_comment"].is_null());
    auto sent_back = review_fields("submitted", "return", "date is wrong");
    REQUIRE(sent_back);
    CHECK((*sent_back)["review_status"] == "returned");
    CHECK((*sent_back)["review_comment"] == "date is wrong");
    CHECK(review_fields("submitted", "return", "").status().code() == ErrorCode::invalid_argument);
    CHECK(review_fields("submitted", "reject", "").status().code() == ErrorCode::invalid_argument);
    for (const char* status : {"draft", "approved", "returned"}) {
        auto refused = review_fields(status, "approve", "");
        REQUIRE_FALSE(refused);
        CHECK(refused.status().code() == ErrorCode::conflict);
        CHECK_THAT(refused.status().message(), Catch::Contains(status));
    }
    auto reopened = review_fields("approved", "return", "the visit date is wrong");
    REQUIRE(reopened);
    CHECK((*reopened)["review_status"] == "returned");
    for (const char* status : {"draft", "returned"}) CHECK_FALSE(review_fields(status, "return", "why"));
}

}  // namespace tsunagu::domain
