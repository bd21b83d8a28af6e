// SQLite's WAL checksums as the VFS recomputes them: a frame chains from the checksum before it,
// and a commit size changed since the frame was written is found again from its checksum, in
// either byte order a WAL's magic number can name. (That the sums are SQLite's own is shown by the
// tamper tests: recovery of real WALs, refused exactly where SQLite's recovery would stop.)
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "crypto/src/wal_format.h"

using namespace tsunagu::crypto_detail;

namespace {

constexpr std::size_t kPage = 4096;

void put_be32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

// A frame of page 7 ending a transaction (commit size 31), its checksum continuing `previous`.
struct Frame {
    std::array<std::uint8_t, kWalHeaderBytes> wal_header{};
    std::array<std::uint8_t, 8> previous{0x01, 0x02, 0x03, 0x04, 0xf5, 0xf6, 0xf7, 0xf8};
    std::array<std::uint8_t, kWalFrameHeaderBytes> header{};
    std::vector<std::uint8_t> page = std::vector<std::uint8_t>(kPage);

    explicit Frame(std::uint32_t magic) {
        put_be32(wal_header.data(), magic);
        std::mt19937 random(magic);
        for (auto& byte : page) byte = static_cast<std::uint8_t>(random());
        put_be32(header.data(), 7);
        put_be32(header.data() + 4, 31);
        put_be32(header.data() + 8, 0x5a17'0001);
        put_be32(header.data() + 12, 0x5a17'0002);
        const auto sum = wal_frame_checksum(wal_header.data(), previous.data(), header.data(), page.data(), kPage);
        std::copy(sum.begin(), sum.end(), header.begin() + 16);
    }
    bool chains() const {
        return wal_frame_chains(wal_header.data(), previous.data(), header.data(), page.data(), kPage);
    }
    std::uint32_t commit_size_written() const {
        return wal_frame_commit_size_written(wal_header.data(), previous.data(), header.data(), page.data(), kPage);
    }
};

}  // namespace

TEST_CASE("a frame chains from the checksum before it, and any changed byte it covers breaks the chain") {
    for (const std::uint32_t magic : {0x377f0682u, 0x377f0683u}) {  // little- and big-endian sums
        INFO("magic " << std::hex << magic);
        Frame frame(magic);
        CHECK(frame.chains());
        for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{16}, std::size_t{23}}) {
            Frame changed(magic);
            changed.header[at] ^= 0x40;
            CHECK_FALSE(changed.chains());
        }
        Frame page_changed(magic);
        page_changed.page[kPage - 1] ^= 1;
        CHECK_FALSE(page_changed.chains());
        Frame previous_changed(magic);
        previous_changed.previous[7] ^= 1;
        CHECK_FALSE(previous_changed.chains());
    }
}

TEST_CASE("a commit size changed since the frame was written is found again from its checksum") {
    for (const std::uint32_t magic : {0x377f0682u, 0x377f0683u}) {
        INFO("magic " << std::hex << magic);
        CHECK(Frame(magic).commit_size_written() == 31);  // unchanged: as it stands
        for (const std::uint32_t altered : {0u, 30u, 0x8000'001fu, 0xffff'ffffu}) {
            Frame frame(magic);
            put_be32(frame.header.data() + 4, altered);
            INFO("altered to " << altered);
            CHECK(frame.commit_size_written() == 31);
        }
        // Damage elsewhere is not taken for a changed commit size: the field is read as it stands.
        Frame page_changed(magic);
        put_be32(page_changed.header.data() + 4, 0);
        page_changed.page[100] ^= 0x10;
        CHECK(page_changed.commit_size_written() == 0);
    }
}
