// An operator's shell command on one file, with a deadline (api/src/shell_command.h).
//
// How "nothing it started outlives it" holds even for what leaves the command's process group
// (`setsid`, a daemon's double fork): the server forks a guard process, a child subreaper
// (PR_SET_CHILD_SUBREAPER), which runs /bin/sh. Whatever the command starts and orphans is
// re-parented to the guard instead of init, so the guard can list it (/proc/self/task/PID/children)
// and kill it once the command ends or the server asks it to stop (SIGTERM). The guard sends the
// shell's wait status back over a pipe and exits. It is forked from a threaded server, so between
// fork and exit it calls only async-signal-safe system calls on data prepared before the fork.
#include "api/src/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/unique_fd.h"

extern char** environ;

namespace tsunagu::api {
namespace {

constexpr std::size_t kKeptOutput = 2048;  // the tail of its stderr, for the reason
constexpr auto kGuardGrace = std::chrono::seconds(5);  // for the guard to clear up once told to stop

// The last non-empty line of `text`, trimmed.
std::string last_line(const std::string& text) {
    const std::size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return "";
    const std::size_t newline = text.find_last_of('\n', end);
    const std::size_t start = newline == std::string::npos ? 0 : newline + 1;
    return text.substr(start, end + 1 - start);
}

// What the guard needs, all of it made before the fork.
struct Launch {
    const char* argv[6];
    int dev_null, stderr_write, status_write;
};

// The guard's descriptors once it has set itself up: 0 and 1 /dev/null, 2 the stderr pipe (the
// shell inherits these three), 3 the status pipe, 4 its signalfd.
constexpr int kStatusFd = 3;

// SIGKILLs every child of this (single-threaded) process that /proc lists. False when /proc
// cannot say (no /proc, or a kernel without CONFIG_PROC_CHILDREN).
bool kill_listed_children() {
    char path[64] = "/proc/self/task/";
    // getpid() in decimal, without the C library's formatting (async-signal-safe).
    char digits[16];
    int n = 0;
    for (long pid = ::getpid(); pid > 0; pid /= 10) digits[n++] = static_cast<char>('0' + pid % 10);
    std::size_t at = std::strlen(path);
    while (n > 0) path[at++] = digits[--n];
    const char tail[] = "/children";
    std::memcpy(path + at, tail, sizeof tail);

    const UniqueFd children(::open(path, O_RDONLY | O_CLOEXEC));
    if (!children) return false;
    char buf[512];
    long pid = 0;
    bool in_number = false;
    while (true) {
        const ssize_t got = ::read(children.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t i = 0; i < got; ++i) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                pid = pid * 10 + (buf[i] - '0');
                in_number = true;
            } else if (in_number) {
                ::kill(static_cast<pid_t>(pid), SIGKILL);
                pid = 0;
                in_number = false;
            }
        }
    }
    if (in_number) ::kill(static_cast<pid_t>(pid), SIGKILL);
    return true;
}

// The guard: runs the shell, waits for it or for SIGTERM, then kills whatever is left of
// everything the shell started, reports the shell's wait status and exits. Never returns.
[[noreturn]] void run_guard(const Launch& launch, pid_t server) {
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &fallback, nullptr);  // the server ignores SIGPIPE
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != server) ::_exit(127);  // the server is already gone
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);

    // Descriptors to fixed places, each copied high first so that no dup2 overwrites a source.
    const int null_fd = ::fcntl(launch.dev_null, F_DUPFD, 10);
    const int err_fd = ::fcntl(launch.stderr_write, F_DUPFD, 10);
    const int status_fd = ::fcntl(launch.status_write, F_DUPFD, 10);
    if (null_fd < 0 || err_fd < 0 || status_fd < 0) ::_exit(127);
    if (::dup2(null_fd, 0) < 0 || ::dup2(null_fd, 1) < 0 || ::dup2(err_fd, 2) < 0 || ::dup2(status_fd, kStatusFd) < 0) {
        ::_exit(127);
    }
    ::close_range(kStatusFd + 1, ~0U, 0);  // none of the server's sockets or files
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, SIGCHLD);
    const int signals = ::signalfd(-1, &wanted, SFD_CLOEXEC);
    if (signals < 0) ::_exit(127);

    const pid_t shell = ::fork();
    if (shell < 0) ::_exit(127);
    if (shell == 0) {
        ::close(signals);
        ::close(kStatusFd);
        ::setpgid(0, 0);  // a group of its own, killed as one
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve("/bin/sh", const_cast<char* const*>(launch.argv), environ);
        ::_exit(127);
    }
    ::setpgid(shell, 0);  // also here, so the group exists before any kill below

    int shell_status = 0;
    bool shell_done = false;
    for (bool stop = false; !shell_done && !stop;) {
        signalfd_siginfo info;
        const ssize_t got = ::read(signals, &info, sizeof info);
        if (got < 0 && errno == EINTR) continue;
        if (got != static_cast<ssize_t>(sizeof info) || info.ssi_signo == SIGTERM) stop = true;
        int status = 0;
        for (pid_t dead; (dead = ::waitpid(-1, &status, WNOHANG)) > 0;) {
            if (dead == shell) shell_status = status, shell_done = true;
        }
    }

    // Clearing up: each round kills the shell's group and every child /proc lists (orphans land
    // here), then waits for one to die; it ends when no child is left. Without /proc's list it
    // does what it can: the group, then whatever has already died.
    while (true) {
        ::kill(-shell, SIGKILL);
        const bool listed = kill_listed_children();
        int status = 0;
        const pid_t dead = ::waitpid(-1, &status, listed ? 0 : WNOHANG);
        if (dead == shell && !shell_done) shell_status = status, shell_done = true;
        if (dead < 0 && errno == EINTR) continue;
        if (dead <= 0) break;
    }
    ssize_t ignored = ::write(kStatusFd, &shell_status, sizeof shell_status);
    (void)ignored;
    ::_exit(0);
}

// How the command ended, and the tail of what it wrote to stderr.
struct Ended {
    int status = 0;
    bool timed_out = false, cancelled = false, reported = false;
    std::string output;
};

// Reads the command's stderr and waits for the guard to exit, until `deadline` or `cancel`,
// when the guard is told to stop (and killed if it has not within kGuardGrace).
Ended wait_for(pid_t guard, int stderr_read, int status_read, std::chrono::steady_clock::time_point deadline,
               const std::atomic<bool>& cancel) {
    Ended ended;
    bool reading = true;
    std::chrono::steady_clock::time_point told{};
    int guard_status = 0;
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
        if (::waitpid(guard, &guard_status, WNOHANG) == guard) break;
        const auto now = std::chrono::steady_clock::now();
        if (told == std::chrono::steady_clock::time_point{}) {
            ended.timed_out = now >= deadline;
            ended.cancelled = cancel.load();
            if (ended.timed_out || ended.cancelled) {
                ::kill(guard, SIGTERM);
                told = now;
            }
        } else if (now - told > kGuardGrace) {
            ::kill(guard, SIGKILL);
            while (::waitpid(guard, &guard_status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
    }
    ended.reported = ::read(status_read, &ended.status, sizeof ended.status) == static_cast<ssize_t>(sizeof ended.status);
    return ended;
}

}  // namespace

Status run_shell_command(const std::string& command, const std::string& file, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& cancel) {
    int err_pipe[2], status_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return Status(ErrorCode::io_error, std::string("cannot make a pipe for the command: ") + std::strerror(errno));
    }
    UniqueFd err_read{err_pipe[0]}, err_write{err_pipe[1]};
    if (::pipe2(status_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return Status(ErrorCode::io_error, std::string("cannot make a pipe for the command: ") + std::strerror(errno));
    }
    UniqueFd status_read{status_pipe[0]}, status_write{status_pipe[1]};
    UniqueFd dev_null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
    if (!dev_null) {
        return Status(ErrorCode::io_error, std::string("cannot open /dev/null for the command: ") + std::strerror(errno));
    }
    const Launch launch{{"/bin/sh", "-c", command.c_str(), "tsunagu-backup-copy", file.c_str(), nullptr},
                        dev_null.get(),
                        err_write.get(),
                        status_write.get()};
    const pid_t server = ::getpid();
    const pid_t guard = ::fork();
    if (guard < 0) {
        return Status(ErrorCode::io_error, std::string("cannot start the command: ") + std::strerror(errno));
    }
    if (guard == 0) run_guard(launch, server);
    err_write.reset();  // the command's copies only: EOF once it (and all it started) is done
    status_write.reset();
    const Ended ended = wait_for(guard, err_read.get(), status_read.get(), std::chrono::steady_clock::now() + timeout, cancel);

    if (!ended.timed_out && !ended.cancelled && ended.reported && WIFEXITED(ended.status) &&
        WEXITSTATUS(ended.status) == 0) {
        return Status::ok();
    }
    std::string reason = ended.cancelled ? "stopped with the server"
                         : ended.timed_out
                             ? "timed out after " + std::to_string(timeout.count() / 1000) + " s and was killed"
                         : !ended.reported           ? "ended without a status (its guard was killed)"
                         : WIFEXITED(ended.status) ? "exit " + std::to_string(WEXITSTATUS(ended.status))
                                                   : "killed by signal " + std::to_string(WTERMSIG(ended.status));
    const std::string said = last_line(ended.output.size() > kKeptOutput
                                           ? ended.output.substr(ended.output.size() - kKeptOutput)
                                           : ended.output);
    if (!said.empty()) reason += ": " + said;
    return Status(ErrorCode::unavailable, reason);
}

}  // namespace tsunagu::api
