// Fuzz target push_result: a device's reading of the upstream's answer to a push, by
// parse_push_result_text, without a document: the property of fast_reader.h against
// parse_push_result and push_result_text.
#include <string>

#include "fuzz/fast_reader.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

void run(std::string_view input) {
    static const FastReader<sync::PushResult> reader{
        "result", sync::parse_push_result_text, sync::parse_push_result, sync::push_result_text};
    check_fast_reader(reader, input);
}

std::vector<std::string> seeds() {
    sync::PushResult none;
    none.upstream_time = {1750000000000, 0};

    sync::PushResult result;
    result.upstream_time = {1750000001234, 7};
    result.epoch = std::string(32, 'e');
    for (int i = 0; i < 3; ++i) {
        sync::PushOutcome o;
        o.change_id = std::string(32, "abc"[i]);
        o.record = std::string(32, "123"[i]);
        o.status = static_cast<sync::PushStatus>(i);
        if (o.status == sync::PushStatus::refused) {
            o.code = ErrorCode::forbidden;
            o.reason = "record 333… is outside your caseload";
            o.cause = "outside_scope";
        } else {
            o.seq = 40 + i;
            o.hlc = {1750000001000 + i, static_cast<std::uint32_t>(i)};
        }
        result.outcomes.push_back(o);
    }
    return {sync::push_result_text(none), sync::push_result_text(result), json(result).dump(2)};
}

}  // namespace

const Target& target() {
    static const Target t{"push_result", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
