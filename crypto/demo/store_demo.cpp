// tsunagu-store-demo: shows the encrypted store at work until the server exists.
// Creates (or reopens) an encrypted store under --data, writes and reads pseudonymous home-visit
// records, proves that no byte of them is readable on disk, and that a wrong key is refused.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "crypto/store.h"

namespace fs = std::filesystem;
using namespace tsunagu;

namespace {

int fail(const Status& s) {
    std::fprintf(stderr, "tsunagu-store-demo: %s\n", s.to_string().c_str());
    return 1;
}

bool file_contains(const fs::path& file, const std::string& needle) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return bytes.find(needle) != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "data";
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--data") == 0) data = argv[i + 1];
    fs::create_directories(data);
    const std::string key_path = (fs::path(data) / "store.key").string();
    const std::string store_path = (fs::path(data) / "demo.db").string();

    if (!fs::exists(key_path)) {
        if (Status s = create_key_file(key_path); !s) return fail(s);
        std::printf("created key file %s (mode 0600)\n", key_path.c_str());
    }
    auto key = KeySource::key_file(key_path);
    if (!key) return fail(key.status());
    auto opened = Store::open(store_path, *key);
    if (!opened) return fail(opened.status());
    Store store = std::move(*opened);
    std::printf("opened encrypted store %s (XChaCha20-Poly1305 per page, WAL)\n", store.path().c_str());

    const std::string marker = "DEMO-NOTE-kokoro-no-kenko";
    Status s = store.exec(
        "CREATE TABLE IF NOT EXISTS home_visit(id INTEGER PRIMARY KEY, client TEXT NOT NULL, "
        "visited_on TEXT NOT NULL, minutes INTEGER NOT NULL, notes TEXT)");
    if (!s) return fail(s);
    s = with_transaction(store, [&]() -> Status {
        auto& insert = store.cached(
            "INSERT INTO home_visit(client, visited_on, minutes, notes) VALUES(?1, ?2, ?3, ?4)");
        const char* clients[] = {"C-0017", "C-0042", "C-0108"};
        for (int i = 0; i < 3; ++i) {
            insert.bind(1, clients[i]).bind(2, "2020-06-1" + std::to_string(i)).bind(3, 30 + 15 * i);
            insert.bind(4, marker + " visit " + std::to_string(i));
            TSUNAGU_TRY(insert.run());
        }
        return Status::ok();
    });
    if (!s) return fail(s);

    auto& count = store.cached("SELECT count(*), sum(minutes) FROM home_visit");
    auto row = count.step();
    if (!row) return fail(row.status());
    std::printf("home visits stored: %lld, total minutes: %lld (read back through the VFS)\n",
                static_cast<long long>(count.column_int(0)),
                static_cast<long long>(count.column_int(1)));
    count.reset();
    if (s = store.integrity_check(); !s) return fail(s);
    std::printf("integrity_check: ok\n");
    store.close();

    std::size_t scanned = 0;
    bool leaked = false;
    for (const auto& entry : fs::directory_iterator(data)) {
        if (!entry.is_regular_file() || entry.path() == key_path) continue;
        scanned += static_cast<std::size_t>(entry.file_size());
        for (const std::string& needle : {marker, std::string("SQLite format 3"), std::string("C-0042")}) {
            if (file_contains(entry.path(), needle)) {
                std::printf("PLAINTEXT FOUND: \"%s\" in %s\n", needle.c_str(), entry.path().c_str());
                leaked = true;
            }
        }
    }
    std::printf("scanned %zu bytes on disk: %s\n", scanned,
                leaked ? "plaintext found" : "no note, client id or SQLite header readable");

    auto other_key = KeySource::raw_key(std::vector<std::uint8_t>(32, 7));
    auto wrong = Store::open(store_path, *other_key);
    std::printf("opening with another key: %s\n",
                wrong ? "OPENED (unexpected)" : wrong.status().to_string().c_str());
    return leaked || wrong ? 1 : 0;
}
