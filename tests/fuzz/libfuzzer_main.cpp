// libFuzzer's entry point for the target linked with it (`make fuzz`).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tsunagu::fuzz::run_target(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
