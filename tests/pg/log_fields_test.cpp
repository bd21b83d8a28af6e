// The change log's field lists on PostgreSQL (sync_log.fields): sealed like record contents, so a
// database administrator cannot tell which fields of whose record changed when; still what a
// record's history shows; migrated from the clear lists older servers left; resealed by a key
// rotation; refused when moved to another line.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "crypto/sealed.h"
#include "pg/pg_store.h"
#include "pg/tenant_key.h"
#include "pg_fixture.h"
#include "sync/engine.h"
#include "sync/sync_fixture.h"

using namespace tsunagu;
using namespace tsunagu::testing;

namespace {

// Field names of the test schema's client records, none made only of hex digits.
const std::vector<std::string> kFieldNames = {"name", "area", "notes"};

Status open_engine(Store& store) {
    auto upstream = sync::Upstream::open(store, sync::testing::test_schema());
    TSUNAGU_TRY(upstream);
    return upstream->set_scope("worker", {"*"});
}

pg::PgStoreOptions start_server(PostgresCluster& cluster, const Secret& kek) {
    return value_ok(pg::prepare_database(cluster.conninfo(), "t", kek, open_engine));
}

sync::Device device_on(Store& store) {
    sync::DeviceOptions options;
    options.user = "worker";
    return value_ok(sync::Device::open(store, sync::testing::test_schema(), options));
}

// A client record whose notes two phones of its worker edited offline (a conflict), and whose
// area one of them changed: three change sets in the log, with these field lists.
struct Synced {
    TempDir dir{"tsunagu-pg-log"};
    PostgresCluster cluster;
    const Secret kek = Secret::random(32);
    pg::PgStoreOptions database = start_server(cluster, kek);
    Store server = value_ok(pg::open_store(database));
    sync::Upstream upstream = value_ok(sync::Upstream::open(server, sync::testing::test_schema()));
    Store phone_a_store = sync::testing::open_store(dir.file("a.db"));
    Store phone_b_store = sync::testing::open_store(dir.file("b.db"));
    sync::Device phone_a = device_on(phone_a_store);
    sync::Device phone_b = device_on(phone_b_store);
    std::string client;
    const std::vector<std::vector<std::string>> field_lists = {{"area", "name"}, {"notes"}, {"area", "notes"}};

    Synced() {
        client = value_ok(phone_a.create("client", {{"name", "Aiko"}, {"area", "north"}}));
        sync::testing::sync(phone_a, upstream);
        sync::testing::sync(phone_b, upstream);
        ok(phone_a.update(client, {{"notes", "slept badly"}}));
        ok(phone_b.update(client, {{"notes", "anxious about rent"}, {"area", "south"}}));
        sync::testing::sync(phone_a, upstream);
        sync::testing::sync(phone_b, upstream);
    }

    // The field lists of the record's history, oldest first, as the engine reads them.
    std::vector<std::vector<std::string>> history(sync::Upstream& reader) {
        std::vector<std::vector<std::string>> out;
        for (const auto& entry : value_ok(reader.history(client))) out.push_back(entry.fields);
        return out;
    }
};

// What a database administrator reads with the plain query `sql`: its one column of each row as
// PostgreSQL prints it (clear text, or bytea's \x... hex).
std::vector<std::string> as_stored(pg::Connection& c, const std::string& sql) {
    std::vector<std::string> out;
    auto rows = value_ok(c.query(sql));
    for (int r = 0; r < rows.size(); ++r) out.emplace_back(rows.text(r, 0));
    return out;
}

// The change log's field lists (sync_log.fields), as stored.
std::vector<std::string> log_fields_as_stored(pg::Connection& c) {
    return as_stored(c, "SELECT fields FROM sync_log WHERE fields IS NOT NULL ORDER BY seq");
}

bool names_a_field(const std::vector<std::string>& stored) {
    for (const auto& value : stored)
        for (const auto& name : kFieldNames)
            if (value.find(name) != std::string::npos) return true;
    return false;
}

std::string column_type(pg::Connection& c) {
    return std::string(value_ok(c.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                                        " 'sync_log'::regclass AND attname = 'fields'"))
                           .text(0, 0));
}

std::int64_t schema_version(pg::Connection& c) {
    return value_ok(c.query("SELECT max(version) FROM tsunagu_schema_versions")).integer(0, 0);
}

// Each record's change list (sync_records.log), as stored.
std::vector<std::string> change_lists_as_stored(pg::Connection& c) {
    return as_stored(c, "SELECT log FROM sync_records WHERE log IS NOT NULL");
}

// "notes" as bytea's hex prints it.
bool names_notes_in_hex(const std::vector<std::string>& stored) {
    for (const auto& value : stored)
        if (value.find("6e6f746573") != std::string::npos) return true;
    return false;
}

// An edit of the client's notes made after a change set the server never received (refused,
// then given up on its phone): until that one arrives, the record's change list keeps the field
// it set, by name.
void edit_after_one_never_received(Synced& db) {
    sync::ChangeSet c;
    c.id = sync::new_id();
    c.collection = "client";
    c.record = db.client;
    c.hlc = sync::Hlc{std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count(), 0};
    c.replica = db.phone_a.replica_id();
    c.user = "worker";
    c.schema_version = sync::testing::test_schema().version;
    c.set = {{"notes", "after one never received"}};
    c.base["notes"] = {sync::new_id()};
    sync::PushBatch batch;
    batch.replica = c.replica;
    batch.user = c.user;
    batch.changes = {c};
    const sync::PushResult pushed = value_ok(db.upstream.push(batch));
    REQUIRE(pushed.outcomes.size() == 1);
    REQUIRE(pushed.outcomes[0].status == sync::PushStatus::accepted);
}

// Turns each record's change list (sync_records.log) back into the clear form servers before
// schema version 4 left, and the database back to version 3.
void records_log_as_version_3_left_it(pg::Connection& c, const Sealer& sealer) {
    {
        std::vector<std::pair<std::string, std::string>> lists;  // (record id, clear change list)
        auto rows = value_ok(c.query("SELECT id, log FROM sync_records WHERE log IS NOT NULL"));
        for (int r = 0; r < rows.size(); ++r) {
            const auto id = rows.bytes(r, 0);
            const std::string record(id.begin(), id.end());
            lists.emplace_back(record, value_ok(sealer.open(rows.bytes(r, 1), record, "log")));
        }
        ok(c.exec("ALTER TABLE sync_records DROP CONSTRAINT IF EXISTS sync_records_log_sealed"));
        for (const auto& [record, list] : lists) {
            const auto as_bytes = [](const std::string& s) {
                return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
            };
            ok(c.query("UPDATE sync_records SET log = $2 WHERE id = $1",
                       {pg::Param::bytes(as_bytes(record)), pg::Param::bytes(as_bytes(list))})
                   .status());
        }
    }
    ok(c.exec("DELETE FROM tsunagu_schema_versions WHERE version > 3"));
}

// Turns the database back into what servers before schema version 3 left: sync_log.fields TEXT,
// each field list in clear, and each record's change list (sync_records.log) in clear; versions
// 1 and 2 applied. (A database this version never sealed is left as it is.)
void as_older_servers_left_it(pg::Connection& c, const Secret& kek) {
    if (column_type(c) == "text") return;
    const Sealer sealer = value_ok(Sealer::with_key(value_ok(pg::tenant_data_key(c, "t", kek)).key));
    records_log_as_version_3_left_it(c, sealer);
    std::map<std::string, std::string> clear;
    auto rows = value_ok(c.query("SELECT seq::text, fields FROM sync_log WHERE fields IS NOT NULL"));
    for (int r = 0; r < rows.size(); ++r) {
        const std::string seq(rows.text(r, 0));
        clear[seq] = value_ok(sealer.open(rows.bytes(r, 1), seq, "fields"));
    }
    ok(c.exec("ALTER TABLE sync_log DROP CONSTRAINT IF EXISTS sync_log_fields_sealed;"
              "ALTER TABLE sync_log ALTER COLUMN fields TYPE TEXT USING NULL;"
              "DELETE FROM tsunagu_schema_versions WHERE version > 2"));
    for (const auto& [seq, fields] : clear)
        ok(c.query("UPDATE sync_log SET fields = $2 WHERE seq = $1::bigint", {seq, fields}).status());
}

}  // namespace

TEST_CASE("on PostgreSQL the change log names no field in clear and pulls and history are as before") {
    Synced db;
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    const auto stored = log_fields_as_stored(dba);
    REQUIRE(stored.size() == 3);
    CHECK_FALSE(names_a_field(stored));
    CHECK(column_type(dba) == "bytea");

    // A third phone pulls the field-level merge: the area from one phone, the notes in conflict.
    Store reader_store = sync::testing::open_store(db.dir.file("reader.db"));
    sync::Device reader = device_on(reader_store);
    sync::testing::pull_all(reader, db.upstream);
    const auto record = value_ok(reader.get(db.client));
    REQUIRE(record.has_value());
    CHECK(record->fields["name"] == "Aiko");
    CHECK(record->fields["area"] == "south");
    REQUIRE(record->conflicts.size() == 1);
    CHECK(record->conflicts[0].field == "notes");

    // The record's history still says which fields each change set, on a server started anew.
    Store restarted = value_ok(pg::open_store(start_server(db.cluster, db.kek)));
    sync::Upstream upstream = value_ok(sync::Upstream::open(restarted, sync::testing::test_schema()));
    CHECK(db.history(upstream) == db.field_lists);
}

TEST_CASE("a field list moved to another line of the change log is refused as tampering") {
    Synced db;
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    // The first line's list (area, name) put on the second line (notes), as a DBA could.
    ok(dba.exec("UPDATE sync_log SET fields = (SELECT fields FROM sync_log WHERE seq = 1) WHERE seq = 2"));
    auto history = db.upstream.history(db.client);
    CHECK(history.status().code() == ErrorCode::corrupt);
    CHECK_THAT(history.status().message(), Catch::Contains("sync_log") && Catch::Contains("moved from another row"));
    // A key rotation refuses it too, naming the column and changing nothing.
    auto rotated = pg::reseal_tenant(dba, "t", db.kek, Secret::random(32));
    CHECK(rotated.status().code() == ErrorCode::corrupt);
    CHECK_THAT(rotated.status().message(), Catch::Contains("sync_log.fields"));
    ok(pg::tenant_data_key(dba, "t", db.kek).status());
}

TEST_CASE("a database whose change log older servers left in clear is sealed at start and serves its history") {
    Synced db;
    edit_after_one_never_received(db);
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    CHECK_FALSE(names_notes_in_hex(change_lists_as_stored(dba)));
    as_older_servers_left_it(dba, db.kek);
    REQUIRE(column_type(dba) == "text");
    REQUIRE(names_a_field(log_fields_as_stored(dba)));
    REQUIRE(names_notes_in_hex(change_lists_as_stored(dba)));

    Store started = value_ok(pg::open_store(start_server(db.cluster, db.kek)));
    CHECK(schema_version(dba) == 4);
    CHECK_FALSE(names_notes_in_hex(change_lists_as_stored(dba)));
    CHECK(column_type(dba) == "bytea");
    CHECK(log_fields_as_stored(dba).size() == 4);
    CHECK_FALSE(names_a_field(log_fields_as_stored(dba)));
    sync::Upstream upstream = value_ok(sync::Upstream::open(started, sync::testing::test_schema()));
    auto field_lists = db.field_lists;
    field_lists.push_back({"notes"});
    CHECK(db.history(upstream) == field_lists);

    // New lines are sealed as the migrated ones; and a server of the previous version, still
    // running, cannot write a list in clear among them.
    ok(db.phone_a.update(db.client, {{"notes", "better this week"}}));
    sync::testing::sync(db.phone_a, upstream);
    CHECK(db.history(upstream).back() == std::vector<std::string>{"notes"});
    CHECK_FALSE(names_a_field(log_fields_as_stored(dba)));
    CHECK_FALSE(names_notes_in_hex(change_lists_as_stored(dba)));
    const Status clear_line =
        dba.query("INSERT INTO sync_log(seq, rid, kind, fields, scope_key) VALUES (99, 1, 1, 'notes', 'k')").status();
    CHECK_THAT(clear_line.message(), Catch::Contains("sync_log_fields_sealed"));
    const Status clear_list = dba.query("UPDATE sync_records SET log = '\\x0a6e6f746573'::bytea").status();
    CHECK_THAT(clear_list.message(), Catch::Contains("sync_records_log_sealed"));
}

TEST_CASE("a key rotation seals the change log's field lists anew under the new data key") {
    Synced db;
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    const auto before = log_fields_as_stored(dba);
    const Secret new_kek = Secret::random(32);
    const pg::Resealed done = value_ok(pg::reseal_tenant(dba, "t", db.kek, new_kek));
    CHECK(done.rows == 1 + 3);     // the record, and its three log lines
    CHECK(done.values == 3 + 3);   // its fields, meta and change list, and each line's field list
    const auto after = log_fields_as_stored(dba);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] != before[i]);
    CHECK_FALSE(names_a_field(after));

    Store restarted = value_ok(pg::open_store(start_server(db.cluster, new_kek)));
    sync::Upstream upstream = value_ok(sync::Upstream::open(restarted, sync::testing::test_schema()));
    CHECK(db.history(upstream) == db.field_lists);
}

TEST_CASE("a key rotation is refused while older servers' clear field lists are unsealed") {
    Synced db;
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    as_older_servers_left_it(dba, db.kek);
    const auto before = log_fields_as_stored(dba);
    auto rotated = pg::reseal_tenant(dba, "t", db.kek, Secret::random(32));
    CHECK(rotated.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(rotated.status().message(), Catch::Contains("sync_log.fields is still in clear") &&
                                               Catch::Contains("start one tsunagu-server of this version") &&
                                               Catch::Contains("nothing was changed"));
    CHECK(log_fields_as_stored(dba) == before);
    ok(pg::tenant_data_key(dba, "t", db.kek).status());
}

TEST_CASE("a key rotation is refused while older servers' clear change lists of records are unsealed") {
    Synced db;
    edit_after_one_never_received(db);
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    const Sealer sealer = value_ok(Sealer::with_key(value_ok(pg::tenant_data_key(dba, "t", db.kek)).key));
    records_log_as_version_3_left_it(dba, sealer);  // field lists sealed, change lists not
    const auto before = change_lists_as_stored(dba);
    REQUIRE(names_notes_in_hex(before));
    auto rotated = pg::reseal_tenant(dba, "t", db.kek, Secret::random(32));
    CHECK(rotated.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(rotated.status().message(), Catch::Contains("sync_records.log is still in clear") &&
                                               Catch::Contains("nothing was changed"));
    CHECK(change_lists_as_stored(dba) == before);
    // A server of this version seals them as it starts; the rotation then goes ahead.
    Store started = value_ok(pg::open_store(start_server(db.cluster, db.kek)));
    CHECK_FALSE(names_notes_in_hex(change_lists_as_stored(dba)));
    ok(pg::reseal_tenant(dba, "t", db.kek, Secret::random(32)).status());
}

TEST_CASE("a start killed while it seals an old change log (SIGKILL) left it all in clear and the next start seals it all") {
    Synced db;
    pg::Connection dba = connect_ok(db.cluster.conninfo());
    as_older_servers_left_it(dba, db.kek);
    // A long log from before: lines enough for the sealing to be caught part way.
    ok(dba.exec("INSERT INTO sync_log(seq, rid, kind, fields, scope_key) SELECT g, 1, 1, 'notes,area', 'k'"
                " FROM generate_series(100, 40000) AS g"));
    const auto before = log_fields_as_stored(dba);

    const pid_t server = ::fork();
    REQUIRE(server >= 0);
    if (server == 0) {
        auto started = pg::prepare_database(db.cluster.conninfo(), "t", db.kek, open_engine);
        ::_exit(started.is_ok() ? 0 : 1);
    }
    bool sealing = false;  // its UPDATEs show in pg_stat_activity
    for (int i = 0; i < 5000 && !sealing; ++i) {
        auto active = value_ok(dba.query("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                         "AND query LIKE 'UPDATE \"sync_log\"%'"));
        sealing = active.integer(0, 0) > 0;
        if (!sealing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(sealing);
    ::kill(server, SIGKILL);
    int status = 0;
    ::waitpid(server, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    // PostgreSQL rolls the dead client's transaction back once it sees the connection gone (the
    // test's own server connection stays, idle).
    for (int i = 0; i < 1000; ++i) {
        auto others = value_ok(dba.query("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                         "AND backend_type = 'client backend' AND state <> 'idle'"));
        if (others.integer(0, 0) == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(schema_version(dba) == 2);
    CHECK(column_type(dba) == "text");
    CHECK(log_fields_as_stored(dba) == before);

    Store started = value_ok(pg::open_store(start_server(db.cluster, db.kek)));
    CHECK(schema_version(dba) == 4);
    const auto sealed = log_fields_as_stored(dba);
    CHECK(sealed.size() == before.size());
    CHECK_FALSE(names_a_field(sealed));
    sync::Upstream upstream = value_ok(sync::Upstream::open(started, sync::testing::test_schema()));
    CHECK(db.history(upstream) == db.field_lists);
}
