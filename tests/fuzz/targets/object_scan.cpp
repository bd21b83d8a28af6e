// Fuzz target object_scan: the structural scan that splits a stored record's fields into members
// without parsing their values (detail::scan_object; a merge passes most values through as text).
// When it reads a text, the text must be a JSON object with exactly those members, in order, each
// value's text parsing to the member's value; when it cannot tell, it says so (the caller then
// parses the text properly). It must never read past the text. What is inside a string is not its
// business (json_scan.h: strings terminated, brackets balanced, scalars well formed), nor is a
// number's size: a text that is JSON but for a string's bytes (invalid UTF-8, a control character,
// a bad escape) or a number too large for a double may be read.
#include <string>

#include "fuzz/fuzz_target.h"
#include "sync/src/json_scan.h"
#include "sync/change.h"

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

void run(std::string_view input) {
    const auto members = sync::detail::scan_object(input);
    if (!members) return;
    json doc;
    try {
        doc = json::parse(input);
    } catch (const json::out_of_range&) {
        return;  // a number too large for a double
    } catch (const json::exception& e) {
        if (std::string_view(e.what()).find("invalid string") != std::string_view::npos) return;
        fail(std::string("scanned as an object a text that is not JSON: ") + e.what(), input);
    }
    check(doc.is_object(), "scanned as an object a text that is not one", input);
    check(input.find('\0') == std::string_view::npos, "scanned a text holding a NUL byte", input);
    json rebuilt = json::object();
    for (const auto& [key, value_text] : members.value()) {
        json value;
        try {
            value = json::parse(value_text);
        } catch (const json::exception&) {
            fail("member \"" + key + "\" scanned as a value that is not one: " + std::string(value_text), input);
        }
        rebuilt[key] = std::move(value);  // a repeated key keeps its last value, as in a document
    }
    check(rebuilt == doc, "scanned into other members than the document's", input);
}

std::vector<std::string> seeds() {
    return {"{}", R"({"date":"2026-01-02","duration_min":30,"ratio":-1.5e3,"visited":true,"extra":null})",
            R"({"note":"話を聞いた \"ok\"\n\\","tags":["a",{"b":[1,2,{}]}],"k\"ey":"\u3042"})",
            R"( { "spaced" : [ 1 , 2 ] , "again" : { } } )"};
}

}  // namespace

const Target& target() {
    static const Target t{"object_scan", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
