// Field values from the command line or from standard input (see input_words.h).
#include "clients/cli/input_words.h"

#include <iostream>
#include <iterator>

namespace tsunagu::cli {

std::vector<std::string> assignment_words(const Invocation& inv, std::size_t first) {
    std::vector<std::string> words(inv.words.begin() + static_cast<std::ptrdiff_t>(first),
                                   inv.words.end());
    if (words.size() != 1 || words[0] != "-") return words;
    words.clear();
    for (std::string line; std::getline(std::cin, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) words.push_back(std::move(line));
    }
    return words;
}

Result<std::string> value_word(const Invocation& inv, std::size_t index,
                               const std::string& command) {
    if (inv.words.at(index) != "-") return inv.words[index];
    std::string input(std::istreambuf_iterator<char>(std::cin), {});
    if (input.empty()) {
        return Status(
            ErrorCode::invalid_argument,
            command +
                " -: nothing on standard input; give the value there on one line (an empty line "
                "clears the field)");
    }
    if (input.back() == '\n') input.pop_back();
    if (!input.empty() && input.back() == '\r') input.pop_back();
    if (input.find('\n') != std::string::npos) {
        return Status(
            ErrorCode::invalid_argument,
            command + " -: standard input holds several lines; give the value on one line");
    }
    return input;
}

}  // namespace tsunagu::cli
