// Seeded random breakage of well-formed inputs, for the replay of the fuzz targets (replay_main):
// the kinds of damage a hostile or broken peer sends, aimed at JSON readers.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::fuzz {

class Mutator {
  public:
    // `inputs` must not be empty; they are kept by reference.
    Mutator(const std::vector<std::string>& inputs, std::uint64_t seed);

    // One of the inputs with one to four breakages.
    std::string next();

  private:
    const std::vector<std::string>& inputs_;
    std::mt19937_64 random_;

    std::size_t below(std::size_t n);  // uniform in [0, n), 0 when n is 0
    const std::string& any_input();
    std::string token();  // a JSON token, an odd number or string, or a quoted span of an input
    void break_once(std::string& s);
};

}  // namespace tsunagu::fuzz
