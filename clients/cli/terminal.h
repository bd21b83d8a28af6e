// The terminal: secrets read without echo, and a progress bar for long syncs.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>

#include "crypto/secret.h"

namespace tsunagu::cli {

// Passes what is written on to `out` with the control characters a terminal acts on replaced by
// '?': C0 but tab and newline (carriage return included), DEL, and C1 (U+0080..U+009F, in UTF-8
// C2 80..C2 9F). Text from the server and from colleagues (messages, comments, record values) then
// cannot move the cursor, clear or rewrite what is on the screen, or retitle the window. (Not for
// JSON output, which is for programs: C0 is escaped there, and C1 is text JSON carries as is.)
class ControlCharacterFilter : public std::streambuf {
public:
    explicit ControlCharacterFilter(std::streambuf* out) : out_(out) {}

protected:
    int_type overflow(int_type ch) override;
    int sync() override;

private:
    bool put(unsigned char c) { return !traits_type::eq_int_type(out_->sputc(static_cast<char>(c)), traits_type::eof()); }
    std::streambuf* out_;
    bool after_c2_ = false;  // a 0xC2 byte held until the next tells whether it begins a C1 control
};

// Puts `stream` behind a ControlCharacterFilter for the rest of the process.
void filter_control_characters(std::ostream& stream);

// Takes the secrets handed in through the environment variables `names` out of the environment:
// each value (set and not empty) is kept for read_secret in guarded memory, overwritten with zeros
// where the environment held it (so neither /proc/PID/environ nor a memory dump shows it) and its
// variable removed (so no child inherits it). Call it first thing in main, before any thread
// starts: the environment is not thread-safe.
void take_secrets_from_environment(std::initializer_list<const char*> names);

// The secret taken from environment variable `env` (take_secrets_from_environment) when it was set
// and not empty, else asked at the terminal without echo, in libsodium's guarded memory (wiped
// when dropped; never in a std::string). nullopt when neither is available (no terminal, variable
// unset). A line longer than 1,024 bytes is cut there.
std::optional<Secret> read_secret(const char* env, const std::string& prompt);

// Whether two secrets are equal, in constant time.
bool same_secret(const Secret& a, const Secret& b);

// For a new secret `first` read with read_secret(env, ...): asks for it again at the terminal and
// answers whether the two match (in constant time). True at once when it came from `env` (set and
// not empty, taken by take_secrets_from_environment), which nobody typed.
bool confirmed_secret(const char* env, const std::string& prompt, const Secret& first);

bool stdout_is_terminal();

// Draws "push [#####.....] 120/400" on one terminal line, redrawn in place.
class ProgressBar {
public:
    void draw(const char* phase, std::size_t done, std::size_t total);
    // Ends the line when anything was drawn.
    void finish();

private:
    bool drawn_ = false;
};

}  // namespace tsunagu::cli
