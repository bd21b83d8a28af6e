// Refused changes kept for supervisors (api/src/refused_changes.h), on a real encrypted store: what
// is kept, what is dropped, and the limits that keep a broken or hostile device from filling it.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "api/src/refused_changes.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "sync/change.h"

using namespace tsunagu;
using namespace tsunagu::api;

namespace {

struct Kept {
    testing::TempDir dir{"tsunagu-refused"};
    Store store = testing::open_test_store(dir.file("server.db"));
    Kept() { REQUIRE(RefusedChanges::create_schema(store)); }

    // A batch of `n` change sets from `device`, and one outcome for each.
    static std::pair<sync::PushBatch, std::vector<sync::PushOutcome>> batch(const std::string& device, std::size_t n,
                                                                           sync::PushStatus status,
                                                                           const std::string& note = "note") {
        sync::PushBatch b;
        b.replica = device;
        b.user = "worker-" + device;
        std::vector<sync::PushOutcome> outcomes;
        for (std::size_t i = 0; i < n; ++i) {
            sync::ChangeSet c;
            c.id = sync::new_id();
            c.collection = "home_visit";
            c.record = sync::new_id();
            c.replica = device;
            c.user = b.user;
            c.set = {{"observations", note}};
            outcomes.push_back({c.id, c.record, status, 0, {}, ErrorCode::forbidden, "outside the caseload", "outside_scope"});
            b.changes.push_back(std::move(c));
        }
        return {std::move(b), std::move(outcomes)};
    }
    Result<KeptRefusals> keep(std::pair<sync::PushBatch, std::vector<sync::PushOutcome>>& pushed) {
        return with_result([&] { return RefusedChanges::keep(store, pushed.first, pushed.second, "team-a", 1000); });
    }
    template <typename F>
    auto with_result(F f) -> decltype(f()) {
        REQUIRE(store.begin_immediate());
        auto r = f();
        REQUIRE(store.commit());
        return r;
    }
    std::size_t open(const std::string& team = "team-a") {
        auto listed = RefusedChanges::list(store, team, false, 5000);
        REQUIRE(listed);
        return listed->size();
    }
};

}  // namespace

TEST_CASE("refused change sets are kept with the change whole, and accepted ones are dropped") {
    Kept k;
    auto refused = Kept::batch("phone-1", 2, sync::PushStatus::refused);
    auto kept = k.keep(refused);
    REQUIRE(kept);
    CHECK(kept->kept == 2);
    CHECK(k.open() == 2);
    CHECK(k.open("team-b") == 0);
    auto one = RefusedChanges::get(k.store, refused.first.changes[0].id);
    REQUIRE(one);
    REQUIRE(one->has_value());
    CHECK((*one)->reason == "outside the caseload");
    CHECK((*one)->code == "forbidden");
    CHECK((*one)->cause == "outside_scope");
    CHECK(nlohmann::json::parse((*one)->change)["set"]["observations"] == "note");

    // The first is accepted later (its cause was fixed): it is in its record's history now.
    auto accepted = refused;
    accepted.second[0].status = sync::PushStatus::accepted;
    accepted.second.resize(1);
    accepted.first.changes.resize(1);
    REQUIRE(k.keep(accepted));
    CHECK(k.open() == 1);
    auto gone = RefusedChanges::get(k.store, refused.first.changes[0].id);
    REQUIRE(gone);
    CHECK_FALSE(gone->has_value());
}

TEST_CASE("a device keeps at most 1,000 open refusals, each at most 64 KiB: the rest is answered, not kept") {
    Kept k;
    auto many = Kept::batch("phone-1", RefusedChanges::kMaxKeptPerDevice + 1, sync::PushStatus::refused);
    auto kept = k.keep(many);
    REQUIRE(kept);
    CHECK(kept->kept == RefusedChanges::kMaxKeptPerDevice);
    CHECK(kept->not_kept == 1);
    // Another device has its own room.
    auto other = Kept::batch("phone-2", 1, sync::PushStatus::refused, std::string(RefusedChanges::kMaxKeptBytes, 'x'));
    kept = k.keep(other);
    REQUIRE(kept);
    CHECK(kept->kept == 0);
    CHECK(kept->not_kept == 1);
    auto small = Kept::batch("phone-2", 1, sync::PushStatus::refused);
    kept = k.keep(small);
    REQUIRE(kept);
    CHECK(kept->kept == 1);
}

TEST_CASE("a user keeps at most 5,000 open refusals whatever the number of devices they sign in from") {
    Kept k;
    const std::size_t devices = RefusedChanges::kMaxKeptPerUser / RefusedChanges::kMaxKeptPerDevice;
    for (std::size_t i = 0; i < devices; ++i) {
        auto full = Kept::batch("phone-" + std::to_string(i), RefusedChanges::kMaxKeptPerDevice, sync::PushStatus::refused);
        for (auto& change : full.first.changes) change.user = full.first.user = "worker";
        REQUIRE(k.keep(full)->kept == RefusedChanges::kMaxKeptPerDevice);
    }
    auto one_more = Kept::batch("phone-new", 1, sync::PushStatus::refused);
    one_more.first.user = "worker";
    auto kept = k.keep(one_more);
    REQUIRE(kept);
    CHECK(kept->kept == 0);
    CHECK(kept->not_kept == 1);
    // Another user has room of their own.
    auto other = Kept::batch("phone-other", 1, sync::PushStatus::refused);
    CHECK(k.keep(other)->kept == 1);
}

TEST_CASE("a change id kept for one device is not touched by another device's push") {
    Kept k;
    auto mine = Kept::batch("phone-1", 1, sync::PushStatus::refused, "mine");
    REQUIRE(k.keep(mine));
    auto theirs = Kept::batch("phone-2", 1, sync::PushStatus::refused, "theirs");
    theirs.first.changes[0].id = mine.first.changes[0].id;
    theirs.second[0].change_id = mine.first.changes[0].id;
    auto kept = k.keep(theirs);
    REQUIRE(kept);
    CHECK(kept->not_kept == 1);
    // Nor dropped by it when "accepted" there.
    theirs.second[0].status = sync::PushStatus::accepted;
    REQUIRE(k.keep(theirs));
    auto still = RefusedChanges::get(k.store, mine.first.changes[0].id);
    REQUIRE(still);
    REQUIRE(still->has_value());
    CHECK((*still)->device_id == "phone-1");
    CHECK((*still)->times == 1);
    CHECK(nlohmann::json::parse((*still)->change)["set"]["observations"] == "mine");
}

TEST_CASE("a dismissed change stays dismissed when sent again, and its refusal carries the comment") {
    Kept k;
    auto refused = Kept::batch("phone-1", 1, sync::PushStatus::refused);
    REQUIRE(k.keep(refused));
    const std::string id = refused.first.changes[0].id;
    REQUIRE(k.with_result([&] { return RefusedChanges::dismiss(k.store, id, "sato", "ben visits her now", 2000); }));
    CHECK(k.with_result([&] { return RefusedChanges::dismiss(k.store, id, "sato", "again", 2001); }).code() ==
          ErrorCode::conflict);
    CHECK(k.with_result([&] { return RefusedChanges::dismiss(k.store, "nope", "sato", "", 2001); }).code() ==
          ErrorCode::not_found);
    auto again = Kept::batch("phone-1", 1, sync::PushStatus::refused);
    again.first.changes[0] = refused.first.changes[0];
    again.second[0].change_id = id;
    auto kept = k.keep(again);
    REQUIRE(kept);
    CHECK(kept->kept == 1);
    CHECK(again.second[0].reason == "outside the caseload (your supervisor dismissed this change: ben visits her now)");
    CHECK(k.open() == 0);
    auto dismissed = RefusedChanges::list(k.store, "team-a", true, 10);
    REQUIRE(dismissed);
    REQUIRE(dismissed->size() == 1);
    CHECK(dismissed->front().times == 2);
    CHECK(dismissed->front().reason == "outside the caseload");
    CHECK(dismissed->front().dismissed_by == "sato");
}

TEST_CASE("dismissed changes are purged once dismissed longer than kept and open ones stay") {
    Kept k;
    auto refused = Kept::batch("phone-1", 3, sync::PushStatus::refused);
    REQUIRE(k.keep(refused));
    const std::string old_one = refused.first.changes[0].id, recent = refused.first.changes[1].id;
    REQUIRE(k.with_result([&] { return RefusedChanges::dismiss(k.store, old_one, "sato", "not ours", 2000); }));
    REQUIRE(k.with_result([&] { return RefusedChanges::dismiss(k.store, recent, "sato", "not ours", 5000); }));

    auto purged = k.with_result([&] { return RefusedChanges::purge_dismissed(k.store, 5000); });
    REQUIRE(purged);
    CHECK(*purged == 1);
    CHECK_FALSE(RefusedChanges::get(k.store, old_one)->has_value());
    CHECK(RefusedChanges::get(k.store, recent)->has_value());  // dismissed at 5000: not before it
    CHECK(k.open() == 1);                                      // open ones are work: never purged
    CHECK(*k.with_result([&] { return RefusedChanges::purge_dismissed(k.store, 5000); }) == 0);

    // The worker's device still held the purged one and sends it again: kept anew, open.
    auto again = Kept::batch("phone-1", 1, sync::PushStatus::refused);
    again.first.changes[0] = refused.first.changes[0];
    again.second[0].change_id = old_one;
    REQUIRE(k.keep(again));
    auto back = RefusedChanges::get(k.store, old_one);
    REQUIRE(back->has_value());
    CHECK((*back)->dismissed_by.empty());
    CHECK((*back)->times == 1);
    CHECK(k.open() == 2);
}
