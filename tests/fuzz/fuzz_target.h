// One fuzz target: a function that takes any bytes and checks a property of the code it feeds them
// to, and the well-formed inputs it starts from. An exception out of it is a failure too.
//
// Each target file defines target() once; it is linked either with libFuzzer's driver
// (libfuzzer_main.cpp, `make fuzz`, Clang) or with replay_main.cpp, which runs the seeds, the
// regression corpus under tests/fuzz/corpus/ and a fixed number of seeded random mutations of
// them as part of `make test` (any compiler).
//
// A target reports a broken property with fail(), which prints what broke and the input and
// aborts: libFuzzer then keeps the input as a crash, and the replay prints how to run it again.
// Inputs that are merely refused are not failures: refusing them clearly is the property.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::fuzz {

struct Target {
    const char* name;
    // Checks one input; returns normally when every property held.
    void (*run)(std::string_view input);
    // Well-formed inputs, made with the project's own writers where it has them.
    std::vector<std::string> (*seeds)();
};

// The one target of this program.
const Target& target();

// Runs the target on `input`: fail() when it throws.
void run_target(std::string_view input);

// Prints `what` and the input (escaped, cut at 2 KiB) to stderr and aborts.
[[noreturn]] void fail(std::string_view what, std::string_view input);

// A folder for a target's stores, in memory where the machine has one (/dev/shm): a fuzzer
// commits thousands of times a second, and a disk's syncs would set its pace.
inline std::filesystem::path scratch_base() {
    std::error_code ignored;
    return std::filesystem::is_directory("/dev/shm", ignored) ? std::filesystem::path("/dev/shm")
                                                              : std::filesystem::temp_directory_path();
}

// Where the input came from (the replay's round and seed), printed by fail() after the input.
void set_context(std::string_view context);

// fail() unless `holds`.
inline void check(bool holds, std::string_view what, std::string_view input) {
    if (!holds) fail(what, input);
}

}  // namespace tsunagu::fuzz
