// A command's words, or its standard input in their place: record content given as "-" stays out
// of /proc/PID/cmdline, which every local user reads, and out of the shell's history.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "clients/cli/commands.h"
#include "crypto/status.h"

namespace tsunagu::cli {

// The field=value words of `inv` from `first` on, or, when they are one "-", the lines of
// standard input: each line one field=value, read whole (spaces and "=" stay in the value; a
// final "\r" is dropped); blank lines are skipped. (record, edit and list filters.)
std::vector<std::string> assignment_words(const Invocation& inv, std::size_t first);

// The value word at `index` of `inv`, or, when it is "-", standard input's one line (its line
// ending dropped; an empty line is the empty value, which clears a field). invalid_argument,
// naming `command`, for input with no line at all (nothing piped in: a value is never made up)
// or with several. (resolve.)
Result<std::string> value_word(const Invocation& inv, std::size_t index,
                               const std::string& command);

}  // namespace tsunagu::cli
