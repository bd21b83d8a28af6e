// Scopes: which records a user's devices receive, and eviction when records leave the scope.
#include <catch2/catch.hpp>

#include <algorithm>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using namespace testing;

Json visit_for(const std::string& client, const char* notes = "visit") {
    return {{"date", "2020-04-01"}, {"client", client}, {"notes", notes}};
}

std::vector<std::string> ids_of(const std::vector<Record>& records) {
    std::vector<std::string> ids;
    for (const auto& r : records) ids.push_back(r.id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

// Two clients: Tanaka assigned to alice, Sato to bob; the supervisor sees both.
struct Caseload {
    World w;
    Device& supervisor = w.add_device("sachiko");
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    std::string tanaka, sato;

    Caseload() {
        ok(w.upstream.set_scope("sachiko", {"*"}));
        tanaka = ok(supervisor.create("client", {{"name", "Tanaka"}}));
        sato = ok(supervisor.create("client", {{"name", "Sato"}}));
        ok(w.upstream.set_scope("alice", {"user:alice", "client:" + tanaka}));
        ok(w.upstream.set_scope("bob", {"user:bob", "client:" + sato}));
        sync(supervisor, w.upstream);
    }
};

}  // namespace

TEST_CASE("a pull returns only records in the user's scope") {
    Caseload c;
    const std::string visit = ok(c.supervisor.create("visit", visit_for(c.tanaka)));
    const std::string meeting = ok(c.alice.create("meeting", {{"kind", "council"}}));
    sync(c.supervisor, c.w.upstream);
    sync(c.alice, c.w.upstream);
    sync(c.bob, c.w.upstream);
    CHECK(ids_of(ok(c.alice.list("client"))) == std::vector<std::string>{c.tanaka});
    CHECK(ids_of(ok(c.alice.list("visit"))) == std::vector<std::string>{visit});
    CHECK(ok(c.alice.list("meeting")).size() == 1);
    CHECK(ids_of(ok(c.bob.list("client"))) == std::vector<std::string>{c.sato});
    CHECK(ok(c.bob.list("visit")).empty());
    CHECK(ok(c.bob.list("meeting")).empty());  // alice's own record
    sync(c.supervisor, c.w.upstream);
    CHECK(ok(c.supervisor.get(meeting)).has_value());
}

TEST_CASE("a device evicts the records of a client taken from its user") {
    Caseload c;
    const std::string visit = ok(c.alice.create("visit", visit_for(c.tanaka)));
    sync(c.alice, c.w.upstream);
    REQUIRE(ok(c.alice.list("client")).size() == 1);
    ok(c.w.upstream.set_scope("alice", {"user:alice"}));
    PullPage page = ok(c.w.upstream.pull(ok(c.alice.prepare_pull())));
    CHECK(page.evicted_scopes == std::vector<std::string>{"client:" + c.tanaka});
    REQUIRE(rows(*c.w.members[1]->store, "sync_journal") == 1);  // her visit, acknowledged
    PullReport report = ok(c.alice.apply_pull(page));
    CHECK(report.evicted == 2);
    CHECK(report.evicted_pending.empty());
    CHECK(ok(c.alice.list("client")).empty());
    CHECK_FALSE(ok(c.alice.get(visit)).has_value());
    CHECK(rows(*c.w.members[1]->store, "sync_journal") == 0);  // nothing of it stays on her phone
}

TEST_CASE(
    "a record that moves to another client is evicted by one worker and delivered to the other") {
    Caseload c;
    const std::string visit =
        ok(c.alice.create("visit", visit_for(c.tanaka, "recorded on the wrong client")));
    sync(c.alice, c.w.upstream);
    sync(c.bob, c.w.upstream);
    CHECK_FALSE(ok(c.bob.get(visit)).has_value());
    sync(c.supervisor, c.w.upstream);  // the supervisor sees both clients
    ok(c.supervisor.update(visit, {{"client", c.sato}}));
    sync(c.supervisor, c.w.upstream);
    PullPage page = ok(c.w.upstream.pull(ok(c.alice.prepare_pull())));
    CHECK(page.evicted_records == std::vector<std::string>{visit});
    ok(c.alice.apply_pull(page));
    CHECK_FALSE(ok(c.alice.get(visit)).has_value());
    sync(c.bob, c.w.upstream);
    auto moved = ok(c.bob.get(visit));
    REQUIRE(moved.has_value());
    CHECK(moved->scope_key == "client:" + c.sato);
    CHECK(moved->fields["notes"] == "recorded on the wrong client");
}

TEST_CASE("evicted records' unsynced changes are kept and reported") {
    Caseload c;
    const std::string visit = ok(c.alice.create("visit", visit_for(c.tanaka)));
    sync(c.alice, c.w.upstream);
    ok(c.alice.update(visit, {{"notes", "written offline"}}));  // not pushed yet
    ok(c.w.upstream.set_scope("alice", {"user:alice"}));
    PullReport report = ok(c.alice.apply_pull(ok(c.w.upstream.pull(ok(c.alice.prepare_pull())))));
    REQUIRE(report.evicted_pending.size() == 1);
    auto pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::evicted);
    CHECK(pending[0].change.set["notes"] == "written offline");
    CHECK(pending[0].change.id == report.evicted_pending[0]);
    CHECK(ok(c.alice.prepare_push()).changes.empty());  // not pushed while out of scope
    // The client comes back: the change is re-applied and pushed.
    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + c.tanaka}));
    pull_all(c.alice, c.w.upstream);
    CHECK(ok(c.alice.get(visit))->fields["notes"] == "written offline");
    push_all(c.alice, c.w.upstream);
    CHECK(ok(c.alice.outbox()).empty());
    CHECK(ok(c.w.upstream.get(visit))->fields["notes"] == "written offline");
}

TEST_CASE("a visit made offline and evicted before it was pushed is pushed once its client comes back") {
    Caseload c;
    sync(c.alice, c.w.upstream);
    const std::string visit = ok(c.alice.create("visit", visit_for(c.tanaka, "made offline")));
    ok(c.w.upstream.set_scope("alice", {"user:alice"}));  // Tanaka is reassigned while she is offline
    pull_all(c.alice, c.w.upstream);
    auto pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::evicted);  // held: the upstream has no copy of it
    CHECK_FALSE(ok(c.alice.get(visit)).has_value());
    CHECK(ok(c.alice.prepare_push()).changes.empty());

    // Tanaka comes back. The page brings his record, not the visit (the upstream never had it):
    // the key coming back is what makes the held change due, and the visit readable again.
    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + c.tanaka}));
    pull_all(c.alice, c.w.upstream);
    pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::unsent);
    REQUIRE(ok(c.alice.get(visit)).has_value());
    CHECK(ok(c.alice.get(visit))->fields["notes"] == "made offline");

    sync(c.alice, c.w.upstream);
    CHECK(ok(c.alice.outbox()).empty());
    auto upstream = ok(c.w.upstream.get(visit));
    REQUIRE(upstream.has_value());
    CHECK(upstream->fields["notes"] == "made offline");
    sync(c.alice, c.w.upstream);
    CHECK(Json(*ok(c.alice.get(visit))) == Json(*ok(c.w.upstream.get(visit))));
}

TEST_CASE("a held change whose record went elsewhere while its client was away is refused and kept, not lost") {
    Caseload c;
    const std::string visit = ok(c.alice.create("visit", visit_for(c.tanaka)));
    sync(c.alice, c.w.upstream);
    ok(c.alice.update(visit, {{"notes", "written offline"}}));  // not pushed yet
    ok(c.w.upstream.set_scope("alice", {"user:alice"}));
    pull_all(c.alice, c.w.upstream);
    REQUIRE(ok(c.alice.outbox(PendingState::evicted)).size() == 1);
    sync(c.supervisor, c.w.upstream);
    ok(c.supervisor.update(visit, {{"client", c.sato}}));  // meanwhile, moved to bob's client
    sync(c.supervisor, c.w.upstream);

    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + c.tanaka}));
    sync(c.alice, c.w.upstream);  // Tanaka's record comes back; the visit does not
    sync(c.alice, c.w.upstream);
    CHECK_FALSE(ok(c.alice.get(visit)).has_value());
    auto pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::refused);
    CHECK(pending[0].cause == "outside_scope");
    CHECK(pending[0].change.set["notes"] == "written offline");
}

TEST_CASE("an offline edit of a visit moved to another client then deleted there and purged is refused and kept, not made a visit of its own") {
    Caseload c;
    const std::string visit = ok(c.alice.create("visit", visit_for(c.tanaka)));
    sync(c.alice, c.w.upstream);
    ok(c.alice.update(visit, {{"duration", 25}}));  // offline, not sent
    sync(c.supervisor, c.w.upstream);
    ok(c.supervisor.update(visit, {{"client", c.sato}}));  // moved to bob's client
    sync(c.supervisor, c.w.upstream);
    sync(c.bob, c.w.upstream);
    ok(c.bob.remove(visit));
    sync(c.bob, c.w.upstream);
    pull_all(c.bob, c.w.upstream);
    sync(c.supervisor, c.w.upstream);
    pull_all(c.supervisor, c.w.upstream);
    REQUIRE(ok(c.w.upstream.compact()).tombstones_purged == 1);  // every device holding client:sato has the delete

    PushBatch sent = ok(c.alice.prepare_push());
    REQUIRE(sent.changes.size() == 1);
    ok(c.alice.update(visit, {{"notes", "more"}}));  // made while her edit was on its way
    ok(c.alice.apply_push_result(ok(c.w.upstream.push(sent))));
    sync(c.alice, c.w.upstream);
    sync(c.alice, c.w.upstream);
    auto upstream = ok(c.w.upstream.get(visit));
    CHECK((!upstream.has_value() || upstream->deleted));  // the delete stands
    CHECK_FALSE(ok(c.alice.get(visit)).has_value());
    auto pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 2);  // her edits, kept for her to see
    CHECK(pending[0].state == PendingState::refused);
    CHECK(pending[0].cause == "no_record");
    CHECK(pending[0].change.set["duration"] == 25);
    CHECK(pending[1].change.set["notes"] == "more");
    // Given up, the record's later edit goes with it: the record cannot come back.
    CHECK(ok(c.alice.discard_refused(visit)) == 2);
    CHECK(ok(c.alice.outbox()).empty());
    sync(c.supervisor, c.w.upstream);
    auto seen = ok(c.supervisor.get(visit));
    CHECK((!seen.has_value() || seen->deleted));
}

TEST_CASE("a supervisor's device evicts a record that moved away from a key no record has any more when she loses every key") {
    Caseload c;
    const std::string visit = ok(c.bob.create("visit", {{"date", "2020-04-01"}}));  // under user:bob
    sync(c.bob, c.w.upstream);
    sync(c.supervisor, c.w.upstream);
    REQUIRE(ok(c.supervisor.get(visit)).has_value());
    ok(c.bob.update(visit, {{"client", c.sato}}));  // moves to client:sato; user:bob has no record left
    sync(c.bob, c.w.upstream);
    ok(c.w.upstream.set_scope("sachiko", {"user:sachiko"}));  // before her device heard of the move
    sync(c.supervisor, c.w.upstream);
    CHECK_FALSE(ok(c.supervisor.get(visit)).has_value());
    CHECK(ok(c.supervisor.list("client")).empty());
}

TEST_CASE("a push to a record outside the user's scope is refused and kept") {
    Caseload c;
    ok(c.alice.create("visit", visit_for(c.sato)));  // bob's client
    push_all(c.alice, c.w.upstream);
    auto pending = ok(c.alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::refused);
    CHECK(pending[0].code == ErrorCode::forbidden);
    CHECK_THAT(pending[0].reason, Catch::Contains("scope client:" + c.sato));
    CHECK_THAT(pending[0].reason, Catch::Contains("outside alice's scope"));
    ok(c.alice.retry_refused());
    PushBatch again = ok(c.alice.prepare_push());
    REQUIRE(again.changes.size() == 1);
    CHECK(ok(c.w.upstream.push(again)).outcomes[0].cause == "outside_scope");
}

TEST_CASE("a refusal says no more about a record outside the scope than that it is outside") {
    Caseload c;
    // Alice names bob's client in an edit of a visit: refused as out of scope, not as "a client,
    // not a visit", which would tell her what the record is.
    ok(c.alice.create("visit", visit_for(c.tanaka)));
    PushBatch batch = ok(c.alice.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    batch.changes[0].record = c.sato;
    batch.changes[0].create = false;
    const PushOutcome outcome = ok(c.w.upstream.push(batch)).outcomes[0];
    CHECK(outcome.cause == "outside_scope");
    CHECK(outcome.reason.find("client") == std::string::npos);
}

TEST_CASE("a scope key given to a user brings its existing records") {
    Caseload c;
    ok(c.bob.create("visit", visit_for(c.sato)));
    sync(c.bob, c.w.upstream);
    sync(c.alice, c.w.upstream);
    CHECK(ok(c.alice.list("visit")).empty());
    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + c.tanaka, "client:" + c.sato}));
    sync(c.alice, c.w.upstream);
    CHECK(ok(c.alice.list("visit")).size() == 1);
    CHECK(ok(c.alice.list("client")).size() == 2);
    // Others just receive the same records again, unchanged.
    sync(c.bob, c.w.upstream);
    CHECK(ok(c.bob.list("visit")).size() == 1);
}

TEST_CASE("losing the wildcard evicts everything outside the remaining keys") {
    Caseload c;
    ok(c.bob.create("visit", visit_for(c.sato)));
    sync(c.bob, c.w.upstream);
    sync(c.supervisor, c.w.upstream);
    CHECK(ok(c.supervisor.list("client")).size() == 2);
    ok(c.w.upstream.set_scope("sachiko", {"client:" + c.tanaka}));
    sync(c.supervisor, c.w.upstream);
    CHECK(ids_of(ok(c.supervisor.list("client"))) == std::vector<std::string>{c.tanaka});
    CHECK(ok(c.supervisor.list("visit")).empty());
    CHECK(ok(c.w.upstream.scope_of("sachiko")) == std::vector<std::string>{"client:" + c.tanaka});
}

TEST_CASE("a key granted before any record has it brings the records written under it later") {
    Caseload c;
    const std::string kato = "0123456789abcdef0123456789abcdef";  // no record names this client yet
    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + c.tanaka, "client:" + kato}));
    sync(c.alice, c.w.upstream);
    CHECK(ok(c.alice.list("visit")).empty());
    const std::string visit = ok(c.supervisor.create("visit", visit_for(kato)));
    sync(c.supervisor, c.w.upstream);
    sync(c.alice, c.w.upstream);
    CHECK(ids_of(ok(c.alice.list("visit"))) == std::vector<std::string>{visit});
}

TEST_CASE("a key given to a user brings a record that only moved into it") {
    Caseload c;
    const std::string kato = "0123456789abcdef0123456789abcdef";
    const std::string visit = ok(c.supervisor.create("visit", visit_for(c.tanaka)));
    sync(c.supervisor, c.w.upstream);
    ok(c.supervisor.update(visit, {{"client", kato}}));  // the first record under client:kato
    sync(c.supervisor, c.w.upstream);
    sync(c.alice, c.w.upstream);
    CHECK(ok(c.alice.list("visit")).empty());
    ok(c.w.upstream.set_scope("alice", {"user:alice", "client:" + kato}));
    sync(c.alice, c.w.upstream);
    CHECK(ids_of(ok(c.alice.list("visit"))) == std::vector<std::string>{visit});
}

TEST_CASE("an upstream made before it listed its scope keys lists them when opened") {
    Caseload c;
    const std::string visit = ok(c.bob.create("visit", visit_for(c.sato)));
    sync(c.bob, c.w.upstream);
    sync(c.alice, c.w.upstream);  // her cursor is past the visit: only the grant can bring it
    CHECK(ok(c.alice.list("visit")).empty());
    // What a store of the previous release holds: records, and no list of their keys.
    ok(c.w.upstream_store.exec("DELETE FROM sync_scope_keys"));
    ok(c.w.upstream_store.exec("DELETE FROM sync_meta WHERE key = 'scope_keys_listed'"));

    Upstream reopened = ok(Upstream::open(c.w.upstream_store, test_schema(),
                                          UpstreamOptions{.wall = c.w.upstream_clock.wall(), .ids = c.w.ids}));
    ok(reopened.set_scope("alice", {"user:alice", "client:" + c.tanaka, "client:" + c.sato}));
    sync(c.alice, reopened);
    CHECK(ids_of(ok(c.alice.list("visit"))) == std::vector<std::string>{visit});
    CHECK(ids_of(ok(c.alice.list("client"))) == ids_of({ok(c.w.upstream.get(c.tanaka)).value(),
                                                        ok(c.w.upstream.get(c.sato)).value()}));
}

}  // namespace tsunagu::sync
