// Fuzz target json_depth: the byte scan that refuses a deeply nested body before it is parsed
// (json_nests_deeper_than) must agree with the nesting of the document the text parses into, for
// every limit, and must read any bytes, JSON or not, without fault. Hostile bodies are refused by
// this scan alone, so a miss lets a deep document into memory and a false alarm refuses good work.
// The scan for a member named twice (json_repeated_member_error) must agree with a set of names per
// object built from the parser's events (repeated_member.h), and read any bytes without fault.
#include <algorithm>
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/repeated_member.h"
#include "sync/protocol.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

// How many arrays and objects the most deeply placed element sits inside.
int depth_of(const json& value) {
    if (!value.is_structured() || value.empty()) return 0;
    int deepest = 0;
    for (const auto& child : value) deepest = std::max(deepest, depth_of(child));
    return 1 + deepest;
}

void run(std::string_view input) {
    json doc;
    // A NUL byte is never JSON, though the parser takes it for the end of the text; the readers
    // refuse a body holding one (json_nul_error), so the scan need not agree with the parser there.
    bool is_json = input.find('\0') == std::string_view::npos;
    if (is_json) {
        try {
            // The scan, not the parser, is what keeps depth bounded on the server; here a deep
            // document is only the oracle's, and the inputs are small.
            doc = json::parse(input);
        } catch (const json::exception&) {
            is_json = false;
        }
    }
    const bool repeated = !sync::json_repeated_member_error(input).empty();
    if (is_json) {
        check(repeated == has_repeated_member(input),
              repeated ? "json_repeated_member_error names a member that the parser reads once"
                       : "json_repeated_member_error misses a member that the parser reads twice",
              input);
    }
    const int depth = is_json ? depth_of(doc) : 0;
    for (int limit : {0, 1, 2, 3, depth - 1, depth, depth + 1, 24}) {
        if (limit < 0) continue;
        const bool deeper = sync::json_nests_deeper_than(input, limit);
        // A document keeps one value of a repeated member: its depth is not the text's then.
        if (is_json && !repeated) {
            check(deeper == (depth > limit),
                  "json_nests_deeper_than(" + std::to_string(limit) + ") says " + (deeper ? "deeper" : "not deeper") +
                      " of a document " + std::to_string(depth) + " deep",
                  input);
        }
    }
}

std::vector<std::string> seeds() {
    return {R"({"changes":[{"set":{"a":[1,{"b":[]}],"c":"[{\"x\":\"}]\\\\"}}],"sent_at":1})",
            R"([[[[["deep"]]]],{},[],"]]]]}}}}",{"k\"}":{"v":null}}])", R"("just a string")", "42",
            R"({"a" : [ true , false , null , -1.5e3 ] })", R"({"a":{"b":1,"\u0062":[{"b":2}]},"a\\":0})"};
}

}  // namespace

const Target& target() {
    static const Target t{"json_depth", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
