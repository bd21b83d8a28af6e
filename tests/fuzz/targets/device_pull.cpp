// Fuzz target device_pull: a device applying whatever page a broken or hostile upstream sends.
// The device (the engine's, over a real encrypted store in a temporary folder) holds offline work:
// a client and a visit, one sent and one unsent. Each input is read as a pull page (the fast
// reader, as the device library reads it); a page read is applied after the device's cursor.
//   - applying it answers, or refuses with a reason; it never throws;
//   - no offline work vanishes: every outbox change is still there afterwards, unless the page
//     acknowledged it (an ack for it that is not a refusal);
//   - the replica still reads: its cursor, every record of every collection, its conflicts.
// When the fuzzer's pages have acknowledged all of it, the device makes new offline work.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "domain/care_schema.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/world.h"
#include "support/temp_dir.h"
#include "sync/engine.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

class World {
  public:
    World() {
        upstream_store_ = open_store(dir_.file("upstream.db"));
        device_store_ = open_store(dir_.file("device.db"));
        auto upstream = sync::Upstream::open(*upstream_store_, domain::care_schema());
        if (!upstream) fail("the upstream did not open: " + upstream.status().message(), "");
        upstream_ = std::make_unique<sync::Upstream>(std::move(*upstream));
        auto device = sync::Device::open(*device_store_, domain::care_schema(), sync::DeviceOptions{.user = "kita-visitor"});
        if (!device) fail("the device did not open: " + device.status().message(), "");
        device_ = std::make_unique<sync::Device>(std::move(*device));
        if (!upstream_->set_scope("kita-visitor", {"*"})) fail("set_scope failed", "");

        // Synced work, so that a real page holds real records, then offline work on top.
        client_ = set_up(device_->create("client", {{"pseudonym", "K-001"}, {"area", "Kita"}}));
        set_up(device_->create("home_visit", home_visit(client_, "submitted")));
        auto batch = device_->prepare_push();
        if (!batch) fail("prepare_push failed", "");
        const auto answer = upstream_->push(*batch);
        if (!answer || !device_->apply_push_result(*answer)) fail("the first push failed", "");
        auto request = device_->prepare_pull();
        if (!request) fail("prepare_pull failed", "");
        auto page = upstream_->pull(*request);
        if (!page) fail("the first pull failed: " + page.status().message(), "");
        real_page_ = sync::pull_page_text(*page);
        if (!device_->apply_pull(*page)) fail("the first page did not apply", "");
        make_offline_work();
    }

    sync::Device& device() { return *device_; }

    // More offline work when the fuzzer's acks took all of it: one sent change, one unsent.
    void make_offline_work() {
        const std::string visit_id = set_up(device_->create("home_visit", home_visit(client_, "draft")));
        if (!device_->prepare_push(1)) fail("prepare_push failed", "");  // the first: sent
        set_up(device_->update(visit_id, {{"duration_min", 55}}));           // the second: unsent
    }

    std::vector<std::string> seeds() {
        std::vector<std::string> out = {real_page_};
        auto outbox = device_->outbox();
        if (!outbox) fail("outbox failed", "");
        // The real page after the cursor, with acks and evictions of the device's own work.
        auto page = sync::parse_pull_page_text(real_page_);
        if (!page) fail("the real page does not read", "");
        sync::PullPage with_answers = *page;
        for (const auto& pending : *outbox) {
            sync::PushOutcome refused;
            refused.change_id = pending.change.id;
            refused.record = pending.change.record;
            refused.status = sync::PushStatus::refused;
            refused.code = ErrorCode::forbidden;
            refused.reason = "outside your caseload";
            refused.cause = "outside_scope";
            with_answers.acks.push_back(refused);
        }
        out.push_back(sync::pull_page_text(with_answers));
        sync::PullPage evicting = *page;
        evicting.records.clear();
        evicting.evicted_records = {client_};
        evicting.evicted_scopes = {"client:" + client_};
        out.push_back(sync::pull_page_text(evicting));
        if (!outbox->empty()) {
            sync::PullPage acking = *page;
            sync::PushOutcome accepted;
            accepted.change_id = outbox->front().change.id;
            accepted.record = outbox->front().change.record;
            accepted.seq = page->next;
            accepted.hlc = page->upstream_time;
            acking.acks.push_back(accepted);
            out.push_back(sync::pull_page_text(acking));
        }
        return out;
    }

  private:
    // Destroyed in reverse: the engines, their stores, then the folder.
    testing::TempDir dir_{"tsunagu-fuzz", scratch_base()};
    std::unique_ptr<Store> upstream_store_, device_store_;
    std::unique_ptr<sync::Upstream> upstream_;
    std::unique_ptr<sync::Device> device_;
    std::string client_, real_page_;

    static std::unique_ptr<Store> open_store(const std::string& path) {
        auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
        if (!key) fail("no key", "");
        auto store = Store::open(path, *key);
        if (!store) fail("the store did not open: " + store.status().message(), "");
        return std::make_unique<Store>(std::move(*store));
    }
};

World& world() {
    static World w;
    return w;
}

void run(std::string_view input) {
    World& w = world();
    auto page = sync::parse_pull_page_text(input);
    if (!page) return;  // refused as the device library refuses it (the target pull_page)
    sync::Device& device = w.device();
    auto cursor = device.cursor();
    check(cursor.is_ok(), "the cursor does not read", input);
    page->after = *cursor;  // not stale: applied, whatever the page says
    auto before = device.outbox();
    check(before.is_ok(), "the outbox does not read", input);

    auto applied = device.apply_pull(*page);
    check(applied.is_ok() || !applied.status().message().empty(), "refused without a reason", input);

    // No offline work vanishes unless the page acknowledged it.
    std::set<std::string> acknowledged;
    for (const auto& ack : page->acks) {
        if (ack.status != sync::PushStatus::refused) acknowledged.insert(ack.change_id);
    }
    auto after = device.outbox();
    check(after.is_ok(), "the outbox does not read after the page", input);
    std::set<std::string> kept;
    for (const auto& pending : *after) kept.insert(pending.change.id);
    for (const auto& pending : *before) {
        check(kept.count(pending.change.id) || (applied.is_ok() && acknowledged.count(pending.change.id)),
              "an outbox change vanished (" + pending.change.collection + ", " +
                  (applied.is_ok() ? "page applied" : "page refused: " + applied.status().message()) + ")",
              input);
    }

    // The replica still reads.
    check(device.cursor().is_ok(), "the cursor does not read after the page", input);
    for (const auto& collection : device.schema().collections) {
        auto records = device.list(collection.name, /*include_deleted=*/true);
        check(records.is_ok(), "the " + collection.name + " records do not read: " +
                                   (records ? std::string() : records.status().message()), input);
        for (const auto& record : *records) {
            auto one = device.get(record.id);
            check(one.is_ok(), "record " + record.id + " does not read: " + (one ? std::string() : one.status().message()),
                  input);
        }
    }
    check(device.conflicts().is_ok(), "the conflicts do not read after the page", input);

    if (after->empty()) w.make_offline_work();
}

std::vector<std::string> seeds() {
    return world().seeds();
}

}  // namespace

const Target& target() {
    static const Target t{"device_pull", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
