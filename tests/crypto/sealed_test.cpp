// Sealed values and wrapped keys: what the server stores in a database it does not encrypt.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "crypto/sealed.h"

using namespace tsunagu;

namespace {

Sealer sealer_with(std::uint8_t fill) {
    auto s = Sealer::with_key(Secret::copy_of(std::vector<std::uint8_t>(32, fill)));
    REQUIRE(s.is_ok());
    return std::move(*s);
}

std::string as_text(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

}  // namespace

TEST_CASE("a sealed value opens for its row and column, and shows nothing of its plaintext") {
    const Sealer sealer = sealer_with(7);
    const std::string note = "visited at home; slept badly this week";
    const auto sealed = sealer.seal(note, "rec-1", "fields");
    CHECK(sealed.size() == note.size() + Sealer::kOverhead);
    CHECK(as_text(sealed).find("slept") == std::string::npos);
    auto opened = sealer.open(sealed, "rec-1", "fields");
    REQUIRE(opened.is_ok());
    CHECK(*opened == note);
}

TEST_CASE("sealing the same value twice gives different bytes (fresh nonces)") {
    const Sealer sealer = sealer_with(7);
    CHECK(sealer.seal("same", "r", "c") != sealer.seal("same", "r", "c"));
}

TEST_CASE("a sealed value moved to another row or column, altered, or under another key does not open") {
    const Sealer sealer = sealer_with(7);
    auto sealed = sealer.seal("value", "rec-1", "fields");
    CHECK(sealer.open(sealed, "rec-2", "fields").status().code() == ErrorCode::corrupt);
    CHECK(sealer.open(sealed, "rec-1", "meta").status().code() == ErrorCode::corrupt);
    // Length-prefixed binding: ("rec-1f", "ields") is not ("rec-1", "fields").
    CHECK(sealer.open(sealed, "rec-1f", "ields").status().code() == ErrorCode::corrupt);
    CHECK(sealer_with(8).open(sealed, "rec-1", "fields").status().code() == ErrorCode::corrupt);
    for (std::size_t at : {std::size_t{0}, std::size_t{5}, sealed.size() - 1}) {
        auto altered = sealed;
        altered[at] ^= 0x01;
        CHECK(sealer.open(altered, "rec-1", "fields").status().code() == ErrorCode::corrupt);
    }
    CHECK(sealer.open(std::vector<std::uint8_t>(10, 1), "rec-1", "fields").status().code() == ErrorCode::corrupt);
}

TEST_CASE("a sealing key must have 32 bytes") {
    CHECK(Sealer::with_key(Secret::random(16)).status().code() == ErrorCode::invalid_argument);
}

TEST_CASE("a wrapped key opens only with its key-encryption key and context") {
    const Secret kek = Secret::random(32);
    const Secret key = Secret::random(32);
    auto wrapped = wrap_key(kek, key, "tenant a");
    REQUIRE(wrapped.is_ok());
    auto back = unwrap_key(kek, *wrapped, "tenant a");
    REQUIRE(back.is_ok());
    CHECK(back->view() == key.view());
    CHECK(unwrap_key(Secret::random(32), *wrapped, "tenant a").status().code() == ErrorCode::wrong_key);
    CHECK(unwrap_key(kek, *wrapped, "tenant b").status().code() == ErrorCode::wrong_key);
    CHECK(wrap_key(Secret::random(31), key, "x").status().code() == ErrorCode::invalid_argument);
}
