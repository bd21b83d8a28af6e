// Fuzz target push_result: a device's reading of the upstream's answer to a push.
// parse_push_result_text makes the same checks as the document path (nlohmann's parser, then
// parse_push_result): for any bytes both refuse, or both read the same result, which
// push_result_text writes back as the document path does, and which reads again the same. (A
// text naming a member twice in one object may be read either way: see repeated_member.h.)
#include <optional>
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/repeated_member.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

std::optional<sync::PushResult> through_document(const std::string& text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception&) {
        return std::nullopt;
    }
    auto result = sync::parse_push_result(doc);
    if (!result) return std::nullopt;
    return std::move(*result);
}

void run(std::string_view input) {
    const auto got = sync::parse_push_result_text(input);
    const auto expected = through_document(std::string(input));
    if (has_repeated_member(input)) return;  // either reading will do (repeated_member.h)
    check(got.is_ok() == expected.has_value(),
          got.is_ok() ? "read a result the document path refuses"
                   : "refused a result the document path reads (" + got.status().message() + ")",
          input);
    if (!got.is_ok()) {
        check(!got.status().message().empty(), "refused without saying why", input);
        return;
    }
    const std::string as_document = json(*expected).dump();
    check(json(*got).dump() == as_document, "read into another result than the document path", input);
    const std::string written = sync::push_result_text(*got);
    check(written == as_document, "push_result_text writes another text than the document path", input);
    const auto again = sync::parse_push_result_text(written);
    check(again.is_ok() && json(*again).dump() == as_document, "a result written does not read back the same", input);
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
