// In a forked child: replaces the process with a program, or exits 127 when it cannot start.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

namespace tsunagu::testing {

// `command[0]` is the program's path; the rest are its arguments.
[[noreturn]] inline void exec_or_exit(std::vector<std::string> command) {
    std::vector<char*> argv;
    for (auto& a : command) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
}

}  // namespace tsunagu::testing
