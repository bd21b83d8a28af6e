// Runs a program with arguments and extra environment, capturing its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/exec.h"
#include "support/temp_dir.h"

namespace tsunagu::testing {

struct ProgramRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

inline std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// No terminal: stdin is /dev/null and the child has no controlling terminal (setsid), so prompts
// cannot block the test. With a `timeout`, a child still running then is killed (SIGKILL; exit
// code 137): a server expected to refuse its start fails the test rather than hang it.
inline ProgramRun run_program(const std::string& binary, const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {},
                              std::chrono::milliseconds timeout = std::chrono::milliseconds::zero()) {
    TempDir io("tsunagu-run");
    const std::string out_path = io.file("out"), err_path = io.file("err");
    std::fflush(nullptr);  // else the child's freopen writes the parent's pending output a second time
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setsid();
        std::freopen("/dev/null", "r", stdin);
        std::freopen(out_path.c_str(), "w", stdout);
        std::freopen(err_path.c_str(), "w", stderr);
        for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
        std::vector<std::string> command = {binary};
        command.insert(command.end(), args.begin(), args.end());
        exec_or_exit(std::move(command));
    }
    int status = 0;
    if (timeout.count() > 0) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (::waitpid(pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    } else {
        ::waitpid(pid, &status, 0);
    }
    ProgramRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    run.out = slurp(out_path);
    run.err = slurp(err_path);
    return run;
}

}  // namespace tsunagu::testing
