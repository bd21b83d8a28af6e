// The two page ciphers: which one a store gets, that both seal and authenticate pages, and that
// the key header's record of the cipher is what opens the store.
#include <sodium.h>
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <string>

#include "crypto/src/page_cipher.h"
#include "crypto/store.h"
#include "support/temp_dir.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using crypto_detail::PageBinding;
using crypto_detail::PageCipher;

namespace {

constexpr std::array kCiphers = {PageCipher::xchacha20_poly1305, PageCipher::aes256gcm};
constexpr std::size_t kCipherField = 12;  // offset of the page cipher in each key slot

// The ciphers this machine runs (AES-256-GCM needs AES-NI).
std::vector<PageCipher> runnable_ciphers() {
    std::vector<PageCipher> out;
    for (PageCipher c : kCiphers) {
        if (crypto_detail::page_cipher_runs_here(c)) out.push_back(c);
    }
    return out;
}

StoreOptions portable(bool yes) {
    StoreOptions options;
    options.portable_cipher = yes;
    return options;
}

void write_notes(Store& store, const std::string& marker, int count) {
    REQUIRE(store.exec("CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, body TEXT)").is_ok());
    Status s = with_transaction(store, [&]() -> Status {
        for (int i = 0; i < count; ++i) {
            auto& insert = store.cached("INSERT INTO note(body) VALUES(?1)");
            insert.bind(1, marker + std::string(300, 'x'));
            TSUNAGU_TRY(insert.run());
        }
        return Status::ok();
    });
    REQUIRE(s.is_ok());
}

// Rewrites the cipher number of both key slots and re-computes their checksums, as a header of a
// build with another cipher would read (the wrap then no longer authenticates, but the parser
// must refuse the number before it gets there).
void set_header_cipher(const std::filesystem::path& file, std::uint32_t cipher) {
    std::string bytes = read_bytes(file);
    for (std::size_t slot = 0; slot < 2; ++slot) {
        auto* p = reinterpret_cast<std::uint8_t*>(bytes.data()) + slot * kKeySlotBytes;
        for (int i = 0; i < 4; ++i) p[kCipherField + i] = static_cast<std::uint8_t>(cipher >> (8 * i));
        crypto_generichash(p + 136, 32, p, 136, nullptr, 0);
    }
    write_bytes(file, bytes);
}

}  // namespace

TEST_CASE("each page cipher seals a page that opens only unaltered, in its place, under its key") {
    for (PageCipher cipher : runnable_ciphers()) {
        INFO(crypto_detail::page_cipher_name(cipher));
        std::array<std::uint8_t, crypto_detail::kDataKeyBytes> key{};
        randombytes_buf(key.data(), key.size());
        std::array<std::uint8_t, crypto_detail::kPageSize> plain{}, sealed{}, again{}, opened{};
        for (std::size_t i = 0; i < crypto_detail::kUsableBytes; ++i) plain[i] = static_cast<std::uint8_t>(i * 7);
        const crypto_detail::PageKey page_key{key.data(), cipher};

        crypto_detail::seal_page(page_key, plain.data(), sealed.data(), PageBinding::main_page(9));
        crypto_detail::seal_page(page_key, plain.data(), again.data(), PageBinding::main_page(9));
        CHECK(std::memcmp(sealed.data(), plain.data(), crypto_detail::kUsableBytes) != 0);
        CHECK(sealed != again);  // a fresh nonce every write

        REQUIRE(crypto_detail::open_page(page_key, sealed.data(), opened.data(), PageBinding::main_page(9)));
        CHECK(opened == plain);  // the reserved tail comes back zeroed, as SQLite wrote it

        CHECK_FALSE(crypto_detail::open_page(page_key, sealed.data(), opened.data(), PageBinding::main_page(10)));
        CHECK_FALSE(crypto_detail::open_page(page_key, sealed.data(), opened.data(), PageBinding::wal_frame(9)));
        CHECK(opened == decltype(opened){});  // a refused page is zero-filled

        for (std::size_t at : {std::size_t{0}, crypto_detail::kUsableBytes + 3, crypto_detail::kPageSize - 1}) {
            auto altered = sealed;
            altered[at] ^= 0x01;
            CHECK_FALSE(crypto_detail::open_page(page_key, altered.data(), opened.data(), PageBinding::main_page(9)));
        }
        auto other_key = key;
        other_key[0] ^= 0x80;
        CHECK_FALSE(crypto_detail::open_page({other_key.data(), cipher}, sealed.data(), opened.data(),
                                             PageBinding::main_page(9)));
        for (PageCipher other : runnable_ciphers()) {
            if (other == cipher) continue;
            CHECK_FALSE(crypto_detail::open_page({key.data(), other}, sealed.data(), opened.data(),
                                                 PageBinding::main_page(9)));
        }
    }
}

TEST_CASE("a new store takes the fastest cipher this machine runs, a portable one XChaCha20-Poly1305") {
    TempDir dir;
    Store fast = open_ok(dir.file("fast.db"), test_key(), portable(false));
    CHECK(std::string(fast.page_cipher()) ==
          crypto_detail::page_cipher_name(crypto_detail::fastest_page_cipher()));
    Store slow = open_ok(dir.file("portable.db"), test_key(), portable(true));
    CHECK(std::string(slow.page_cipher()) == "XChaCha20-Poly1305");
    CHECK(static_cast<std::uint8_t>(read_bytes(dir.file("portable.db"))[kCipherField]) == 1);
}

TEST_CASE("a store opens with the cipher its key header records, whatever the options say") {
    for (bool made_portable : {false, true}) {
        TempDir dir;
        const auto path = dir.file("s.db");
        std::string cipher;
        {
            Store store = open_ok(path, test_key(), portable(made_portable));
            cipher = store.page_cipher();
            write_notes(store, "CIPHER-MARKER", 200);
        }
        for (bool open_portable : {false, true}) {
            Store store = open_ok(path, test_key(), portable(open_portable));
            CHECK(store.page_cipher() == cipher);
            CHECK(query_int(store, "SELECT count(*) FROM note") == 200);
            CHECK(store.integrity_check().is_ok());
        }
        for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
            CHECK(read_bytes(entry.path()).find("CIPHER-MARKER") == std::string::npos);
        }
    }
}

TEST_CASE("a tampered page is refused under either cipher") {
    for (bool made_portable : {false, true}) {
        TempDir dir;
        const auto path = dir.file("s.db");
        {
            Store store = open_ok(path, test_key(), portable(made_portable));
            write_notes(store, "t", 100);
            REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
        }
        flip_byte(path, page_offset(3) + 100);
        Store store = open_ok(path, test_key());
        auto q = store.prepare("SELECT sum(length(body)) FROM note");
        REQUIRE(q.is_ok());
        auto row = q->step();
        REQUIRE_FALSE(row.is_ok());
        CHECK(row.status().code() == ErrorCode::corrupt);
        CHECK_THAT(row.status().message(), Catch::Contains("page 3"));
    }
}

TEST_CASE("a backup is sealed with the portable cipher, and re-keying moves a store to the fastest") {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key(), portable(true));
    write_notes(store, "b", 50);
    REQUIRE(store.backup_to(dir.file("backup.db"), test_key(2)).is_ok());
    Store backup = open_ok(dir.file("backup.db"), test_key(2));
    CHECK(std::string(backup.page_cipher()) == "XChaCha20-Poly1305");
    CHECK(query_int(backup, "SELECT count(*) FROM note") == 50);

    StoreOptions fastest;
    Store fresh = open_ok(dir.file("r.db"), test_key(), portable(true));
    write_notes(fresh, "r", 50);
    fresh.close();
    Store reopened = open_ok(dir.file("r.db"), test_key(), fastest);
    REQUIRE(reopened.rekey().is_ok());
    CHECK(std::string(reopened.page_cipher()) ==
          crypto_detail::page_cipher_name(crypto_detail::fastest_page_cipher()));
    reopened.close();
    Store after = open_ok(dir.file("r.db"), test_key());
    CHECK(query_int(after, "SELECT count(*) FROM note") == 50);
    CHECK(after.integrity_check().is_ok());
}

TEST_CASE("a key header naming a cipher this build does not know is refused, naming the fix") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_key());
        write_notes(store, "u", 5);
    }
    set_header_cipher(path, 77);
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::not_a_store);
    CHECK_THAT(store.status().message(), Catch::Contains("upgrade Tsunagu"));
}
