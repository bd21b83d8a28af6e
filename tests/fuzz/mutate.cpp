// Mutator: byte-level damage plus JSON-aware insertions.
#include "fuzz/mutate.h"

#include <array>
#include <string>

namespace tsunagu::fuzz {
namespace {

// Pieces of JSON, and values at the edges of what readers convert: integer limits, a double that
// overflows, lone and paired surrogates, invalid UTF-8, control characters, long digit runs.
constexpr std::array<std::string_view, 34> kTokens = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "false", "{}", "[]", "\"\"",
    "0", "-0", "-1", "0.5", "1e308", "1e999", "-1e999", "9007199254740993", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "18446744073709551616",
    "\"\\u0000\"", "\"\\ud800\"", "\"\\ud83d\\ude00\"", "\xff", "\xc3\x28", "\xe3\x81\xa4", "\x01",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
};

}  // namespace

Mutator::Mutator(const std::vector<std::string>& inputs, std::uint64_t seed) : inputs_(inputs), random_(seed) {}

std::size_t Mutator::below(std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
}

const std::string& Mutator::any_input() {
    return inputs_[below(inputs_.size())];
}

std::string Mutator::token() {
    if (below(3) > 0) return std::string(kTokens[below(kTokens.size())]);
    // A quoted span of some input: a member name or value the format knows, put somewhere else.
    const std::string& from = any_input();
    for (int attempt = 0; attempt < 8; ++attempt) {
        const std::size_t open = from.find('"', below(from.size()));
        if (open == std::string::npos) continue;
        const std::size_t close = from.find('"', open + 1);
        if (close == std::string::npos || close - open > 80) continue;
        return from.substr(open, close - open + 1);
    }
    return "\"\"";
}

void Mutator::break_once(std::string& s) {
    const std::size_t at = below(s.size() + 1);
    const std::size_t span = 1 + below(std::min<std::size_t>(64, s.size() - std::min(at, s.size()) + 1));
    switch (below(8)) {
        case 0:  // flip a bit
            if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
            break;
        case 1:  // a random byte
            if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
            break;
        case 2:  // a token put in
        case 3:
            s.insert(at, token());
            break;
        case 4:  // a span removed
            s.erase(at, span);
            break;
        case 5:  // a span repeated
            s.insert(at, s.substr(at, span));
            break;
        case 6: {  // a span of another input put in place of one
            const std::string& other = any_input();
            const std::size_t from = below(other.size() + 1);
            s.replace(at, span, other.substr(from, 1 + below(256)));
            break;
        }
        default:  // cut short
            s.resize(at);
            break;
    }
}

std::string Mutator::next() {
    std::string s = any_input();
    for (std::size_t n = 1 + below(4); n > 0; --n) break_once(s);
    return s;
}

}  // namespace tsunagu::fuzz
