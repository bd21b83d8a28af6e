// An operator's shell command on one file, with a deadline (api/src/shell_command.h).
#include "api/src/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace tsunagu::api {
namespace {

constexpr std::size_t kKeptOutput = 2048;  // the tail of its stderr, for the reason

// The last non-empty line of `text`, trimmed.
std::string last_line(const std::string& text) {
    std::size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return "";
    const std::size_t start = text.find_last_of('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

// RAII for the spawn attributes and file actions.
struct SpawnSetup {
    posix_spawnattr_t attr{};
    posix_spawn_file_actions_t actions{};
    SpawnSetup() {
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_init(&actions);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

Status run_shell_command(const std::string& command, const std::string& file, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& cancel) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return Status(ErrorCode::io_error, std::string("cannot make a pipe for the command: ") + std::strerror(errno));
    }
    Fd read_end{pipe_fds[0]}, write_end{pipe_fds[1]};

    SpawnSetup setup;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&setup.attr, &none);     // the server blocks SIGTERM for sigwait
    posix_spawnattr_setsigdefault(&setup.attr, &all);   // and ignores SIGPIPE
    posix_spawnattr_setpgroup(&setup.attr, 0);          // a group of its own, killed as one
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, write_end.fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);  // none of the server's sockets or files

    const char* argv[] = {"/bin/sh", "-c", command.c_str(), "tsunagu-backup-copy", file.c_str(), nullptr};
    pid_t pid = -1;
    const int spawned =
        ::posix_spawn(&pid, "/bin/sh", &setup.actions, &setup.attr, const_cast<char* const*>(argv), environ);
    if (spawned != 0) {
        return Status(ErrorCode::io_error, std::string("cannot start /bin/sh for the command: ") + std::strerror(spawned));
    }
    ::close(write_end.fd);
    write_end.fd = -1;

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string output;
    bool reading = true, exited = false, timed_out = false, cancelled = false;
    int status = 0;
    while (!exited) {
        if (reading) {
            pollfd p{read_end.fd, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) {
                char buf[512];
                const ssize_t n = ::read(read_end.fd, buf, sizeof buf);
                if (n > 0) {
                    output.append(buf, static_cast<std::size_t>(n));
                    if (output.size() > 2 * kKeptOutput) output.erase(0, output.size() - kKeptOutput);
                } else if (n == 0 || errno != EINTR) {
                    reading = false;  // EOF (or an error): only the exit is waited for now
                }
            }
        } else {
            ::usleep(20 * 1000);
        }
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            exited = true;
            break;
        }
        timed_out = std::chrono::steady_clock::now() >= deadline;
        cancelled = cancel.load();
        if (timed_out || cancelled) {
            ::kill(-pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
    }
    if (exited && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ::kill(-pid, SIGKILL);  // whatever it left running in its group
        return Status::ok();
    }
    ::kill(-pid, SIGKILL);
    std::string reason;
    if (cancelled) {
        reason = "stopped with the server";
    } else if (timed_out) {
        reason = "timed out after " + std::to_string(timeout.count() / 1000) + " s and was killed";
    } else if (WIFEXITED(status)) {
        reason = "exit " + std::to_string(WEXITSTATUS(status));
    } else {
        reason = std::string("killed by signal ") + std::to_string(WTERMSIG(status));
    }
    const std::string said = last_line(output.size() > kKeptOutput ? output.substr(output.size() - kKeptOutput) : output);
    if (!said.empty()) reason += ": " + said;
    return Status(ErrorCode::unavailable, reason);
}

}  // namespace tsunagu::api
