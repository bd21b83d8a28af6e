// An upstream restored from a backup: devices that pulled beyond the backup miss nothing new.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <set>

#include "sync_fixture.h"

namespace tsunagu::sync {

using namespace testing;

namespace {

const Json kVisit = {{"date", "2020-04-01"}, {"notes", "v1"}};

bool holds(Device& device, const std::string& id) {
    auto record = ok(device.get(id));
    return record.has_value() && !record->deleted;
}

// Alice's phone (she sees everything), which synced two visits: its journal holds them.
Device& phone_with_two_journaled(World& w) {
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    for (int i = 0; i < 2; ++i) ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    CHECK(rows(*w.members[0]->store, "sync_journal") == 2);
    return alice;
}

// A team whose upstream is backed up, then takes more changes that its devices pull, then is lost
// and restored from the backup.
struct RestoredTeam {
    World w{PullLines::by_key, /*file_every=*/4};
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    std::vector<std::string> before, lost;
    std::unique_ptr<Store> restored_store;
    std::unique_ptr<Upstream> restored;

    explicit RestoredTeam(bool run_after_restore) {
        ok(w.upstream.set_scope("alice", {"*"}));
        ok(w.upstream.set_scope("bob", {"*"}));
        for (int i = 0; i < 6; ++i) before.push_back(ok(alice.create("visit", kVisit)));
        sync(alice, w.upstream);
        pull_all(bob, w.upstream);
        // Sealed under the key the fixture opens its stores with (open_store).
        auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
        REQUIRE(key.is_ok());
        REQUIRE(w.upstream_store.backup_to(w.dir.file("backup.db"), *key).is_ok());
        // The backup as taken, for a second restore of it: the first is made in its own file.
        std::filesystem::copy_file(w.dir.file("backup.db"), w.dir.file("backup-as-taken.db"));
        for (int i = 0; i < 3; ++i) lost.push_back(ok(alice.create("visit", kVisit)));
        sync(alice, w.upstream);
        pull_all(bob, w.upstream);  // bob's cursor is now beyond anything in the backup

        restored_store = std::make_unique<Store>(open_store(w.dir.file("backup.db")));
        restored = std::make_unique<Upstream>(ok(Upstream::open(
            *restored_store, test_schema(),
            UpstreamOptions{.wall = w.upstream_clock.wall(), .pull_lines = PullLines::by_key, .file_log_every = 4})));
        if (run_after_restore) ok(restored->after_restore());
    }
};

}  // namespace

TEST_CASE("after a restore, numbering jumps past every cursor, so devices that pulled beyond the backup miss nothing new") {
    RestoredTeam team(/*run_after_restore=*/true);
    CHECK(ok(team.restored->sequence()) > Upstream::kRestoreGap);
    const std::string made_after = ok(team.restored->create("alice", "visit", kVisit));
    pull_all(team.bob, *team.restored);
    CHECK(holds(team.bob, made_after));
    // A new device pulls the restored records (the filed lines below the gap and the walked ones
    // after it alike), and the new one; not what the lost server took after the backup.
    ok(team.restored->set_scope("carol", {"*"}));
    Device& carol = team.w.add_device("carol");
    pull_all(carol, *team.restored);
    for (const auto& id : team.before) CHECK(holds(carol, id));
    CHECK(holds(carol, made_after));
    for (const auto& id : team.lost) CHECK_FALSE(holds(carol, id));
    // Devices and the restored upstream go on as usual.
    ok(team.bob.update(made_after, {{"notes", "v2"}}));
    sync(team.bob, *team.restored);
    pull_all(carol, *team.restored);
    CHECK(ok(carol.get(made_after))->fields["notes"] == "v2");
}

TEST_CASE("a device sends again the changes the restored upstream had lost, and every device gets them back") {
    RestoredTeam team(/*run_after_restore=*/true);
    CHECK(rows(*team.w.members[0]->store, "sync_journal") == 9);  // alice's acknowledged visits
    // Alice's next sync hears the new epoch in the pull (she has nothing to push): her journal
    // goes back to her outbox, and her next push sends it.
    PullPage page = ok(team.restored->pull(ok(team.alice.prepare_pull(100))));
    CHECK(page.epoch == team.restored->epoch());
    CHECK(page.epoch != team.w.upstream.epoch());
    CHECK(ok(team.alice.apply_pull(page)).resent == 9);
    CHECK(rows(*team.w.members[0]->store, "sync_journal") == 0);
    PushResult answer = ok(team.restored->push(ok(team.alice.prepare_push(100))));
    std::size_t accepted = 0, duplicate = 0;
    for (const auto& o : answer.outcomes) (o.status == PushStatus::accepted ? accepted : duplicate) += 1;
    CHECK(accepted == 3);   // lost with the server
    CHECK(duplicate == 6);  // in the backup
    CHECK(ok(team.alice.apply_push_result(answer)).resent == 0);  // the same epoch since
    CHECK(rows(*team.w.members[0]->store, "sync_journal") == 9);
    for (const auto& id : team.lost) CHECK(ok(team.restored->get(id)).has_value());

    ok(team.restored->set_scope("carol", {"*"}));
    Device& carol = team.w.add_device("carol");
    pull_all(carol, *team.restored);
    for (const auto& id : team.before) CHECK(holds(carol, id));
    for (const auto& id : team.lost) CHECK(holds(carol, id));
    pull_all(team.bob, *team.restored);
    for (const auto& id : team.lost) CHECK(holds(team.bob, id));
}

namespace {

// A worker's caseload, changed after the backup: x taken from her, z given to her, and colleagues
// (whose phones are then lost) visit y and z and edit a visit to each, which she pulls; on z she
// records a visit not sent yet.
struct CaseloadAfterBackup {
    World w{PullLines::by_key, /*file_every=*/4};
    Device& alice = w.add_device("alice");
    std::string x, y, z, x_visit, y_visit, z_visit, lost_visit, z_lost_visit, unsent_visit;
    std::unique_ptr<Store> restored_store;
    std::unique_ptr<Upstream> restored;

    CaseloadAfterBackup() {
        ok(w.upstream.set_scope("office", {"*"}));
        x = ok(w.upstream.create("office", "client", {{"name", "X"}}));
        y = ok(w.upstream.create("office", "client", {{"name", "Y"}}));
        z = ok(w.upstream.create("office", "client", {{"name", "Z"}}));
        x_visit = ok(w.upstream.create("office", "visit", {{"date", "2020-04-01"}, {"client", x}}));
        y_visit = ok(w.upstream.create("office", "visit", {{"date", "2020-04-01"}, {"client", y}}));
        z_visit = ok(w.upstream.create("office", "visit", {{"date", "2020-04-01"}, {"client", z}}));
        // z was hers once, and taken from her before the backup: its log holds that eviction.
        ok(w.upstream.set_scope("alice", {"client:" + x, "client:" + y, "client:" + z}));
        pull_all(alice, w.upstream);
        ok(w.upstream.set_scope("alice", {"client:" + x, "client:" + y}));
        pull_all(alice, w.upstream);
        REQUIRE_FALSE(holds(alice, z));
        auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
        REQUIRE(key.is_ok());
        REQUIRE(w.upstream_store.backup_to(w.dir.file("backup.db"), *key).is_ok());

        ok(w.upstream.set_scope("alice", {"client:" + y, "client:" + z}));
        lost_visit = ok(w.upstream.create("office", "visit", {{"date", "2020-04-02"}, {"client", y}}));
        z_lost_visit = ok(w.upstream.create("office", "visit", {{"date", "2020-04-02"}, {"client", z}}));
        ok(w.upstream.update("office", y_visit, {{"notes", "written after the backup"}}));
        ok(w.upstream.update("office", z_visit, {{"notes", "written after the backup"}}));
        pull_all(alice, w.upstream);
        REQUIRE_FALSE(holds(alice, x));
        REQUIRE(holds(alice, z_visit));
        REQUIRE(holds(alice, lost_visit));
        unsent_visit = ok(alice.create("visit", {{"date", "2020-04-03"}, {"client", z}}));

        restored_store = std::make_unique<Store>(open_store(w.dir.file("backup.db")));
        restored = std::make_unique<Upstream>(ok(Upstream::open(
            *restored_store, test_schema(),
            UpstreamOptions{.wall = w.upstream_clock.wall(), .pull_lines = PullLines::by_key, .file_log_every = 4})));
        ok(restored->after_restore());
    }
};

}  // namespace

TEST_CASE("after a restore, a device pulls everything again: a client taken from its worker after the backup comes back, and it loses nothing") {
    CaseloadAfterBackup t;
    // The first page heard from the restored upstream restarts the pull from the start.
    PullReport first = ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    CHECK(first.restarted);
    CHECK(first.records == 0);
    CHECK(ok(t.alice.cursor()) == 0);
    PullPage page;
    PullReport last;
    do {
        page = ok(t.restored->pull(ok(t.alice.prepare_pull(100))));
        last = ok(t.alice.apply_pull(page));
        CHECK_FALSE(last.restarted);
    } while (page.more);
    CHECK(last.release_due);  // records to ask about (below): the sync pulls once more
    // Taken from her after the backup, hers again in it: back, below the cursor she had.
    CHECK(holds(t.alice, t.x));
    CHECK(holds(t.alice, t.x_visit));
    // What the pages did not bring stays: the restored upstream lost some of it (the visits to y
    // and z after the backup), and the phone cannot tell which without asking after each change.
    for (const auto* id : {&t.y_visit, &t.lost_visit, &t.z, &t.z_visit, &t.z_lost_visit, &t.unsent_visit}) {
        CHECK(holds(t.alice, *id));
    }
    // Nor is a newer copy replaced by the backup's older version: the edit after the backup was lost
    // with the server, and this copy may be its last.
    CHECK(ok(t.alice.get(t.y_visit))->fields["notes"] == "written after the backup");
    CHECK(ok(t.alice.cursor()) == ok(t.restored->sequence()));

    // Her next pull asks about what the pages did not bring (not her unsent visit: the upstream
    // cannot hold it). z, not hers in the backup's caseloads, and whose every version the restored
    // upstream holds, goes; what holds work the upstream lost stays, her copy its last.
    PullRequest asking = ok(t.alice.prepare_pull(100));
    std::set<std::string> asked;
    for (const ReleaseAsk& ask : asking.release) asked.insert(ask.record);
    CHECK(asked == std::set<std::string>{t.z, t.z_visit, t.lost_visit, t.z_lost_visit});
    PullPage answered = ok(t.restored->pull(asking));
    CHECK(answered.release.released == std::vector<std::string>{t.z});
    CHECK(answered.release.not_held.size() == 3);
    PullReport released = ok(t.alice.apply_pull(answered));
    CHECK(released.released == 1);
    CHECK_FALSE(ok(t.alice.get(t.z)).has_value());
    for (const auto* id : {&t.z_visit, &t.lost_visit, &t.z_lost_visit, &t.unsent_visit}) CHECK(holds(t.alice, *id));
    CHECK(ok(t.alice.get(t.z_visit))->fields["notes"] == "written after the backup");
    // Those are asked about again an hour later, not at every pull (a colleague's phone may send
    // the lost changes again meanwhile).
    CHECK(ok(t.alice.prepare_pull(100)).release.empty());
    t.w.clock_of(0).advance(DeviceOptions{}.release_ask_again_ms);
    CHECK(ok(t.alice.prepare_pull(100)).release.size() == 3);

    // Her visit to z, not hers in the backup's caseloads, is refused as outside her scope, and kept.
    push_all(t.alice, *t.restored);
    auto refused = ok(t.alice.outbox(PendingState::refused));
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].change.record == t.unsent_visit);
    CHECK_FALSE(ok(t.restored->get(t.unsent_visit)).has_value());

    // From then on, pulls go on from the cursor: the next restart comes with the next restore.
    ok(t.restored->set_scope("alice", {"client:" + t.y}));
    PullReport next = ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    CHECK_FALSE(next.restarted);
    CHECK(next.evicted == 2);  // x and its visit
    CHECK_FALSE(holds(t.alice, t.x));
}

TEST_CASE("a client taken from the worker while her pull from the start runs goes once that pull ends") {
    CaseloadAfterBackup t;
    ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    // Pages of one record, until x (hers again in the backup) is back with its visit.
    while (!holds(t.alice, t.x) || !holds(t.alice, t.x_visit)) {
        const PullPage page = ok(t.restored->pull(ok(t.alice.prepare_pull(1))));
        REQUIRE(page.more);
        ok(t.alice.apply_pull(page));
    }
    ok(t.restored->set_scope("alice", {"client:" + t.y}));  // meanwhile, x is taken from her
    pull_all(t.alice, *t.restored, 1);
    // Its eviction came in that pull, among those the log replays: passed over with them.
    CHECK(holds(t.alice, t.x));
    PullReport next = ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    CHECK(next.released == 3);  // x and its visit, and z (see above)
    CHECK_FALSE(ok(t.alice.get(t.x)).has_value());
    CHECK_FALSE(ok(t.alice.get(t.x_visit)).has_value());
    CHECK(holds(t.alice, t.z_lost_visit));
}

TEST_CASE("a record the upstream would let go is kept when the worker changed it while the answer was on its way") {
    CaseloadAfterBackup t;
    pull_all(t.alice, *t.restored);
    const PullRequest asking = ok(t.alice.prepare_pull(100));
    const PullPage answered = ok(t.restored->pull(asking));
    REQUIRE(answered.release.released == std::vector<std::string>{t.z});
    ok(t.alice.update(t.z, {{"name", "Z, renamed"}}));
    CHECK(ok(t.alice.apply_pull(answered)).released == 0);
    CHECK(ok(t.alice.get(t.z))->fields["name"] == "Z, renamed");
    // Refused as outside her scope when pushed, and kept with her other refused work.
    push_all(t.alice, *t.restored);
    CHECK(ok(t.alice.outbox(PendingState::refused)).size() == 2);
    CHECK(holds(t.alice, t.z));
}

TEST_CASE("a record kept after a restore, whose copy holds what the upstream lacks, survives a salvage and a discard") {
    CaseloadAfterBackup t;
    pull_all(t.alice, *t.restored);
    pull_all(t.alice, *t.restored);  // asks: z goes, the others are not held upstream
    REQUIRE_FALSE(ok(t.alice.get(t.z)).has_value());
    // A salvage's pull from the start takes off what its pages do not bring, but not these.
    ok(t.alice.pull_everything_again());
    pull_all(t.alice, *t.restored);
    for (const auto* id : {&t.z_visit, &t.lost_visit, &t.z_lost_visit}) CHECK(holds(t.alice, *id));
    // Her edit to z's visit is refused (z is not hers upstream); given up, the record is asked for
    // whole, and the upstream answers with an eviction: the copy stays, its colleague's edit with it.
    ok(t.alice.update(t.z_visit, {{"duration", 45}}));
    push_all(t.alice, *t.restored);
    REQUIRE(ok(t.alice.discard_refused(t.z_visit)) == 1);
    CHECK(ok(t.alice.prepare_pull(100)).refetch == std::vector<std::string>{t.z_visit});
    PullPage answer = ok(t.restored->pull(ok(t.alice.prepare_pull(100))));
    CHECK(answer.evicted_records == std::vector<std::string>{t.z_visit});
    CHECK(ok(t.alice.apply_pull(answer)).evicted == 0);
    CHECK(ok(t.alice.get(t.z_visit))->fields["notes"] == "written after the backup");
    CHECK(ok(t.alice.prepare_pull(100)).refetch.empty());
    // Nor does compacting the device drop it.
    ok(t.alice.compact());
    CHECK(holds(t.alice, t.z_visit));
}

TEST_CASE("a copy newer than the restored upstream's keeps its lost edit, sent again as hers, and every device converges") {
    CaseloadAfterBackup t;
    // The pull from the start brings y's visit as the backup held it: the colleague's notes,
    // written after the backup and lost with the server, are on her phone only. They are queued
    // again as her change, on top of the backup's version (which they superseded: no conflict).
    const PullTotals pulled = pull_all(t.alice, *t.restored);
    CHECK(pulled.records > 0);
    auto mine = ok(t.alice.get(t.y_visit));
    CHECK(mine->fields["notes"] == "written after the backup");
    CHECK(mine->conflicts.empty());
    std::vector<ChangeSet> queued;
    for (const auto& pending : ok(t.alice.outbox(PendingState::unsent))) {
        if (pending.change.record == t.y_visit) queued.push_back(pending.change);
    }
    REQUIRE(queued.size() == 1);
    CHECK(queued[0].user == "alice");
    CHECK(queued[0].set == Json{{"notes", "written after the backup"}});
    push_all(t.alice, *t.restored);
    CHECK(ok(t.restored->get(t.y_visit))->fields["notes"] == "written after the backup");

    // The next version the upstream takes of it replaces her copy, and loses nothing now.
    ok(t.restored->update("office", t.y_visit, {{"duration", 30}}));
    sync(t.alice, *t.restored);
    mine = ok(t.alice.get(t.y_visit));
    CHECK(mine->fields["notes"] == "written after the backup");
    CHECK(mine->fields["duration"] == 30);
    CHECK(mine->conflicts.empty());
    ok(t.restored->set_scope("carol", {"*"}));
    Device& carol = t.w.add_device("carol");
    pull_all(carol, *t.restored);
    CHECK(ok(carol.get(t.y_visit))->fields == mine->fields);
}

TEST_CASE("a record kept after a restore, given back to its worker and changed upstream since, keeps its lost edit beside the change") {
    CaseloadAfterBackup t;
    pull_all(t.alice, *t.restored);
    pull_all(t.alice, *t.restored);  // asks: z goes; z's visit is not held upstream as her copy holds it
    REQUIRE(holds(t.alice, t.z_visit));
    // Upstream, z is hers again, and its visit changed after the backup was restored.
    ok(t.restored->set_scope("alice", {"client:" + t.x, "client:" + t.y, "client:" + t.z}));
    ok(t.restored->update("office", t.z_visit, {{"notes", "written after the restore"}, {"duration", 30}}));
    sync(t.alice, *t.restored);
    sync(t.alice, *t.restored);
    // The page's version came, with the edit only her copy held beside it, as her change: the
    // two notes are a conflict, on her phone and upstream, for someone to settle. Nothing is lost.
    for (std::optional<Record> record : {ok(t.alice.get(t.z_visit)), ok(t.restored->get(t.z_visit))}) {
        REQUIRE(record.has_value());
        CHECK(record->fields["duration"] == 30);
        REQUIRE(record->conflicts.size() == 1);
        std::set<Json> notes{record->conflicts[0].current.value, record->conflicts[0].losing.value};
        CHECK(notes == std::set<Json>{"written after the backup", "written after the restore"});
    }
    CHECK(ok(t.alice.prepare_pull(100)).release.empty());  // asked about no more
}

TEST_CASE("a record the restored upstream answers is in scope is asked for whole, and its lost edit kept when it comes") {
    CaseloadAfterBackup t;
    pull_all(t.alice, *t.restored);
    // z is hers again upstream before she asks about z's visit: the answer says it is in scope.
    // A page of one record does not bring the visit: it is asked for whole, and the page that
    // brings it keeps what only her copy held.
    ok(t.restored->set_scope("alice", {"client:" + t.x, "client:" + t.y, "client:" + t.z}));
    const PullPage answered = ok(t.restored->pull(ok(t.alice.prepare_pull(1))));
    const auto& in_scope = answered.release.in_scope;
    REQUIRE(std::find(in_scope.begin(), in_scope.end(), t.z_visit) != in_scope.end());
    for (const RecordSnapshot& r : answered.records) CHECK(r.id != t.z_visit);
    ok(t.alice.apply_pull(answered));
    CHECK(ok(t.alice.prepare_pull(100)).refetch == std::vector<std::string>{t.z_visit});
    sync(t.alice, *t.restored);
    sync(t.alice, *t.restored);
    for (std::optional<Record> record : {ok(t.alice.get(t.z_visit)), ok(t.restored->get(t.z_visit))}) {
        REQUIRE(record.has_value());
        CHECK(record->fields["notes"] == "written after the backup");
        CHECK(record->conflicts.empty());
    }
}

TEST_CASE("a pull begun again after a restore and cut off part-way goes on from its page after the app is reopened") {
    CaseloadAfterBackup t;
    ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    PullPage page = ok(t.restored->pull(ok(t.alice.prepare_pull(1))));  // pages of one record
    REQUIRE(page.more);
    ok(t.alice.apply_pull(page));
    const std::int64_t cut_at = ok(t.alice.cursor());
    CHECK(cut_at == page.next);
    World::Member& phone = *t.w.members[0];
    phone.device.reset();
    phone.device = std::make_unique<Device>(
        ok(Device::open(*phone.store, test_schema(), DeviceOptions{.user = "alice", .wall = phone.clock.wall()})));
    Device& alice = *phone.device;
    CHECK(ok(alice.prepare_pull(1)).after == cut_at);
    pull_all(alice, *t.restored, 1);
    CHECK(holds(alice, t.x));
    CHECK(holds(alice, t.x_visit));
    CHECK(holds(alice, t.z_lost_visit));
    CHECK(ok(alice.cursor()) == ok(t.restored->sequence()));
}

TEST_CASE("a pull begun again after a salvage, while one begun after a restore runs, takes nothing off the device either") {
    CaseloadAfterBackup t;
    ok(t.alice.apply_pull(ok(t.restored->pull(ok(t.alice.prepare_pull(100))))));
    ok(t.alice.pull_everything_again());  // as a salvage of the replica asks
    pull_all(t.alice, *t.restored);
    CHECK(holds(t.alice, t.x));
    CHECK(holds(t.alice, t.z_lost_visit));  // a salvage's pull alone would take it off: unseen
    CHECK(holds(t.alice, t.lost_visit));
}

TEST_CASE("a device that missed a restore follows the next one: the second backup's caseloads and changes") {
    CaseloadAfterBackup t;
    // The restored upstream takes a change, is backed up and lost in turn; alice synced with neither.
    const std::string kept_by_second =
        ok(t.restored->create("office", "visit", {{"date", "2020-04-04"}, {"client", t.x}}));
    auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
    REQUIRE(key.is_ok());
    REQUIRE(t.restored_store->backup_to(t.w.dir.file("second.db"), *key).is_ok());
    Store second_store = open_store(t.w.dir.file("second.db"));
    Upstream second = ok(Upstream::open(second_store, test_schema(), UpstreamOptions{.wall = t.w.upstream_clock.wall()}));
    ok(second.after_restore());
    CHECK(ok(t.alice.apply_pull(ok(second.pull(ok(t.alice.prepare_pull(100)))))).restarted);
    pull_all(t.alice, second);
    CHECK(holds(t.alice, t.x));
    CHECK(holds(t.alice, kept_by_second));
    CHECK(holds(t.alice, t.z_lost_visit));
}

TEST_CASE("a device hearing a new epoch in a push answer sends its journal first, then its unsent changes") {
    RestoredTeam team(/*run_after_restore=*/true);
    ok(team.alice.update(team.lost[0], {{"notes", "v2"}}));  // made on top of a lost visit, not sent
    PushReport first = ok(team.alice.apply_push_result(ok(team.restored->push(ok(team.alice.prepare_push(1))))));
    CHECK(first.resent == 9);
    CHECK(first.restarted);
    CHECK(ok(team.alice.cursor()) == 0);
    push_all(team.alice, *team.restored);
    auto visit = ok(team.restored->get(team.lost[0]));
    REQUIRE(visit.has_value());
    CHECK(visit->fields["notes"] == "v2");  // the lost visit, then the edit on top of it
    CHECK(visit->conflicts.empty());
}

TEST_CASE("a change sent again after a restore, which the upstream holds and another worker overwrote, is no conflict") {
    World w;
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    ok(alice.update(id, {{"notes", "alice's"}}));
    push_all(alice, w.upstream);  // acknowledged and journaled; alice has not pulled since
    pull_all(bob, w.upstream);
    ok(bob.update(id, {{"notes", "bob's, having read alice's"}}));  // made on top of hers
    sync(bob, w.upstream);
    auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
    REQUIRE(key.is_ok());
    REQUIRE(w.upstream_store.backup_to(w.dir.file("backup.db"), *key).is_ok());  // holds both
    Store restored_store = open_store(w.dir.file("backup.db"));
    Upstream restored = ok(Upstream::open(restored_store, test_schema(), UpstreamOptions{.wall = w.upstream_clock.wall()}));
    ok(restored.after_restore());
    REQUIRE(ok(restored.get(id))->conflicts.empty());

    // Alice's first pull hears the new epoch; her journal goes back to the outbox, and the page's
    // record is not rebased onto it: the restored upstream may already hold (and have overwritten)
    // what she sends again. She asks first, and hears that it does.
    PullPage page = ok(restored.pull(ok(alice.prepare_pull())));
    REQUIRE(page.records.size() == 1);
    PullReport heard = ok(alice.apply_pull(page));
    CHECK(heard.resent == 2);  // her create and her edit
    CHECK(heard.records == 0);
    CHECK(ok(alice.get(id))->conflicts.empty());
    sync(alice, restored);
    CHECK(ok(alice.outbox()).empty());
    auto mine = ok(alice.get(id));
    CHECK(mine->fields["notes"] == "bob's, having read alice's");
    CHECK(mine->conflicts.empty());
    CHECK(ok(restored.get(id))->conflicts.empty());
}

TEST_CASE("the journal keeps acknowledged changes for a month, then lets them go") {
    World w;
    Device& alice = phone_with_two_journaled(w);
    w.advance(31LL * 24 * kHourMs);
    ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    CHECK(rows(*w.members[0]->store, "sync_journal") == 1);  // only this month's
}

TEST_CASE("the journal's month is counted by the corrected clock: a phone clock set a year ahead lets nothing go") {
    // A bad network time puts the phone a year ahead; the upstream's answers say so. Its
    // acknowledged changes of the last hour are still what a restore would need back.
    World w;
    Device& alice = phone_with_two_journaled(w);
    w.advance(kHourMs);
    w.members[0]->clock.set(*w.members[0]->clock.now + 365LL * 24 * kHourMs);
    ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    CHECK(rows(*w.members[0]->store, "sync_journal") == 3);
    // A month later by the upstream's clock, they go (the phone's clock still a year ahead).
    w.advance(31LL * 24 * kHourMs);
    ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    CHECK(rows(*w.members[0]->store, "sync_journal") == 1);
}

TEST_CASE("an answer's epoch is advisory: anything but an id is ignored, never a failure") {
    for (const std::string epoch : {R"(5)", R"("not an id")", R"(null)", R"({"a":1})", R"([])"}) {
        INFO(epoch);
        const std::string push = R"({"epoch":)" + epoch + R"(,"outcomes":[],"upstream_time":"1750000000000-0"})";
        CHECK(ok(parse_push_result_text(push)).epoch.empty());
        CHECK(ok(parse_push_result(Json::parse(push))).epoch.empty());
        const std::string page = R"({"acks":[],"after":0,"epoch":)" + epoch +
                                 R"(,"evicted_records":[],"evicted_scopes":[],"more":false,"next":0,"records":[],)"
                                 R"("upstream_time":"1750000000000-0"})";
        CHECK(ok(parse_pull_page_text(page)).epoch.empty());
        CHECK(ok(parse_pull_page(Json::parse(page))).epoch.empty());
    }
    const std::string id = std::string(32, 'e');
    CHECK(ok(parse_push_result_text(R"({"epoch":")" + id + R"(","outcomes":[],"upstream_time":"1-0"})")).epoch == id);
}

TEST_CASE("a backup restored a second time numbers above what the first restore gave, so its devices miss nothing") {
    // Restored once; bob syncs with that server well past the backup; weeks later an administrator
    // restores the same backup again (or an older one), and a visit and a caseload change made
    // there must reach bob.
    RestoredTeam team(/*run_after_restore=*/true);
    for (int i = 0; i < 40; ++i) ok(team.restored->create("alice", "visit", kVisit));
    ok(team.restored->set_scope("bob", {"*"}));
    pull_all(team.bob, *team.restored);
    const std::int64_t first_life = ok(team.restored->sequence());

    team.w.advance(21 * 24 * kHourMs);
    Store again_store = open_store(team.w.dir.file("backup-as-taken.db"));
    Upstream again = ok(Upstream::open(again_store, test_schema(),
                                       UpstreamOptions{.wall = team.w.upstream_clock.wall(),
                                                       .pull_lines = PullLines::by_key,
                                                       .file_log_every = 4}));
    ok(again.after_restore());
    CHECK(ok(again.sequence()) > first_life);
    const std::string made_there = ok(again.create("alice", "visit", kVisit));
    pull_all(team.bob, again);
    CHECK(holds(team.bob, made_there));

    // The rule itself: above the backup by the gap at least, above the clock's floor, and a
    // clock too far ahead to be true is not believed.
    CHECK(Upstream::restored_sequence(7, 0) == 7 + Upstream::kRestoreGap);
    CHECK(Upstream::restored_sequence(7, kStartMs) == (kStartMs / 1000) * Upstream::kRestoreSeqPerSecond);
    CHECK(Upstream::restored_sequence(7, kStartMs + 1000) > Upstream::restored_sequence(7, kStartMs));
    CHECK(Upstream::restored_sequence(7, std::int64_t{1} << 62) == 7 + Upstream::kRestoreGap);
    CHECK(Upstream::restored_sequence(7, kStartMs) < (std::int64_t{1} << 53));
}

TEST_CASE("without the jump, a device that pulled beyond the backup would never see what the restored upstream numbers again") {
    // Why after_restore() exists: the restored upstream gives out the lost server's numbers again.
    // (A cursor beyond the log is refused; once the log has grown past it, nothing tells.)
    RestoredTeam team(/*run_after_restore=*/false);
    std::vector<std::string> made_after;
    for (int i = 0; i < 5; ++i) made_after.push_back(ok(team.restored->create("alice", "visit", kVisit)));
    pull_all(team.bob, *team.restored);
    CHECK_FALSE(holds(team.bob, made_after.front()));  // numbered again below bob's cursor
    CHECK(holds(team.bob, made_after.back()));         // numbered past it
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

using namespace testing;

TEST_CASE("an upstream whose store went back behind what its server saw refuses to write but still serves pages") {
    // The backup loaded under a running server, without after_restore: its log ends before the
    // numbers the server had committed and noted.
    RestoredTeam team(/*run_after_restore=*/false);
    auto seen = std::make_shared<std::atomic<std::int64_t>>(0);
    team.w.upstream.share_sequence_seen(seen);
    ok(team.w.upstream.note_committed_sequence());
    REQUIRE(seen->load() == ok(team.w.upstream.sequence()));
    team.restored->share_sequence_seen(seen);

    // A read's snapshot may be older than a commit already noted: pages are never refused.
    PullRequest request;
    request.replica = team.alice.replica_id();  // known to the backup: it pulled before it
    request.user = "alice";
    request.limit = 100;
    auto page = team.restored->read_page(request);
    INFO(page.status().to_string());
    REQUIRE(page.is_ok());
    CHECK(page->records.size() == team.before.size());
    // A write is: the numbers it would hand out were given already, to changes the backup lacks.
    auto made = team.restored->create("alice", "visit", kVisit);
    REQUIRE_FALSE(made.is_ok());
    CHECK(made.status().code() == ErrorCode::corrupt);
    CHECK_THAT(made.status().message(), Catch::Contains("went back in time") && Catch::Contains("restore"));

    // Marked restored, its numbers jump past what was seen, and it writes again.
    ok(team.restored->after_restore());
    CHECK(team.restored->create("alice", "visit", kVisit).is_ok());
}

}  // namespace tsunagu::sync
