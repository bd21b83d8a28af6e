// The audit trail's chain, and what it cannot show alone: entries cut from its end, or a trail
// rewritten whole, are found against a head recorded elsewhere. Over a real encrypted store.
#include <catch2/catch.hpp>

#include "api/src/audit.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;
using namespace tsunagu::testing;

namespace {

void append(Store& store, int n, const std::string& who = "u1") {
    for (int i = 0; i < n; ++i) {
        REQUIRE(AuditLog::append(store, AuditEntry{0, 1'700'000'000 + i, who, "d1", "record.read",
                                                   "r" + std::to_string(i), ""})
                    .is_ok());
    }
}

// What someone holding the store's key can do: lift the append-only triggers, change rows.
void tamper(Store& store, const std::string& sql) {
    REQUIRE(store.exec("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;").is_ok());
    REQUIRE(store.exec(sql).is_ok());
    REQUIRE(AuditLog::create_schema(store).is_ok());  // the triggers back, as if never gone
}

}  // namespace

TEST_CASE("the audit trail's head recorded elsewhere shows entries cut from its end") {
    TempDir dir;
    Store store = open_test_store(dir.file("audit.db"));
    REQUIRE(AuditLog::create_schema(store).is_ok());
    append(store, 5);
    auto head = AuditLog::verify(store);
    REQUIRE(head.is_ok());
    CHECK(head->seq == 5);
    CHECK(head->hash.size() == 64);
    CHECK(AuditLog::head(store)->hash == head->hash);
    append(store, 2);
    CHECK(AuditLog::verify(store, *head).is_ok());  // the trail grew past the head: still there

    tamper(store, "DELETE FROM audit WHERE seq > 3");
    CHECK(AuditLog::verify(store).is_ok());  // the chain alone cannot tell
    auto shortened = AuditLog::verify(store, *head);
    REQUIRE_FALSE(shortened.is_ok());
    CHECK(shortened.status().code() == ErrorCode::corrupt);
    CHECK_THAT(shortened.status().message(), Catch::Contains("shortened") && Catch::Contains("entry 5"));
}

TEST_CASE("the audit trail's head recorded elsewhere shows a trail rewritten whole") {
    TempDir dir;
    Store store = open_test_store(dir.file("audit.db"));
    REQUIRE(AuditLog::create_schema(store).is_ok());
    append(store, 3);
    const auto head = AuditLog::verify(store);
    REQUIRE(head.is_ok());
    // Every entry removed and others appended in their place: a chain that holds, recomputed.
    tamper(store, "DELETE FROM audit");
    append(store, 4, "someone else");
    CHECK(AuditLog::verify(store).is_ok());
    auto rewritten = AuditLog::verify(store, *head);
    REQUIRE_FALSE(rewritten.is_ok());
    CHECK_THAT(rewritten.status().message(), Catch::Contains("rewritten") && Catch::Contains("entry 3"));
}
