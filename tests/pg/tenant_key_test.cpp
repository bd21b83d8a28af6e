// The tenant's data key lives in PostgreSQL only wrapped, and what it seals is unreadable there.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <thread>
#include <vector>

#include "crypto/sealed.h"
#include "pg/migrations.h"
#include "pg/tenant_key.h"
#include "pg_fixture.h"

using namespace tsunagu;
using namespace tsunagu::testing;

namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

}  // namespace

TEST_CASE("servers starting at once with the same key file share one tenant key") {
    PostgresCluster cluster;
    {
        pg::Connection c = connect_ok(cluster.conninfo());
        ok(pg::migrate(c, pg::base_migrations()).status());
    }
    const Secret kek = Secret::random(32);
    std::vector<std::string> keys(3);
    std::vector<std::thread> servers;
    for (int i = 0; i < 3; ++i) {
        servers.emplace_back([&, i] {
            auto c = pg::Connection::open(cluster.conninfo());
            if (!c) return;
            auto key = pg::tenant_data_key(*c, "osaka", kek);
            if (key) keys[static_cast<std::size_t>(i)] = hex(key->key.bytes());
        });
    }
    for (auto& t : servers) t.join();
    CHECK_FALSE(keys[0].empty());
    CHECK(keys[0] == keys[1]);
    CHECK(keys[1] == keys[2]);

    pg::Connection c = connect_ok(cluster.conninfo());
    CHECK(hex(value_ok(pg::tenant_data_key(c, "osaka", kek)).key.bytes()) == keys[0]);  // a later start
    CHECK(hex(value_ok(pg::tenant_data_key(c, "kyoto", kek)).key.bytes()) != keys[0]);  // another tenant
}

TEST_CASE("a server started with another key file is refused, and changes nothing") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(pg::migrate(c, pg::base_migrations()).status());
    const Secret kek = Secret::random(32);
    const std::string key = hex(value_ok(pg::tenant_data_key(c, "osaka", kek)).key.bytes());

    auto wrong = pg::tenant_data_key(c, "osaka", Secret::random(32));
    CHECK(wrong.status().code() == ErrorCode::wrong_key);
    CHECK_THAT(wrong.status().message(), Catch::Contains("key file"));
    CHECK(hex(value_ok(pg::tenant_data_key(c, "osaka", kek)).key.bytes()) == key);
}

TEST_CASE("a dump of the database shows neither sealed contents nor the data key") {
    PostgresCluster cluster;
    pg::Connection c = connect_ok(cluster.conninfo());
    ok(pg::migrate(c, pg::base_migrations()).status());
    const Secret kek = Secret::random(32);
    Secret key = value_ok(pg::tenant_data_key(c, "osaka", kek)).key;
    const std::string key_hex = hex(key.bytes());
    const Sealer sealer = value_ok(Sealer::with_key(std::move(key)));

    ok(c.exec("CREATE TABLE notes(id TEXT PRIMARY KEY, body BYTEA NOT NULL)"));
    const std::string marker = "MARKER-slept-badly-7f3a";
    ok(c.query("INSERT INTO notes VALUES ($1, $2)", {"rec-1", pg::Param::bytes(sealer.seal(marker, "rec-1", "body"))})
           .status());

    const std::string dump = cluster.dump("postgres");
    CHECK_THAT(dump, Catch::Contains("rec-1"));  // ids stay in clear, for indexes
    CHECK_THAT(dump, !Catch::Contains(marker));
    CHECK_THAT(dump, !Catch::Contains(hex(std::span(reinterpret_cast<const std::uint8_t*>(marker.data()), marker.size()))));
    CHECK_THAT(dump, !Catch::Contains(key_hex));

    auto rows = value_ok(c.query("SELECT body FROM notes WHERE id = 'rec-1'"));
    CHECK(value_ok(sealer.open(rows.bytes(0, 0), "rec-1", "body")) == marker);
}

