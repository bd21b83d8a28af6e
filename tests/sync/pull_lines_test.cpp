// A pull page finds its change-log lines either by walking the log after the device's cursor or,
// for the lines filed by key so far, by looking up each of the user's scope keys and walking the
// rest (PullLines). Both give the same page, whatever the cursor and the page size, through edits,
// moves, grants and held records; the engine picks the cheaper one by how far behind the device
// is and how many keys its user has.
#include <catch2/catch.hpp>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using namespace testing;

Json visit_for(const std::string& client, const char* notes = "visit") {
    return {{"date", "2020-04-01"}, {"client", client}, {"notes", notes}};
}

// All a page says (the upstream's clock reading aside: every read ticks it).
Json said(PullPage page) {
    page.upstream_time = {};
    page.progress_due = false;
    return page;
}

// The log is filed by key three lines at a time, so that pages read filed and unfiled lines.
constexpr std::int64_t kFileEvery = 3;

Upstream open_upstream(World& w, PullLines lines) {
    return ok(Upstream::open(w.upstream_store, test_schema(),
                             UpstreamOptions{.wall = w.upstream_clock.wall(),
                                             .pull_lines = lines,
                                             .file_log_every = kFileEvery}));
}

// A team's log: a supervisor's clients and visits, workers' visits and meetings, edits that leave
// earlier lines behind, a visit moved to another client, a client granted to a worker late (its
// records get fresh lines), and one revoked.
struct TeamLog {
    World w;
    Device& sachiko = w.add_device("sachiko");
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    std::string tanaka, sato, suzuki;

    explicit TeamLog(std::int64_t file_every = kFileEvery) : w(PullLines::automatic, file_every) {
        ok(w.upstream.set_scope("sachiko", {"*"}));
        tanaka = ok(sachiko.create("client", {{"name", "Tanaka"}}));
        sato = ok(sachiko.create("client", {{"name", "Sato"}}));
        suzuki = ok(sachiko.create("client", {{"name", "Suzuki"}}));
        for (int i = 0; i < 4; ++i) {
            (void)ok(sachiko.create("visit", visit_for(i % 2 ? tanaka : suzuki, "by the supervisor")));
        }
        sync(sachiko, w.upstream);
        ok(w.upstream.set_scope("alice", {"user:alice", "client:" + tanaka}));
        ok(w.upstream.set_scope("bob", {"user:bob", "client:" + sato}));
        pull_all(alice, w.upstream);
        pull_all(bob, w.upstream);

        const std::string moved = ok(alice.create("visit", visit_for(tanaka, "on the wrong client")));
        for (int i = 0; i < 3; ++i) (void)ok(alice.create("visit", visit_for(tanaka)));
        (void)ok(alice.create("meeting", {{"kind", "council"}}));
        const std::string edited = ok(bob.create("visit", visit_for(sato, "first words")));
        sync(alice, w.upstream);
        sync(bob, w.upstream);
        ok(bob.update(edited, {{"notes", "second words"}}));
        sync(bob, w.upstream);
        pull_all(sachiko, w.upstream);
        ok(sachiko.update(moved, {{"client", sato}}));
        sync(sachiko, w.upstream);
        // Suzuki joins Alice's caseload late, Tanaka leaves Bob's (he never had it) and joins it.
        ok(w.upstream.set_scope("alice", {"user:alice", "client:" + tanaka, "client:" + suzuki}));
        ok(w.upstream.set_scope("bob", {"user:bob", "client:" + sato, "client:" + tanaka}));
        ok(w.upstream.set_scope("bob", {"user:bob", "client:" + sato}));
        // Alice's last visits, pushed and not yet pulled: she names them as held.
        for (int i = 0; i < 2; ++i) (void)ok(alice.create("visit", visit_for(suzuki, "held")));
        push_all(alice, w.upstream);
    }
};

// What the pages of Alice's and Bob's devices carried, for every cursor of the log and several
// page sizes, after checking that walking and looking up gave the same pages.
struct Compared {
    std::size_t pages = 0, records = 0, kept = 0, evicted = 0;
};

Compared same_pages_both_ways(TeamLog& t, Upstream& walk, Upstream& by_key) {
    PullRequest everything;
    everything.replica = t.sachiko.replica_id();
    everything.user = "sachiko";
    const std::int64_t last = ok(walk.read_page(everything)).next;
    REQUIRE(last > 20);
    const PullRequest alices_pull = ok(t.alice.prepare_pull());
    Compared seen;
    for (Device* device : {&t.alice, &t.bob}) {
        for (std::int64_t after = 0; after <= last; ++after) {
            for (std::size_t limit : {1, 2, 3, 7, 1000}) {
                PullRequest request;
                request.replica = device->replica_id();
                request.user = device == &t.alice ? "alice" : "bob";
                request.after = after;
                request.limit = limit;
                if (device == &t.alice) request.held = alices_pull.held;
                INFO("user " << request.user << ", after " << after << ", limit " << limit);
                const PullPage walked = ok(walk.read_page(request));
                CHECK(said(walked) == said(ok(by_key.read_page(request))));
                ++seen.pages;
                seen.records += walked.records.size();
                seen.kept += walked.kept.size();
                seen.evicted += walked.evicted_records.size() + walked.evicted_scopes.size();
            }
        }
    }
    return seen;
}

}  // namespace

TEST_CASE("walking the log and looking up scope keys give the same pages") {
    TeamLog t;
    Upstream walk = open_upstream(t.w, PullLines::walk_log);
    Upstream by_key = open_upstream(t.w, PullLines::by_key);
    REQUIRE(ok(t.alice.prepare_pull()).held.size() == 2);
    const Compared seen = same_pages_both_ways(t, walk, by_key);
    // The pages compared carried records, held records and evictions.
    CHECK(seen.pages > 200);
    CHECK(seen.records > 100);
    CHECK(seen.kept > 10);
    CHECK(seen.evicted > 0);
}

TEST_CASE("compaction drops the filed lines that are no longer a record's latest, and pages stay the same") {
    TeamLog t;
    const char* stale =
        "SELECT count(*) FROM sync_log_by_key l WHERE NOT EXISTS"
        " (SELECT 1 FROM sync_records r WHERE r.rid = l.rid AND r.seq = l.seq)";
    const std::int64_t filed_before = scalar(t.w.upstream_store, "SELECT count(*) FROM sync_log_by_key");
    const std::int64_t stale_before = scalar(t.w.upstream_store, stale);
    REQUIRE(stale_before > 0);  // the edit, the move and the late grant left lines behind

    const CompactionReport report = ok(t.w.upstream.compact());
    CHECK(report.filed_purged == static_cast<std::size_t>(stale_before));
    CHECK(scalar(t.w.upstream_store, stale) == 0);
    CHECK(scalar(t.w.upstream_store, "SELECT count(*) FROM sync_log_by_key") == filed_before - stale_before);

    Upstream walk = open_upstream(t.w, PullLines::walk_log);
    Upstream by_key = open_upstream(t.w, PullLines::by_key);
    CHECK(same_pages_both_ways(t, walk, by_key).records > 100);
    Device& fresh = t.w.add_device("alice");
    pull_all(fresh, by_key);
    CHECK(ok(fresh.list("visit")).size() == 9);
}

TEST_CASE("pages looked up by key carry a device through the whole log in any page size") {
    for (std::size_t limit : {1, 3, 1000}) {
        TeamLog t;
        Upstream by_key = open_upstream(t.w, PullLines::by_key);
        Upstream walk = open_upstream(t.w, PullLines::walk_log);
        Device& fresh_by_key = t.w.add_device("alice");
        Device& fresh_walk = t.w.add_device("alice");
        pull_all(fresh_by_key, by_key, limit);
        pull_all(fresh_walk, walk, limit);
        const auto a = ok(fresh_by_key.list("visit"));
        const auto b = ok(fresh_walk.list("visit"));
        CHECK(Json(a) == Json(b));
        // Tanaka's: two by the supervisor, three by Alice; Suzuki's: two by the supervisor, two
        // by Alice (held on her first device). The visit moved to Sato is not hers to see.
        CHECK(a.size() == 9);
        for (const auto& record : a) {
            CHECK(Json(*ok(fresh_by_key.get(record.id))) == Json(*ok(t.w.upstream.get(record.id))));
        }
    }
}

TEST_CASE("a client granted late is found in the filed chunks and in the lines after them") {
    TeamLog t;
    const std::string kato = ok(t.sachiko.create("client", {{"name", "Kato"}}));
    std::vector<std::string> records{kato};
    for (int i = 0; i < 7; ++i) {
        records.push_back(ok(t.sachiko.create("visit", visit_for(kato))));
        push_all(t.sachiko, t.w.upstream, 1);  // a write each: the log is filed as it grows
    }
    // Some of Kato's records have their lines filed, and the last ones are after the last chunk.
    auto filed = [&] {
        auto& q = t.w.upstream_store.cached("SELECT value FROM sync_meta WHERE key = 'log_filed'");
        REQUIRE(ok(q.step()));
        const std::int64_t value = q.column_int(0);
        q.reset();
        return value;
    };
    auto seq_of = [&](const std::string& id) {
        PullRequest everything;
        everything.replica = t.sachiko.replica_id();
        everything.user = "sachiko";
        for (const auto& r : ok(t.w.upstream.read_page(everything)).records)
            if (r.id == id) return r.seq;
        FAIL("no record " << id);
        return std::int64_t{0};
    };
    for (int more = 0; more < kFileEvery && seq_of(records.back()) <= filed(); ++more) {
        records.push_back(ok(t.sachiko.create("visit", visit_for(kato))));
        push_all(t.sachiko, t.w.upstream, 1);
    }
    REQUIRE(seq_of(records.front()) <= filed());
    REQUIRE(seq_of(records.back()) > filed());

    ok(t.w.upstream.set_scope("bob", {"user:bob", "client:" + t.sato, "client:" + kato}));
    pull_all(t.bob, t.w.upstream);
    for (const auto& id : records) CHECK(ok(t.bob.get(id)).has_value());
}

TEST_CASE("a log written before filing is filed a chunk per write, and its pages stay the same") {
    TeamLog t(/*file_every=*/0);  // as a store from before filing: nothing filed
    auto filed = [&] {
        auto& q = t.w.upstream_store.cached("SELECT value FROM sync_meta WHERE key = 'log_filed'");
        std::int64_t value = 0;
        while (ok(q.step())) value = q.column_int(0);
        q.reset();
        return value;
    };
    REQUIRE(filed() == 0);
    Upstream upgraded = open_upstream(t.w, PullLines::by_key);
    Upstream walk = open_upstream(t.w, PullLines::walk_log);
    const std::string client = ok(t.alice.list("client")).at(0).id;
    for (std::int64_t expected = kFileEvery; expected < 30; expected += kFileEvery) {
        (void)ok(t.alice.create("visit", visit_for(client, "after the upgrade")));
        push_all(t.alice, upgraded);
        CHECK(filed() == expected);
        for (std::int64_t after = 0; after < expected; ++after) {
            PullRequest request;
            request.replica = t.bob.replica_id();
            request.user = "bob";
            request.after = after;
            request.limit = 2;
            CHECK(said(ok(upgraded.read_page(request))) == said(ok(walk.read_page(request))));
        }
    }
}

}  // namespace tsunagu::sync
