// Compaction: superseded history and old tombstones go once no device can still need them.
#include <catch2/catch.hpp>

#include <algorithm>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using namespace testing;

const Json kVisit = {{"date", "2020-04-01"}, {"notes", "v1"}};

// A visit `alice` created with notes "v1" and edited twice ("v2", then "v3").
std::string edited_twice(Device& alice) {
    const std::string edited = ok(alice.create("visit", kVisit));
    ok(alice.update(edited, {{"notes", "v2"}}));
    ok(alice.update(edited, {{"notes", "v3"}}));
    return edited;
}

// The upstream of `w`, opened again to keep superseded history an hour by its clock.
Upstream keeping_an_hour(World& w) {
    return ok(Upstream::open(w.upstream_store, test_schema(),
                             UpstreamOptions{.wall = w.upstream_clock.wall(), .keep_history_ms = kHourMs}));
}

// Records as JSON, in the order of their ids (devices list them in the order they got them).
Json by_id(std::vector<Record> records) {
    std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.id < b.id; });
    return Json(records);
}

// A day of a team's work, every device synced past it twice: visits edited several times, some
// deleted, a client moved from one worker's caseload to another's (its records get fresh lines).
struct BusyDay {
    World w{PullLines::automatic, /*file_every=*/4};
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string tanaka = std::string(32, 'a'), sato = std::string(32, 'b');
    std::vector<std::string> visits;

    BusyDay() {
        ok(w.upstream.set_scope("alice", {"client:" + tanaka, "client:" + sato}));
        ok(w.upstream.set_scope("bob", {"client:" + sato}));
        for (int i = 0; i < 12; ++i) {
            Json fields = kVisit;
            fields["client"] = i % 3 ? tanaka : sato;
            visits.push_back(ok(alice.create("visit", fields)));
            sync(alice, w.upstream);
            ok(alice.update(visits.back(), {{"notes", "v2"}}));
            ok(alice.update(visits.back(), {{"duration", 10 + i}}));
            if (i % 4 == 0) ok(alice.remove(visits.back()));
            sync(alice, w.upstream);
        }
        ok(w.upstream.set_scope("bob", {"client:" + sato, "client:" + tanaka}));
        for (int round = 0; round < 2; ++round) {
            sync(alice, w.upstream);
            sync(bob, w.upstream);
        }
    }
};

}  // namespace

TEST_CASE("compaction in slices purges what one compaction does, whatever the slice") {
    BusyDay whole;
    const CompactionReport all = ok(whole.w.upstream.compact());
    CHECK(all.history_purged > 10);
    CHECK(all.tombstones_purged == 3);
    CHECK(all.filed_purged > 5);
    for (std::size_t records : {1, 2, 5}) {
        INFO("slices of " << records << " records");
        BusyDay day;
        CompactionProgress progress;
        int slices = 0;
        while (!progress.done()) {
            ok(day.w.upstream.compact_some(progress, records));
            ++slices;
        }
        CHECK(slices > 12 / static_cast<int>(records));
        CHECK(Json{progress.report.history_purged, progress.report.tombstones_purged, progress.report.log_purged,
                   progress.report.filed_purged} ==
              Json{all.history_purged, all.tombstones_purged, all.log_purged, all.filed_purged});
        for (const char* table : {"sync_records", "sync_log", "sync_log_by_key", "sync_scope_moves"}) {
            CHECK(rows(day.w.upstream_store, table) == rows(whole.w.upstream_store, table));
        }
        // Nothing a device sees changed: a new one gets what the others hold.
        Device& fresh = day.w.add_device("bob");
        pull_all(fresh, day.w.upstream);
        CHECK(by_id(ok(fresh.list("visit"))) == by_id(ok(day.bob.list("visit"))));
        CHECK(ok(fresh.list("visit")).size() == 9);
    }
}

TEST_CASE("pushes and pulls between the slices of a compaction lose nothing") {
    BusyDay day;
    CompactionProgress progress;
    ok(day.w.upstream.compact_some(progress, 3));
    ok(day.bob.update(day.visits[1], {{"notes", "bob's, between two slices"}}));
    sync(day.bob, day.w.upstream);
    while (!progress.done()) {
        ok(day.w.upstream.compact_some(progress, 3));
        Json fields = kVisit;
        fields["client"] = day.tanaka;
        (void)ok(day.alice.create("visit", fields));
        sync(day.alice, day.w.upstream);
    }
    sync(day.alice, day.w.upstream);
    CHECK(ok(day.alice.get(day.visits[1]))->fields["notes"] == "bob's, between two slices");
    Device& fresh = day.w.add_device("alice");
    pull_all(fresh, day.w.upstream);
    CHECK(by_id(ok(fresh.list("visit"))) == by_id(ok(day.alice.list("visit"))));
    // A later run purges what the slices could not yet: the edit bob's overwrote, once every
    // device has pulled past it (a device's progress is known from its next pull).
    for (Device* device : {&day.bob, &day.alice, &fresh}) pull_all(*device, day.w.upstream);
    CHECK(ok(day.w.upstream.compact()).history_purged == 1);
}

TEST_CASE("compaction purges superseded history only after every device has passed it") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    pull_all(bob, w.upstream);  // bob's device is known to the upstream, at cursor 0
    const std::string id = ok(alice.create("visit", kVisit));
    ok(alice.update(id, {{"notes", "v2"}}));
    ok(alice.update(id, {{"notes", "v3"}}));
    sync(alice, w.upstream);
    REQUIRE(ok(w.upstream.history(id)).size() == 3);

    CompactionReport early = ok(w.upstream.compact());
    CHECK(early.history_purged == 0);  // bob has not pulled them yet
    CHECK(ok(w.upstream.history(id)).size() == 3);

    pull_all(bob, w.upstream);
    // A device's progress is known from its next pull (the cursor it pulls after).
    pull_all(bob, w.upstream);
    pull_all(alice, w.upstream);
    CompactionReport report = ok(w.upstream.compact());
    CHECK(report.history_purged == 1);  // "v2": the create still holds the date, "v3" the notes
    auto history = ok(w.upstream.history(id));
    REQUIRE(history.size() == 2);
    CHECK(history[0].kind == ChangeKind::create);
    CHECK(history[1].fields == std::vector<std::string>{"notes"});
    // Nothing observable changed.
    ok(bob.update(id, {{"notes", "v4"}}));
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    CHECK(ok(alice.get(id))->fields["notes"] == "v4");
    CHECK(ok(alice.get(id))->conflicts.empty());
}

TEST_CASE("compaction leaves superseded history and deleted records for the retention period") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string edited = edited_twice(alice);
    const std::string deleted = ok(alice.create("visit", kVisit));
    ok(alice.remove(deleted));
    sync(alice, w.upstream);
    pull_all(alice, w.upstream);  // every device is past everything
    Upstream keeping = keeping_an_hour(w);

    const CompactionReport early = ok(keeping.compact());
    CHECK(early.history_purged == 0);
    CHECK(early.tombstones_purged == 0);
    CHECK(ok(keeping.history(edited)).size() == 3);
    CHECK(ok(keeping.get(deleted))->deleted);

    w.upstream_clock.advance(kHourMs + 1);
    const CompactionReport later = ok(keeping.compact());
    CHECK(later.history_purged == 1 + 2);  // "v2"; the deleted record's create and delete
    CHECK(later.tombstones_purged == 1);
    CHECK(ok(keeping.history(edited)).size() == 2);
    CHECK_FALSE(ok(keeping.get(deleted)).has_value());
}

TEST_CASE("compaction counts the retention period back from the time it is given instead of its wall clock") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string edited = edited_twice(alice);
    sync(alice, w.upstream);
    pull_all(alice, w.upstream);
    Upstream keeping = keeping_an_hour(w);
    const std::int64_t taken_at = w.upstream_clock.wall()();
    w.upstream_clock.advance(365 * 24 * kHourMs);  // the server's clock set a year forward

    const auto run = [&](std::int64_t retention_now_ms) {
        CompactionProgress progress;
        progress.retention_now_ms = retention_now_ms;
        while (!progress.done()) ok(keeping.compact_some(progress, 100));
        return progress.report;
    };
    CHECK(run(taken_at).history_purged == 0);                // the run after the edits
    CHECK(run(taken_at + kHourMs / 2).history_purged == 0);  // within the hour, by the time given
    CHECK(ok(keeping.history(edited)).size() == 3);
    CHECK(run(taken_at + kHourMs + 1).history_purged == 1);  // "v2", an hour later
    CHECK(ok(keeping.history(edited)).size() == 2);
}

TEST_CASE("a phone whose clock is months slow has its deletes and overwritten values kept for the whole retention period") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    w.clock_of(0).advance(-120 * 24 * kHourMs);  // four months slow, and it pushes before it ever pulls
    const std::string edited = edited_twice(alice);
    const std::string deleted = ok(alice.create("visit", kVisit));
    ok(alice.remove(deleted));
    sync(alice, w.upstream);
    pull_all(alice, w.upstream);
    Upstream keeping = keeping_an_hour(w);

    // Its changes' stamps are four months old; the upstream took them just now.
    const CompactionReport first = ok(keeping.compact());
    CHECK(first.history_purged == 0);
    CHECK(first.tombstones_purged == 0);
    CHECK(ok(keeping.history(edited)).size() == 3);
    REQUIRE(ok(keeping.get(deleted)).has_value());

    w.upstream_clock.advance(kHourMs / 2);
    CHECK(ok(keeping.compact()).history_purged == 0);
    w.upstream_clock.advance(kHourMs / 2 + 1);  // an hour after the run that followed them
    const CompactionReport later = ok(keeping.compact());
    CHECK(later.history_purged == 1 + 2);
    CHECK(later.tombstones_purged == 1);
    CHECK_FALSE(ok(keeping.get(deleted)).has_value());
}

TEST_CASE("tombstones are purged once every device in scope has pulled them") {
    World w;
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    Device& carol = w.add_device("carol");
    const std::string client = std::string(32, 'b');
    ok(w.upstream.set_scope("alice", {"client:" + client}));
    ok(w.upstream.set_scope("bob", {"client:" + client}));
    ok(w.upstream.set_scope("carol", {"user:carol"}));
    pull_all(carol, w.upstream);  // known, but never sees the client: does not hold anything back
    Json fields = kVisit;
    fields["client"] = client;
    const std::string id = ok(alice.create("visit", fields));
    sync(alice, w.upstream);
    pull_all(bob, w.upstream);
    ok(alice.remove(id));
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.compact()).tombstones_purged == 0);  // bob has the record, not the delete
    REQUIRE(ok(w.upstream.get(id)).has_value());
    pull_all(bob, w.upstream);
    CHECK(ok(bob.get(id))->deleted);
    pull_all(bob, w.upstream);
    pull_all(alice, w.upstream);
    CompactionReport report = ok(w.upstream.compact());
    CHECK(report.tombstones_purged == 1);
    CHECK(report.history_purged == 2);
    CHECK_FALSE(ok(w.upstream.get(id)).has_value());
    CHECK(ok(w.upstream.history(id)).empty());
    // Devices drop their own tombstones.
    CHECK(ok(bob.compact()) == 1);
    CHECK_FALSE(ok(bob.get(id)).has_value());
}

TEST_CASE("a device pulling everything again lets go of a record deleted and purged while its pages fell back") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string kept = ok(alice.create("visit", kVisit));
    const std::string deleted = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    // Alice's replica as it is now, before she hears of the delete: what a salvage whose pages
    // fell back to older versions would give her (crypto/salvage.h).
    Store& alices = *w.members[0]->store;
    REQUIRE(alices.exec("CREATE TABLE older_pages AS SELECT * FROM sync_records"));

    sync(bob, w.upstream);
    ok(bob.remove(deleted));
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    pull_all(alice, w.upstream);  // a pull reports the cursor it starts from
    pull_all(bob, w.upstream);
    REQUIRE(ok(w.upstream.compact()).tombstones_purged == 1);  // every device has the delete

    REQUIRE(alices.exec("DELETE FROM sync_records; INSERT INTO sync_records SELECT * FROM older_pages"));
    REQUIRE(ok(alice.get(deleted)).has_value());
    REQUIRE_FALSE(ok(alice.get(deleted))->deleted);  // alive again, as far as her replica knows
    ok(alice.pull_everything_again());
    const PullTotals pulled = pull_all(alice, w.upstream, /*page=*/1);  // several pages
    CHECK(pulled.records >= 1);
    // No page brought it (its tombstone is purged): it goes; what they brought stays.
    CHECK_FALSE(ok(alice.get(deleted)).has_value());
    CHECK(ok(alice.get(kept)).has_value());
    // And the next pull from the start is a plain one again: nothing else goes.
    pull_all(alice, w.upstream);
    CHECK(ok(alice.get(kept)).has_value());
}

namespace {

// Alice and Bob share a client; Alice's phone holds one of its visits. The client is then taken
// from Alice (reassigned) while her phone is offline.
struct ClientTakenAway {
    World w;
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string key = "client:" + std::string(32, 'b');
    std::string visit;

    ClientTakenAway() {
        ok(w.upstream.set_scope("alice", {key}));
        ok(w.upstream.set_scope("bob", {key}));
        Json fields = kVisit;
        fields["client"] = std::string(32, 'b');
        visit = ok(bob.create("visit", fields));
        sync(bob, w.upstream);
        pull_all(alice, w.upstream);
        REQUIRE(ok(alice.get(visit)).has_value());
    }
    // Bob deletes the visit and every device but Alice's is past it.
    void bob_deletes() {
        ok(bob.remove(visit));
        sync(bob, w.upstream);
        pull_all(bob, w.upstream);
    }
};

}  // namespace

TEST_CASE("a phone whose user lost a client and got it back while it was offline lets go of a visit deleted meanwhile") {
    ClientTakenAway day;
    ok(day.w.upstream.set_scope("alice", {}));
    day.bob_deletes();
    // Alice's phone has not heard of the removal: it still holds the visit, so the tombstone waits.
    CHECK(ok(day.w.upstream.compact()).tombstones_purged == 0);
    ok(day.w.upstream.set_scope("alice", {day.key}));  // the client comes back before she syncs
    pull_all(day.alice, day.w.upstream);
    auto held = ok(day.alice.get(day.visit));
    CHECK((!held.has_value() || held->deleted));  // not a visit nobody else has any more
    pull_all(day.alice, day.w.upstream);
    for (int round = 0; round < 2; ++round) pull_all(day.bob, day.w.upstream);  // (the client's return gave its records fresh lines)
    CHECK(ok(day.w.upstream.compact()).tombstones_purged == 1);  // every device has the delete now
}

TEST_CASE("an edit held while its client was away meets the delete it did not see when the client comes back") {
    ClientTakenAway day;
    ok(day.alice.update(day.visit, {{"duration", 25}}));  // offline, not sent
    ok(day.w.upstream.set_scope("alice", {}));
    pull_all(day.alice, day.w.upstream);  // evicts the visit; the edit is held
    REQUIRE(ok(day.alice.outbox(PendingState::evicted)).size() == 1);
    day.bob_deletes();
    pull_all(day.alice, day.w.upstream);
    pull_all(day.alice, day.w.upstream);  // past the removal, but the held edit is older
    CHECK(ok(day.w.upstream.compact()).tombstones_purged == 0);
    ok(day.w.upstream.set_scope("alice", {day.key}));
    sync(day.alice, day.w.upstream);  // the visit comes back deleted; the edit is due again
    sync(day.alice, day.w.upstream);
    CHECK(ok(day.alice.outbox()).empty());
    // Not a new visit made of the edit alone: the delete stands, and the edit is a conflict.
    auto record = ok(day.w.upstream.get(day.visit));
    REQUIRE(record.has_value());
    CHECK(record->deleted);
    REQUIRE(record->conflicts.size() == 1);
    CHECK(record->conflicts[0].kind == ConflictKind::edit_vs_delete);
    CHECK(record->conflicts[0].losing.value == 25);
}

TEST_CASE("a tombstone with an open conflict is kept") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.remove(id));
    ok(bob.update(id, {{"notes", "kept"}}));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    CHECK(ok(w.upstream.compact()).tombstones_purged == 0);
    CHECK(ok(bob.compact()) == 0);
    REQUIRE(ok(w.upstream.get(id)).has_value());
    CHECK(ok(w.upstream.get(id))->conflicts.size() == 1);
}

TEST_CASE("a device's unsynced old change holds compaction back") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(bob.update(id, {{"duration", 10}}));  // made now; pushed much later
    ok(alice.update(id, {{"notes", "v2"}}));
    ok(alice.remove(id));
    sync(alice, w.upstream);
    pull_all(bob, w.upstream);
    pull_all(bob, w.upstream);  // bob is up to date, but his outbox is older
    pull_all(alice, w.upstream);
    CompactionReport held = ok(w.upstream.compact());
    CHECK(held.tombstones_purged == 0);
    CHECK(held.history_purged == 0);
    sync(bob, w.upstream);  // the old change arrives: an edit concurrent with the delete
    auto record = ok(w.upstream.get(id));
    REQUIRE(record.has_value());
    REQUIRE(record->conflicts.size() == 1);
    CHECK(record->conflicts[0].kind == ConflictKind::edit_vs_delete);
    CHECK(record->conflicts[0].losing.value == 10);
}

TEST_CASE("a forgotten device no longer holds compaction back") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("lost", {"*"}));
    Device& alice = w.add_device("alice");
    Device& lost = w.add_device("lost");
    pull_all(lost, w.upstream);
    const std::string id = ok(alice.create("visit", kVisit));
    ok(alice.remove(id));
    sync(alice, w.upstream);
    pull_all(alice, w.upstream);
    CHECK(ok(w.upstream.compact()).tombstones_purged == 0);
    ok(w.upstream.forget_replica(lost.replica_id()));
    CHECK(ok(w.upstream.compact()).tombstones_purged == 1);
}

namespace {

// A client with three visits, every one of them synced by the supervisor's device; alice's new
// phone has pulled the first page of its first pull (two records) when the connection drops.
struct FirstPullCut {
    World w;
    Device& supervisor = w.add_device("sachiko");
    std::string tanaka;
    Device* alice = nullptr;

    FirstPullCut() {
        ok(w.upstream.set_scope("sachiko", {"*"}));
        tanaka = ok(supervisor.create("client", {{"name", "Tanaka"}}));
        for (int i = 0; i < 3; ++i) {
            Json fields = kVisit;
            fields["client"] = tanaka;
            ok(supervisor.create("visit", fields));
        }
        sync(supervisor, w.upstream);
        ok(w.upstream.set_scope("alice", {"client:" + tanaka}));
        alice = &w.add_device("alice");
        PullPage first = ok(w.upstream.pull(ok(alice->prepare_pull(2))));
        REQUIRE(first.more);
        ok(alice->apply_pull(first));
        REQUIRE(ok(alice->list("visit")).size() + ok(alice->list("client")).size() == 2);
    }
};

}  // namespace

TEST_CASE("a new device cut off in its first pull still evicts a client taken away before it finishes") {
    FirstPullCut cut;
    ok(cut.w.upstream.set_scope("alice", {}));  // Tanaka is reassigned
    sync(cut.supervisor, cut.w.upstream);
    cut.w.advance(61'000);
    sync(cut.supervisor, cut.w.upstream);  // the supervisor's device is past the removal
    ok(cut.w.upstream.compact());
    pull_all(*cut.alice, cut.w.upstream);
    CHECK(ok(cut.alice->list("visit")).empty());
    CHECK(ok(cut.alice->list("client")).empty());
}

TEST_CASE("a device's first page makes compaction wait for it, until it is forgotten") {
    FirstPullCut cut;
    // Its progress is recorded from its first page on, at the cursor it started from.
    std::vector<ReplicaProgress> listed = ok(cut.w.upstream.replicas());
    const auto alice = std::find_if(listed.begin(), listed.end(),
                                    [&](const ReplicaProgress& r) { return r.replica == cut.alice->replica_id(); });
    REQUIRE(alice != listed.end());
    CHECK(alice->cursor == 0);
    CHECK(alice->last_pull_ms == *cut.w.upstream_clock.now);
    ok(cut.w.upstream.set_scope("alice", {}));
    sync(cut.supervisor, cut.w.upstream);
    sync(cut.supervisor, cut.w.upstream);
    CHECK(ok(cut.w.upstream.compact()).log_purged == 0);  // alice has not heard of the removal
    // A phone lost part-way is stale like any other (its last pull grows old): forgetting it
    // ends the wait.
    ok(cut.w.upstream.forget_replica(cut.alice->replica_id()));
    CHECK(ok(cut.w.upstream.compact()).log_purged == 1);
}

TEST_CASE("the upstream lists the devices compaction waits for, with when each last pulled") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("lost", {"*"}));
    Device& alice = w.add_device("alice");
    Device& lost = w.add_device("lost");
    CHECK(ok(w.upstream.replicas()).empty());  // none has pulled yet
    pull_all(lost, w.upstream);
    const std::int64_t lost_pulled_at = *w.upstream_clock.now;
    w.advance(40LL * 24 * 3'600'000);  // forty days later
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    ok(alice.update(id, {{"notes", "v2"}}));  // made now, not pushed: the outbox floor stays behind
    ok(w.upstream.create("alice", "visit", kVisit));  // and someone else's new record
    pull_all(alice, w.upstream);
    pull_all(alice, w.upstream);  // a device's progress is known from its next pull

    std::vector<ReplicaProgress> listed = ok(w.upstream.replicas());
    std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) { return a.user < b.user; });
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].replica == alice.replica_id());
    CHECK(listed[0].user == "alice");
    CHECK(listed[0].cursor == ok(w.upstream.sequence()));
    CHECK(listed[0].horizon < listed[0].cursor);  // its unsent edit is based on an older state
    CHECK(listed[0].last_pull_ms == *w.upstream_clock.now);
    CHECK(listed[1].replica == lost.replica_id());
    CHECK(listed[1].cursor == 0);
    CHECK(listed[1].last_pull_ms == lost_pulled_at);

    ok(w.upstream.forget_replica(lost.replica_id()));
    listed = ok(w.upstream.replicas());
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].user == "alice");
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

TEST_CASE("compaction keeps open conflicts intact") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.update(id, {{"notes", "alice"}}));
    ok(alice.update(id, {{"duration", 10}}));
    ok(alice.update(id, {{"duration", 20}}));
    ok(bob.update(id, {{"notes", "bob"}}));
    for (int i = 0; i < 2; ++i) {
        sync(alice, w.upstream);
        sync(bob, w.upstream);
    }
    const Json before = *ok(w.upstream.get(id));
    REQUIRE(before["conflicts"].size() == 1);
    CompactionReport report = ok(w.upstream.compact());
    CHECK(report.history_purged == 1);  // duration 10
    CHECK(Json(*ok(w.upstream.get(id))) == before);
    ok(alice.resolve(id, "notes", "both"));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    CHECK(ok(bob.conflicts()).empty());
}

TEST_CASE("a pull records the device's progress only when it changed or has grown old") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);

    // The device's first pull after its cursor moved reports the new cursor: recorded once...
    PullRequest poll = ok(alice.prepare_pull(100));
    PullPage first = ok(w.upstream.read_page(poll));
    REQUIRE_FALSE(first.more);
    REQUIRE(first.progress_due);
    ok(w.upstream.record_progress(poll));
    // ...and polling again with nothing new writes nothing.
    CHECK_FALSE(ok(w.upstream.read_page(poll)).progress_due);
    CHECK_FALSE(ok(w.upstream.pull(poll)).progress_due);

    // A minute later, the same cursor is recorded again so the device's last contact stays current.
    w.advance(61'000);
    CHECK(ok(w.upstream.read_page(poll)).progress_due);
    ok(w.upstream.pull(poll));  // pull() records what is due
    CHECK_FALSE(ok(w.upstream.read_page(poll)).progress_due);

    // A page that is not the last records nothing for a device whose progress is known...
    for (int i = 0; i < 3; ++i) ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    PullRequest from_start = poll;
    from_start.after = 0;
    from_start.outbox_floor = 0;
    from_start.limit = 1;
    PullPage partial = ok(w.upstream.read_page(from_start));
    REQUIRE(partial.more);
    CHECK_FALSE(partial.progress_due);
    // ...and for one the upstream has not heard of yet, nothing is read until the cursor it
    // starts from is recorded.
    Device& fresh = w.add_device("alice");
    PullRequest opening = ok(fresh.prepare_pull(1));
    PullPage unregistered = ok(w.upstream.read_page(opening));
    CHECK(unregistered.unregistered);
    CHECK(unregistered.records.empty());
    CHECK_FALSE(unregistered.more);
    ok(w.upstream.record_progress(opening));
    PullPage opening_page = ok(w.upstream.read_page(opening));
    CHECK_FALSE(opening_page.unregistered);
    REQUIRE(opening_page.more);
    CHECK_FALSE(opening_page.progress_due);
    ok(fresh.apply_pull(opening_page));
    PullRequest second = ok(fresh.prepare_pull(1));
    REQUIRE(second.after > 0);
    CHECK_FALSE(ok(w.upstream.read_page(second)).progress_due);
}

}  // namespace tsunagu::sync
