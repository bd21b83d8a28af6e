// What a peer sent that cannot be read is refused with words naming where (the byte, the member),
// never what the text says there: the messages reach logs, apps and the command line, and the
// text is people's care records.
#include <catch2/catch.hpp>

#include "sync/protocol.h"

namespace tsunagu::sync {
namespace {

const std::string kNote = "slept badly, worried about the rent";

PullPage page_with_note() {
    PullPage page;
    page.after = 0;
    page.next = 1;
    RecordSnapshot record;
    record.id = std::string(32, 'a');
    record.collection = "visit";
    record.scope_key = "client:" + std::string(32, 'b');
    record.seq = 1;
    record.fields = Json{{"notes", kNote}}.dump();
    record.meta = "{}";
    page.records.push_back(record);
    return page;
}

}  // namespace

TEST_CASE("a pull page cut inside a record's fields is refused naming the byte and the member, not the text") {
    const std::string whole = pull_page_text(page_with_note());
    REQUIRE(parse_pull_page_text(whole).is_ok());
    const std::size_t inside = whole.find("worried");
    REQUIRE(inside != std::string::npos);
    const std::string cut = whole.substr(0, inside + 4);

    const auto read = parse_pull_page_text(cut);
    REQUIRE_FALSE(read.is_ok());
    const std::string& message = read.status().message();
    INFO(message);
    // nlohmann counts the end of the text as one more byte read.
    CHECK_THAT(message, Catch::Contains("(at byte " + std::to_string(cut.size() + 1) + ")"));
    CHECK_THAT(message, Catch::Contains("in record 1, member \"fields\""));
    CHECK_THAT(message, !Catch::Contains("slept") && !Catch::Contains("worr") && !Catch::Contains("last read"));
}

TEST_CASE("exception_text keeps what nlohmann says went wrong and drops the text it quotes") {
    try {
        [[maybe_unused]] const Json never = Json::parse(R"({"notes": "slept badly)");
        FAIL("the parse should have thrown");
    } catch (const Json::exception& e) {
        REQUIRE_THAT(std::string(e.what()), Catch::Contains("slept badly"));  // why this exists
        const std::string text = exception_text(e);
        CHECK_THAT(text, Catch::Contains("parse error"));
        CHECK_THAT(text, !Catch::Contains("slept") && !Catch::Contains("last read"));
    }
    const std::runtime_error plain("cannot connect; try again");
    CHECK(exception_text(plain) == "cannot connect; try again");
}

}  // namespace tsunagu::sync
