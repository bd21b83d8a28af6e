// The group commit on PostgreSQL, where a failed statement aborts the whole transaction (SQLite
// fails only the statement): one request's failure never costs its group's other writes, nobody
// hears "done" for writes that were not kept, and a group outlives the loss of its connection.
// (Catch2's assertions are not thread-safe: request threads record, the test thread checks.)
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/src/commit_group.h"
#include "pg/pg.h"
#include "pg/pg_store.h"
#include "support/postgres_cluster.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;
using namespace std::chrono_literals;

namespace {

// A group over a tenant of a fresh PostgreSQL cluster, holding teams and their members.
struct PgGroupFixture {
    testing::PostgresCluster cluster;
    KeySource kek = testing::test_key();
    pg::PgStoreOptions options = prepare();
    ConnectionPool pool{[this](ConnectionPool::Use) -> Result<std::unique_ptr<ServerConnection>> {
        auto store = pg::open_store(options);
        if (!store) return store.status();
        return std::make_unique<ServerConnection>(std::move(*store));
    }};
    CommitGroup group{pool};

    pg::PgStoreOptions prepare() {
        auto prepared = pg::prepare_database(cluster.conninfo(), "t", kek.material(), [](Store& store) {
            return store.exec(
                "CREATE TABLE IF NOT EXISTS team(id TEXT PRIMARY KEY);"
                "CREATE TABLE IF NOT EXISTS member(name TEXT PRIMARY KEY, team_id TEXT REFERENCES team(id));"
                "INSERT INTO team(id) VALUES ('kita') ON CONFLICT DO NOTHING");
        });
        INFO(prepared.status().to_string());
        REQUIRE(prepared.is_ok());
        return std::move(*prepared);
    }

    static Status add(ServerConnection& c, const std::string& name, const std::string& team = "kita") {
        return c.store.cached("INSERT INTO member(name, team_id) VALUES (?1, ?2)").bind(1, name).bind(2, team).run();
    }

    // What another connection (another server) reads.
    std::set<std::string> durable_names() {
        std::set<std::string> names;
        auto c = pg::Connection::open(cluster.conninfo());
        REQUIRE(c.is_ok());
        auto rows = c->query("SELECT name FROM member");
        REQUIRE(rows.is_ok());
        for (int r = 0; r < rows->size(); ++r) names.emplace(rows->text(r, 0));
        return names;
    }
};

// A request leading a group (it added "leader") that holds it open until finish().
struct BlockedLeader {
    std::atomic<bool> leading{false}, release{false};
    std::thread thread;
    explicit BlockedLeader(PgGroupFixture& f)
        : thread([this, &f] {
              (void)f.group.run([this](ServerConnection& c) {
                  (void)PgGroupFixture::add(c, "leader");
                  leading = true;
                  while (!release) std::this_thread::sleep_for(1ms);
                  return HttpResponse{};
              });
          }) {
        while (!leading) std::this_thread::sleep_for(1ms);
    }
    void finish() {
        release = true;
        thread.join();
    }
    ~BlockedLeader() {
        if (thread.joinable()) finish();
    }
};

}  // namespace

TEST_CASE("on PostgreSQL a request whose failed statement aborted the transaction is answered 500 and its group's other writes are kept") {
    PgGroupFixture f;
    BlockedLeader leader(f);
    // Queued in this order behind the leader, so that all run in its next group: a request that
    // meets a foreign key outside a savepoint of its own and answers 4xx (as it would on SQLite),
    // then requests that write.
    std::vector<int> answers(4, 0);
    std::vector<std::thread> requests;
    requests.emplace_back([&] {
        answers[0] = f.group
                         .run([](ServerConnection& c) {
                             const Status refused = PgGroupFixture::add(c, "stray", "no-such-team");
                             return refused ? HttpResponse{} : HttpResponse::error(409, "conflict", "no such team");
                         })
                         .status;
    });
    // Each waits in the queue before the next is sent, so that the order is the one above.
    const auto queued = [&](std::size_t n) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (f.group.waiting() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        return f.group.waiting() >= n;
    };
    CHECK(queued(1));
    for (int i = 1; i < 4; ++i) {
        requests.emplace_back([&, i] {
            const Status written =
                f.group.write([i](ServerConnection& c) { return PgGroupFixture::add(c, "visit-" + std::to_string(i)); });
            answers[static_cast<std::size_t>(i)] = written ? 200 : 500;
        });
        CHECK(queued(static_cast<std::size_t>(i) + 1));
    }
    leader.finish();
    for (auto& t : requests) t.join();
    CHECK(f.group.commits() == 2);  // the leader's group, then the four in one

    CHECK(answers[0] == 500);  // its writes were undone: never "done", never a 4xx that hides that
    CHECK(answers == std::vector<int>{500, 200, 200, 200});
    CHECK(f.durable_names() == std::set<std::string>{"leader", "visit-1", "visit-2", "visit-3"});
    CHECK_FALSE(f.group.failing().has_value());
}

TEST_CASE("on PostgreSQL the group and the pool connect anew after the database ended their sessions") {
    PgGroupFixture f;
    REQUIRE(f.group.write([](ServerConnection& c) { return PgGroupFixture::add(c, "before"); }));
    auto read = [&]() -> Status {
        auto lease = f.pool.borrow();
        TSUNAGU_TRY(lease);
        Statement& q = (*lease)->store.cached("SELECT count(*) FROM member");
        auto row = q.step();
        q.reset();
        return row.status();
    };
    REQUIRE(read());

    // As a restart of PostgreSQL, or an administrator, ends every session (waiting until they end).
    auto admin = pg::Connection::open(f.cluster.conninfo());
    REQUIRE(admin.is_ok());
    auto ended = admin->query("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                              " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    REQUIRE(ended.is_ok());
    REQUIRE(ended->integer(0, 0) >= 2);  // the group's connection and the pool's

    // The next write is taken at once, on a new connection; a read fails at most once.
    const Status written = f.group.write([](ServerConnection& c) { return PgGroupFixture::add(c, "after"); });
    INFO(written.to_string());
    CHECK(written.is_ok());
    CHECK((read() || read()));
    CHECK(read());
    CHECK(f.durable_names() == std::set<std::string>{"before", "after"});
    CHECK_FALSE(f.group.failing().has_value());
}
