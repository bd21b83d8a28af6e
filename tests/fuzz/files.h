// Whole files in and out, for the fuzz harness and the targets that keep a pristine copy of their
// files in memory and write it back before each input. A failure to write is the harness's:
// fail().
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz/fuzz_target.h"

namespace tsunagu::fuzz {

// The bytes of `file`; empty when it cannot be read.
inline std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

// Replaces `file` with `bytes`.
inline void write_file(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) fail("cannot write " + file.string(), "");
}

}  // namespace tsunagu::fuzz
