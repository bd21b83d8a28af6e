// The terminal: secrets read without echo, and a progress bar for long syncs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace tsunagu::cli {

// The secret from environment variable `env` when set, else asked at the terminal without echo.
// nullopt when neither is available (no terminal, variable unset).
std::optional<std::string> read_secret(const char* env, const std::string& prompt);

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
