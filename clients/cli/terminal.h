// The terminal: secrets read without echo, and a progress bar for long syncs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "crypto/secret.h"

namespace tsunagu::cli {

// The secret from environment variable `env` when set and not empty, else asked at the terminal without echo,
// in libsodium's guarded memory (wiped when dropped; never in a std::string). nullopt when neither
// is available (no terminal, variable unset). A line longer than 1,024 bytes is cut there.
std::optional<Secret> read_secret(const char* env, const std::string& prompt);

// Whether two secrets are equal, in constant time.
bool same_secret(const Secret& a, const Secret& b);

// For a new secret `first` read with read_secret(env, ...): asks for it again at the terminal and
// answers whether the two match (in constant time). True at once when it came from `env` (set and
// not empty), which nobody typed.
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
