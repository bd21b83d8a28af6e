// A program kept running while a test looks at it: its standard input a pipe that the test writes
// and closes when it chooses, its output captured as run_program captures it.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/exec.h"
#include "support/run_program.h"
#include "support/temp_dir.h"

namespace tsunagu::testing {

class RunningProgram {
public:
    // Starts `binary` with `args` and `env` added to this environment, without a controlling
    // terminal (setsid), as run_program does; its standard input stays open until finish().
    RunningProgram(const std::string& binary, const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {}) {
        int input[2];
        if (::pipe2(input, O_CLOEXEC) != 0) return;
        std::fflush(nullptr);  // else the child's freopen writes the parent's pending output again
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setsid();
            ::dup2(input[0], STDIN_FILENO);  // the duplicate has no O_CLOEXEC: it survives exec
            std::freopen(io_.file("out").c_str(), "w", stdout);
            std::freopen(io_.file("err").c_str(), "w", stderr);
            for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
            std::vector<std::string> command = {binary};
            command.insert(command.end(), args.begin(), args.end());
            exec_or_exit(std::move(command));
        }
        ::close(input[0]);
        input_ = input[1];
    }
    RunningProgram(const RunningProgram&) = delete;
    RunningProgram& operator=(const RunningProgram&) = delete;
    // A program the test did not finish is killed (SIGKILL) and waited for.
    ~RunningProgram() {
        if (pid_ > 0) (void)kill();
        close_input();
    }

    pid_t pid() const { return pid_; }

    // Whether the program has the file at `path` open: one of /proc/PID/fd links to it.
    bool has_open(const std::string& path) const {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::path wanted = fs::weakly_canonical(path, ec);
        for (fs::directory_iterator fd("/proc/" + std::to_string(pid_) + "/fd", ec), end;
             !ec && fd != end; fd.increment(ec)) {
            std::error_code unreadable;
            if (fs::read_symlink(fd->path(), unreadable) == wanted) return true;
        }
        return false;
    }

    // Waits until the program has `path` open; false when `timeout` passes first or it exited.
    bool wait_until_open(const std::string& path,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (has_open(path)) return true;
            if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    // Writes `input` to the program's standard input, closes it, and waits for the program to exit.
    ProgramRun finish(const std::string& input = {}) {
        // A program that exited already makes the write fail (EPIPE) rather than end this test.
        std::signal(SIGPIPE, SIG_IGN);
        for (std::size_t done = 0; input_ >= 0 && done < input.size();) {
            const ssize_t n = ::write(input_, input.data() + done, input.size() - done);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        close_input();
        return wait_for_exit();
    }

    // Ends the program as a crash would (SIGKILL: nothing of it runs again) and waits for it.
    ProgramRun kill() {
        if (pid_ > 0) ::kill(pid_, SIGKILL);
        return wait_for_exit();
    }

private:
    void close_input() {
        if (input_ >= 0) ::close(input_);
        input_ = -1;
    }

    ProgramRun wait_for_exit() {
        if (pid_ > 0) {
            ::waitpid(pid_, &status_, 0);
            pid_ = -1;
        }
        ProgramRun run;
        run.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
        run.out = slurp(io_.file("out"));
        run.err = slurp(io_.file("err"));
        return run;
    }

    TempDir io_{"tsunagu-running"};
    pid_t pid_ = -1;  // -1 once waited for
    int status_ = 0;  // as waitpid gave it
    int input_ = -1;
};

}  // namespace tsunagu::testing
