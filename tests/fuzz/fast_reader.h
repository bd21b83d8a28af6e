// The property the targets pull_page and push_result check of a fast reader (a SAX reader of an
// answer the upstream sends, without a JSON document) against the document path (nlohmann's
// parser, then the message's from_json): for any bytes both refuse, or both read the same
// message; a message read writes back (the fast writer) as the document writes it, and reads
// again the same. A text naming a member twice in one object may be read either way
// (repeated_member.h): the upstream never writes one.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "crypto/status.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/repeated_member.h"
#include "sync/change.h"

namespace tsunagu::fuzz {

template <typename Message>
struct FastReader {
    const char* what;                                     // "page", "result"
    Result<Message> (*read)(std::string_view);            // the fast reader
    Result<Message> (*read_document)(const sync::Json&);  // from_json's non-throwing form
    std::string (*write)(const Message&);                 // the fast writer
};

template <typename Message>
void check_fast_reader(const FastReader<Message>& reader, std::string_view input) {
    using sync::Json;
    const Result<Message> got = reader.read(input);
    std::optional<Message> expected;
    try {
        if (auto read = reader.read_document(Json::parse(input))) expected = std::move(*read);
    } catch (const Json::exception&) {
        // not JSON: refused
    }
    if (has_repeated_member(input)) return;
    const std::string what = reader.what;
    check(got.is_ok() == expected.has_value(),
          got.is_ok()
              ? "read a " + what + " the document path refuses"
              : "refused a " + what + " the document path reads (" + got.status().message() + ")",
          input);
    if (!got.is_ok()) {
        check(!got.status().message().empty(), "refused without saying why", input);
        return;
    }
    const std::string as_document = Json(*expected).dump();
    check(Json(*got).dump() == as_document, "read into another " + what + " than the document path",
          input);
    const std::string written = reader.write(*got);
    check(written == as_document, "the fast writer writes another text than the document path",
          input);
    const Result<Message> again = reader.read(written);
    check(again.is_ok() && Json(*again).dump() == as_document,
          "a " + what + " written does not read back the same", input);
}

}  // namespace tsunagu::fuzz
