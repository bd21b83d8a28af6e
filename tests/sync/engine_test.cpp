// The engine over real encrypted stores: pushes, pulls, outbox, cursors, conflicts, history.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "sync_fixture.h"

namespace tsunagu::sync {
namespace {

using namespace testing;

const Json kVisit = {
    {"date", "2020-04-01"}, {"duration", 30}, {"purpose", "check_in"}, {"notes", "first visit"}};

// A client made on `device`, then a visit naming it: (client, visit).
std::pair<std::string, std::string> client_and_visit(Device& device) {
    const std::string client = ok(device.create("client", {{"name", "Sakura"}}));
    Json visit = kVisit;
    visit["client"] = client;
    return {client, ok(device.create("visit", visit))};
}

// The records of a text batch's changes, in its order.
std::vector<std::string> records_of(const PushBatchText& batch) {
    std::vector<std::string> out;
    for (const Json& change : Json::parse(batch.changes)) out.push_back(change["record"]);
    return out;
}

// A text batch pushed to `upstream` as a device's push would carry it.
PushResult push_text(Upstream& upstream, const PushBatchText& batch) {
    return ok(upstream.push(ok(parse_push_batch(
        Json{{"replica", batch.replica}, {"user", batch.user}, {"changes", Json::parse(batch.changes)}}))));
}

}  // namespace

TEST_CASE("a record created offline reaches another device through the upstream") {
    World w;
    ok(w.upstream.set_scope("alice", {"user:alice", "*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    CHECK(ok(alice.get(id))->fields == kVisit);
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    auto received = ok(bob.get(id));
    REQUIRE(received.has_value());
    CHECK(received->fields == kVisit);
    CHECK(received->owner == "alice");
    CHECK(received->versions.at("notes").user == "alice");
    CHECK(received->versions.at("notes").replica == alice.replica_id());
    CHECK(ok(alice.outbox()).empty());
}

TEST_CASE("a ten-field record is one change set, one history entry and one row") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    Json fields = kVisit;
    fields["client"] = std::string(32, 'b');
    fields["flags"] = {"risk"};
    const std::string id = ok(alice.create("visit", fields));
    CHECK(ok(alice.outbox()).size() == 1);
    PushBatch batch = ok(alice.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    CHECK(batch.changes[0].set.size() == fields.size());
    ok(alice.apply_push_result(ok(w.upstream.push(batch))));
    CHECK(ok(w.upstream.history(id)).size() == 1);
    CHECK(rows(w.upstream_store, "sync_log") == 1);
    CHECK(rows(w.upstream_store, "sync_records") == 1);
}

TEST_CASE("repeating a push is harmless") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());
    PushResult first = ok(w.upstream.push(batch));
    PushResult again = ok(w.upstream.push(batch));
    REQUIRE(again.outcomes.size() == 1);
    CHECK(first.outcomes[0].status == PushStatus::accepted);
    CHECK(again.outcomes[0].status == PushStatus::duplicate);
    CHECK(again.outcomes[0].seq == first.outcomes[0].seq);
    CHECK(ok(w.upstream.sequence()) == 1);
    ok(alice.apply_push_result(again));
    ok(alice.apply_push_result(first));  // a late copy of the first answer changes nothing
    CHECK(ok(alice.outbox()).empty());
}

TEST_CASE("outbox entries stay until the upstream acknowledges them") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());
    ok(w.upstream.push(batch));  // the answer is lost
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::sent);
    // Pushed again next time, and answered as a duplicate.
    PushBatch retry = ok(alice.prepare_push());
    REQUIRE(retry.changes.size() == 1);
    CHECK(retry.changes[0].id == batch.changes[0].id);
    PushReport report = ok(alice.apply_push_result(ok(w.upstream.push(retry))));
    CHECK(report.acknowledged == 1);
    CHECK(ok(alice.outbox()).empty());
}

TEST_CASE("a lost push answer is recovered by the next pull") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    ok(w.upstream.push(ok(alice.prepare_push())));  // answer lost
    PullRequest request = ok(alice.prepare_pull());
    REQUIRE(request.sent.size() == 1);
    PullReport report = ok(alice.apply_pull(ok(w.upstream.pull(request))));
    CHECK(report.acknowledged == 1);
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(w.upstream.sequence()) == 1);
}

TEST_CASE("a pull page is applied with its cursor or not at all") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    for (int i = 0; i < 5; ++i) ok(alice.create("visit", kVisit));
    push_all(alice, w.upstream);

    PullPage page = ok(w.upstream.pull(ok(bob.prepare_pull(2))));
    CHECK(page.records.size() == 2);
    CHECK(page.more);
    // The page is lost on the way: the cursor did not move, so the same page comes again.
    PullPage again = ok(w.upstream.pull(ok(bob.prepare_pull(2))));
    CHECK(again.next == page.next);
    CHECK(ok(bob.apply_pull(again)).records == 2);
    CHECK(ok(bob.cursor()) == page.next);
    // A duplicated delivery of the first copy is stale and changes nothing.
    CHECK(ok(bob.apply_pull(page)).stale);
    CHECK(ok(bob.cursor()) == page.next);
    pull_all(bob, w.upstream, 2);
    CHECK(ok(bob.list("visit")).size() == 5);
    CHECK(ok(bob.cursor()) == ok(w.upstream.sequence()));
}

TEST_CASE("pull and push structs travel as JSON") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    const Json batch = ok(alice.prepare_push());
    const Json result = ok(w.upstream.push(ok(parse_push_batch(Json::parse(batch.dump())))));
    ok(alice.apply_push_result(ok(parse_push_result(Json::parse(result.dump())))));
    const Json request = ok(bob.prepare_pull());
    const Json page = ok(w.upstream.pull(ok(parse_pull_request(Json::parse(request.dump())))));
    CHECK(ok(bob.apply_pull(ok(parse_pull_page(Json::parse(page.dump()))))).records == 1);
    CHECK(ok(bob.list("visit")).size() == 1);
    CHECK_FALSE(parse_push_batch(Json{{"replica", "zz"}}).is_ok());
    CHECK_THAT(parse_pull_page(Json::object()).status().message(),
               Catch::Contains("malformed pull page"));
}

TEST_CASE("the fast text form of a pull page is the same JSON as its document form") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("alice");
    const std::string id = ok(alice.create(
        "visit", {{"date", "2020-04-01"}, {"notes", "quotes \" and \\ and\nlines, \u8a2a\u554f"}}));
    ok(alice.update(id, {{"duration", 30}}));
    ok(w.upstream.push(ok(alice.prepare_push())));  // the answer is lost: the page will ack it
    PullPage page = ok(w.upstream.pull(ok(alice.prepare_pull())));
    page.evicted_records = {std::string(32, 'a')};
    page.evicted_scopes = {"client:x"};
    page.kept = {{std::string(32, 'b'), 7}, {std::string(32, 'c'), 9}};
    page.release = {.released = {std::string(32, 'd')},
                    .in_scope = {std::string(32, 'e'), std::string(32, 'f')},
                    .not_held = {std::string(32, '1')}};
    REQUIRE(page.records.size() == 1);
    REQUIRE(page.acks.size() == 2);
    const std::string text = pull_page_text(page);
    CHECK(Json::parse(text) == Json(page));
    PullPage back = ok(parse_pull_page_text(text));
    CHECK(Json(back) == Json(page));
    // The ordinary reader takes the fast writer's text, and the fast reader the ordinary text.
    CHECK(Json(ok(parse_pull_page(Json::parse(text)))) == Json(page));
    CHECK(Json(ok(parse_pull_page_text(Json(page).dump()))) == Json(page));
    CHECK(ok(bob.apply_pull(back)).records == 1);
    CHECK(ok(bob.get(id))->fields["notes"] == "quotes \" and \\ and\nlines, \u8a2a\u554f");

    for (const char* bad :
         {"", "[]", "{}", "{\"after\":0}",
          "{\"after\":\"0\",\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[{\"id\":"
          "\"x\",\"fields\":\"{}\",\"meta\":\"{}\"}]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[{\"seq\":"
          "\"1\"}]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"acks\":[{\"change\":1}]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"kept\":[7]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"kept\":{}}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"released\":[\"not an id\"]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"release_not_held\":[[]]}",
          "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[],"
          "\"release_in_scope\":7}",
          "{\"after\":0,"}) {
        INFO(bad);
        auto parsed = parse_pull_page_text(bad);
        CHECK(parsed.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(parsed.status().message(), Catch::Contains("malformed pull page"));
    }
    // Members a newer upstream may add are ignored.
    auto extended =
        ok(parse_pull_page_text("{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\","
                                "\"records\":[],\"hint\":{\"a\":[1,{\"b\":2}]}}"));
    CHECK(extended.records.empty());
}

TEST_CASE("the fast text forms of a push are the same JSON as their document forms") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create(
        "visit", {{"date", "2020-04-01"}, {"notes", "quotes \" and \\ and\nlines, \u8a2a\u554f"}}));
    ok(alice.update(id, {{"duration", 30}}));
    ok(alice.create("visit", kVisit));
    CHECK(ok(alice.outbox_to_push()) == 3);

    // The text batch is the outbox's stored text; marked sent like the document batch.
    const PushBatchText text = ok(alice.prepare_push_text(2));
    CHECK(text.count == 2);
    for (const auto& pending : ok(alice.outbox(PendingState::sent))) CHECK(pending.change.record == id);
    const PushBatch batch = ok(alice.prepare_push(2));  // sent, unanswered: the same two again
    CHECK(Json::parse(text.changes) == Json(batch)["changes"]);
    CHECK(text.replica == batch.replica);
    CHECK(ok(alice.outbox(PendingState::sent)).size() == 2);
    CHECK(ok(alice.outbox(PendingState::unsent)).size() == 1);

    const PushResult result = ok(w.upstream.push(batch));
    const PushResult back = ok(parse_push_result_text(Json(result).dump()));
    CHECK(Json(back) == Json(result));
    PushResult refused = result;
    refused.outcomes[1].status = PushStatus::refused;
    refused.outcomes[1].code = ErrorCode::validation;
    refused.outcomes[1].reason = "field \"duration\": too long";
    CHECK(Json(ok(parse_push_result_text(Json(refused).dump()))) == Json(refused));
    // The upstream's writer gives the document's text, byte for byte.
    CHECK(push_result_text(result) == Json(result).dump());
    refused.outcomes[0].status = PushStatus::refused;
    refused.outcomes[0].code = ErrorCode::forbidden;
    refused.outcomes[0].reason = "quotes \" and \\ and\nlines, \u8a2a\u554f";
    CHECK(push_result_text(refused) == Json(refused).dump());
    refused.outcomes[0].cause = "rule";  // the word for the check travels with the refusal
    CHECK(push_result_text(refused) == Json(refused).dump());
    CHECK(ok(parse_push_result_text(push_result_text(refused))).outcomes[0].cause == "rule");
    CHECK(ok(parse_push_result(Json(refused))).outcomes[0].cause == "rule");
    CHECK(push_result_text(PushResult{}) == Json(PushResult{}).dump());
    CHECK(ok(alice.apply_push_result(back)).acknowledged == 2);
    CHECK(ok(alice.outbox_to_push()) == 1);

    for (const char* bad :
         {"", "[]", "{}", "{\"outcomes\":[]}", "{\"upstream_time\":\"1-0\"}",
          "{\"upstream_time\":1,\"outcomes\":[]}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":{}}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":[1]}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":[{\"change\":\"x\"}]}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":[{\"change\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
          "\"record\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"status\":\"accepted\",\"seq\":\"1\","
          "\"hlc\":\"1-0\"}]}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":[{\"change\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
          "\"record\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"status\":\"refused\"}]}",
          "{\"upstream_time\":\"1-0\",\"outcomes\":[{\"change\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
          "\"record\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"status\":\"lost\"}]}",
          "{\"upstream_time\":\"1-0\","}) {
        INFO(bad);
        auto parsed = parse_push_result_text(bad);
        CHECK(parsed.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(parsed.status().message(), Catch::Contains("malformed push result"));
        CHECK_FALSE(parse_push_result(Json::parse(bad, nullptr, false)).is_ok());
    }
    // Members a newer upstream may add are ignored.
    auto extended = ok(parse_push_result_text(
        "{\"upstream_time\":\"1-0\",\"outcomes\":[],\"hint\":{\"a\":[1,{\"b\":2}]}}"));
    CHECK(extended.outcomes.empty());
    // A cause is advisory: one that is not a word is dropped, and the refusal still read; a cause
    // that is a word this version does not know is kept for the app to show as it can.
    for (const auto& [cause, kept] : std::vector<std::pair<std::string, std::string>>{
             {"\"outside_scope\"", "outside_scope"}, {"\"a_newer_word\"", "a_newer_word"},
             {"\"Not A Word\"", ""}, {"\"\"", ""}, {"\"" + std::string(33, 'x') + "\"", ""}, {"7", ""}}) {
        INFO(cause);
        const std::string answer =
            "{\"upstream_time\":\"1-0\",\"outcomes\":[{\"cause\":" + cause +
            ",\"change\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"code\":\"forbidden\",\"reason\":\"no\","
            "\"record\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"status\":\"refused\"}]}";
        CHECK(ok(parse_push_result_text(answer)).outcomes.at(0).cause == kept);
        CHECK(ok(parse_push_result(Json::parse(answer))).outcomes.at(0).cause == kept);
    }
}

TEST_CASE("a refusal among a page's acks keeps the change in the outbox, refused, with its reason") {
    // An upstream answers again in a page what it applied; a refusal there was taken for an
    // acknowledgement, and the worker's change left the outbox (found by reading, with the fuzz
    // target device_pull, whose property now guards it).
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    const PushBatch sent = ok(alice.prepare_push());  // sent; the answer is lost
    REQUIRE(sent.changes.size() == 1);
    PullPage page = ok(w.upstream.pull(ok(alice.prepare_pull())));
    PushOutcome refused;
    refused.change_id = sent.changes[0].id;
    refused.record = sent.changes[0].record;
    refused.status = PushStatus::refused;
    refused.code = ErrorCode::forbidden;
    refused.reason = "outside your caseload";
    refused.cause = "outside_scope";
    page.acks = {refused};
    const PullReport report = ok(alice.apply_pull(page));
    CHECK(report.refused == 1);
    CHECK(report.acknowledged == 0);
    const auto held = ok(alice.outbox(PendingState::refused));
    REQUIRE(held.size() == 1);
    CHECK(held[0].change.id == sent.changes[0].id);
    CHECK(held[0].reason == "outside your caseload");
    CHECK(held[0].cause == "outside_scope");
}

TEST_CASE("the fast readers of pages and push answers refuse and read what the document readers do") {
    // Cases the fuzz targets pull_page and push_result found where the two disagreed.
    const std::string head = "{\"after\":0,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",";
    const std::string id(32, 'a');
    const std::string record = "{\"id\":\"" + id + "\",\"collection\":\"visit\",\"scope\":\"*\",\"seq\":1,"
                               "\"deleted\":false,\"fields\":\"{}\",\"meta\":\"{}\"";
    struct Case {
        std::string text;
        bool read;
    };
    const std::vector<Case> pages = {
        {head + "\"records\":[" + record + "}]}", true},
        {head + "\"records\":[" + record + ",\"conflicts\":2}]}", true},
        {head + "\"records\":[],\"evicted_re\":7,\"evicted_scopes\":[]}", true},  // unknown: ignored
        {head + "\"records\":[" + record.substr(0, record.find(",\"collection")) + ",\"scope\":\"*\",\"seq\":1,"
                "\"deleted\":false,\"fields\":\"{}\",\"meta\":\"{}\"}]}",
         false},  // no collection: the fast reader took it as ""
        {head + "\"records\":[" + record + ",\"collection\":7}]}", false},
        {head + "\"records\":[" + record + ",\"conflicts\":[]}]}", false},
        {head + "\"records\":[" + record + ",\"conflicts\":-1}]}", false},
        {head + "\"records\":[" + record + ",\"seq\":1.5}]}", false},
        {head + "\"records\":[[]]}", false},
        {head + "\"records\":[],\"acks\":null}", false},
        {head + "\"records\":[],\"evicted_records\":null}", false},
        {head + "\"records\":[],\"evicted_scopes\":[[]]}", false},
        {head + "\"records\":[],\"kept\":[[\"" + id + "\"]]}", false},
        {head + "\"records\":[],\"kept\":[[\"" + id + "\",1,2]]}", false},
        {head + "\"records\":[],\"kept\":[[1,\"" + id + "\"]]}", false},
        {head + "\"records\":[],\"kept\":[[\"x\",1]]}", false},
        {head + "\"records\":[],\"kept\":[{}]}", false},
        {"{\"after\":1e999,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[]}", false},
        {"{\"after\":true,\"next\":0,\"more\":false,\"upstream_time\":\"1-0\",\"records\":[]}", false},
    };
    for (const auto& [text, read] : pages) {
        INFO(text);
        CHECK(parse_pull_page_text(text).is_ok() == read);
        CHECK(parse_pull_page(Json::parse(text, nullptr, false)).is_ok() == read);
    }
    const std::string outcome = "{\"change\":\"" + id + "\",\"record\":\"" + id + "\",";
    const std::vector<Case> answers = {
        // A refused outcome has no clock reading or sequence number: a malformed one is not read.
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome +
             "\"status\":\"refused\",\"code\":\"forbidden\",\"reason\":\"no\",\"hlc\":\"1750eload\",\"seq\":\"x\"}]}",
         true},
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome +
             "\"status\":\"accepted\",\"seq\":1,\"hlc\":\"1-0\",\"code\":\"no such code\"}]}",
         true},
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome + "\"status\":\"accepted\",\"seq\":-9.2e20,\"hlc\":\"1-0\"}]}",
         false},
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome + "\"status\":\"accepted\",\"seq\":true,\"hlc\":\"1-0\"}]}",
         false},
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome + "\"status\":\"accepted\",\"seq\":1,\"hlc\":\"01-0\"}]}",
         false},
        {"{\"upstream_time\":\"1-0\",\"outcomes\":[" + outcome + "\"status\":\"refused\",\"code\":\"forbidden\",\"reason\":7}]}",
         false},
    };
    for (const auto& [text, read] : answers) {
        INFO(text);
        CHECK(parse_push_result_text(text).is_ok() == read);
        CHECK(parse_push_result(Json::parse(text, nullptr, false)).is_ok() == read);
    }
}

TEST_CASE("a refused change holds back its record's later changes in the text batch too") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    const std::string id = ok(alice.create("visit", kVisit));
    push_all(alice, w.upstream);
    ok(alice.update(id, {{"purpose", "phone"}}));  // refused by the older upstream
    const PushBatch first = ok(alice.prepare_push());
    ok(alice.apply_push_result(ok(w.upstream.push(first))));
    ok(alice.update(id, {{"notes", "after the call"}}));  // builds on the refused one: held
    const std::string other = ok(alice.create("visit", kVisit));
    const PushBatchText text = ok(alice.prepare_push_text());
    REQUIRE(text.count == 1);
    CHECK(Json::parse(text.changes)[0]["record"] == other);
    CHECK(ok(alice.outbox_to_push()) == 2);  // the held one and the one just sent
    CHECK(ok(alice.outbox(PendingState::refused)).size() == 1);
    CHECK(ok(alice.outbox(PendingState::unsent)).size() == 1);
}

TEST_CASE("the batch after one in flight takes the next entries, and a withdrawn batch is unsent again") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    for (int i = 0; i < 5; ++i) ok(alice.create("visit", kVisit));
    const PushBatchText first = ok(alice.prepare_push_text(2));
    const PushBatchText second = ok(alice.prepare_push_text(2, first));
    const PushBatchText third = ok(alice.prepare_push_text(2, second));
    CHECK(ok(alice.prepare_push_text(2, third)).count == 0);
    std::vector<std::string> ids;
    for (const auto* batch : {&first, &second, &third}) {
        for (const Json& change : Json::parse(batch->changes)) ids.push_back(change["id"]);
    }
    std::vector<std::string> outbox_ids;
    for (const auto& pending : ok(alice.outbox())) {
        outbox_ids.push_back(pending.change.id);
        CHECK(pending.state == PendingState::sent);
    }
    CHECK(ids == outbox_ids);

    // The first is answered; the second was withdrawn (never sent): it is unsent again.
    ok(alice.apply_push_result(ok(w.upstream.push(ok(parse_push_batch(Json{
        {"replica", first.replica}, {"user", first.user}, {"changes", Json::parse(first.changes)}}))))));
    ok(alice.withdraw_push(second));
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 3);
    CHECK(pending[0].state == PendingState::unsent);
    CHECK(pending[1].state == PendingState::unsent);
    CHECK(pending[2].state == PendingState::sent);  // the third: sent for all this device knows
    // Prepared again from the start: the withdrawn entries, then the third (still unanswered).
    const PushBatchText again = ok(alice.prepare_push_text(5));
    CHECK(again.count == 3);
    push_all(alice, w.upstream);
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(w.upstream.list("visit")).size() == 5);
}

TEST_CASE("a batch sent beside another shares none of its records and needs none of them first") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const auto [client, first_visit] = client_and_visit(alice);  // the visit needs the client
    const std::string meeting = ok(alice.create("meeting", {{"kind", "council"}}));
    ok(alice.update(first_visit, {{"duration", 45}}));                      // builds on the visit
    ok(alice.update(client, {{"area", "north"}}));                          // the client again
    const std::string other = ok(alice.create("meeting", {{"kind", "working_group"}}));

    const PushBatchText flying = ok(alice.prepare_push_text(1));
    CHECK(records_of(flying) == std::vector<std::string>{client});
    // Beside it: neither the visit naming the client, nor that visit's edit, nor the client's.
    const PushBatchText beside = ok(alice.prepare_push_text(10, flying));
    CHECK(records_of(beside) == std::vector<std::string>{meeting, other});
    CHECK(ok(alice.prepare_push_text(10, std::vector<const PushBatchText*>{&flying, &beside})).count == 0);

    // Answered in the other order, both apply; the waiting changes go once nothing flies.
    ok(alice.apply_push_result(push_text(w.upstream, beside)));
    ok(alice.apply_push_result(push_text(w.upstream, flying)));
    const PushBatchText rest = ok(alice.prepare_push_text(10));
    CHECK(records_of(rest) == std::vector<std::string>{first_visit, first_visit, client});
    ok(alice.apply_push_result(push_text(w.upstream, rest)));
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(w.upstream.get(first_visit))->fields["duration"] == 45);
    CHECK(ok(w.upstream.get(client))->fields["area"] == "north");
}

TEST_CASE("a change passed over beside a flying batch holds back its record's later changes in every batch after") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const auto [client, the_visit] = client_and_visit(alice);  // the visit: passed over beside the client
    ok(alice.create("meeting", {{"kind", "council"}}));
    ok(alice.update(the_visit, {{"duration", 45}}));  // builds on the visit's create

    const PushBatchText flying = ok(alice.prepare_push_text(1));
    REQUIRE(records_of(flying) == std::vector<std::string>{client});
    const PushBatchText beside = ok(alice.prepare_push_text(1, flying));  // passes over the visit
    REQUIRE(records_of(beside).size() == 1);
    REQUIRE(records_of(beside)[0] != the_visit);
    // The visit's edit lies after both batches, and names no record flying: it still waits for
    // the create passed over, in the third batch and in the one prepared once the second landed.
    CHECK(ok(alice.prepare_push_text(10, std::vector<const PushBatchText*>{&flying, &beside})).count == 0);
    ok(alice.apply_push_result(push_text(w.upstream, beside)));
    CHECK(ok(alice.prepare_push_text(10, flying)).count == 0);
    ok(alice.apply_push_result(push_text(w.upstream, flying)));
    // Nothing flies: the create, then its edit.
    const PushBatchText rest = ok(alice.prepare_push_text(10));
    CHECK(records_of(rest) == std::vector<std::string>{the_visit, the_visit});
    ok(alice.apply_push_result(push_text(w.upstream, rest)));
    CHECK(ok(alice.outbox()).empty());
    const auto on_server = ok(w.upstream.get(the_visit));
    REQUIRE(on_server);
    CHECK(on_server->fields["client"] == client);
    CHECK(on_server->fields["duration"] == 45);
}

TEST_CASE("batches kept in flight beside each other, answered in any order, lose and refuse nothing") {
    const auto seed = static_cast<std::uint32_t>(std::random_device{}());
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    auto below = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    auto records_named = [](const PushBatchText& batch) {
        std::set<std::string> named;
        for (const Json& change : Json::parse(batch.changes)) {
            named.insert(change["record"].get<std::string>());
            if (change["set"].contains("client")) named.insert(change["set"]["client"].get<std::string>());
        }
        return named;
    };
    for (int scenario = 0; scenario < 40; ++scenario) {
        World w;
        ok(w.upstream.set_scope("alice", {"*"}));
        ok(w.upstream.set_scope("bob", {"*"}));
        Device& alice = w.add_device("alice");
        std::vector<std::string> clients, visits;
        std::vector<PushBatchText> flying;
        for (int step = 0; step < 120; ++step) {
            const std::size_t action = below(10);
            if (action < 2 || clients.empty()) {
                clients.push_back(ok(alice.create("client", {{"name", "c" + std::to_string(step)}})));
            } else if (action < 5) {
                Json visit = kVisit;
                visit["client"] = clients[below(clients.size())];
                visits.push_back(ok(alice.create("visit", visit)));
            } else if (action < 7 && !visits.empty()) {
                ok(alice.update(visits[below(visits.size())], {{"duration", 1 + static_cast<int>(below(600))}}));
            } else if (action < 8) {
                ok(alice.update(clients[below(clients.size())], {{"area", below(2) ? "north" : "south"}}));
            } else if (flying.size() < 2 && below(2)) {
                std::vector<const PushBatchText*> beside;
                for (const auto& f : flying) beside.push_back(&f);
                PushBatchText batch = ok(alice.prepare_push_text(1 + below(6), beside));
                if (batch.count == 0) continue;
                // It shares no record with those in flight, and names none of theirs.
                for (const auto& f : flying) {
                    for (const std::string& named : records_named(batch)) CHECK_FALSE(f.records.contains(named));
                }
                flying.push_back(std::move(batch));
            } else if (!flying.empty()) {
                const std::size_t landed = below(flying.size());  // answers come in any order
                const PushBatchText& batch = flying[landed];
                ok(alice.apply_push_result(ok(w.upstream.push(ok(parse_push_batch(
                    Json{{"replica", batch.replica}, {"user", batch.user}, {"changes", Json::parse(batch.changes)}}))))));
                flying.erase(flying.begin() + static_cast<std::ptrdiff_t>(landed));
            }
        }
        for (const auto& batch : flying) {
            ok(alice.apply_push_result(ok(w.upstream.push(ok(parse_push_batch(
                Json{{"replica", batch.replica}, {"user", batch.user}, {"changes", Json::parse(batch.changes)}}))))));
        }
        push_all(alice, w.upstream);
        CHECK(ok(alice.outbox()).empty());  // nothing refused, nothing left
        Device& bob = w.add_device("bob");
        pull_all(bob, w.upstream);
        for (const auto* ids : {&clients, &visits}) {
            for (const std::string& id : *ids) {
                INFO("record " << id);
                CHECK(ok(bob.get(id))->fields == ok(alice.get(id))->fields);
            }
        }
    }
}

TEST_CASE("concurrent offline edits of one field converge with the loser kept as a conflict") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    w.advance(1000);
    ok(alice.update(id, {{"notes", "alice's notes"}}));
    w.advance(1000);
    ok(bob.update(id, {{"notes", "bob's notes"}, {"duration", 45}}));
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    for (Device* d : {&alice, &bob}) {
        auto record = ok(d->get(id));
        REQUIRE(record.has_value());
        CHECK(record->fields["notes"] == "bob's notes");
        CHECK(record->fields["duration"] == 45);
        REQUIRE(record->conflicts.size() == 1);
        CHECK(record->conflicts[0].losing.value == "alice's notes");
        CHECK(record->conflicts[0].losing.version.user == "alice");
    }
    REQUIRE(ok(w.upstream.conflicts()).size() == 1);
}

namespace {

// The visit's notes edited offline by alice (`hers`) and bob (`his`) at once, then synced by
// alice, bob and alice again: the conflict is on both phones and the upstream. Her supervisor
// sees every record too.
struct NotesInConflict {
    World w;
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    std::string id;
    AsRead before_edits;  // her reading of the visit as created, before either edit

    NotesInConflict(const std::string& hers, const std::string& his) {
        for (const char* user : {"alice", "bob", "supervisor"}) ok(w.upstream.set_scope(user, {"*"}));
        id = ok(alice.create("visit", kVisit));
        sync(alice, w.upstream);
        sync(bob, w.upstream);
        before_edits = AsRead::of(*ok(alice.get(id)));
        ok(alice.update(id, {{"notes", hers}}));
        ok(bob.update(id, {{"notes", his}}));
        sync(alice, w.upstream);
        sync(bob, w.upstream);
        sync(alice, w.upstream);
        REQUIRE(ok(alice.conflicts()).size() == 1);
    }
};

}  // namespace

TEST_CASE("resolving a conflict on one device clears it everywhere") {
    NotesInConflict t("alice", "bob");
    World& w = t.w;
    Device& alice = t.alice;
    Device& bob = t.bob;
    const std::string& id = t.id;
    CHECK_FALSE(alice.resolve(id, "duration", 5).is_ok());  // no conflict there
    ok(alice.resolve(id, "notes", "alice and bob"));
    CHECK(ok(alice.conflicts()).empty());
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    CHECK(ok(bob.conflicts()).empty());
    CHECK(ok(w.upstream.conflicts()).empty());
    CHECK(ok(bob.get(id))->fields["notes"] == "alice and bob");
    CHECK(ok(w.upstream.history(id)).back().kind == ChangeKind::resolve);
}

TEST_CASE("a supervisor resolves a conflict on the upstream and devices see it cleared") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    ok(w.upstream.set_scope("sachiko", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.update(id, {{"duration", 40}}));
    ok(bob.update(id, {{"duration", 50}}));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    REQUIRE(ok(w.upstream.conflicts()).size() == 1);
    ok(w.upstream.resolve("sachiko", id, "duration", 45));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    CHECK(ok(alice.conflicts()).empty());
    CHECK(ok(bob.get(id))->fields["duration"] == 45);
    CHECK(ok(bob.get(id))->versions.at("duration").user == "sachiko");
}

TEST_CASE("an edit concurrent with a delete is a conflict on every replica") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.remove(id));
    ok(bob.update(id, {{"notes", "important"}}));
    CHECK_FALSE(alice.update(id, {{"notes", "x"}}).is_ok());  // deleted here
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    for (Device* d : {&alice, &bob}) {
        auto record = ok(d->get(id));
        REQUIRE(record.has_value());
        CHECK(record->deleted);
        REQUIRE(record->conflicts.size() == 1);
        CHECK(record->conflicts[0].kind == ConflictKind::edit_vs_delete);
        CHECK(record->conflicts[0].losing.value == "important");
    }
    ok(bob.resolve_deletion(id, DeletionResolution::restore));
    sync(bob, w.upstream);
    sync(alice, w.upstream);
    auto restored = ok(alice.get(id));
    CHECK_FALSE(restored->deleted);
    CHECK(restored->fields["notes"] == "important");
    CHECK(restored->conflicts.empty());
    CHECK(ok(alice.list("visit")).size() == 1);
}

TEST_CASE("history lists who changed which field, when and from which device") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    w.advance(60'000);
    ok(bob.update(id, {{"duration", 45}, {"notes", "longer"}}));
    sync(bob, w.upstream);
    w.advance(60'000);
    ok(alice.remove(id));
    sync(alice, w.upstream);
    auto history = ok(w.upstream.history(id));
    REQUIRE(history.size() == 3);
    CHECK(history[0].kind == ChangeKind::create);
    CHECK(history[0].user == "alice");
    CHECK(history[0].replica == alice.replica_id());
    CHECK(history[0].fields.size() == kVisit.size());
    CHECK(history[1].kind == ChangeKind::edit);
    CHECK(history[1].user == "bob");
    CHECK(history[1].replica == bob.replica_id());
    CHECK(history[1].fields == std::vector<std::string>{"duration", "notes"});
    CHECK(history[1].hlc.wall_ms == kStartMs + 60'000);
    CHECK(history[2].kind == ChangeKind::remove);
    CHECK(history[0].seq < history[1].seq);
    CHECK(history[1].seq < history[2].seq);
    CHECK(Json(history[1])["user"] == "bob");
}

TEST_CASE("an update that changes nothing queues nothing") {
    World w;
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create("visit", kVisit));
    ok(alice.update(id, {{"notes", "first visit"}, {"flags", nullptr}}));
    CHECK(ok(alice.outbox()).size() == 1);
}

TEST_CASE("local edits are validated and errors name the field") {
    World w;
    Device& alice = w.add_device("alice");
    auto missing = alice.create("visit", {{"duration", 30}});
    CHECK(missing.status().code() == ErrorCode::validation);
    CHECK_THAT(missing.status().message(), Catch::Contains(R"(field "date" is required)"));
    auto bad = alice.create("visit", {{"date", "2020-04-01"}, {"duration", 0}});
    CHECK_THAT(bad.status().message(),
               Catch::Contains(R"(field "duration": must be an integer from 1 to 1440, got one outside that range)"));
    const std::string id = ok(alice.create("visit", kVisit));
    CHECK_THAT(alice.update(id, {{"purpose", "phone"}}).message(),
               Catch::Contains(R"(field "purpose")"));
    CHECK(alice.update(std::string(32, 'f'), {{"notes", "x"}}).code() == ErrorCode::not_found);
    CHECK(alice.update("nonsense", {{"notes", "x"}}).code() == ErrorCode::invalid_argument);
    CHECK(alice.update(id, Json::array()).code() == ErrorCode::invalid_argument);
    CHECK(ok(alice.outbox()).size() == 1);
}

TEST_CASE("each refusal names the check that refused it, for programs to explain it in the reader's language") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    const std::string id = ok(alice.create("visit", kVisit));
    ok(alice.update(id, {{"purpose", "phone"}}));            // a value this upstream does not know
    ok(alice.update(id, {{"notes", "built on the refused"}}));  // behind it
    const std::string other = ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());
    REQUIRE(batch.changes.size() == 4);
    batch.changes[3].replica = std::string(32, 'e');  // claims another device made it
    const PushGate no_deletes = [](const ChangeSet& change, const RecordState*) {
        return change.deletes() ? Status(ErrorCode::forbidden, "no deletes here") : Status::ok();
    };
    PushResult result = ok(w.upstream.push(batch, no_deletes));
    REQUIRE(result.outcomes.size() == 4);
    CHECK(result.outcomes[0].status == PushStatus::accepted);
    CHECK(result.outcomes[0].cause.empty());
    CHECK(result.outcomes[1].cause == "invalid_value");
    CHECK(result.outcomes[2].cause == "held_behind");
    CHECK(result.outcomes[3].cause == "not_yours");
    // On the wire, and kept with the refused change on the device.
    CHECK(Json(result)["outcomes"][1]["cause"] == "invalid_value");
    CHECK_FALSE(Json(result)["outcomes"][0].contains("cause"));

    ok(alice.apply_push_result(ok(parse_push_result_text(push_result_text(result)))));
    auto kept = ok(alice.outbox(PendingState::refused));
    REQUIRE(kept.size() == 3);
    CHECK(kept[0].cause == "invalid_value");
    CHECK(kept[1].cause == "held_behind");
    CHECK(kept[2].cause == "not_yours");
    // Sent again, a refused change carries no cause until it is answered again.
    CHECK(ok(alice.retry_refused()) == 3);
    for (const auto& pending : ok(alice.outbox())) CHECK(pending.cause.empty());
    ok(alice.apply_push_result(result));
    ok(alice.remove(id));  // refused by the gate (and the upstream's schema would take it)
    ok(alice.discard_refused(id));
    PushBatch removal = ok(alice.prepare_push());
    REQUIRE(removal.changes.size() == 1);
    const PushResult gated = ok(w.upstream.push(removal, no_deletes));
    CHECK(gated.outcomes[0].status == PushStatus::refused);
    CHECK(gated.outcomes[0].cause == "rule");
}

namespace {

// Alice's edit of her visit, refused (the record was locked for review); the supervisor applies
// it for her (the same change set, as the server's apply sends it), then corrects it: her value
// is superseded on the upstream, not in conflict there.
// Alice's visit, synced; her supervisor sees every record too.
struct SyncedVisit {
    World w;
    Device* alice = nullptr;
    std::string id;
    SyncedVisit() {
        ok(w.upstream.set_scope("alice", {"*"}));
        ok(w.upstream.set_scope("supervisor", {"*"}));
        alice = &w.add_device("alice");
        id = ok(alice->create("visit", kVisit));
        sync(*alice, w.upstream);
    }
    // After one more sync: her device holds the visit as the upstream does (its notes `notes`),
    // and neither has a conflict.
    void check_held_as_upstream(const std::string& notes) {
        sync(*alice, w.upstream);
        CHECK(ok(alice->get(id))->fields["notes"] == notes);
        CHECK(ok(alice->conflicts()).empty());
        CHECK(ok(w.upstream.conflicts()).empty());
    }
};

struct AppliedForHer : SyncedVisit {
    AppliedForHer() {
        ok(alice->update(id, {{"notes", "her edit"}}));
        const PushBatch batch = ok(alice->prepare_push());
        const PushGate locked = [](const ChangeSet&, const RecordState*) {
            return Status(ErrorCode::forbidden, "approved: locked for review");
        };
        ok(alice->apply_push_result(ok(w.upstream.push(batch, locked))));
        REQUIRE(ok(alice->outbox(PendingState::refused)).size() == 1);
        REQUIRE(ok(w.upstream.push(batch)).outcomes[0].status == PushStatus::accepted);
        ok(w.upstream.update("supervisor", id, {{"notes", "corrected"}}));
        REQUIRE(ok(w.upstream.conflicts()).empty());
    }
};

}  // namespace

TEST_CASE("a refused change the upstream took later on its worker's behalf leaves no conflict on her device") {
    AppliedForHer t;
    World& w = t.w;
    Device& alice = *t.alice;
    const std::string& id = t.id;

    // Her device asks after its refused change with its pull, hears it was taken, and holds the
    // record as the upstream does: no conflict of her value with the correction it led to.
    sync(alice, w.upstream);
    sync(alice, w.upstream);
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(alice.get(id))->fields["notes"] == "corrected");
    CHECK(ok(alice.conflicts()).empty());
}

TEST_CASE("a refused change retried after the upstream took it, pulled before it is pushed, leaves no conflict on her device") {
    AppliedForHer t;
    World& w = t.w;
    Device& alice = *t.alice;

    // She retries it (now unsent, so her pull does not ask after it), and pulls before she pushes
    // (a phone rebooted with changes waiting pulls first): the page's record is rebased under
    // her change again, which the upstream answers as a duplicate.
    REQUIRE(ok(alice.retry_refused()) == 1);
    pull_all(alice, w.upstream);
    push_all(alice, w.upstream);
    CHECK(ok(alice.outbox()).empty());
    // The duplicate's record comes whole with the next pull: held as the upstream holds it.
    t.check_held_as_upstream("corrected");
}

TEST_CASE("a change accepted while a page that already held it was applied first leaves no conflict on her device") {
    // Two processes on her replica (the app and a command): one prepares a pull while her edit is
    // still unsent, the other pushes the edit; a colleague's correction lands on top of it, and
    // the page is applied before the push's answer arrives.
    SyncedVisit t;
    World& w = t.w;
    Device& alice = *t.alice;
    const std::string& id = t.id;
    ok(alice.update(id, {{"notes", "her edit"}}));
    const PullRequest asked_before = ok(alice.prepare_pull(100));
    const PushBatch batch = ok(alice.prepare_push());
    const auto answer = ok(w.upstream.push(batch));
    REQUIRE(answer.outcomes[0].status == PushStatus::accepted);
    ok(w.upstream.update("supervisor", id, {{"notes", "corrected"}}));
    ok(alice.apply_pull(ok(w.upstream.pull(asked_before))));  // her edit replayed onto the page's copy
    ok(alice.apply_push_result(answer));
    CHECK(ok(alice.outbox()).empty());
    // Accepted at a sequence number her pulls have passed: the record comes whole with the next pull.
    t.check_held_as_upstream("corrected");
}

TEST_CASE("an edit made from what the worker read keeps a value a sync brought meanwhile beside it as a conflict") {
    // The form shows the notes; a background sync brings her supervisor's correction; she saves.
    // Made from the replica as it stands, her save would supersede a correction she never saw.
    SyncedVisit t;
    World& w = t.w;
    Device& alice = *t.alice;
    const std::string& id = t.id;
    const AsRead on_screen = AsRead::of(*ok(alice.get(id)));
    ok(w.upstream.update("supervisor", id, {{"notes", "corrected by her supervisor"}}));
    sync(alice, w.upstream);  // the correction arrives while the form is open

    ok(alice.update(id, {{"notes", "her own words"}}, on_screen));
    auto here = ok(alice.conflicts());
    REQUIRE(here.size() == 1);
    CHECK(here[0].field == "notes");
    sync(alice, w.upstream);
    auto upstream = ok(w.upstream.conflicts());
    REQUIRE(upstream.size() == 1);
    std::set<Json> values{upstream[0].current.value, upstream[0].losing.value};
    CHECK(values == std::set<Json>{"corrected by her supervisor", "her own words"});

    // Saved from a reading that is still current, an edit is what it always was: no conflict.
    const AsRead fresh = AsRead::of(*ok(alice.get(id)));
    ok(alice.resolve(id, "notes", "both, merged", fresh));
    CHECK(ok(alice.conflicts()).empty());
    ok(alice.update(id, {{"duration", 50}}, AsRead::of(*ok(alice.get(id)))));
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.conflicts()).empty());
    CHECK(ok(w.upstream.get(id))->fields["notes"] == "both, merged");
}

TEST_CASE("a resolution or a delete made from what was read leaves what arrived since in conflict, never settled unseen") {
    NotesInConflict t("X", "Y");
    World& w = t.w;
    Device& alice = t.alice;
    const std::string& id = t.id;
    const AsRead conflict_on_screen = AsRead::of(*ok(alice.get(id)));
    // Meanwhile a third value lands on top of the conflict's winner, and reaches her phone.
    ok(w.upstream.update("bob", id, {{"notes", "Z"}}));
    sync(alice, w.upstream);

    SECTION("a resolution settles what she read; Z, which she did not, stays opposite it") {
        ok(alice.resolve(id, "notes", "Y", conflict_on_screen));
        auto left = ok(alice.conflicts());
        REQUIRE(left.size() == 1);
        std::set<Json> values{left[0].current.value, left[0].losing.value};
        CHECK(values.contains("Z"));
    }
    SECTION("a delete keeps Z visible as an edit it did not see") {
        ok(alice.remove(id, conflict_on_screen));
        auto left = ok(alice.conflicts());
        REQUIRE_FALSE(left.empty());
        CHECK(left[0].kind == ConflictKind::edit_vs_delete);
    }
}

TEST_CASE("a form that sends back the fields it did not touch puts back nothing a sync brought meanwhile") {
    SyncedVisit t;
    World& w = t.w;
    Device& alice = *t.alice;
    const std::string& id = t.id;
    const Record read = *ok(alice.get(id));
    ok(w.upstream.update("supervisor", id, {{"notes", "corrected"}}));
    sync(alice, w.upstream);
    Json form = read.fields;  // every field as shown; she changes the duration only
    form["duration"] = 45;
    ok(alice.update(id, form, AsRead::of(read)));
    CHECK(ok(alice.conflicts()).empty());
    CHECK(ok(alice.get(id))->fields["notes"] == "corrected");
    CHECK(ok(alice.get(id))->fields["duration"] == 45);
    sync(alice, w.upstream);
    CHECK(ok(w.upstream.conflicts()).empty());
    // A reading is of one record: another's is refused, nothing queued.
    const std::string other = ok(alice.create("visit", kVisit));
    const Status wrong = alice.update(other, {{"duration", 5}}, AsRead::of(read));
    CHECK(wrong.code() == ErrorCode::invalid_argument);
    CHECK_THAT(wrong.message(), Catch::Contains("give this record's reading"));
}

TEST_CASE("a reading of a conflict: an edit supersedes the value read even set again since, a resolution needs the conflict read") {
    NotesInConflict t("X", "Y");
    World& w = t.w;
    Device& alice = t.alice;
    const std::string& id = t.id;
    const Record read = *ok(alice.get(id));
    // Her supervisor settles it on the value she saw, and that reaches her phone.
    ok(w.upstream.resolve("supervisor", id, "notes", read.fields["notes"]));
    sync(alice, w.upstream);
    REQUIRE(ok(alice.conflicts()).empty());

    SECTION("an edit from the reading supersedes that value, set again by the resolution, with no conflict") {
        ok(alice.update(id, {{"notes", "her own words"}}, AsRead::of(read)));
        CHECK(ok(alice.conflicts()).empty());
        sync(alice, w.upstream);
        CHECK(ok(w.upstream.conflicts()).empty());
        CHECK(ok(w.upstream.get(id))->fields["notes"] == "her own words");
    }
    SECTION("a resolution from the reading, settled since, stays beside that settlement as a conflict") {
        ok(alice.resolve(id, "notes", "both, merged", AsRead::of(read)));
        CHECK(ok(alice.conflicts()).size() == 1);
    }
    SECTION("a resolution from a reading that showed no conflict is refused") {
        const Status refused = alice.resolve(id, "notes", "both, merged", t.before_edits);
        CHECK(refused.code() == ErrorCode::conflict);
        CHECK_THAT(refused.message(), Catch::Contains("had no conflict to resolve"));
    }
}

namespace {

// After alice's sync: her notes `value`, saved from a reading taken before her supervisor's delete
// arrived, stand beside that delete as its one conflict, on her phone and upstream; once the
// supervisor restores the record, they are its notes, with no conflict left.
void beside_the_delete_until_restored(World& w, Device& alice, const std::string& id, const std::string& value) {
    sync(alice, w.upstream);
    for (std::optional<Record> record : {ok(alice.get(id)), ok(w.upstream.get(id))}) {
        REQUIRE(record.has_value());
        CHECK(record->deleted);
        REQUIRE(record->conflicts.size() == 1);
        CHECK(record->conflicts[0].kind == ConflictKind::edit_vs_delete);
        CHECK(record->conflicts[0].losing.value == value);
    }
    ok(w.upstream.resolve_deletion("supervisor", id, DeletionResolution::restore));
    sync(alice, w.upstream);
    const Record restored = *ok(alice.get(id));
    CHECK_FALSE(restored.deleted);
    CHECK(restored.fields["notes"] == value);
    CHECK(restored.conflicts.empty());
}

}  // namespace

TEST_CASE("an edit from a reading taken before a delete arrived is kept beside the delete as a conflict") {
    SyncedVisit t;
    World& w = t.w;
    Device& alice = *t.alice;
    const std::string& id = t.id;
    // Her form is open when a sync brings her supervisor's delete.
    const AsRead on_screen = AsRead::of(*ok(alice.get(id)));
    ok(w.upstream.remove("supervisor", id));
    sync(alice, w.upstream);
    REQUIRE(ok(alice.get(id))->deleted);
    CHECK(alice.update(id, {{"notes", "x"}}).code() == ErrorCode::conflict);  // no reading: refused
    const AsRead deleted_on_screen = AsRead::of(*ok(alice.get(id)));
    CHECK(deleted_on_screen.deleted == true);
    AsRead not_saying = on_screen;  // a reading that does not say whether it was deleted
    not_saying.deleted.reset();
    CHECK(alice.update(id, {{"notes", "x"}}, not_saying).code() == ErrorCode::conflict);
    const Status from_deleted = alice.update(id, {{"notes", "x"}}, deleted_on_screen);
    CHECK(from_deleted.code() == ErrorCode::conflict);
    CHECK_THAT(from_deleted.message(), Catch::Contains("was deleted"));

    // Saved from what she read, her words stay beside the delete, on her phone and the server.
    ok(alice.update(id, {{"notes", "written while it was deleted"}}, on_screen));
    beside_the_delete_until_restored(w, alice, id, "written while it was deleted");
}

TEST_CASE("a resolution from a reading taken before a delete arrived is kept beside the delete as a conflict") {
    NotesInConflict t("X", "Y");
    World& w = t.w;
    Device& alice = t.alice;
    const std::string& id = t.id;
    // The conflict is on her screen when a sync brings her supervisor's delete.
    const AsRead on_screen = AsRead::of(*ok(alice.get(id)));
    ok(w.upstream.remove("supervisor", id));
    sync(alice, w.upstream);
    REQUIRE(ok(alice.get(id))->deleted);
    // Without a reading, or from a reading of the deleted record: the deletion is settled first.
    const Status unread = alice.resolve(id, "notes", "both");
    CHECK(unread.code() == ErrorCode::conflict);
    CHECK_THAT(unread.message(), Catch::Contains("settle the deletion first"));
    CHECK(alice.resolve(id, "notes", "both", AsRead::of(*ok(alice.get(id)))).code() == ErrorCode::conflict);

    // From what she read, her resolution stays beside the delete, on her phone and the server;
    // restored, the record holds it, and the conflict she resolved is gone.
    ok(alice.resolve(id, "notes", "X and Y, merged", on_screen));
    beside_the_delete_until_restored(w, alice, id, "X and Y, merged");
}

TEST_CASE("a record as read names every version in force, and a malformed one is refused with what to give") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create("visit", kVisit));
    const Record read = *ok(alice.get(id));
    const Json as_json = read;
    const AsRead parsed = ok(AsRead::parse(as_json));
    CHECK(parsed.fields == read.fields);
    CHECK(parsed.heads == read.heads);
    CHECK(parsed.deleted == false);
    Json deleted_reading = as_json;
    deleted_reading["deleted"] = true;
    CHECK(ok(AsRead::parse(deleted_reading)).deleted == true);
    deleted_reading.erase("deleted");
    CHECK_FALSE(ok(AsRead::parse(deleted_reading)).deleted.has_value());
    CHECK(read.heads.at("notes") == std::vector<std::string>{read.versions.at("notes").change_id});
    for (const Json& bad : {Json("a record"), Json{{"fields", Json::object()}, {"heads", Json::object()}},
                            Json{{"id", id}, {"fields", Json::object()}},
                            Json{{"id", id}, {"fields", Json::object()}, {"heads", {{"notes", "not a list"}}}},
                            Json{{"id", id}, {"fields", Json::object()}, {"heads", {{"notes", {"not-an-id"}}}}},
                            Json{{"id", id}, {"fields", Json::object()}, {"heads", Json::object()}, {"deleted", "no"}}}) {
        INFO(bad.dump());
        auto refused = AsRead::parse(bad);
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(refused.status().message(), Catch::Contains("the record as read"));
    }
}

TEST_CASE("a create naming a record the upstream holds is refused and the record keeps its owner") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    const PushBatch first = ok(alice.prepare_push());
    CHECK(ok(w.upstream.push(first)).outcomes[0].status == PushStatus::accepted);

    ok(bob.create("visit", {{"date", "2020-04-02"}, {"duration", 20}}));
    PushBatch batch = ok(bob.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    batch.changes[0].record = id;  // a create for alice's record
    const PushResult result = ok(w.upstream.push(batch));
    CHECK(result.outcomes[0].status == PushStatus::refused);
    CHECK(result.outcomes[0].code == ErrorCode::already_exists);
    CHECK(result.outcomes[0].cause == "already_exists");
    const auto record = ok(w.upstream.get(id));
    REQUIRE(record);
    CHECK(record->owner == "alice");
    CHECK(record->fields["date"] == kVisit["date"]);
    // Alice's own create, sent again after a lost answer, is still a duplicate, not a refusal.
    CHECK(ok(w.upstream.push(first)).outcomes[0].status == PushStatus::duplicate);
}

TEST_CASE("an older peer refuses a newer device's change and the device keeps it with the reason") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    const std::string id = ok(alice.create("visit", kVisit));
    push_all(alice, w.upstream);
    ok(alice.update(id, {{"purpose", "phone"}}));
    ok(alice.update(id, {{"notes", "after the call"}}));
    push_all(alice, w.upstream);
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 2);
    CHECK(pending[0].state == PendingState::refused);
    CHECK(pending[0].code == ErrorCode::validation);
    CHECK_THAT(pending[0].reason, Catch::Contains(R"(field "purpose")"));
    CHECK_THAT(pending[0].reason, Catch::Contains("upgrade this peer"));
    CHECK(pending[1].state == PendingState::refused);  // held behind it, not lost
    CHECK_THAT(pending[1].reason, Catch::Contains("held behind"));
    CHECK(ok(alice.get(id))->fields["notes"] == "after the call");
    // After the upstream upgrades, both go through.
    Upstream upgraded = ok(Upstream::open(w.upstream_store, test_schema(2),
                                          UpstreamOptions{.wall = w.upstream_clock.wall()}));
    ok(alice.retry_refused());
    push_all(alice, upgraded);
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(upgraded.get(id))->fields["purpose"] == "phone");
}

TEST_CASE("a refused change is due again once its record changes upstream, and refused anew while its reason holds") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.update(id, {{"purpose", "phone"}}));
    push_all(alice, w.upstream);
    REQUIRE(ok(alice.outbox(PendingState::refused)).size() == 1);

    ok(bob.update(id, {{"notes", "bob's"}}));
    sync(bob, w.upstream);
    pull_all(alice, w.upstream);  // the record changed upstream: the refusal may no longer hold
    CHECK(ok(alice.outbox(PendingState::unsent)).size() == 1);
    CHECK(ok(alice.get(id))->fields["notes"] == "bob's");
    push_all(alice, w.upstream);  // it still does: refused anew, with the reason
    auto refused = ok(alice.outbox(PendingState::refused));
    REQUIRE(refused.size() == 1);
    CHECK_THAT(refused[0].reason, Catch::Contains(R"(field "purpose")"));
    pull_all(alice, w.upstream);  // nothing changed upstream: it stays refused, no loop
    CHECK(ok(alice.outbox(PendingState::refused)).size() == 1);

    Upstream upgraded = ok(Upstream::open(w.upstream_store, test_schema(2),
                                          UpstreamOptions{.wall = w.upstream_clock.wall()}));
    ok(bob.update(id, {{"duration", 50}}));
    sync(bob, upgraded);
    sync(alice, upgraded);  // due again, and taken
    push_all(alice, upgraded);
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(upgraded.get(id))->fields["purpose"] == "phone");
    CHECK(ok(upgraded.get(id))->fields["notes"] == "bob's");
}

TEST_CASE("a worker discards refused changes: the record goes back to the upstream's version, later edits kept") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    ok(alice.update(id, {{"purpose", "phone"}}));            // refused by the older upstream
    ok(alice.update(id, {{"notes", "built on the refused"}}));  // sent with it: refused, held behind
    push_all(alice, w.upstream);
    REQUIRE(ok(alice.outbox(PendingState::refused)).size() == 2);
    ok(alice.update(id, {{"duration", 50}}));  // made after: held back on the device, never sent

    CHECK(alice.discard_refused(std::string(32, 'a')).status().code() == ErrorCode::not_found);
    CHECK(alice.discard_refused("nonsense").status().code() == ErrorCode::invalid_argument);
    CHECK(ok(alice.discard_refused(id)) == 2);
    CHECK(alice.discard_refused(id).status().code() == ErrorCode::not_found);
    auto request = ok(alice.prepare_pull());
    CHECK(request.refetch == std::vector<std::string>{id});
    sync(alice, w.upstream);
    CHECK(ok(alice.outbox()).empty());
    const Record mine = *ok(alice.get(id));
    const Record theirs = *ok(w.upstream.get(id));
    CHECK(mine.fields == theirs.fields);
    CHECK(mine.fields["purpose"] == kVisit["purpose"]);
    CHECK(mine.fields["notes"] == "first visit");
    CHECK(mine.fields["duration"] == 50);  // the later edit went through
    CHECK(ok(alice.prepare_pull()).refetch.empty());  // asked once, answered
}

TEST_CASE("discarding a refused new record removes it from the device, as the upstream never had it") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    Json fields = kVisit;
    fields["purpose"] = "phone";
    const std::string id = ok(alice.create("visit", fields));
    push_all(alice, w.upstream);
    REQUIRE(ok(alice.outbox(PendingState::refused)).size() == 1);
    CHECK(ok(alice.discard_refused(id)) == 1);
    CHECK(ok(alice.get(id)).has_value());  // until the next pull
    sync(alice, w.upstream);
    CHECK_FALSE(ok(alice.get(id)).has_value());
    CHECK(ok(alice.outbox()).empty());
    CHECK(ok(alice.prepare_pull()).refetch.empty());
}

TEST_CASE("discarding a refused new record discards its later edits with it, which would make a record alone") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    Json fields = kVisit;
    fields["purpose"] = "phone";  // refused by the older upstream
    const std::string id = ok(alice.create("visit", fields));
    PushBatch sent = ok(alice.prepare_push());
    ok(alice.update(id, {{"duration", 55}}));  // made while the create was on its way
    ok(alice.apply_push_result(ok(w.upstream.push(sent))));
    REQUIRE(ok(alice.outbox(PendingState::refused)).size() == 1);
    REQUIRE(ok(alice.outbox()).size() == 2);  // the edit, held back behind the refused create
    CHECK(ok(alice.discard_refused(id)) == 2);
    sync(alice, w.upstream);
    sync(alice, w.upstream);
    CHECK(ok(alice.outbox()).empty());
    CHECK_FALSE(ok(alice.get(id)).has_value());
    CHECK_FALSE(ok(w.upstream.get(id)).has_value());  // no visit made of the duration alone
    CHECK(ok(w.upstream.history(id)).empty());
}

TEST_CASE("a change to a record the upstream does not hold is refused as no_record and makes no record") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    // An edit of the record alone, as if its create had never reached the upstream.
    ChangeSet& edit = batch.changes[0];
    edit.id = new_id();
    edit.create = false;
    edit.set = {{"duration", 55}};
    PushResult answer = ok(w.upstream.push(batch));
    REQUIRE(answer.outcomes.size() == 1);
    CHECK(answer.outcomes[0].status == PushStatus::refused);
    CHECK(answer.outcomes[0].cause == "no_record");
    CHECK(answer.outcomes[0].code == ErrorCode::not_found);
    CHECK_THAT(answer.outcomes[0].reason, Catch::Contains("not on the server") && !Catch::Contains("duration"));
    CHECK_FALSE(ok(w.upstream.get(id)).has_value());
    CHECK(ok(w.upstream.history(id)).empty());
}

TEST_CASE("a refetch names at most 100 records and only ids, or the request is malformed") {
    Json request = {{"replica", std::string(32, 'a')}, {"user", "alice"}, {"after", 0}};
    request["refetch"] = Json::array({std::string(32, 'b')});
    CHECK(ok(parse_pull_request(request)).refetch.size() == 1);
    request["refetch"] = Json::array({"nope"});
    CHECK(parse_pull_request(request).status().code() == ErrorCode::invalid_argument);
    request["refetch"] = Json::array();
    for (int i = 0; i < 101; ++i) request["refetch"].push_back(std::string(32, 'b'));
    CHECK(parse_pull_request(request).status().code() == ErrorCode::invalid_argument);
}

TEST_CASE("a release ask names at most 100 records and 5000 versions in all, only ids, or the request is malformed") {
    Json request = {{"replica", std::string(32, 'a')}, {"user", "alice"}, {"after", 0}};
    const Json ask = Json::array({std::string(32, 'b'), Json::array({std::string(32, 'c'), std::string(32, 'd')})});
    request["release"] = Json::array({ask});
    PullRequest parsed = ok(parse_pull_request(request));
    REQUIRE(parsed.release.size() == 1);
    CHECK(parsed.release[0].record == std::string(32, 'b'));
    CHECK(parsed.release[0].versions.size() == 2);
    CHECK(Json(parsed)["release"] == request["release"]);  // written back as it came
    auto refused = [&](const Json& release, const char* words) {
        request["release"] = release;
        const Status status = parse_pull_request(request).status();
        CHECK(status.code() == ErrorCode::invalid_argument);
        CHECK_THAT(status.message(), Catch::Contains(words));
    };
    refused(Json::object(), "[record id, [change id, ...]]");
    refused(Json::array({Json::array({std::string(32, 'b')})}), "[record id, [change id, ...]]");
    refused(Json::array({Json::array({"nope", Json::array()})}), "malformed record id");
    refused(Json::array({Json::array({std::string(32, 'b'), Json::array({7})})}), "malformed change id");
    refused(Json::array({Json::array({std::string(32, 'b'), Json::array()})}), "without its versions");
    Json many = Json::array();
    for (int i = 0; i < 100; ++i) many.push_back(ask);
    request["release"] = many;
    CHECK(ok(parse_pull_request(request)).release.size() == PullRequest::kMaxRelease);
    many.push_back(ask);
    refused(many, "at most 100 records");
    Json versions = Json::array();
    for (int i = 0; i < 2500; ++i) versions.push_back(std::string(32, 'c'));
    Json two = Json::array({Json::array({std::string(32, 'b'), versions}), Json::array({std::string(32, 'e'), versions})});
    request["release"] = two;
    CHECK(ok(parse_pull_request(request)).release.size() == 2);  // 5000 versions in all
    two[1][1].push_back(std::string(32, 'c'));
    refused(two, "at most 5000 versions");
}

TEST_CASE("a pull asks after at most 5000 sent changes or the request is malformed") {
    Json request = {{"replica", std::string(32, 'a')}, {"user", "alice"}, {"after", 0}};
    const Json one = {{"record", std::string(32, 'b')}, {"change", std::string(32, 'c')}};
    request["sent"] = Json::array();
    for (std::size_t i = 0; i < PullRequest::kMaxSent; ++i) request["sent"].push_back(one);
    CHECK(ok(parse_pull_request(request)).sent.size() == PullRequest::kMaxSent);
    request["sent"].push_back(one);
    const Status refused = parse_pull_request(request).status();
    CHECK(refused.code() == ErrorCode::invalid_argument);
    CHECK_THAT(refused.message(), Catch::Contains("at most 5000"));
}

TEST_CASE("a field from a newer schema survives an older device's edit") {
    World w;
    Upstream upstream = ok(Upstream::open(w.upstream_store, test_schema(2),
                                          UpstreamOptions{.wall = w.upstream_clock.wall()}));
    ok(upstream.set_scope("new", {"*"}));
    ok(upstream.set_scope("old", {"*"}));
    Device& newer = w.add_device("new", test_schema(2));
    Device& older = w.add_device("old", test_schema(1));
    Json fields = kVisit;
    fields["mood"] = "good";
    const std::string id = ok(newer.create("visit", fields));
    sync(newer, upstream);
    sync(older, upstream);
    CHECK(ok(older.get(id))->fields["mood"] == "good");  // kept though unknown
    ok(older.update(id, {{"notes", "edited on the old app"}}));
    sync(older, upstream);
    sync(newer, upstream);
    auto record = ok(newer.get(id));
    CHECK(record->fields["mood"] == "good");
    CHECK(record->fields["notes"] == "edited on the old app");
}

TEST_CASE("a store holds one replica of one role and one user") {
    World w;
    Device& alice = w.add_device("alice");
    (void)alice;
    Store& device_store = *w.members[0]->store;
    auto as_upstream = Upstream::open(device_store, test_schema());
    CHECK(as_upstream.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(as_upstream.status().message(), Catch::Contains("holds a device replica"));
    auto other_user = Device::open(device_store, test_schema(), DeviceOptions{.user = "bob"});
    CHECK(other_user.status().code() == ErrorCode::forbidden);
    auto as_device = Device::open(w.upstream_store, test_schema(), DeviceOptions{.user = "alice"});
    CHECK_FALSE(as_device.is_ok());
    // A store written by a format from before the first release is refused, not misread.
    ok(w.upstream_store.exec("UPDATE sync_meta SET value = 1 WHERE key = 'format'"));
    auto old_format = Upstream::open(w.upstream_store, test_schema());
    CHECK_THAT(old_format.status().message(), Catch::Contains("format 1"));
    CHECK_THAT(old_format.status().message(), Catch::Contains("start a new store"));
    // Reopened, the device keeps its identity.
    Device again = ok(Device::open(device_store, test_schema(), DeviceOptions{.user = "alice"}));
    CHECK(again.replica_id() == w.members[0]->device->replica_id());
}

TEST_CASE("another connection to a set-up store opens without the write lock unless its table definitions changed") {
    World w;  // its upstream is set up on upstream.db
    auto key = KeySource::raw_key(std::vector<std::uint8_t>(32, 0x5a));
    REQUIRE(key.is_ok());
    StoreOptions briefly_waiting;
    briefly_waiting.busy_timeout_ms = 200;
    auto connect = [&] { return ok(Store::open(w.dir.file("upstream.db"), *key, briefly_waiting)); };
    Store writer = connect();
    ok(writer.begin_immediate());  // another server's connection, writing
    Store reader = connect();
    Upstream beside = ok(Upstream::open(reader, test_schema()));
    CHECK(beside.replica_id() == w.upstream.replica_id());
    ok(writer.rollback());

    // A store whose definitions are not the code's (a table or an index added since it was
    // opened) is opened the long way, which writes them and waits for the lock meanwhile.
    ok(w.upstream_store.exec("UPDATE sync_meta SET value = 'older' WHERE key = 'tables_digest'"));
    ok(writer.begin_immediate());
    Store late = connect();
    auto waited = Upstream::open(late, test_schema());
    CHECK(waited.status().code() == ErrorCode::busy);
    ok(writer.rollback());
    ok(Upstream::open(late, test_schema()));
    auto digest = ok(w.upstream_store.prepare("SELECT value FROM sync_meta WHERE key = 'tables_digest'"));
    REQUIRE(ok(digest.step()));
    CHECK(digest.column_text(0) != "older");
    CHECK(digest.column_text(0).size() == 16);
}

namespace {

std::int64_t format_of(Store& store) {
    auto s = ok(store.prepare("SELECT value FROM sync_meta WHERE key = 'format'"));
    REQUIRE(ok(s.step()));
    return s.column_int(0);
}

}  // namespace

TEST_CASE("an upgraded app opens its older device store in place with its unsent work") {
    World w;  // the upstream runs schema v1
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice", test_schema(2));
    const std::string id = ok(alice.create("visit", kVisit));
    push_all(alice, w.upstream);
    ok(alice.update(id, {{"purpose", "phone"}}));  // refused by the upstream: kept
    push_all(alice, w.upstream);
    const std::string offline = ok(alice.create("visit", kVisit));  // not sent yet
    Store& store = *w.members[0]->store;
    // The store as format 5 left it: the outbox without the refusal's cause, and no journal.
    ok(store.exec("ALTER TABLE sync_outbox DROP COLUMN cause"));
    ok(store.exec("DROP TABLE sync_journal"));
    ok(store.exec("UPDATE sync_meta SET value = 5 WHERE key = 'format'"));

    Device upgraded = ok(Device::open(store, test_schema(2), DeviceOptions{.user = "alice"}));
    CHECK(format_of(store) == 7);
    auto outbox = ok(upgraded.outbox());
    REQUIRE(outbox.size() == 2);
    CHECK(outbox[0].state == PendingState::refused);
    CHECK(outbox[0].reason.find("purpose") != std::string::npos);
    CHECK(outbox[0].cause.empty());  // refused before the device kept causes
    CHECK(outbox[1].change.record == offline);
    // It syncs on: the unsent visit reaches the upstream.
    PushBatch batch = ok(upgraded.prepare_push());
    REQUIRE(batch.changes.size() == 1);
    ok(upgraded.apply_push_result(ok(w.upstream.push(batch))));
    CHECK(ok(upgraded.outbox()).size() == 1);
    CHECK(rows(store, "sync_journal") == 1);  // the journal (format 7) keeps what was acknowledged
    // An upstream store of format 5 has nothing to change but its format.
    ok(w.upstream_store.exec("UPDATE sync_meta SET value = 5 WHERE key = 'format'"));
    ok(Upstream::open(w.upstream_store, test_schema()));
    CHECK(format_of(w.upstream_store) == 7);
}

TEST_CASE("a store from a newer app or whose migration fails is refused and left as it was") {
    World w;
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    Store& store = *w.members[0]->store;
    ok(store.exec("UPDATE sync_meta SET value = 8 WHERE key = 'format'"));
    auto newer = Device::open(store, test_schema(), DeviceOptions{.user = "alice"});
    CHECK(newer.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(newer.status().message(), Catch::Contains("format 8, written by a newer Tsunagu"));
    CHECK_THAT(newer.status().message(), Catch::Contains("update it"));
    CHECK(format_of(store) == 8);

    // A step that cannot run (here: the column it adds is already there) changes nothing.
    ok(store.exec("UPDATE sync_meta SET value = 5 WHERE key = 'format'"));
    auto failed = Device::open(store, test_schema(), DeviceOptions{.user = "alice"});
    CHECK_FALSE(failed.is_ok());
    CHECK_THAT(failed.status().message(), Catch::Contains("from format 5 to 6 failed (the store is unchanged)"));
    CHECK(format_of(store) == 5);
    ok(store.exec("UPDATE sync_meta SET value = 6 WHERE key = 'format'"));
    Device reopened = ok(Device::open(store, test_schema(), DeviceOptions{.user = "alice"}));
    CHECK(ok(reopened.outbox()).size() == 1);
}

TEST_CASE("a push of someone else's change sets is refused") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("mallory", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());
    batch.user = "mallory";
    PushResult result = ok(w.upstream.push(batch));
    CHECK(result.outcomes[0].status == PushStatus::refused);
    CHECK(result.outcomes[0].code == ErrorCode::forbidden);
    CHECK(ok(w.upstream.sequence()) == 0);
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

TEST_CASE("a pulled record keeps the device's unsynced changes on top") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    ok(alice.update(id, {{"notes", "alice, not pushed yet"}}));
    ok(bob.update(id, {{"duration", 90}}));
    sync(bob, w.upstream);
    pull_all(alice, w.upstream);
    auto record = ok(alice.get(id));
    CHECK(record->fields["notes"] == "alice, not pushed yet");
    CHECK(record->fields["duration"] == 90);
    CHECK(record->conflicts.empty());
    sync(alice, w.upstream);
    sync(bob, w.upstream);
    CHECK(ok(bob.get(id))->fields == record->fields);
}

TEST_CASE("a change the upstream already superseded does not come back with a pulled record") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    ok(w.upstream.set_scope("bob", {"*"}));
    Device& alice = w.add_device("alice");
    Device& bob = w.add_device("bob");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    ok(alice.update(id, {{"notes", "alice"}}));
    ok(w.upstream.push(ok(alice.prepare_push())));  // the answer is lost
    sync(bob, w.upstream);
    ok(bob.update(id, {{"notes", "bob, having read alice's"}}));
    sync(bob, w.upstream);
    PullReport report = ok(alice.apply_pull(ok(w.upstream.pull(ok(alice.prepare_pull())))));
    CHECK(report.acknowledged == 1);
    auto record = ok(alice.get(id));
    CHECK(record->fields["notes"] == "bob, having read alice's");
    CHECK(record->conflicts.empty());
    CHECK(ok(alice.outbox()).empty());
}

TEST_CASE(
    "a record moved by an unsynced local edit is evicted by its upstream scope, not the local "
    "one") {
    World w;
    Device& alice = w.add_device("alice");
    const std::string tanaka(32, 'a'), sato(32, 'b');
    ok(w.upstream.set_scope("alice", {"client:" + tanaka, "client:" + sato}));
    Json fields = kVisit;
    fields["client"] = tanaka;
    const std::string id = ok(alice.create("visit", fields));
    sync(alice, w.upstream);
    ok(alice.update(id, {{"client", sato}}));  // moved here, not pushed yet
    ok(w.upstream.set_scope("alice", {"client:" + tanaka}));
    pull_all(alice, w.upstream);  // sato's records go; this one is still tanaka's upstream
    REQUIRE(ok(alice.get(id)).has_value());
    push_all(alice, w.upstream);
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].code == ErrorCode::forbidden);  // moving it out of alice's scope is refused
    CHECK(ok(w.upstream.get(id))->fields["client"] == tanaka);
}

TEST_CASE("a record moved to a client still in scope as its old client leaves, in one page, keeps its journal and unsent work") {
    // A supervisor moves alice's visit from tanaka to sato, then takes tanaka off her caseload:
    // her next page names tanaka's scope as gone and carries the visit under sato. The visit
    // stays hers, with what the upstream acknowledged (for a restore to get back) and her edit.
    World w;
    Device& alice = w.add_device("alice");
    Device& sup = w.add_device("sup");
    const std::string tanaka(32, 'a'), sato(32, 'b');
    ok(w.upstream.set_scope("alice", {"client:" + tanaka, "client:" + sato}));
    ok(w.upstream.set_scope("sup", {"*"}));
    Json fields = kVisit;
    fields["client"] = tanaka;
    const std::string id = ok(alice.create("visit", fields));
    sync(alice, w.upstream);
    REQUIRE(rows(*w.members[0]->store, "sync_journal") == 1);
    pull_all(sup, w.upstream);
    ok(sup.update(id, {{"client", sato}}));
    push_all(sup, w.upstream);
    ok(w.upstream.set_scope("alice", {"client:" + sato}));
    ok(alice.update(id, {{"notes", "alice, offline"}}));

    PullPage page = ok(w.upstream.pull(ok(alice.prepare_pull(100))));
    REQUIRE(page.evicted_scopes == std::vector<std::string>{"client:" + tanaka});
    REQUIRE(page.records.size() == 1);
    PullReport report = ok(alice.apply_pull(page));
    CHECK(report.evicted == 0);
    CHECK(report.evicted_pending.empty());
    auto visit = ok(alice.get(id));
    REQUIRE(visit.has_value());
    CHECK(visit->fields["client"] == sato);
    CHECK(visit->fields["notes"] == "alice, offline");
    CHECK(rows(*w.members[0]->store, "sync_journal") == 1);
    auto pending = ok(alice.outbox());
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == PendingState::unsent);
    push_all(alice, w.upstream);
    CHECK(ok(w.upstream.get(id))->fields["notes"] == "alice, offline");
}

TEST_CASE("a create given an id already in use is refused and changes nothing") {
    tsunagu::testing::TempDir dir{"tsunagu-sync"};
    Store store = open_store(dir.file("device.db"));
    // The replica's id, then the same two ids for every change set: a broken id source.
    auto calls = std::make_shared<int>(0);
    IdSource repeating = [calls] {
        const int n = (*calls)++;
        return std::string(32, n == 0 ? 'a' : n % 2 ? 'b' : 'c');
    };
    Device device = ok(Device::open(store, test_schema(), DeviceOptions{.user = "alice", .ids = repeating}));
    const std::string first = ok(device.create("client", {{"name", "Tanaka"}}));
    auto again = device.create("client", {{"name", "Sato"}});
    REQUIRE_FALSE(again.is_ok());
    CHECK_THAT(again.status().message(), Catch::Contains("already in use"));
    CHECK(ok(device.get(first))->fields == Json{{"name", "Tanaka"}});
    CHECK(ok(device.outbox()).size() == 1);
    CHECK(rows(store, "sync_records") == 1);
}

namespace {

struct RowSize {
    std::int64_t total = 0;  // the bytes an edit may resize, spare bytes included
    std::int64_t spare = 0;
};

RowSize row_size(Store& store, const std::string& id) {
    Statement& s = store.cached(
        "SELECT length(CAST(scope_key AS BLOB)) + length(CAST(fields AS BLOB)) +"
        " length(CAST(meta AS BLOB)) + coalesce(length(log), 0) + coalesce(length(spare), 0),"
        " coalesce(length(spare), 0) FROM sync_records WHERE id = x'" + id + "'");
    REQUIRE(ok(s.step()));
    RowSize size{s.column_int(0), s.column_int(1)};
    s.reset();
    return size;
}

}  // namespace

TEST_CASE("an edit takes the room it needs from its row's spare bytes, so the row keeps its size") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create("visit", kVisit));
    sync(alice, w.upstream);
    const RowSize created = row_size(w.upstream_store, id);
    CHECK(created.spare > 0);

    ok(alice.update(id, {{"duration", 45}}));
    sync(alice, w.upstream);
    const RowSize edited = row_size(w.upstream_store, id);
    CHECK(edited.total == created.total);  // rewritten in place
    CHECK(edited.spare < created.spare);

    // An edit larger than what is left grows the row; nothing is lost either way.
    ok(alice.update(id, {{"notes", std::string(2 * created.spare, 'n')}}));
    sync(alice, w.upstream);
    const RowSize grown = row_size(w.upstream_store, id);
    CHECK(grown.spare == 0);
    CHECK(grown.total > created.total);
    CHECK(ok(w.upstream.get(id))->fields["notes"] == std::string(2 * created.spare, 'n'));
    CHECK(ok(w.upstream.get(id))->fields["duration"] == 45);
}

namespace {

// Adds a row that shares the index key of record `id` (as a rare, unchoosable collision of two
// ids' 64-bit keys would) and comes before it in the index, holding another id and other values.
const std::string kPhantom(32, 'f');
void add_colliding_row(Store& store, const std::string& id) {
    ok(store.exec("INSERT INTO sync_records(rid, key, id, collection, scope_key, seq, deleted,"
                  " conflicts, fields, meta) SELECT -1, key, x'" + kPhantom + "', collection,"
                  " scope_key, seq, deleted, conflicts, '{\"name\":\"Phantom\"}', meta"
                  " FROM sync_records WHERE id = x'" + id + "'"));
    REQUIRE(store.changes() == 1);
}

std::string phantom_fields(Store& store) {
    Statement& s = store.cached("SELECT fields FROM sync_records WHERE rid = -1");
    REQUIRE(ok(s.step()));
    std::string fields(s.column_text(0));
    s.reset();
    return fields;
}

}  // namespace

TEST_CASE("records whose ids share an index key are told apart by their ids") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    const std::string id = ok(alice.create("client", {{"name", "Tanaka"}}));
    sync(alice, w.upstream);
    Store& device_store = *w.members[0]->store;
    add_colliding_row(w.upstream_store, id);
    add_colliding_row(device_store, id);

    ok(alice.update(id, {{"name", "Tanaka Ken"}}));  // found, saved and pushed by its id
    sync(alice, w.upstream);
    ok(w.upstream.update("alice", id, {{"notes", "moved house"}}));  // pulled into its own row
    pull_all(alice, w.upstream);

    const Json expected = {{"name", "Tanaka Ken"}, {"notes", "moved house"}};
    CHECK(ok(w.upstream.get(id))->fields == expected);
    CHECK(ok(alice.get(id))->fields == expected);
    CHECK(ok(w.upstream.history(id)).size() == 3);
    for (Store* store : {&w.upstream_store, &device_store}) {
        CHECK(phantom_fields(*store) == R"({"name":"Phantom"})");
        CHECK(rows(*store, "sync_records") == 2);
    }
}

namespace {

// A change set made by hand on replica `replica` of user "alice", for the late-delivery tests.
ChangeSet hand_made(const std::string& id, const std::string& record, const std::string& replica,
                    std::int64_t wall_ms, Json set,
                    std::map<std::string, std::vector<std::string>> base = {}) {
    ChangeSet c;
    c.id = id;
    c.collection = "client";
    c.record = record;
    c.hlc = Hlc{wall_ms, 0};
    c.replica = replica;
    c.user = "alice";
    c.schema_version = 1;
    c.create = base.empty();
    c.set = std::move(set);
    c.base = std::move(base);
    return c;
}

void push_one(Upstream& upstream, const ChangeSet& change) {
    PushResult result = ok(upstream.push(PushBatch{change.replica, change.user, 0, {change}, {}}));
    REQUIRE(result.outcomes.at(0).status == PushStatus::accepted);
}

}  // namespace

TEST_CASE("a late change set that two later edits overwrote, in different fields, loses both") {
    // x edits area and notes; e1 (having seen x) overwrites area, e2 (having seen x) notes. On a
    // device that applies them in order nothing conflicts; the upstream, receiving x last, must
    // reach the same state: x's values are superseded in both fields, though x's id is in e1's
    // not-yet-applied base when e2 arrives.
    const std::string record(32, '1'), create(32, 'c'), x(32, 'a'), e1(32, 'b'), e2(32, 'd');
    const std::string phone(32, 'e'), tablet(32, 'f');
    const ChangeSet made = hand_made(create, record, phone, kStartMs,
                                     {{"name", "Tanaka"}, {"area", "north"}, {"notes", "new"}});
    const ChangeSet late = hand_made(x, record, phone, kStartMs + 1000,
                                     {{"area", "south"}, {"notes", "moved"}},
                                     {{"area", {create}}, {"notes", {create}}});
    const ChangeSet area = hand_made(e1, record, tablet, kStartMs + 2000, {{"area", "east"}},
                                     {{"area", {x}}});
    const ChangeSet notes = hand_made(e2, record, tablet, kStartMs + 3000,
                                      {{"notes", "moved east"}}, {{"notes", {x}}});

    World reordered, in_order;
    for (World* w : {&reordered, &in_order}) ok(w->upstream.set_scope("alice", {"*"}));
    for (const ChangeSet* c : {&made, &area, &notes, &late}) push_one(reordered.upstream, *c);
    for (const ChangeSet* c : {&made, &late, &area, &notes}) push_one(in_order.upstream, *c);

    const Record got = ok(reordered.upstream.get(record)).value();
    CHECK(got.conflicts.empty());
    CHECK(got.fields == Json{{"name", "Tanaka"}, {"area", "east"}, {"notes", "moved east"}});
    CHECK(got.fields == ok(in_order.upstream.get(record)).value().fields);
    CHECK(ok(in_order.upstream.get(record)).value().conflicts.empty());
}

}  // namespace tsunagu::sync

namespace tsunagu::sync {

TEST_CASE("engine calls run inside a caller's transaction and roll back with it") {
    World w;
    ok(w.upstream.set_scope("alice", {"*"}));
    Device& alice = w.add_device("alice");
    ok(alice.create("visit", kVisit));
    PushBatch batch = ok(alice.prepare_push());

    ok(w.upstream_store.begin_immediate());
    REQUIRE(ok(w.upstream.push(batch)).outcomes[0].status == PushStatus::accepted);
    CHECK(ok(w.upstream.pull(ok(alice.prepare_pull()))).records.size() == 1);
    ok(w.upstream_store.rollback());
    CHECK(ok(w.upstream.sequence()) == 0);  // the push went with the caller's transaction

    ok(w.upstream_store.begin_immediate());
    PushResult result = ok(w.upstream.push(batch));
    ok(w.upstream_store.commit());
    CHECK(result.outcomes[0].status == PushStatus::accepted);
    ok(alice.apply_push_result(result));
    CHECK(ok(alice.outbox()).empty());
}

}  // namespace tsunagu::sync
