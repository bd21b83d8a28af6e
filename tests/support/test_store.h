// A real encrypted store for a test: a file under a fixed raw key (tests need no passphrase
// hashing), opened as the server and the devices open theirs.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/store.h"

namespace tsunagu::testing {

inline KeySource test_key(std::uint8_t fill = 9) {
    return std::move(*KeySource::raw_key(std::vector<std::uint8_t>(32, fill)));
}

// Opens (creating it if missing) the store at `path`; fails the test when it cannot.
inline Store open_test_store(const std::string& path, std::uint8_t fill = 9) {
    auto store = Store::open(path, test_key(fill));
    INFO(store.status().to_string());
    REQUIRE(store.is_ok());
    return std::move(*store);
}

}  // namespace tsunagu::testing
