// pg::Connection against a real PostgreSQL: parameters, results, transactions, and errors that say
// what happened without quoting row values.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "pg/pg.h"
#include "pg_fixture.h"

using namespace tsunagu;
using namespace tsunagu::testing;

TEST_CASE("parameters and results round-trip text, integers, bytes and NULL") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE t(id BIGINT PRIMARY KEY, name TEXT, data BYTEA)"));
    const std::vector<std::uint8_t> bytes = {0, 1, 2, 0xff, 0, '\\', 'x'};
    const std::string name = "O'Brien; DROP TABLE t; -- 日本語";
    ok(c.query("INSERT INTO t VALUES ($1, $2, $3)", {std::int64_t{1} << 40, name, pg::Param::bytes(bytes)}).status());
    ok(c.query("INSERT INTO t VALUES ($1, $2, $3)", {-5, nullptr, nullptr}).status());

    auto rows = value_ok(c.query("SELECT id, name, data FROM t ORDER BY id"));
    REQUIRE(rows.size() == 2);
    CHECK(rows.integer(0, 0) == -5);
    CHECK(rows.is_null(0, 1));
    CHECK(rows.is_null(0, 2));
    CHECK(rows.integer(1, 0) == (std::int64_t{1} << 40));
    CHECK(rows.text(1, 1) == name);
    CHECK(rows.bytes(1, 2) == bytes);
    CHECK(value_ok(c.query("UPDATE t SET name = 'x'")).affected() == 2);
}

TEST_CASE("a rolled-back transaction leaves nothing, and a committed one stays") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE t(id INT PRIMARY KEY)"));
    Status failed = pg::with_transaction(c, [&]() -> Status {
        TSUNAGU_TRY(c.query("INSERT INTO t VALUES (1)").status());
        return Status(ErrorCode::validation, "the body refused");
    });
    CHECK(failed.code() == ErrorCode::validation);
    CHECK_FALSE(c.in_transaction());
    ok(pg::with_transaction(c, [&]() { return c.query("INSERT INTO t VALUES (2)").status(); }));
    auto rows = value_ok(c.query("SELECT id FROM t"));
    REQUIRE(rows.size() == 1);
    CHECK(rows.integer(0, 0) == 2);
}

TEST_CASE("a COMMIT that PostgreSQL turns into a rollback after a failed statement is a failure") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE t(id INT PRIMARY KEY)"));
    ok(c.begin());
    ok(c.query("INSERT INTO t VALUES (1)").status());
    CHECK_FALSE(c.query("SELECT 1 / 0").is_ok());  // aborts the whole transaction
    const Status committed = c.commit();
    CHECK(committed.code() == ErrorCode::internal);
    CHECK_THAT(committed.message(), Catch::Contains("nothing of it was written"));
    CHECK_FALSE(c.in_transaction());
    CHECK(value_ok(c.query("SELECT count(*) FROM t")).integer(0, 0) == 0);
    // A body that swallows a failed statement gets the failure from with_transaction.
    const Status swallowed = pg::with_transaction(c, [&]() -> Status {
        TSUNAGU_TRY(c.query("INSERT INTO t VALUES (2)").status());
        (void)c.query("SELECT 1 / 0");
        return Status::ok();
    });
    CHECK_FALSE(swallowed.is_ok());
    CHECK(value_ok(c.query("SELECT count(*) FROM t")).integer(0, 0) == 0);
}

TEST_CASE("errors carry PostgreSQL's message and SQLSTATE but never the row's values") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE t(name TEXT PRIMARY KEY)"));
    ok(c.query("INSERT INTO t VALUES ($1)", {"secret-marker"}).status());

    auto duplicate = c.query("INSERT INTO t VALUES ($1)", {"secret-marker"});
    CHECK(duplicate.status().code() == ErrorCode::already_exists);
    CHECK_THAT(duplicate.status().message(), Catch::Contains("23505"));
    CHECK_THAT(duplicate.status().message(), !Catch::Contains("secret-marker"));

    auto syntax = c.query("SELEC 1");
    CHECK(syntax.status().code() == ErrorCode::internal);
    CHECK_THAT(syntax.status().message(), Catch::Contains("syntax error"));
    // The connection is still usable after a failed statement outside a transaction.
    CHECK(value_ok(c.query("SELECT 1")).integer(0, 0) == 1);
}

TEST_CASE("an unreachable PostgreSQL is a clear 'unavailable', and a server gone mid-session too") {
    PostgresCluster cluster;
    auto nowhere = pg::Connection::open("host=/nonexistent-dir dbname=x connect_timeout=2");
    CHECK(nowhere.status().code() == ErrorCode::unavailable);
    CHECK_THAT(nowhere.status().message(), Catch::Contains("--postgres"));

    pg::Connection c = connect_ok(cluster.conninfo());
    cluster.stop();  // immediate: as if the database machine crashed
    auto lost = c.query("SELECT 1");
    CHECK(lost.status().code() == ErrorCode::unavailable);
    CHECK_FALSE(c.healthy());
}

TEST_CASE("a statement run again and again is prepared once, answers as query() does, and survives a change of schema") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE t(id BIGINT PRIMARY KEY, name TEXT, data BYTEA)"));
    const std::string insert = "INSERT INTO t VALUES ($1, $2, $3)";
    const std::vector<std::uint8_t> bytes = {0, 1, 0xff, '\\'};
    for (int i = 0; i < 5; ++i) {
        ok(c.query_prepared(insert, {i, "name " + std::to_string(i), i % 2 ? pg::Param::bytes(bytes) : pg::Param(nullptr)})
               .status());
    }
    const std::string select = "SELECT * FROM t WHERE id >= $1 ORDER BY id";
    auto rows = value_ok(c.query_prepared(select, {3}));
    REQUIRE(rows.size() == 2);
    CHECK(rows.text(0, 1) == "name 3");
    CHECK(rows.bytes(0, 2) == bytes);
    CHECK(rows.is_null(1, 2));
    // Two statements, each parsed once, for six runs.
    CHECK(value_ok(c.query("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'tsunagu_%'")).integer(0, 0) == 2);

    // Errors as query() says them: the duplicate key, never the values.
    auto duplicate = c.query_prepared(insert, {1, "MARKER-secret", nullptr});
    CHECK(duplicate.status().code() == ErrorCode::already_exists);
    CHECK(duplicate.status().message().find("MARKER") == std::string::npos);

    // A column added under the prepared SELECT *: that run fails, the next is prepared anew.
    ok(c.exec("ALTER TABLE t ADD COLUMN note TEXT"));
    auto stale = c.query_prepared(select, {0});
    if (!stale) {
        CHECK_THAT(stale.status().message(), Catch::Contains("SQLSTATE 0A000"));
        rows = value_ok(c.query_prepared(select, {0}));
    } else {
        rows = std::move(*stale);
    }
    CHECK(rows.size() == 5);
    CHECK(rows.columns() == 4);
}

TEST_CASE("a text value holding a NUL is refused before it is sent rather than stored cut short") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(c.exec("CREATE TABLE named(name text)"));
    ok(c.exec("BEGIN"));
    const std::string with_nul("bob\0x", 5);
    auto refused = c.query("INSERT INTO named(name) VALUES($1)", {pg::Param(with_nul)});
    CHECK(refused.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(refused.status().message(), Catch::Contains("NUL"));
    auto refused_prepared = c.query_prepared("INSERT INTO named(name) VALUES($1)", {pg::Param(with_nul)});
    CHECK(refused_prepared.status().code() == ErrorCode::invalid_argument);
    // Nothing reached PostgreSQL: the transaction goes on.
    ok(c.query("INSERT INTO named(name) VALUES($1)", {pg::Param(std::string("bob"))}).status());
    ok(c.exec("COMMIT"));
    CHECK(value_ok(c.query("SELECT count(*) FROM named")).text(0, 0) == "1");
    CHECK(c.healthy());
}

TEST_CASE("a connection keeps answered commits durable and sets limits only where nothing did") {
    PostgresCluster cluster;
    {
        pg::Connection admin = connect_ok(cluster.conninfo());
        // A throughput tip a database administrator may have followed.
        ok(admin.exec("ALTER DATABASE postgres SET synchronous_commit = off"));
    }
    pg::Connection c = connect_ok(cluster.conninfo());
    auto setting = [&](pg::Connection& on, const char* name) {
        return std::string(value_ok(on.query(std::string("SHOW ") + name)).text(0, 0));
    };
    CHECK(setting(c, "synchronous_commit") == "on");
    CHECK(setting(c, "lock_timeout") == "15s");
    CHECK(setting(c, "idle_in_transaction_session_timeout") == "1min");

    // What the connection string says is kept, as is a durable level the database chose.
    pg::Connection told = connect_ok(cluster.conninfo() + " options='-c lock_timeout=2s -c synchronous_commit=local'");
    CHECK(setting(told, "lock_timeout") == "2s");
    CHECK(setting(told, "synchronous_commit") == "local");
}

TEST_CASE("a writer behind a peer that stalled holding a lock fails as busy and the stalled peer is ended") {
    PostgresCluster cluster;
    // A peer (another server) takes the writers' lock and then stalls, idle in its transaction.
    pg::Connection stalled = connect_ok(cluster.conninfo() + " options='-c idle_in_transaction_session_timeout=2s'");
    ok(stalled.exec("BEGIN"));
    ok(stalled.query("SELECT pg_advisory_xact_lock(7)").status());

    pg::Connection writer = connect_ok(cluster.conninfo() + " options='-c lock_timeout=500ms'");
    ok(writer.exec("BEGIN"));
    const auto started = std::chrono::steady_clock::now();
    auto waited = writer.query("SELECT pg_advisory_xact_lock(7)");
    CHECK(waited.status().code() == ErrorCode::busy);
    CHECK_THAT(waited.status().message(), Catch::Contains("55P03"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
    // Waiting too long broke nothing: the connection is kept, not thrown away and opened anew.
    CHECK(writer.healthy());
    ok(writer.exec("ROLLBACK"));

    // PostgreSQL ends the stalled session (after its 2 s), which lets the lock go; the peer hears
    // it was ended.
    const std::string stalled_pid(value_ok(stalled.query("SELECT pg_backend_pid()::text")).text(0, 0));
    bool ended = false;
    for (int i = 0; i < 200 && !ended; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ended = value_ok(writer.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {stalled_pid}))
                    .integer(0, 0) == 0;
    }
    REQUIRE(ended);
    ok(writer.exec("BEGIN"));
    ok(writer.query("SELECT pg_advisory_xact_lock(7)").status());
    ok(writer.exec("COMMIT"));
    CHECK(stalled.query("SELECT 1").status().code() == ErrorCode::unavailable);
}

TEST_CASE("a connection string is taken as verified when it stays on this machine or asks libpq to check the certificate") {
    for (const char* local : {"host=/run/postgresql dbname=tsunagu", "dbname=tsunagu", "host=localhost dbname=x",
                              "postgresql://127.0.0.1/x", "host=127.4.5.6", "host=::1", "host=db.internal sslmode=verify-full",
                              "postgresql://db.internal/x?sslmode=verify-ca", "not a connection string"}) {
        INFO(local);
        CHECK(pg::conninfo_unverified_host(local).empty());
    }
    CHECK(pg::conninfo_unverified_host("host=db.internal dbname=tsunagu") == "db.internal");
    CHECK(pg::conninfo_unverified_host("host=db.internal sslmode=require") == "db.internal");
    CHECK(pg::conninfo_unverified_host("host=/run/postgresql,10.0.0.5") == "10.0.0.5");
    CHECK(pg::conninfo_unverified_host("hostaddr=192.168.1.9 dbname=x") == "192.168.1.9");
    CHECK(pg::conninfo_unverified_host("postgresql://db.internal:5433/tsunagu") == "db.internal");
    // A name that only begins like a loopback address may be anywhere.
    CHECK(pg::conninfo_unverified_host("host=127.db.example.org") == "127.db.example.org");
}

TEST_CASE("what libpq takes from its environment counts as the connection string's own") {
    ::setenv("PGHOST", "db.internal", 1);
    CHECK(pg::conninfo_unverified_host("dbname=tsunagu") == "db.internal");
    CHECK(pg::conninfo_unverified_host("host=/run/postgresql dbname=tsunagu").empty());  // the string's wins
    ::setenv("PGSSLMODE", "verify-full", 1);
    CHECK(pg::conninfo_unverified_host("dbname=tsunagu").empty());
    ::unsetenv("PGSSLMODE");
    ::unsetenv("PGHOST");
    CHECK(pg::conninfo_unverified_host("service=tsunagu") == "the host of service tsunagu");
    ::setenv("PGSERVICE", "tsunagu", 1);
    CHECK(pg::conninfo_unverified_host("dbname=tsunagu") == "the host of service tsunagu");
    CHECK(pg::conninfo_unverified_host("dbname=tsunagu sslmode=verify-ca").empty());
    ::unsetenv("PGSERVICE");
}
