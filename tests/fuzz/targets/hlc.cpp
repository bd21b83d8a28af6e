// Fuzz target hlc: a clock reading's wire form ("1750000000000-3"), which every change set and
// answer carries. Hlc::parse accepts exactly the form Hlc::to_string writes: a reading it accepts
// writes back as the same text, so two texts never stand for one reading.
#include <string>

#include "fuzz/fuzz_target.h"
#include "sync/hlc.h"

namespace tsunagu::fuzz {
namespace {

void run(std::string_view input) {
    const auto hlc = sync::Hlc::parse(input);
    if (!hlc) return;
    check(hlc->wall_ms >= 0 && hlc->counter < sync::Hlc::kCounterLimit, "parsed a reading out of range", input);
    check(hlc->to_string() == input, "parsed a text that is not the reading's wire form (" + hlc->to_string() + ")",
          input);
}

std::vector<std::string> seeds() {
    return {"0-0", "1750000000000-3", "1750000000000-65535", "9223372036854-1"};
}

}  // namespace

const Target& target() {
    static const Target t{"hlc", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
