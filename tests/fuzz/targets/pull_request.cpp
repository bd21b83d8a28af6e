// Fuzz target pull_request: the upstream's reading of a pull request, made from a device's body.
// For any JSON document parse_pull_request answers a request or says what is malformed, never
// throws; a request it reads writes back (to_json) into a document that reads the same request.
#include <string>

#include "fuzz/fuzz_target.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

void run(std::string_view input) {
    json doc;
    try {
        doc = json::parse(input);
    } catch (const json::exception&) {
        return;  // not JSON: refused before parse_pull_request (api/src/json_input.h)
    }
    const auto request = sync::parse_pull_request(doc);
    if (!request) {
        check(request.status().code() == ErrorCode::invalid_argument && !request.status().message().empty(),
              "refused without invalid_argument and a reason", input);
        return;
    }
    const json written = *request;
    const auto again = sync::parse_pull_request(written);
    check(again.is_ok(), "a request written does not read back: " + (again ? std::string() : again.status().message()),
          input);
    check(json(*again).dump() == written.dump(), "a request written reads back as another", input);
}

std::vector<std::string> seeds() {
    sync::PullRequest plain;
    plain.replica = std::string(32, 'd');
    plain.user = "user-1";
    plain.after = 0;

    sync::PullRequest full = plain;
    full.after = 1234;
    full.limit = 500;
    full.outbox_floor = 1200;
    full.sent = {{std::string(32, 'a'), std::string(32, 'b')}};
    full.held = {{std::string(32, 'c'), "client:" + std::string(32, 'c')}, {std::string(32, 'e'), "area:north"}};
    full.refetch = {std::string(32, 'f')};
    full.release = {{std::string(32, '1'), {std::string(32, '2'), std::string(32, '3')}}, {std::string(32, '4'), {}}};
    full.clock_offset_ms = -90'000;
    return {json(plain).dump(), json(full).dump(), json(full).dump(1)};
}

}  // namespace

const Target& target() {
    static const Target t{"pull_request", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
