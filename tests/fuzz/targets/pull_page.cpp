// Fuzz target pull_page: a device's reading of a pull page, the largest answer the upstream sends
// (thousands of records), by parse_pull_page_text, without a document: the property of
// fast_reader.h against parse_pull_page and pull_page_text.
#include <string>

#include "fuzz/fast_reader.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

void run(std::string_view input) {
    static const FastReader<sync::PullPage> reader{"page", sync::parse_pull_page_text,
                                                   sync::parse_pull_page, sync::pull_page_text};
    check_fast_reader(reader, input);
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
    page.records.push_back(
        {std::string(32, 'a'), "home_visit", "client:" + std::string(32, 'c'), 130, false, 1,
         R"({"date":"2026-01-02","duration_min":30,"note":"話を聞いた \"ok\"\n"})",
         R"({"date":{"c":"x","h":"1750000000000-1"}})"});
    page.records.push_back(
        {std::string(32, 'b'), "client", "area:north", 180, true, 0, "{}", "{}"});
    page.evicted_records = {std::string(32, '1'), std::string(32, '2')};
    page.evicted_scopes = {"client:" + std::string(32, '3')};
    page.kept = {{std::string(32, '4'), 150}, {std::string(32, '5'), 151}};
    page.release = {.released = {std::string(32, 'd')}, .in_scope = {std::string(32, 'e')},
                    .not_held = {std::string(32, 'f'), std::string(32, '0')}};
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
