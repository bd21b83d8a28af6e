// Runs a program with arguments and extra environment, capturing its exit code, stdout and stderr.
#pragma once

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
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

// No terminal: stdin is `input` (empty: /dev/null) and the child has no controlling terminal
// (setsid), so prompts cannot block the test. With a `timeout`, a child still running then is
// killed (SIGKILL; exit code 137): a server expected to refuse its start fails the test rather
// than hang it.
inline ProgramRun run_program(const std::string& binary, const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {},
                              std::chrono::milliseconds timeout = std::chrono::milliseconds::zero(),
                              const std::string& input = {}) {
    TempDir io("tsunagu-run");
    const std::string in_path = io.file("in"), out_path = io.file("out"), err_path = io.file("err");
    if (!input.empty()) std::ofstream(in_path, std::ios::binary) << input;
    std::fflush(nullptr);  // else the child's freopen writes the parent's pending output a second time
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setsid();
        std::freopen(input.empty() ? "/dev/null" : in_path.c_str(), "r", stdin);
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

// Runs a program in a new pseudo-terminal, as a person would at a shell: each `answers` entry is
// typed (with a newline) once the program's output shows its prompt, in order. The terminal's
// transcript (output and echo together) is the run's `out`. A program still running after
// `timeout` is killed, as is one waiting for a prompt that never comes. `at_prompt`, when given,
// is called with the program's process id once each prompt shows, before it is answered: to look
// at the program while it waits.
inline ProgramRun run_in_terminal(const std::string& binary, const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env,
                                  const std::vector<std::pair<std::string, std::string>>& answers,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                  const std::function<void(pid_t)>& at_prompt = {}) {
    std::fflush(nullptr);
    int terminal = -1;
    pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
    if (pid == 0) {
        for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
        std::vector<std::string> command = {binary};
        command.insert(command.end(), args.begin(), args.end());
        exec_or_exit(std::move(command));
    }
    ProgramRun run;
    if (pid < 0) return run;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t next = 0, searched_from = 0;
    for (;;) {
        pollfd p{terminal, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
            char buffer[512];
            const ssize_t n = ::read(terminal, buffer, sizeof buffer);
            if (n <= 0) break;  // EIO: the program closed the terminal (it exited)
            run.out.append(buffer, static_cast<std::size_t>(n));
        }
        if (next < answers.size()) {
            const auto at = run.out.find(answers[next].first, searched_from);
            if (at != std::string::npos) {
                if (at_prompt) at_prompt(pid);
                const std::string line = answers[next].second + "\n";
                if (::write(terminal, line.data(), line.size()) < 0) break;
                searched_from = at + answers[next].first.size();
                ++next;
            }
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            break;
        }
    }
    ::close(terminal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return run;
}

}  // namespace tsunagu::testing
