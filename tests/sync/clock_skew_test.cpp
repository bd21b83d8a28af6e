// Wrong device clocks: changes are never refused or lost, and do not win by accident.
#include <catch2/catch.hpp>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using namespace testing;

const Json kVisit = {{"date", "2020-04-01"}, {"notes", "start"}};

struct Pair {
    World w;
    Device& skewed = w.add_device("alice");
    Device& honest = w.add_device("bob");
    std::string id;

    Pair() {
        ok(w.upstream.set_scope("alice", {"*"}));
        ok(w.upstream.set_scope("bob", {"*"}));
        id = ok(honest.create("visit", kVisit));
        sync(honest, w.upstream);
        sync(skewed, w.upstream);
    }
};

}  // namespace

TEST_CASE("two processes on one replica stamp in order: after one corrects the clock the other's edits follow it") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    // The phone's clock is an hour slow; the app and a command have its replica open at once.
    FakeClock phone;
    *phone.now = kStartMs - kHourMs;
    Store app_store = open_store(w.dir.file("phone.db"));
    Store command_store = open_store(w.dir.file("phone.db"));
    Device app = ok(Device::open(app_store, test_schema(), DeviceOptions{.user = "alice", .wall = phone.wall()}));
    Device command =
        ok(Device::open(command_store, test_schema(), DeviceOptions{.user = "alice", .wall = phone.wall()}));
    const std::string id = ok(app.create("visit", kVisit));
    sync(command, w.upstream);  // the command learns the upstream's time: an hour ahead of the phone's
    REQUIRE(command.clock_offset_ms().value_or(0) >= kHourMs - 1000);

    // The app, open since before, edits: its stamp follows the command's correction, not its own
    // memory of an uncorrected clock (which would make this edit lose to older ones).
    ok(app.update(id, {{"notes", "after the command's sync"}}));
    PushBatch batch = ok(app.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    CHECK(batch.changes[0].hlc.wall_ms >= kStartMs);
    CHECK(app.clock_offset_ms().value_or(0) >= kHourMs - 1000);
}

TEST_CASE("the upstream re-stamps a change from a clock hours ahead instead of refusing it") {
    Pair p;
    p.w.clock_of(0).advance(5 *
                            kHourMs);  // alice's phone is five hours ahead, and never synced since
    ok(p.skewed.update(p.id, {{"notes", "from the future"}}));
    PushBatch batch = ok(p.skewed.prepare_push());
    REQUIRE(batch.changes[0].hlc.wall_ms == kStartMs + 5 * kHourMs);
    PushResult result = ok(p.w.upstream.push(batch));
    REQUIRE(result.outcomes[0].status == PushStatus::accepted);
    CHECK(result.outcomes[0].hlc.wall_ms <=
          kStartMs);  // stamped when it was made, in upstream time
    CHECK(ok(p.skewed.apply_push_result(result)).restamped == 1);
    // Her journal keeps the stamp the upstream gave it, for a restored upstream to order it alike.
    CHECK(scalar(*p.w.members[0]->store, "SELECT max(hlc) FROM sync_journal") ==
          static_cast<std::int64_t>(result.outcomes[0].hlc.packed()));
    // The upstream did not adopt the wrong clock: an honest edit a minute later wins.
    p.w.advance(60'000);
    sync(p.honest, p.w.upstream);
    ok(p.honest.update(p.id, {{"notes", "a minute later"}}));
    sync(p.honest, p.w.upstream);
    sync(p.skewed, p.w.upstream);
    CHECK(ok(p.w.upstream.get(p.id))->fields["notes"] == "a minute later");
    CHECK(ok(p.skewed.get(p.id))->fields["notes"] == "a minute later");
    CHECK(ok(p.skewed.get(p.id))->conflicts.empty());  // the honest edit had seen it
}

TEST_CASE("a device whose clock is hours ahead re-stamps its outbox in order before pushing") {
    Pair p;
    p.w.clock_of(0).advance(3 * kHourMs);
    ok(p.skewed.update(p.id, {{"notes", "one"}}));
    p.w.clock_of(0).advance(1000);
    ok(p.skewed.update(p.id, {{"notes", "two"}, {"duration", 20}}));
    p.w.clock_of(0).advance(1000);
    const std::string other = ok(p.skewed.create("visit", kVisit));
    // A sync starts by learning the upstream's time from a pull.
    PullReport report = ok(p.skewed.apply_pull(ok(p.w.upstream.pull(ok(p.skewed.prepare_pull())))));
    CHECK(report.restamped == 3);
    auto pending = ok(p.skewed.outbox());
    REQUIRE(pending.size() == 3);
    for (const auto& change : pending) CHECK(change.change.hlc.wall_ms <= kStartMs + 60'000);
    CHECK(pending[0].change.hlc < pending[1].change.hlc);
    CHECK(pending[1].change.hlc < pending[2].change.hlc);
    PushResult result = ok(p.w.upstream.push(ok(p.skewed.prepare_push())));
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(result.outcomes[i].hlc == pending[i].change.hlc);  // kept as is
    ok(p.skewed.apply_push_result(result));
    CHECK(ok(p.w.upstream.get(p.id))->fields["notes"] == "two");
    CHECK(ok(p.w.upstream.get(other)).has_value());
    // And new edits are stamped with the corrected clock.
    ok(p.skewed.update(p.id, {{"notes", "three"}}));
    CHECK(ok(p.skewed.outbox())[0].change.hlc.wall_ms < kStartMs + 60'000);
}

TEST_CASE("a device that first hears the upstream's time from a clock found ahead re-stamps changes no longer ahead") {
    World w;
    Device& alice = w.add_device("alice");
    ok(w.upstream.set_scope("alice", {"*"}));
    w.clock_of(0).set(kStartMs + 3 * kHourMs);  // a new phone, three hours fast, never synced
    const std::string id = ok(alice.create("visit", kVisit));
    w.advance(4 * kHourMs);  // by the time it syncs, its stamp is no longer ahead of the upstream's
    CHECK(ok(alice.needs_time_first()));
    PullReport learnt = ok(alice.apply_pull(ok(w.upstream.pull(ok(alice.prepare_pull())))));
    CHECK(learnt.restamped == 1);
    const auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(std::llabs(pending[0].change.hlc.wall_ms - kStartMs) < 60'000);  // when it was made
    PushResult result = ok(w.upstream.push(ok(alice.prepare_push())));
    CHECK(result.outcomes[0].hlc == pending[0].change.hlc);
    CHECK(ok(w.upstream.get(id)).has_value());
}

TEST_CASE("a change refused while the clock was ahead is re-stamped too, and keeps its real time when sent again") {
    Pair p;
    p.w.clock_of(0).advance(5 * kHourMs);  // alice's clock is set five hours forward
    ok(p.skewed.update(p.id, {{"notes", "refused first"}}));
    const PushGate refuse_all = [](const ChangeSet&, const RecordState*) {
        return Status(ErrorCode::conflict, "the record is approved");
    };
    const PushResult refused = ok(p.w.upstream.push(ok(p.skewed.prepare_push()), refuse_all));
    REQUIRE(refused.outcomes[0].status == PushStatus::refused);
    const PushReport report = ok(p.skewed.apply_push_result(refused));
    CHECK(report.refused == 1);
    CHECK(report.restamped == 1);
    const auto held = ok(p.skewed.outbox());
    REQUIRE(held.size() == 1);
    CHECK(held[0].state == PendingState::refused);
    CHECK(held[0].change.hlc.wall_ms <= kStartMs + 60'000);  // when it was made, in upstream time
    // Returned hours later, it goes again, stamped when it was made: not when it was sent again.
    p.w.advance(2 * kHourMs);
    CHECK(ok(p.skewed.retry_refused()) == 1);
    const PushResult accepted = ok(p.w.upstream.push(ok(p.skewed.prepare_push())));
    REQUIRE(accepted.outcomes[0].status == PushStatus::accepted);
    CHECK(accepted.outcomes[0].hlc.wall_ms <= kStartMs + 60'000);
}

TEST_CASE("a device with a boot clock stamps edits made after its clock was set wrong with their real time") {
    World w;
    Device& alice = w.add_device("alice", test_schema(), /*boot_clock=*/true);
    Device& bob = w.add_device("bob");
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    const std::string id = ok(bob.create("visit", kVisit));
    sync(bob, w.upstream);
    sync(alice, w.upstream);  // alice hears the upstream's time

    w.clock_of(0).set(kStartMs + 3 * kHourMs);  // her wall clock is set three hours forward
    w.advance(kHourMs);
    ok(alice.update(id, {{"notes", "alice, an hour in"}}));
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(std::llabs(pending[0].change.hlc.wall_ms - (kStartMs + kHourMs)) < 60'000);  // not four hours in
    CHECK_FALSE(ok(alice.needs_time_first()));  // kept by the boot clock: it pushes first
    w.advance(kHourMs);
    ok(bob.update(id, {{"notes", "bob, two hours in"}}));
    CHECK(ok(bob.needs_time_first()));  // no boot clock: it learns the time before it pushes
    sync(bob, w.upstream);
    w.advance(2 * kHourMs);
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.get(id))->fields["notes"] == "bob, two hours in");
    CHECK(ok(alice.get(id))->fields["notes"] == "bob, two hours in");
    CHECK(ok(alice.get(id))->conflicts.size() == 1);

    // Set back below the real time, it stamps the real time too: a later edit wins over bob's.
    w.clock_of(0).set(kStartMs - 5 * kHourMs);
    w.advance(kHourMs);
    ok(alice.update(id, {{"notes", "alice, five hours in"}}));
    CHECK(std::llabs(ok(alice.outbox())[0].change.hlc.wall_ms - (kStartMs + 5 * kHourMs)) < 60'000);
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.get(id))->fields["notes"] == "alice, five hours in");
}

TEST_CASE("a device clock jumping backwards keeps its edits in order") {
    Pair p;
    ok(p.skewed.update(p.id, {{"notes", "before the jump"}}));
    p.w.clock_of(0).advance(-6 * kHourMs);
    ok(p.skewed.update(p.id, {{"notes", "after the jump"}}));
    sync(p.skewed, p.w.upstream);
    sync(p.honest, p.w.upstream);
    CHECK(ok(p.honest.get(p.id))->fields["notes"] == "after the jump");
    CHECK(ok(p.honest.get(p.id))->conflicts.empty());
}

TEST_CASE("a device whose clock is hours behind still syncs its work") {
    Pair p;
    p.w.clock_of(0).advance(-4 * kHourMs);
    ok(p.skewed.update(p.id, {{"duration", 15}}));
    sync(p.skewed, p.w.upstream);
    sync(p.honest, p.w.upstream);
    CHECK(ok(p.honest.get(p.id))->fields["duration"] == 15);
    // Having learned the upstream's time, its next edits are stamped correctly.
    p.w.advance(10'000);
    ok(p.skewed.update(p.id, {{"notes", "corrected"}}));
    CHECK(ok(p.skewed.outbox())[0].change.hlc.wall_ms >= kStartMs + 10'000 - 1'000);
}

TEST_CASE("a change made offline on a clock set back is stamped with when it was made, and wins over an earlier one") {
    Pair p;
    p.w.clock_of(0).advance(-4 * kHourMs);  // alice's phone is set back four hours, offline
    p.w.advance(60'000);
    ok(p.honest.update(p.id, {{"notes", "honest, earlier"}}));
    p.w.advance(30 * 60'000);
    ok(p.skewed.update(p.id, {{"notes", "skewed, thirty minutes later"}}));
    sync(p.honest, p.w.upstream);
    // Learning the upstream's time, alice's device re-stamps the edit with the time it was made
    // as corrected by the offset: without it, the stamp is the last reading the clock held, from
    // before bob's edit.
    PullReport learned = ok(p.skewed.apply_pull(ok(p.w.upstream.pull(ok(p.skewed.prepare_pull())))));
    CHECK(learned.restamped == 1);
    auto pending = ok(p.skewed.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].change.hlc.wall_ms == kStartMs + 31 * 60'000);
    sync(p.skewed, p.w.upstream);
    sync(p.honest, p.w.upstream);
    for (Device* d : {&p.skewed, &p.honest}) {
        auto record = ok(d->get(p.id));
        CHECK(record->fields["notes"] == "skewed, thirty minutes later");
        REQUIRE(record->conflicts.size() == 1);  // concurrent: bob's value stays, losing
        CHECK(record->conflicts[0].losing.value == "honest, earlier");
    }
    CHECK(ok(p.w.upstream.get(p.id))->fields["notes"] == "skewed, thirty minutes later");
}

TEST_CASE("a device knows when its clock was set back since it last heard the upstream") {
    Pair p;
    ok(p.skewed.update(p.id, {{"notes", "on time"}}));
    CHECK_FALSE(ok(p.skewed.stamped_from_memory()));
    p.w.clock_of(0).advance(-4 * kHourMs);
    ok(p.skewed.update(p.id, {{"notes", "after the clock went back"}}));
    CHECK(ok(p.skewed.stamped_from_memory()));  // its sync learns the time before it pushes
    ok(p.skewed.apply_pull(ok(p.w.upstream.pull(ok(p.skewed.prepare_pull())))));
    CHECK_FALSE(ok(p.skewed.stamped_from_memory()));  // re-stamped with when it was made
}

TEST_CASE("a skewed change concurrent with an honest one does not win by accident") {
    Pair p;
    p.w.clock_of(0).advance(8 * kHourMs);
    ok(p.skewed.update(p.id, {{"notes", "skewed, earlier in real time"}}));
    p.w.advance(30'000);
    ok(p.honest.update(p.id, {{"notes", "honest, later"}}));
    sync(p.honest, p.w.upstream);
    sync(p.skewed, p.w.upstream);  // learns the time, re-stamps, pushes
    sync(p.honest, p.w.upstream);
    for (Device* d : {&p.skewed, &p.honest}) {
        auto record = ok(d->get(p.id));
        CHECK(record->fields["notes"] == "honest, later");
        REQUIRE(record->conflicts.size() == 1);  // and nothing was lost
        CHECK(record->conflicts[0].losing.value == "skewed, earlier in real time");
    }
}

TEST_CASE("a device knows how far its clock is off and says so with its pushes") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    w.clock_of(0).advance(-3 * kHourMs);  // the phone's clock is three hours behind
    CHECK_FALSE(alice.clock_offset_ms().has_value());  // it has not heard the upstream yet
    ok(alice.create("visit", kVisit));
    CHECK_FALSE(ok(alice.prepare_push()).clock_offset_ms.has_value());
    sync(alice, w.upstream);
    REQUIRE(alice.clock_offset_ms().has_value());
    CHECK(*alice.clock_offset_ms() == 3 * kHourMs);  // the upstream's clock is ahead of it
    ok(alice.create("visit", kVisit));
    const PushBatch batch = ok(alice.prepare_push());
    CHECK(batch.clock_offset_ms == 3 * kHourMs);
    CHECK(ok(alice.prepare_push_text()).clock_offset_ms == 3 * kHourMs);
    CHECK(Json(batch)["clock_offset"] == 3 * kHourMs);
    CHECK(ok(parse_push_batch(Json(batch))).clock_offset_ms == 3 * kHourMs);
    // Reopened, it still knows.
    Device again = ok(Device::open(*w.members[0]->store, test_schema(), DeviceOptions{.user = "alice"}));
    CHECK(again.clock_offset_ms() == 3 * kHourMs);
}

TEST_CASE("a device says how far its clock is off with its pulls too, for phones that only read") {
    World w;
    ok(w.upstream.set_scope("sato", {"*"}));
    Device& sato = w.add_device("sato");
    w.clock_of(0).advance(2 * kHourMs);  // two hours ahead
    CHECK_FALSE(ok(sato.prepare_pull(100)).clock_offset_ms.has_value());  // not known before the first sync
    CHECK_FALSE(Json(ok(sato.prepare_pull(100))).contains("clock_offset"));
    pull_all(sato, w.upstream);
    const PullRequest request = ok(sato.prepare_pull(100));
    CHECK(request.clock_offset_ms == -2 * kHourMs);
    const Json wire = request;
    CHECK(wire["clock_offset"] == -2 * kHourMs);
    CHECK(ok(parse_pull_request(wire)).clock_offset_ms == -2 * kHourMs);

    Json null_offset = wire;
    null_offset["clock_offset"] = nullptr;  // as "not known"
    CHECK_FALSE(ok(parse_pull_request(null_offset)).clock_offset_ms.has_value());
    for (const Json& bad : {Json("two hours"), Json(1.5), Json::array()}) {
        Json malformed = wire;
        malformed["clock_offset"] = bad;
        auto parsed = parse_pull_request(malformed);
        REQUIRE_FALSE(parsed.is_ok());
        CHECK(parsed.status().message().find("clock_offset") != std::string::npos);
    }
}

TEST_CASE("an answer slow to arrive does not set a right clock back: the reading's age is counted from its start") {
    World w;
    ok(w.upstream.set_scope("sato", {"*"}));
    Device& sato = w.add_device("sato", test_schema(), /*boot_clock=*/true);  // its clock is right
    ok(sato.create("visit", kVisit));
    // The upstream reads its clock as it answers; the answer takes 10 s to download over a poor
    // line (or waits for another to be applied): the device counts those 10 s.
    PushResult result = ok(w.upstream.push(ok(sato.prepare_push())));
    w.advance(10'000);
    result.upstream_time_age_ms = 10'000;
    ok(sato.apply_push_result(result));
    CHECK(std::llabs(sato.clock_offset_ms().value_or(kHourMs)) <= 1'000);
    PullPage page = ok(w.upstream.pull(ok(sato.prepare_pull(100))));
    w.advance(10'000);
    page.upstream_time_age_ms = 10'000;
    ok(sato.apply_pull(page));
    CHECK(std::llabs(sato.clock_offset_ms().value_or(kHourMs)) <= 1'000);
    // Uncounted, it would have set her clock 10 s back; counted, the time it keeps by the boot
    // clock is the upstream's too: an edit after her wall clock is set wrong is stamped right.
    w.advance(5'000);
    w.clock_of(0).set(kStartMs - 3 * kHourMs);
    ok(sato.create("visit", kVisit));
    const PushBatch next = ok(sato.prepare_push());
    REQUIRE(next.changes.size() == 1);
    CHECK(std::llabs(next.changes[0].hlc.wall_ms - *w.upstream_clock.now) <= 1'000);
}

TEST_CASE("an upstream whose clock ran a day fast and was set back stamps by its wall clock again, and its devices too") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    constexpr std::int64_t kDayMs = 24 * kHourMs;
    // Pushes alice's outbox; the stamp the upstream gave its one change.
    auto push_one = [&] {
        PushResult result = ok(w.upstream.push(ok(alice.prepare_push())));
        REQUIRE(result.outcomes.size() == 1);
        REQUIRE(result.outcomes[0].status == PushStatus::accepted);
        ok(alice.apply_push_result(result));
        return result.outcomes[0].hlc;
    };
    // The server booted a day fast (before NTP); alice synced with it and learned its time.
    *w.upstream_clock.now += kDayMs;
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    REQUIRE(alice.clock_offset_ms().value_or(0) >= kDayMs - 1000);
    ok(alice.update(id, {{"notes", "stamped in the server's fast day"}}));
    REQUIRE(push_one().wall_ms >= kStartMs + kDayMs - 1000);

    // Its clock is set right. A server started on the store now lets go of the stored clock.
    *w.upstream_clock.now -= kDayMs;
    Upstream restarted =
        ok(Upstream::open(w.upstream_store, test_schema(), UpstreamOptions{.wall = w.upstream_clock.wall()}));
    CHECK(restarted.take_clock_let_go_ms() >= kDayMs - 1000);
    CHECK(restarted.take_clock_let_go_ms() == 0);  // said once
    // The running one, too, at its next transaction: her edit is stamped when it was made, in
    // the server's real time, and her phone learns that time (not the day ahead it held).
    ok(alice.update(id, {{"notes", "after the server's clock was set right"}}));
    CHECK(push_one().wall_ms <= kStartMs + 1000);
    CHECK(w.upstream.take_clock_let_go_ms() >= kDayMs - 60'000);
    CHECK(std::llabs(alice.clock_offset_ms().value_or(kDayMs)) < 1000);
    ok(alice.create("visit", kVisit));
    CHECK(push_one().wall_ms <= kStartMs + 1000);
    // Nothing was lost: her last edit is the value in force (it had seen the fast-stamped one).
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.get(id))->fields["notes"] == "after the server's clock was set right");
    CHECK(ok(alice.get(id))->conflicts.empty());
}

}  // namespace tsunagu::sync
