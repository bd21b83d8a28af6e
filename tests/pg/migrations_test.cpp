// Versioned migrations: applied once, in order, even by several servers starting together.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "pg/migrations.h"
#include "pg_fixture.h"

using namespace tsunagu;
using namespace tsunagu::testing;

namespace {

std::vector<pg::Migration> app_migrations() {
    auto list = pg::base_migrations();
    // Not idempotent on purpose: running one twice would fail.
    list.push_back({2, "notes", "CREATE TABLE notes(id BIGINT PRIMARY KEY)"});
    list.push_back({3, "notes get a body", "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''"});
    return list;
}

}  // namespace

TEST_CASE("migrations bring an empty database to the newest version, and a second run does nothing") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    CHECK(value_ok(pg::schema_version(c)) == 0);
    const auto list = app_migrations();
    CHECK(value_ok(pg::migrate(c, list)) == 3);
    CHECK(value_ok(pg::schema_version(c)) == 3);
    CHECK(value_ok(pg::migrate(c, list)) == 0);
    ok(c.query("INSERT INTO notes(id, body) VALUES (1, 'x')").status());
}

TEST_CASE("three servers starting at once apply each migration exactly once") {
    PostgresCluster cluster;
    const auto list = app_migrations();
    std::atomic<int> applied{0}, failures{0};
    std::vector<std::thread> servers;
    for (int i = 0; i < 3; ++i) {
        servers.emplace_back([&] {
            auto c = pg::Connection::open(cluster.conninfo());
            if (!c) {
                ++failures;
                return;
            }
            auto n = pg::migrate(*c, list);
            if (n) applied += *n; else ++failures;
        });
    }
    for (auto& t : servers) t.join();
    CHECK(failures == 0);
    CHECK(applied == 3);
    pg::Connection c = connect_ok(cluster.conninfo());
    CHECK(value_ok(c.query("SELECT count(*) FROM tsunagu_schema_versions")).integer(0, 0) == 3);
}

TEST_CASE("a failing migration leaves the database at the version before it, and says which failed") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    auto list = app_migrations();
    list.push_back({4, "a broken one", "CREATE TABLE half(id INT); ALTER TABLE nowhere ADD COLUMN x INT"});
    auto outcome = pg::migrate(c, list);
    REQUIRE_FALSE(outcome.is_ok());
    CHECK_THAT(outcome.status().message(), Catch::Contains("migration 4 (a broken one)") &&
                                               Catch::Contains("stays at version 3"));
    CHECK(value_ok(pg::schema_version(c)) == 3);
    // Its first statement was rolled back with it.
    CHECK(value_ok(c.query("SELECT to_regclass('half') IS NULL")).text(0, 0) == "t");
}

TEST_CASE("a server older than the database's schema refuses to start on it") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    auto list = app_migrations();
    ok(pg::migrate(c, list).status());
    list.pop_back();
    auto older = pg::migrate(c, list);
    CHECK(older.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(older.status().message(), Catch::Contains("upgrade this server"));
}
