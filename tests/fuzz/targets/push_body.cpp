// Fuzz target push_body: the server's reading of a push request's body, the largest input a
// device sends. parse_push_batch_text reads it without a document; for any bytes it must answer
// exactly what the document path answers (support/push_body_reference.h): the same refusal in the
// same words, or the same batch. It must never throw, crash or read past the body.
#include <string>

#include "fuzz/fuzz_target.h"
#include "support/push_body_reference.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

const std::string kReplica(32, 'd');
const std::string kUser = "user-1";
constexpr sync::PushBodyLimits kLimits{24, 1000};

void run(std::string_view input) {
    const std::string text(input);
    const sync::PushBody expected = testing::push_body_through_document(text, kReplica, kUser, kLimits);
    const sync::PushBody got = sync::parse_push_batch_text(text, kReplica, kUser, kLimits);
    check(got.refusal.code() == expected.refusal.code(),
          "refused with another code than the document path (" + std::string(error_code_name(got.refusal.code())) +
              " vs " + error_code_name(expected.refusal.code()) + ": " + got.refusal.message() + " / " +
              expected.refusal.message() + ")",
          input);
    check(got.refusal.message() == expected.refusal.message(),
          "refused in other words than the document path (\"" + got.refusal.message() + "\" vs \"" +
              expected.refusal.message() + "\")",
          input);
    check(got.too_many_changes == expected.too_many_changes, "too_many_changes differs from the document path", input);
    if (expected.refusal.is_ok()) {
        check(json(got.batch).dump() == json(expected.batch).dump(), "read into another batch than the document path",
              input);
    }
}

json change_set(int i, bool create) {
    const std::string id = std::string(31, "0123456789abcdef"[i % 16]) + "a";
    json c = {{"id", std::string(32, "abcdef"[i % 6])},
              {"collection", i % 2 ? "home_visit" : "client"},
              {"record", id},
              {"hlc", "1750000000000-" + std::to_string(i)},
              {"replica", kReplica},
              {"user", kUser},
              {"schema", 1},
              {"set", {{"date", "2026-01-02"}, {"duration_min", 30 + i}, {"ratio", 0.25}, {"note", "話を聞いた \"ok\"\n"},
                       {"tags", {"a", "b"}}, {"visited", true}, {"extra", nullptr}}}};
    if (create) c["create"] = true;
    if (i % 3 == 1) c["base"] = {{"date", {std::string(32, 'e')}}, {"note", json::array()}};
    if (i % 4 == 3) {
        c["set"] = {{"_deleted", true}};
        c["seen"] = {std::string(32, 'f'), std::string(32, 'e')};
    }
    return c;
}

std::vector<std::string> seeds() {
    std::vector<std::string> out;
    out.push_back(json{{"changes", json::array()}}.dump());
    out.push_back(json{{"changes", {change_set(0, true)}}, {"sent_at", 1750000000123}}.dump());
    json batch = {{"changes", json::array()}, {"sent_at", 1750000000456}, {"clock_offset", -1500}};
    for (int i = 0; i < 6; ++i) batch["changes"].push_back(change_set(i, i == 0));
    out.push_back(batch.dump());
    out.push_back(batch.dump(2));  // whitespace everywhere a document allows it
    return out;
}

}  // namespace

const Target& target() {
    static const Target t{"push_body", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
