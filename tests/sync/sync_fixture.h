// Shared pieces of the sync tests: a small schema, real encrypted stores, a settable clock, and
// the push/pull loops that the server and device library will later carry over HTTP.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "support/temp_dir.h"
#include "sync/engine.h"
#include "sync/merge.h"

namespace tsunagu::sync::testing {

// 2025-06-15, in milliseconds.
inline constexpr std::int64_t kStartMs = 1'750'000'000'000;
inline constexpr std::int64_t kHourMs = 3'600'000;

// A wall clock the test moves by hand (skewed, rewound), and the boot clock of its machine:
// advance() is time passing (both move), set() someone setting the wall clock (the boot clock
// does not move).
struct FakeClock {
    std::shared_ptr<std::int64_t> now = std::make_shared<std::int64_t>(kStartMs);
    std::shared_ptr<std::int64_t> since_boot = std::make_shared<std::int64_t>(0);
    WallClock wall() const {
        auto shared = now;
        return [shared] { return *shared; };
    }
    BootClock boot() const {
        auto shared = since_boot;
        return [shared] { return BootReading{42, *shared}; };
    }
    void advance(std::int64_t ms) const {
        *now += ms;
        *since_boot += ms;
    }
    void set(std::int64_t ms) const { *now = ms; }
};

// client (scope: itself), visit (scope: its client), meeting (scope: its owner).
inline Schema test_schema(int version = 1) {
    Schema schema;
    schema.version = version;
    CollectionSchema client{"client", {}, {ScopeRule::Kind::self, "", "client:"}, 1};
    client.fields = {
        {.name = "name", .type = FieldType::string, .required = true, .max = 40},
        {.name = "area", .type = FieldType::enumeration, .choices = {"north", "south", "east"}},
        {.name = "notes", .type = FieldType::text, .max = 2000},
    };
    CollectionSchema visit{"visit", {}, {ScopeRule::Kind::field, "client", "client:"}, 1};
    visit.fields = {
        {.name = "date", .type = FieldType::date, .required = true},
        {.name = "client", .type = FieldType::reference, .target = "client"},
        {.name = "duration", .type = FieldType::integer, .min = 1, .max = 1440},
        {.name = "purpose",
         .type = FieldType::enumeration,
         .choices = {"check_in", "crisis", "discharge"}},
        {.name = "notes", .type = FieldType::text, .max = 2000},
        {.name = "flags",
         .type = FieldType::list,
         .max = 3,
         .choices = {"risk", "housing", "medication"},
         .item = FieldType::enumeration},
    };
    CollectionSchema meeting{"meeting", {}, {}, 1};
    meeting.fields = {
        {.name = "kind",
         .type = FieldType::enumeration,
         .required = true,
         .choices = {"subcommittee", "working_group", "council"}},
        {.name = "date", .type = FieldType::date},
        {.name = "participants", .type = FieldType::integer, .min = 0, .max = 500},
    };
    schema.collections = {client, visit, meeting};
    if (version >= 2) {
        // v2: a new field, and a new choice for purpose.
        schema.collections[1].fields.push_back({.name = "mood",
                                                .type = FieldType::enumeration,
                                                .choices = {"low", "ok", "good"},
                                                .since = 2});
        schema.collections[1].fields[3].choices.push_back("phone");
    }
    return schema;
}

inline Store open_store(const std::string& path) {
    std::vector<std::uint8_t> key(32, 0x5a);
    auto source = KeySource::raw_key(key);
    REQUIRE(source.is_ok());
    auto store = Store::open(path, *source);
    if (!store) FAIL(store.status().to_string());
    return std::move(store).value();
}

// Unwraps a Result, failing the test with its message.
template <typename T>
T ok(Result<T> result) {
    if (!result) FAIL(result.status().to_string());
    return std::move(result).value();
}
inline void ok(const Status& status) {
    if (!status) FAIL(status.to_string());
}

// Pushes every change due, batch by batch, and applies the answers.
inline void push_all(Device& device, Upstream& upstream, std::size_t batch = 100) {
    for (int round = 0; round < 10'000; ++round) {
        PushBatch sent = ok(device.prepare_push(batch));
        if (sent.changes.empty()) return;
        ok(device.apply_push_result(ok(upstream.push(sent))));
    }
    FAIL("push did not finish");
}

// Pulls pages until the device is up to date. Returns how many records came whole and how many
// were kept (held by the device as they are).
struct PullTotals {
    std::size_t records = 0, kept = 0;
};
inline PullTotals pull_all(Device& device, Upstream& upstream, std::size_t page = 100) {
    PullTotals totals;
    for (int round = 0; round < 10'000; ++round) {
        PullPage got = ok(upstream.pull(ok(device.prepare_pull(page))));
        PullReport report = ok(device.apply_pull(got));
        REQUIRE_FALSE(report.stale);
        totals.records += report.records;
        totals.kept += report.kept;
        if (!got.more && !report.restarted) return totals;
    }
    FAIL("pull did not finish");
    return totals;
}

inline void sync(Device& device, Upstream& upstream) {
    push_all(device, upstream);
    pull_all(device, upstream);
}

// The one number a query answers ("SELECT count(*) FROM ...").
inline std::int64_t scalar(Store& store, const std::string& sql) {
    Statement& q = store.cached(sql);
    auto stepped = q.step();
    REQUIRE(stepped.is_ok());
    REQUIRE(*stepped);
    const std::int64_t n = q.column_int(0);
    q.reset();
    return n;
}

// How many rows `table` holds.
inline std::int64_t rows(Store& store, const std::string& table) {
    return scalar(store, "SELECT count(*) FROM " + table);
}

// Drops the engine's tables, so a store can serve a fresh replica (the property test reuses its
// store files rather than creating thousands).
inline void reset_store(Store& store) {
    REQUIRE(
        store
            .exec(
                "DROP TABLE IF EXISTS sync_meta; DROP TABLE IF EXISTS sync_records;"
                " DROP TABLE IF EXISTS sync_log; DROP TABLE IF EXISTS sync_scope_members;"
                " DROP TABLE IF EXISTS sync_scope_moves; DROP TABLE IF EXISTS sync_scope_removals;"
                " DROP TABLE IF EXISTS sync_replicas; DROP TABLE IF EXISTS sync_outbox;"
                " DROP TABLE IF EXISTS sync_scope_keys; DROP TABLE IF EXISTS sync_acked;"
                " DROP TABLE IF EXISTS sync_log_by_key; DROP TABLE IF EXISTS sync_evicted;")
            .is_ok());
}

// A test world: one upstream and devices, each over its own encrypted store file. The stores are
// made in a fresh directory, or borrowed (index 0 for the upstream, then one per device).
struct World {
    World() : upstream_store(own(dir.file("upstream.db"))) {}
    World(PullLines lines, std::int64_t file_every)
        : upstream_store(own(dir.file("upstream.db"))), pull_lines(lines), file_log_every(file_every) {}
    // `lines` and `file_every`: how the upstream's pulls find their lines (UpstreamOptions).
    World(std::vector<Store*> stores, IdSource id_source, PullLines lines = PullLines::automatic,
          std::int64_t file_every = UpstreamOptions{}.file_log_every)
        : borrowed(std::move(stores)), upstream_store(*borrowed.at(0)), ids(std::move(id_source)),
          pull_lines(lines), file_log_every(file_every) {}

    tsunagu::testing::TempDir dir{"tsunagu-sync"};
    std::vector<std::unique_ptr<Store>> owned;
    std::vector<Store*> borrowed;
    FakeClock upstream_clock;
    Store& upstream_store;
    IdSource ids = new_id;  // set before the first add_device() for reproducible ids
    PullLines pull_lines = PullLines::automatic;
    std::int64_t file_log_every = UpstreamOptions{}.file_log_every;
    Upstream upstream = ok(Upstream::open(upstream_store, test_schema(),
                                          UpstreamOptions{.wall = upstream_clock.wall(),
                                                          .ids = ids,
                                                          .pull_lines = pull_lines,
                                                          .file_log_every = file_log_every,
                                                          // Compaction purges as soon as every
                                                          // device allows (the retention has
                                                          // a test of its own).
                                                          .keep_history_ms = 0}));
    struct Member {
        FakeClock clock;
        Store* store;
        std::unique_ptr<Device> device;
    };
    std::vector<std::unique_ptr<Member>> members;

    // `boot_clock`: the device keeps time by its machine's boot clock between syncs.
    Device& add_device(const std::string& user, Schema schema = test_schema(), bool boot_clock = false) {
        auto member = std::make_unique<Member>();
        const std::size_t index = members.size() + 1;
        member->store = borrowed.empty() ? &own(dir.file("device" + std::to_string(index) + ".db"))
                                         : borrowed.at(index);
        member->device = std::make_unique<Device>(ok(Device::open(
            *member->store, std::move(schema),
            DeviceOptions{.user = user,
                          .wall = member->clock.wall(),
                          .boot = boot_clock ? member->clock.boot() : BootClock{},
                          .ids = ids})));
        members.push_back(std::move(member));
        return *members.back()->device;
    }
    FakeClock& clock_of(std::size_t index) { return members[index]->clock; }
    // Moves every clock, the upstream's included.
    void advance(std::int64_t ms) {
        upstream_clock.advance(ms);
        for (auto& m : members) m->clock.advance(ms);
    }

  private:
    Store& own(const std::string& path) {
        owned.push_back(std::make_unique<Store>(open_store(path)));
        return *owned.back();
    }
};

}  // namespace tsunagu::sync::testing
