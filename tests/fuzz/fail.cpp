// fuzz::fail: what broke, and the input that broke it, in a form that can be pasted back.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "fuzz/fuzz_target.h"

namespace tsunagu::fuzz {
namespace {
std::string context_;
}

void set_context(std::string_view context) {
    context_.assign(context);
}

[[noreturn]] void fail(std::string_view what, std::string_view input) {
    constexpr std::size_t kShown = 2048;
    std::string shown;
    for (unsigned char c : input.substr(0, kShown)) {
        if (c == '\\') {
            shown += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            shown.push_back(static_cast<char>(c));
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            shown += hex;
        }
    }
    std::fprintf(stderr, "\nfuzz target %s: %.*s\ninput (%zu bytes%s): %s\n", target().name,
                 static_cast<int>(what.size()), what.data(), input.size(),
                 input.size() > kShown ? ", first 2 KiB" : "", shown.c_str());
    if (!context_.empty()) std::fprintf(stderr, "from: %s\n", context_.c_str());
    std::fflush(stderr);
    std::abort();
}

void run_target(std::string_view input) {
    try {
        target().run(input);
    } catch (const std::exception& e) {
        fail(std::string("threw: ") + e.what(), input);
    } catch (...) {
        fail("threw something that is not a std::exception", input);
    }
}

}  // namespace tsunagu::fuzz
