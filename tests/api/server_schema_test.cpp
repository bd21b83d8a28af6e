// The server's own tables carry a version, and an upgraded server opens an older one's data in
// place (api/src/server_schema.h), on a real encrypted store.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "api/src/server_schema.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

struct ServerStore {
    testing::TempDir dir{"tsunagu-server-schema"};
    Store store = testing::open_test_store(dir.file("server.db"));
    // The tables as a server before versions made them, with a device on them.
    ServerStore() {
        REQUIRE(create_version_1_tables(store));
        REQUIRE(store.exec("INSERT INTO account(id, username, display_name, role, team_id, password_hash, created_at) "
                           "VALUES ('u1', 'aoi', 'Aoi', 'peer_supporter', NULL, 'x', 1)"));
        REQUIRE(store.exec("INSERT INTO device(id, user_id, name, registered_at, last_seen_at) "
                           "VALUES ('d1', 'u1', 'phone', 1, 1)"));
    }
    int version() {
        auto v = server_schema_version(store);
        REQUIRE(v);
        return *v;
    }
    bool has_column(const std::string& column) {
        return store.prepare("SELECT " + column + " FROM device").is_ok();
    }
};

}  // namespace

TEST_CASE("an upgraded server brings an older server's tables up to date and keeps their rows") {
    ServerStore s;
    CHECK(s.version() == 1);
    CHECK_FALSE(s.has_column("clock_ahead_ms"));
    REQUIRE(migrate_server_tables(s.store));
    CHECK(s.version() == kServerSchemaVersion);
    REQUIRE(s.has_column("clock_ahead_ms"));
    auto q = s.store.prepare("SELECT name, clock_ahead_ms, clock_read_at FROM device WHERE id = 'd1'");
    REQUIRE(q);
    REQUIRE(*q->step());
    CHECK(q->column_text(0) == "phone");
    CHECK(q->column_int(1) == 0);
    CHECK(q->column_int(2) == 0);
    // Step 2 -> 3's index is there: a worker's refusals are read through it.
    auto plan = s.store.prepare("EXPLAIN QUERY PLAN SELECT change_id FROM refused_change WHERE user_id = 'u1' "
                                "ORDER BY last_at DESC");
    REQUIRE(plan);
    std::string steps;
    while (*plan->step()) steps += std::string(plan->column_text(3)) + "\n";
    CHECK_THAT(steps, Catch::Contains("refused_change_by_user"));
    // Step 3 -> 4's table of workers' dated teams.
    CHECK(s.store.prepare("SELECT user_id, since, team_id FROM account_team_since").is_ok());
    // Step 4 -> 5's failed sign-ins under names, and the secret keying them, which the start makes.
    CHECK(s.store.prepare("SELECT name_key, failed_sign_ins, next_attempt_at, forgiven_at FROM sign_in_name_attempts")
              .is_ok());
    REQUIRE(create_server_tables(s.store));
    auto secret = [&] {
        auto read = s.store.prepare("SELECT count(*), min(secret) FROM sign_in_name_secret");
        REQUIRE(read);
        REQUIRE(*read->step());
        CHECK(read->column_int(0) == 1);
        const auto bytes = read->column_blob(1);
        return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
    };
    const auto made = secret();
    CHECK(made.size() == 32);
    // Started again, there is nothing to do, and the secret stays the one it was.
    REQUIRE(migrate_server_tables(s.store));
    REQUIRE(create_server_tables(s.store));
    CHECK(secret() == made);
    CHECK(s.version() == kServerSchemaVersion);
}

TEST_CASE("a phone an older build registered under the web page's device name is renamed at upgrade") {
    ServerStore s;
    auto device = [&](const std::string& id, const std::string& name) {
        REQUIRE(s.store.exec("INSERT INTO device(id, user_id, name, registered_at, last_seen_at) VALUES ('" + id +
                             "', 'u1', '" + name + "', 1, 1)"));
    };
    auto session = [&](const std::string& id, const std::string& device_id, bool web) {
        REQUIRE(s.store.exec("INSERT INTO session(id, user_id, device_id, token_hash, created_at, expires_at) "
                             "VALUES ('" + id + "', 'u1', '" + device_id + "', x'00', 1, 99)"));
        if (web) REQUIRE(s.store.exec("INSERT INTO web_session(session_id, opened_at, last_active_at) "
                                      "VALUES ('" + id + "', 1, 1)"));
    };
    device("phone", "web page");  // a phone's own session
    session("s1", "phone", false);
    device("shared", "web page");  // a phone and the page on one device
    session("s2", "shared", false);
    session("s3", "shared", true);
    device("page", "web page");  // the page's alone
    session("s4", "page", true);
    device("unused", "web page");  // no session left: nothing says it is a phone

    REQUIRE(migrate_server_tables(s.store));
    auto name_of = [&](const std::string& id) {
        auto q = s.store.prepare("SELECT name FROM device WHERE id = '" + id + "'");
        REQUIRE(q);
        REQUIRE(*q->step());
        return std::string(q->column_text(0));
    };
    CHECK(name_of("phone") == "phone (was \"web page\")");
    CHECK(name_of("shared") == "phone (was \"web page\")");
    CHECK(name_of("page") == "web page");
    CHECK(name_of("unused") == "web page");
    CHECK(name_of("d1") == "phone");
}

TEST_CASE("a failed step leaves the server's tables as they were") {
    ServerStore s;
    // Half of step 1 -> 2 already there (a hand-made change): the second statement fails, and
    // the first is undone with it.
    REQUIRE(s.store.exec("ALTER TABLE device ADD COLUMN clock_read_at INTEGER NOT NULL DEFAULT 0"));
    Status failed = migrate_server_tables(s.store);
    CHECK_FALSE(failed);
    CHECK_THAT(failed.message(), Catch::Contains("upgrading the server's tables from version 1"));
    CHECK_THAT(failed.message(), Catch::Contains("nothing was changed"));
    CHECK_FALSE(s.has_column("clock_ahead_ms"));
    CHECK(s.version() == 1);
}

TEST_CASE("tables of a newer server are refused and not written") {
    ServerStore s;
    REQUIRE(migrate_server_tables(s.store));
    REQUIRE(s.store.exec("UPDATE server_meta SET value = 99 WHERE key = 'schema_version'"));
    Status refused = migrate_server_tables(s.store);
    CHECK(refused.code() == ErrorCode::invalid_argument);
    CHECK_THAT(refused.message(), Catch::Contains("version 99, written by a newer tsunagu-server"));
    CHECK(s.version() == 99);
}
