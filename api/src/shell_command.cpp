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
    const std::size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return "";
    const std::size_t newline = text.find_last_of('\n', end);
    const std::size_t start = newline == std::string::npos ? 0 : newline + 1;
    return text.substr(start, end + 1 - start);
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
    ~Fd() { close(); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

// Starts /bin/sh -c `command` with `file` as $1, as the header says, its stderr into `stderr_fd`.
Result<pid_t> spawn_shell(const std::string& command, const std::string& file, int stderr_fd) {
    SpawnSetup setup;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&setup.attr, &none);    // the server blocks SIGTERM for sigwait
    posix_spawnattr_setsigdefault(&setup.attr, &all);  // and ignores SIGPIPE
    posix_spawnattr_setpgroup(&setup.attr, 0);         // a group of its own, killed as one
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, stderr_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);  // none of the server's sockets or files

    const char* argv[] = {"/bin/sh", "-c", command.c_str(), "tsunagu-backup-copy", file.c_str(), nullptr};
    pid_t pid = -1;
    const int spawned =
        ::posix_spawn(&pid, "/bin/sh", &setup.actions, &setup.attr, const_cast<char* const*>(argv), environ);
    if (spawned != 0) {
        return Status(ErrorCode::io_error, std::string("cannot start /bin/sh for the command: ") + std::strerror(spawned));
    }
    return pid;
}

// How the command ended, and the tail of what it wrote to stderr.
struct Ended {
    int status = 0;
    bool timed_out = false, cancelled = false;
    std::string output;
};

// Reads the command's stderr and waits for it to exit, until `deadline` or `cancel`, when its
// whole group is killed and waited for.
Ended wait_for(pid_t pid, int stderr_read, std::chrono::steady_clock::time_point deadline,
               const std::atomic<bool>& cancel) {
    Ended ended;
    bool reading = true;
    while (true) {
        if (reading) {
            pollfd p{stderr_read, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) {
                char buf[512];
                const ssize_t n = ::read(stderr_read, buf, sizeof buf);
                if (n > 0) {
                    ended.output.append(buf, static_cast<std::size_t>(n));
                    if (ended.output.size() > 2 * kKeptOutput) ended.output.erase(0, ended.output.size() - kKeptOutput);
                } else if (n == 0 || errno != EINTR) {
                    reading = false;  // EOF (or an error): only the exit is waited for now
                }
            }
        } else {
            ::usleep(20 * 1000);
        }
        if (::waitpid(pid, &ended.status, WNOHANG) == pid) break;
        ended.timed_out = std::chrono::steady_clock::now() >= deadline;
        ended.cancelled = cancel.load();
        if (ended.timed_out || ended.cancelled) {
            ::kill(-pid, SIGKILL);
            while (::waitpid(pid, &ended.status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
    }
    ::kill(-pid, SIGKILL);  // whatever it left running in its group
    return ended;
}

}  // namespace

Status run_shell_command(const std::string& command, const std::string& file, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& cancel) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return Status(ErrorCode::io_error, std::string("cannot make a pipe for the command: ") + std::strerror(errno));
    }
    Fd read_end{pipe_fds[0]}, write_end{pipe_fds[1]};
    auto pid = spawn_shell(command, file, write_end.fd);
    TSUNAGU_TRY(pid);
    write_end.close();  // the command's copy only: EOF once it (and all it started) is done
    const Ended ended = wait_for(*pid, read_end.fd, std::chrono::steady_clock::now() + timeout, cancel);

    if (!ended.timed_out && !ended.cancelled && WIFEXITED(ended.status) && WEXITSTATUS(ended.status) == 0) {
        return Status::ok();
    }
    std::string reason = ended.cancelled ? "stopped with the server"
                         : ended.timed_out
                             ? "timed out after " + std::to_string(timeout.count() / 1000) + " s and was killed"
                         : WIFEXITED(ended.status) ? "exit " + std::to_string(WEXITSTATUS(ended.status))
                                                   : "killed by signal " + std::to_string(WTERMSIG(ended.status));
    const std::string said = last_line(ended.output.size() > kKeptOutput
                                           ? ended.output.substr(ended.output.size() - kKeptOutput)
                                           : ended.output);
    if (!said.empty()) reason += ": " + said;
    return Status(ErrorCode::unavailable, reason);
}

}  // namespace tsunagu::api
