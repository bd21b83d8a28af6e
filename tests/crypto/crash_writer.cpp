// crash_writer: the process crash_test kills with SIGKILL. It opens (or creates) a store, prints
// "ready", and works in a loop until killed, reporting on stdout one line per event, each line
// written with a single write(2) so a line in the pipe is always whole:
//   write <store> <wal|rollback> <key hex>   commits transactions of kRowsPerTransaction rows,
//                                            numbered on from the highest already stored;
//                                            prints "<n>" once COMMIT of transaction n returned ok.
//   rekey <store> <wal|rollback> <key hex>   re-keys again and again, printing "rekeyed" after
//   each.
//   rekey-to <store> <wal|rollback> <key hex>   opens the store with the key or with its inverse
//                                            (every bit flipped), then re-keys it to the other
//                                            one and back (Store::rekey(new_key)), again and
//                                            again, printing "rekeyed" after each.
//   change-key-to <store> <wal|rollback> <key hex>   as rekey-to, rewrapping the data key under
//                                            the other key (Store::change_key), the pages as
//                                            they are.
// Exit status 2 on any error (message on stderr); it never ends by itself otherwise.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "crypto/store.h"

using namespace tsunagu;

namespace {

constexpr int kRowsPerTransaction = 8;

int fail(const Status& s) {
    std::fprintf(stderr, "crash_writer: %s\n", s.to_string().c_str());
    return 2;
}

void report(const std::string& line) {
    const std::string text = line + "\n";
    if (::write(STDOUT_FILENO, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        _exit(3);  // the test stopped listening
    }
}

std::vector<std::uint8_t> parse_hex(const std::string& hex) {
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return bytes;
}

Status write_forever(Store& store) {
    TSUNAGU_TRY(
        store.exec("CREATE TABLE IF NOT EXISTS entry(txn INTEGER NOT NULL, "
                   "seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(txn, seq))"));
    auto& highest = store.cached("SELECT coalesce(max(txn), 0) FROM entry");
    auto row = highest.step();
    if (!row) return row.status();
    std::int64_t transaction = highest.column_int(0);
    highest.reset();
    report("ready");
    while (true) {
        ++transaction;
        Status committed = with_transaction(store, [&]() -> Status {
            for (int seq = 0; seq < kRowsPerTransaction; ++seq) {
                auto& insert = store.cached("INSERT INTO entry(txn, seq, body) VALUES(?1, ?2, ?3)");
                insert.bind(1, transaction)
                    .bind(2, seq)
                    .bind(3, "visit note " + std::to_string(transaction) + "/" +
                                 std::to_string(seq) + std::string(400 + 37 * seq, 'v'));
                TSUNAGU_TRY(insert.run());
            }
            return Status::ok();
        });
        TSUNAGU_TRY(committed);
        report(std::to_string(transaction));
    }
}

Status rekey_forever(Store& store) {
    report("ready");
    while (true) {
        TSUNAGU_TRY(store.rekey());
        report("rekeyed");
    }
}

// Re-keys `store` (open under `current`) to `other`, then back, again and again.
Status swap_keys_forever(Store& store, KeySource current, KeySource other, bool rewrap_only) {
    report("ready");
    while (true) {
        TSUNAGU_TRY(rewrap_only ? store.change_key(other) : store.rekey(other));
        std::swap(current, other);
        report("rekeyed");
    }
}

}  // namespace

int main(int argc, char** argv) {
    const bool rewrap_only = argc == 5 && std::strcmp(argv[1], "change-key-to") == 0;
    const bool swap = argc == 5 && (std::strcmp(argv[1], "rekey-to") == 0 || rewrap_only);
    if (argc != 5 || (std::strcmp(argv[1], "write") != 0 && std::strcmp(argv[1], "rekey") != 0 && !swap)) {
        std::fprintf(stderr,
                     "usage: crash_writer write|rekey|rekey-to|change-key-to <store> wal|rollback <key hex>\n");
        return 2;
    }
    std::vector<std::uint8_t> bytes = parse_hex(argv[4]);
    auto key = KeySource::raw_key(bytes);
    if (!key) return fail(key.status());
    for (auto& b : bytes) b = static_cast<std::uint8_t>(~b);
    auto inverse = KeySource::raw_key(bytes);
    if (!inverse) return fail(inverse.status());
    StoreOptions options;
    options.journal_mode =
        std::strcmp(argv[3], "wal") == 0 ? JournalMode::wal : JournalMode::rollback;
    auto store = Store::open(argv[2], *key, options);
    if (swap && !store && store.status().code() == ErrorCode::wrong_key) {
        store = Store::open(argv[2], *inverse, options);
        std::swap(*key, *inverse);
    }
    if (!store) return fail(store.status());
    if (swap) return fail(swap_keys_forever(*store, std::move(*key), std::move(*inverse), rewrap_only));
    Status ended =
        std::strcmp(argv[1], "write") == 0 ? write_forever(*store) : rekey_forever(*store);
    return fail(ended);
}
