// Terminal input without echo, and the progress bar.
#include "clients/cli/terminal.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string_view>

#include "crypto/unique_fd.h"

namespace tsunagu::cli {

namespace {

// The secrets take_secrets_from_environment took, by variable name.
std::map<std::string, Secret, std::less<>>& taken_secrets() {
    static std::map<std::string, Secret, std::less<>> secrets;
    return secrets;
}

// The secret taken from `env`, or null when it was unset or empty: an empty one counts as unset,
// so that the secret is typed, and then confirmed, at the terminal.
const Secret* secret_from_environment(const char* env) {
    const auto found = taken_secrets().find(std::string_view(env));
    return found == taken_secrets().end() ? nullptr : &found->second;
}

}  // namespace

void take_secrets_from_environment(std::initializer_list<const char*> names) {
    for (const char* name : names) {
        char* value = std::getenv(name);
        if (!value) continue;
        const std::size_t length = std::strlen(value);
        if (length > 0) taken_secrets().insert_or_assign(name, Secret::copy_of(std::string_view(value, length)));
        // The environment's strings are the process's own memory, which /proc/PID/environ shows
        // and a core dump holds: overwritten there, then the variable is dropped for children.
        sodium_memzero(value, length);
        ::unsetenv(name);
    }
}

std::optional<Secret> read_secret(const char* env, const std::string& prompt) {
    if (const Secret* given = secret_from_environment(env)) return Secret::copy_of(given->view());
    const UniqueFd terminal(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!terminal) return std::nullopt;
    const int tty = terminal.get();
    // Echo off while the secret is typed, and back on however this returns.
    struct EchoOff {
        int tty;
        termios saved{};
        bool set = false;
        explicit EchoOff(int t) : tty(t) {
            if (::tcgetattr(tty, &saved) != 0) return;
            termios quiet = saved;
            quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
            quiet.c_lflag |= ECHONL;
            set = ::tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
        }
        ~EchoOff() {
            if (set) ::tcsetattr(tty, TCSAFLUSH, &saved);
        }
    } echo_off(tty);
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
    if (length > 0 && line.data()[length - 1] == '\r') --length;
    return Secret::copy_of(line.view().substr(0, length));
}

ControlCharacterFilter::int_type ControlCharacterFilter::overflow(int_type ch) {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    auto c = static_cast<unsigned char>(traits_type::to_char_type(ch));
    if (after_c2_) {
        after_c2_ = false;
        if (c >= 0x80 && c <= 0x9F) return put('?') ? ch : traits_type::eof();
        if (!put(0xC2)) return traits_type::eof();
    }
    if (c == 0xC2) {
        after_c2_ = true;
        return ch;
    }
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) c = '?';
    return put(c) ? ch : traits_type::eof();
}

int ControlCharacterFilter::sync() { return out_->pubsync(); }

void filter_control_characters(std::ostream& stream) {
    // Never destroyed: the stream may be written to (and flushed) until the very end of the
    // process, after main returns or from std::exit.
    stream.rdbuf(new ControlCharacterFilter(stream.rdbuf()));
}

bool same_secret(const Secret& a, const Secret& b) { return constant_time_equal(a.bytes(), b.bytes()); }

bool confirmed_secret(const char* env, const std::string& prompt, const Secret& first) {
    if (secret_from_environment(env)) return true;
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
