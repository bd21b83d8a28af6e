// The server's group commit: writing requests that arrive together share one transaction and one
// commit to disk, each in a savepoint of its own, and each is answered only once it is durable.
// (Catch2's assertions are not thread-safe: the request threads count, the test thread checks.)
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/src/commit_group.h"
#include "api/src/observability.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

// A pool over one real encrypted store holding one table of written names.
struct GroupFixture {
    testing::TempDir dir{"tsunagu-commit-group"};
    std::string path = dir.file("server.db");
    ConnectionPool pool{[this](ConnectionPool::Use) -> Result<std::unique_ptr<ServerConnection>> {
        auto store = Store::open(path, testing::test_key());
        if (!store) return store.status();
        return std::make_unique<ServerConnection>(std::move(*store));
    }};
    CommitGroup group{pool};

    GroupFixture() {
        auto lease = pool.borrow();
        REQUIRE(lease);
        REQUIRE((*lease)->store.exec("CREATE TABLE written(name TEXT PRIMARY KEY)"));
    }

    static Status insert(ServerConnection& c, const std::string& name) {
        return c.store.cached("INSERT INTO written(name) VALUES (?1)").bind(1, name).run();
    }

    // What a fresh connection (another process, after a restart) reads.
    std::set<std::string> durable_names() {
        auto store = Store::open(path, testing::test_key());
        std::set<std::string> names;
        if (!store) return names;
        Statement& q = store->cached("SELECT name FROM written");
        while (*q.step()) names.emplace(q.column_text(0));
        q.reset();
        return names;
    }
};

// A request leading a group (it wrote "request") that holds it open until finish().
struct BlockedLeader {
    std::atomic<bool> leading{false}, release{false};
    std::thread thread;
    explicit BlockedLeader(GroupFixture& f)
        : thread([this, &f] {
              (void)f.group.run([this](ServerConnection& c) {
                  (void)GroupFixture::insert(c, "request");
                  leading = true;
                  while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                  return HttpResponse{};
              });
          }) {
        while (!leading) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    void finish() {
        release = true;
        thread.join();
    }
    ~BlockedLeader() {
        if (thread.joinable()) finish();
    }
};

// Waits (10 s at most) until `n` pieces of work wait for the next group; false if they never do.
bool wait_for_waiting(const GroupFixture& f, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (f.group.waiting() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return f.group.waiting() >= n;
}

}  // namespace

TEST_CASE("writing requests that arrive together share one commit, and each is answered after it") {
    GroupFixture f;
    constexpr int kRequests = 24;
    std::atomic<int> answered_before_durable{0}, failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kRequests; ++i) {
        threads.emplace_back([&, i] {
            const std::string name = "request-" + std::to_string(i);
            HttpResponse answer = f.group.run([&](ServerConnection& c) {
                if (!GroupFixture::insert(c, name)) ++failed;
                // Long enough for others to queue behind this group.
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                return HttpResponse{};
            });
            if (answer.status != 200) ++failed;
            if (!f.durable_names().contains(name)) ++answered_before_durable;
        });
    }
    for (auto& t : threads) t.join();
    CHECK(failed == 0);
    CHECK(answered_before_durable == 0);
    CHECK(f.durable_names().size() == kRequests);
    CHECK(f.group.committed_work() == kRequests);
    CHECK(f.group.commits() < kRequests);  // requests that waited were committed together
}

TEST_CASE("a request answered with a server error loses its own writes, not its group's") {
    GroupFixture f;
    BlockedLeader leader(f);  // the twelve wait behind it, and then share one group
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 12; ++i) {
        threads.emplace_back([&, i] {
            const std::string name = "request-" + std::to_string(i);
            HttpResponse answer = f.group.run([&](ServerConnection& c) -> HttpResponse {
                if (!GroupFixture::insert(c, name)) ++failed;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                if (i % 3 == 1) return HttpResponse::error(500, "internal", "a bug");
                if (i % 3 == 2) throw std::runtime_error("a handler threw");
                return HttpResponse::error(409, "conflict", "a client error keeps what was written");
            });
            if (answer.status != (i % 3 == 0 ? 409 : 500)) ++failed;
        });
    }
    CHECK(wait_for_waiting(f, 12));
    leader.finish();
    for (auto& t : threads) t.join();
    CHECK(failed == 0);
    CHECK(f.group.commits() == 2);  // the leader's group, then the twelve in one
    std::set<std::string> expected{"request"};
    for (int i = 0; i < 12; i += 3) expected.insert("request-" + std::to_string(i));
    CHECK(f.durable_names() == expected);
}

TEST_CASE("work that answers a failed Status has its writes undone and the failure returned") {
    GroupFixture f;
    Status kept = f.group.write([](ServerConnection& c) { return GroupFixture::insert(c, "kept"); });
    CHECK(kept);
    Status failed = f.group.write([](ServerConnection& c) -> Status {
        TSUNAGU_TRY(GroupFixture::insert(c, "undone"));
        return GroupFixture::insert(c, "kept");  // a duplicate: constraint
    });
    CHECK(failed.code() == ErrorCode::constraint);
    CHECK(f.durable_names() == std::set<std::string>{"kept"});
}

TEST_CASE("posted work joins the group being led, its poster does not wait, and it is committed") {
    GroupFixture f;
    BlockedLeader leader(f);
    // A group is being led (and holds the writer): post() returns without waiting for it.
    f.group.post([](ServerConnection& c) {
        return GroupFixture::insert(c, "posted") ? HttpResponse{} : HttpResponse::error(500, "internal", "failed");
    });
    CHECK_FALSE(f.durable_names().contains("posted"));
    leader.finish();
    // Only posted work was waiting when the group ended: its leader led one more before returning.
    CHECK(f.durable_names() == std::set<std::string>{"request", "posted"});
    CHECK(f.group.commits() == 2);
}

TEST_CASE("posted work with no group being led is committed before post returns") {
    GroupFixture f;
    f.group.post([](ServerConnection& c) {
        return GroupFixture::insert(c, "posted") ? HttpResponse{} : HttpResponse::error(500, "internal", "failed");
    });
    CHECK(f.durable_names() == std::set<std::string>{"posted"});
}

TEST_CASE("posted work that fails is undone, and the group's other work is kept") {
    GroupFixture f;
    BlockedLeader leader(f);
    f.group.post([](ServerConnection& c) {
        (void)GroupFixture::insert(c, "undone");
        return HttpResponse::error(500, "internal", "a bug");
    });
    std::thread second([&] {
        (void)f.group.write([](ServerConnection& c) { return GroupFixture::insert(c, "second"); });
    });
    CHECK(wait_for_waiting(f, 2));
    leader.finish();
    second.join();
    CHECK(f.group.commits() == 2);  // the posted work and the second shared a group
    CHECK(f.durable_names() == std::set<std::string>{"request", "second"});
}

TEST_CASE("a handler that throws is logged by its exception's type, never its message") {
    GroupFixture f;
    testing::TempDir logs("tsunagu-group-log");
    std::FILE* log = std::fopen(logs.file("server.log").c_str(), "w");
    REQUIRE(log);
    set_log_output(log);
    // A message may quote what the request carried (nlohmann's do: "last read: '...'").
    HttpResponse answer = f.group.run([](ServerConnection&) -> HttpResponse {
        throw std::runtime_error("parse error; last read: 'notes: MARKER-NOTE-TEXT'");
    });
    set_log_output(nullptr);
    std::fclose(log);
    CHECK(answer.status == 500);
    std::ifstream in(logs.file("server.log"));
    const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(written.find("handler_threw") != std::string::npos);
    CHECK(written.find("MARKER-NOTE-TEXT") == std::string::npos);
}

TEST_CASE("work of the group that asks the group again is answered 500 instead of waiting for itself for ever") {
    GroupFixture f;
    Status inner = Status::ok();
    const Status outer = f.group.write([&](ServerConnection& c) -> Status {
        TSUNAGU_TRY(GroupFixture::insert(c, "outer"));
        inner = f.group.write([](ServerConnection& again) { return GroupFixture::insert(again, "inner"); });
        return Status::ok();
    });
    CHECK(outer.is_ok());
    CHECK(inner.code() == ErrorCode::internal);
    CHECK(f.durable_names() == std::set<std::string>{"outer"});
    // The group goes on.
    CHECK(f.group.write([](ServerConnection& c) { return GroupFixture::insert(c, "after"); }).is_ok());
    CHECK(f.durable_names() == std::set<std::string>{"outer", "after"});
}
