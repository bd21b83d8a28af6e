// Terminal input without echo, and the progress bar.
#include "clients/cli/terminal.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace tsunagu::cli {

namespace {

// The variable's value when it is set and not empty: an empty one counts as unset, so that the
// secret is typed, and then confirmed, at the terminal.
const char* secret_in_environment(const char* env) {
    const char* value = std::getenv(env);
    return value && *value ? value : nullptr;
}

}  // namespace

std::optional<Secret> read_secret(const char* env, const std::string& prompt) {
    if (const char* value = secret_in_environment(env)) return Secret::copy_of(std::string_view(value));
    const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY);
    if (tty < 0) return std::nullopt;
    termios saved{};
    const bool is_tty = ::tcgetattr(tty, &saved) == 0;
    if (is_tty) {
        termios quiet = saved;
        quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
        quiet.c_lflag |= ECHONL;
        ::tcsetattr(tty, TCSAFLUSH, &quiet);
    }
    if (::write(tty, prompt.data(), prompt.size()) < 0) {
        // The prompt is a courtesy; reading still works.
    }
    constexpr std::size_t kMaxBytes = 1024;
    Secret line(kMaxBytes);
    std::size_t length = 0;
    char c = 0;
    while (::read(tty, &c, 1) == 1 && c != '\n') {
        if (length < kMaxBytes) line.data()[length++] = static_cast<std::uint8_t>(c);
    }
    c = 0;
    if (is_tty) ::tcsetattr(tty, TCSAFLUSH, &saved);
    ::close(tty);
    if (length > 0 && line.data()[length - 1] == '\r') --length;
    return Secret::copy_of(line.view().substr(0, length));
}

bool same_secret(const Secret& a, const Secret& b) { return constant_time_equal(a.bytes(), b.bytes()); }

bool confirmed_secret(const char* env, const std::string& prompt, const Secret& first) {
    if (secret_in_environment(env)) return true;
    auto again = read_secret(env, prompt);
    return again && same_secret(*again, first);
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

void ProgressBar::draw(const char* phase, std::size_t done, std::size_t total) {
    constexpr std::size_t kWidth = 30;
    const std::size_t filled = total ? std::min(kWidth, done * kWidth / total) : 0;
    std::string bar(filled, '#');
    bar.append(kWidth - filled, '.');
    std::printf("\r%-4s [%s] %zu/%zu", phase, bar.c_str(), done, total);
    std::fflush(stdout);
    drawn_ = true;
}

void ProgressBar::finish() {
    if (drawn_) std::printf("\n");
    drawn_ = false;
}

}  // namespace tsunagu::cli
