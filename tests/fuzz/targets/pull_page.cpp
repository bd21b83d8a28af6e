// Fuzz target pull_page: a device's reading of a pull page, the largest answer the upstream sends
// (thousands of records). parse_pull_page_text reads it without a document; for any bytes it must
// agree with the document path (nlohmann's parser, then parse_pull_page): both refuse, or both
// read the same page. A page it reads must write back (pull_page_text) as the document path writes
// it, and read again into the same page. It must never throw, crash or read past the text. (A
// text naming a member twice in one object may be read either way: see repeated_member.h.)
#include <optional>
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/repeated_member.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

std::optional<sync::PullPage> through_document(const std::string& text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception&) {
        return std::nullopt;
    }
    auto page = sync::parse_pull_page(doc);
    if (!page) return std::nullopt;
    return std::move(*page);
}

void run(std::string_view input) {
    const auto got = sync::parse_pull_page_text(input);
    const auto expected = through_document(std::string(input));
    if (has_repeated_member(input)) return;  // either reading will do (repeated_member.h)
    check(got.is_ok() == expected.has_value(),
          got.is_ok() ? "read a page the document path refuses"
                   : "refused a page the document path reads (" + got.status().message() + ")",
          input);
    if (!got.is_ok()) {
        check(!got.status().message().empty(), "refused without saying why", input);
        return;
    }
    const std::string as_document = json(*expected).dump();
    check(json(*got).dump() == as_document, "read into another page than the document path", input);
    const std::string written = sync::pull_page_text(*got);
    check(written == as_document, "pull_page_text writes another text than the document path", input);
    const auto again = sync::parse_pull_page_text(written);
    check(again.is_ok() && json(*again).dump() == as_document, "a page written does not read back the same", input);
}

std::vector<std::string> seeds() {
    sync::PullPage empty;
    empty.after = 7;
    empty.next = 7;
    empty.upstream_time = {1750000000000, 2};

    sync::PullPage page;
    page.after = 120;
    page.next = 180;
    page.more = true;
    page.upstream_time = {1750000009999, 65535};
    page.epoch = std::string(32, 'e');
    page.records.push_back({std::string(32, 'a'), "home_visit", "client:" + std::string(32, 'c'), 130, false, 1,
                            R"({"date":"2026-01-02","duration_min":30,"note":"話を聞いた \"ok\"\n"})",
                            R"({"date":{"c":"x","h":"1750000000000-1"}})"});
    page.records.push_back({std::string(32, 'b'), "client", "area:north", 180, true, 0, "{}", "{}"});
    page.evicted_records = {std::string(32, '1'), std::string(32, '2')};
    page.evicted_scopes = {"client:" + std::string(32, '3')};
    page.kept = {{std::string(32, '4'), 150}, {std::string(32, '5'), 151}};
    sync::PushOutcome accepted;
    accepted.change_id = std::string(32, '6');
    accepted.record = std::string(32, '7');
    accepted.seq = 125;
    accepted.hlc = {1750000000001, 0};
    sync::PushOutcome refused;
    refused.change_id = std::string(32, '8');
    refused.record = std::string(32, '9');
    refused.status = sync::PushStatus::refused;
    refused.code = ErrorCode::validation;
    refused.reason = "field \"date\" must be a date";
    refused.cause = "invalid_value";
    page.acks = {accepted, refused};
    return {sync::pull_page_text(empty), sync::pull_page_text(page), json(page).dump(2)};
}

}  // namespace

const Target& target() {
    static const Target t{"pull_page", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
