// In a forked child: replaces the process with a program, or exits 127 when it cannot start.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace tsunagu::testing {

// `command[0]` is the program's path; the rest are its arguments. The program inherits standard
// input, output and error only: a descriptor the test holds (a listening socket, a connection, a
// store file) must not live on in a PostgreSQL, nginx or server the test started, where it would
// keep a port bound or a file open after the test closed its own.
[[noreturn]] inline void exec_or_exit(std::vector<std::string> command) {
    if (::close_range(3, ~0U, 0) != 0) {  // kernels before 5.9
        rlimit limit{};
        const int most = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536 ? int(limit.rlim_cur) : 65536;
        for (int fd = 3; fd < most; ++fd) ::close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : command) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
}

}  // namespace tsunagu::testing
