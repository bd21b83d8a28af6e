// The encrypted store: round trips, keys, and what reaches the disk.
#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "crypto/src/file_util.h"
#include "crypto/store.h"
#include "support/temp_dir.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using tsunagu::testing::TempDir;

namespace {

KeySource test_key(std::uint8_t fill = 1) {
    return std::move(*KeySource::raw_key(std::vector<std::uint8_t>(32, fill)));
}

KeySource test_passphrase(const char* text) {
    return KeySource::passphrase(text, KdfParams::fast_for_tests());
}

Store open_ok(const std::string& path, const KeySource& key, StoreOptions options = {}) {
    auto store = Store::open(path, key, options);
    INFO(store.status().to_string());
    REQUIRE(store.is_ok());
    return std::move(*store);
}

void write_rows(Store& store, int from, int count, const std::string& marker) {
    REQUIRE(store.exec("CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, body TEXT)").is_ok());
    Status s = with_transaction(store, [&]() -> Status {
        for (int i = from; i < from + count; ++i) {
            auto& insert = store.cached("INSERT INTO note(id, body) VALUES(?1, ?2)");
            insert.bind(1, i).bind(2, marker + "-" + std::to_string(i) + std::string(200, 'x'));
            TSUNAGU_TRY(insert.run());
        }
        return Status::ok();
    });
    REQUIRE(s.is_ok());
}

std::int64_t count_rows(Store& store) {
    auto& q = store.cached("SELECT count(*) FROM note");
    auto row = q.step();
    REQUIRE(row.is_ok());
    REQUIRE(*row);
    return q.column_int(0);
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("rows survive close and reopen in WAL mode") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_key());
        write_rows(store, 0, 500, "wal");
    }
    Store store = open_ok(path, test_key());
    CHECK(count_rows(store) == 500);
    CHECK(store.integrity_check().is_ok());
}

TEST_CASE("a close that leaves commits in the WAL says so, and one that folds them in answers ok") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store writer = open_ok(path, test_key());
    write_rows(writer, 0, 300, "folded");
    std::optional<Store> other{open_ok(path, test_key())};  // keeps the WAL from being folded in
    CHECK(count_rows(*other) == 300);
    Status left = writer.close_folded();
    CHECK(left.code() == ErrorCode::io_error);
    CHECK_THAT(left.message(), Catch::Contains("was not folded into") && Catch::Contains("s.db-wal"));
    CHECK(std::filesystem::file_size(path + "-wal") > 0);
    // The last connection's close folds the WAL in: the database file alone holds every row.
    write_rows(*other, 300, 10, "folded");
    CHECK(other->close_folded().is_ok());
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));
    Store again = open_ok(path, test_key());
    CHECK(count_rows(again) == 310);
}

TEST_CASE("rows survive close and reopen in rollback-journal mode") {
    TempDir dir;
    const auto path = dir.file("s.db");
    StoreOptions options;
    options.journal_mode = JournalMode::rollback;
    {
        Store store = open_ok(path, test_key(), options);
        write_rows(store, 0, 500, "journal");
        write_rows(store, 500, 10, "journal");  // a second transaction goes through the journal
    }
    Store store = open_ok(path, test_key(), options);
    CHECK(count_rows(store) == 510);
    CHECK(store.integrity_check().is_ok());
}

TEST_CASE("a commit survives a power cut in either journal mode: in rollback mode the folder is synced too") {
    // A power cut cannot be simulated here; what makes the commit durable is SQLite's
    // synchronous level: FULL syncs the WAL at commit, and in rollback mode only EXTRA also syncs
    // the folder after deleting the journal (else the journal could come back and undo the commit).
    for (const auto& [mode, expected] : {std::pair{JournalMode::wal, 2}, std::pair{JournalMode::rollback, 3}}) {
        TempDir dir;
        StoreOptions options;
        options.journal_mode = mode;
        Store store = open_ok(dir.file("s.db"), test_key(), options);
        auto q = store.prepare("PRAGMA synchronous");
        REQUIRE(q);
        REQUIRE(*q->step());
        CHECK(q->column_int(0) == expected);  // 2: FULL, 3: EXTRA
    }
}

TEST_CASE("no plaintext reaches the database, WAL or journal files") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        TempDir dir;
        const auto path = dir.file("s.db");
        StoreOptions options;
        options.journal_mode = mode;
        Store store = open_ok(path, test_key(), options);
        write_rows(store, 0, 300, "MARKER-kokoro");
        // Keep a transaction open so the journal (rollback mode) exists while we scan.
        REQUIRE(store.begin_immediate().is_ok());
        REQUIRE(store.exec("UPDATE note SET body = 'MARKER-kokoro-updated' WHERE id < 50").is_ok());
        std::size_t files = 0;
        for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
            const std::string bytes = read_file(entry.path());
            ++files;
            INFO(entry.path().string());
            CHECK(bytes.find("MARKER-kokoro") == std::string::npos);
            CHECK(bytes.find("SQLite format 3") == std::string::npos);
            CHECK(bytes.find("CREATE TABLE") == std::string::npos);
        }
        CHECK(files >= 2);  // the store and its WAL or journal
        REQUIRE(store.commit().is_ok());
    }
}

TEST_CASE("a wrong key is refused as wrong key and leaves the file untouched") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_key(1));
        write_rows(store, 0, 10, "k");
    }
    const std::string before = read_file(path);
    auto wrong = Store::open(path, test_key(2));
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().code() == ErrorCode::wrong_key);
    CHECK(wrong.status().message().find("wrong key") != std::string::npos);
    CHECK(read_file(path) == before);
}

TEST_CASE("a passphrase store refuses a wrong passphrase and opens with the right one") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_passphrase("correct horse"));
        write_rows(store, 0, 5, "p");
    }
    auto wrong = Store::open(path, test_passphrase("correct hors"));
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().code() == ErrorCode::wrong_key);
    auto raw = Store::open(path, test_key());
    REQUIRE_FALSE(raw.is_ok());
    CHECK(raw.status().code() == ErrorCode::wrong_key);
    Store store = open_ok(path, test_passphrase("correct horse"));
    CHECK(count_rows(store) == 5);
}

namespace {

// Whether another process would find the store file at `path` locked by this one (SQLite's shared
// lock range on the main file, which a connection in WAL mode holds while it is open).
bool another_process_sees_our_lock(const std::string& path) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const int fd = ::open(path.c_str(), O_RDWR);
        if (fd < 0) ::_exit(2);
        struct flock probe {};
        probe.l_type = F_WRLCK;
        probe.l_whence = SEEK_SET;
        probe.l_start = 0x40000000 + 2;  // SQLite's SHARED_FIRST
        probe.l_len = 510;
        if (::fcntl(fd, F_GETLK, &probe) != 0) ::_exit(2);
        ::_exit(probe.l_type == F_UNLCK ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 2);
    return WEXITSTATUS(status) == 1;
}

}  // namespace

TEST_CASE("changing the passphrase of an open store keeps the locks its connection holds on the file") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store store = open_ok(path, test_passphrase("old"));
    write_rows(store, 0, 10, "c");
    REQUIRE(another_process_sees_our_lock(path));
    REQUIRE(store.change_key(test_passphrase("new")).is_ok());
    // A descriptor of our own on the file, closed, would have dropped them all: another process
    // could then take the file, checkpoint and delete the WAL this store still writes to.
    CHECK(another_process_sees_our_lock(path));
    write_rows(store, 10, 5, "c");
    store.close();
    Store reopened = open_ok(path, test_passphrase("new"));
    CHECK(count_rows(reopened) == 15);
}

TEST_CASE("changing the passphrase rewraps the key without rewriting pages") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store store = open_ok(path, test_passphrase("old"));
    write_rows(store, 0, 100, "c");
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    const std::string pages_before = read_file(path).substr(8192);
    REQUIRE(store.change_key(test_passphrase("new")).is_ok());
    CHECK(read_file(path).substr(8192) == pages_before);
    CHECK(count_rows(store) == 100);
    store.close();

    auto old_pass = Store::open(path, test_passphrase("old"));
    REQUIRE_FALSE(old_pass.is_ok());
    CHECK(old_pass.status().code() == ErrorCode::wrong_key);
    Store reopened = open_ok(path, test_passphrase("new"));
    CHECK(count_rows(reopened) == 100);
}

TEST_CASE("re-keying re-encrypts every page under a new data key") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store store = open_ok(path, test_key());
    write_rows(store, 0, 200, "r");
    REQUIRE(store.exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok());
    const std::string before = read_file(path);
    REQUIRE(store.rekey().is_ok());
    CHECK(count_rows(store) == 200);
    write_rows(store, 200, 5, "r");
    store.close();
    const std::string after = read_file(path);
    CHECK(after.substr(8192, 4096) != before.substr(8192, 4096));
    CHECK_FALSE(std::filesystem::exists(path + ".rekey"));
    Store reopened = open_ok(path, test_key());
    CHECK(count_rows(reopened) == 205);
    CHECK(reopened.integrity_check().is_ok());
}

TEST_CASE("re-keying is refused while a statement prepared on the store is alive and goes ahead once it is gone") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store store = open_ok(path, test_key());
    write_rows(store, 0, 20, "r");
    REQUIRE_FALSE(store.cached("SELECT nothing FROM nowhere").run().is_ok());  // cached, with no statement
    {
        auto reader = store.prepare("SELECT count(*) FROM note");
        REQUIRE(reader.is_ok());
        const Status refused = store.rekey();
        CHECK(refused.code() == ErrorCode::invalid_argument);
        CHECK_THAT(refused.message(), Catch::Contains("statement prepared on it"));
        CHECK(store.exec("INSERT INTO note(id, body) VALUES(100, 'after')").is_ok());  // still open
    }
    REQUIRE(store.rekey().is_ok());
    write_rows(store, 20, 5, "r");
    store.close();
    Store reopened = open_ok(path, test_key());
    CHECK(count_rows(reopened) == 26);
}

TEST_CASE("re-keying is refused while another handle in the process has the store open, and nothing changes") {
    TempDir dir;
    const auto path = dir.file("s.db");
    Store store = open_ok(path, test_key());
    write_rows(store, 0, 20, "r");
    {
        Store other = open_ok(path, test_key());
        const Status refused = store.rekey();
        CHECK(refused.code() == ErrorCode::busy);
        CHECK_THAT(refused.message(), Catch::Contains("another handle") && Catch::Contains("nothing was changed"));
        write_rows(other, 20, 5, "r");  // both go on, on the one file
        CHECK(count_rows(store) == 25);  // (its cached statement left stepped: the re-key resets it)
    }
    const Status alone = store.rekey();  // alone, it goes ahead
    INFO(alone.message());
    REQUIRE(alone.is_ok());
    store.close();
    Store reopened = open_ok(path, test_key());
    CHECK(count_rows(reopened) == 25);
}

namespace {

// "unlinks-rekey": the unix VFS, except that opening a re-key's copy removes the file first, as an
// open of the store by another process at that moment does (it clears a leftover copy).
int open_unlinking_rekey(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    sqlite3_vfs* unix_vfs = sqlite3_vfs_find("unix");
    const std::string path = name ? name : "";
    if ((flags & SQLITE_OPEN_MAIN_DB) && path.ends_with(".rekey")) ::unlink(path.c_str());
    return unix_vfs->xOpen(unix_vfs, name, file, flags, out_flags);
}

const char* unlinking_rekey_vfs() { return tsunagu::testing::unix_vfs_opening_with("unlinks-rekey", open_unlinking_rekey); }

}  // namespace

TEST_CASE("a re-key whose copy was removed while it was written stops and leaves the store under its old key") {
    TempDir dir;
    const auto path = dir.file("s.db");
    StoreOptions options;
    options.base_vfs = unlinking_rekey_vfs();
    Store store = open_ok(path, test_key(), options);
    write_rows(store, 0, 20, "r");
    const Status stopped = store.rekey();
    REQUIRE_FALSE(stopped.is_ok());
    CHECK(stopped.code() == ErrorCode::conflict);
    CHECK_THAT(stopped.message(), Catch::Contains("removed or replaced") && Catch::Contains("unchanged"));
    CHECK_FALSE(std::filesystem::exists(path + ".rekey"));
    write_rows(store, 20, 5, "r");  // the store goes on
    store.close();
    Store reopened = open_ok(path, test_key());
    CHECK(count_rows(reopened) == 25);
}

TEST_CASE("a key file opens the store, and a world-readable or short key file is refused") {
    TempDir dir;
    const auto key_path = dir.file("server.key");
    REQUIRE(create_key_file(key_path).is_ok());
    CHECK((std::filesystem::status(key_path).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    const std::string made = read_file(key_path);
    CHECK(made.size() == 32);
    CHECK(create_key_file(key_path).code() == ErrorCode::already_exists);
    CHECK(read_file(key_path) == made);  // never overwritten
    // Linked into place whole: nothing else is left in the folder.
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
    {
        auto key = KeySource::key_file(key_path);
        REQUIRE(key.is_ok());
        Store store = open_ok(dir.file("s.db"), *key);
        write_rows(store, 0, 3, "f");
    }
    std::filesystem::permissions(key_path, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    auto readable = KeySource::key_file(key_path);
    REQUIRE_FALSE(readable.is_ok());
    CHECK(readable.status().message().find("chmod 600") != std::string::npos);
    if (::geteuid() == 0) {
        // One another user owns, 0600 as it should be, is refused too: they made it or can swap it.
        std::filesystem::permissions(key_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::replace);
        REQUIRE(::chown(key_path.c_str(), 65534, 65534) == 0);
        auto theirs = KeySource::key_file(key_path);
        REQUIRE_FALSE(theirs.is_ok());
        CHECK(theirs.status().message().find("belongs to another user") != std::string::npos);
        CHECK(theirs.status().message().find("chown") != std::string::npos);
    } else {
        WARN("not root: a key file of another user cannot be made here, so its refusal is not checked");
    }

    const auto short_path = dir.file("short.key");
    { std::ofstream(short_path) << "too short"; }
    std::filesystem::permissions(short_path, std::filesystem::perms::owner_read,
                                 std::filesystem::perm_options::replace);
    auto short_key = KeySource::key_file(short_path);
    REQUIRE_FALSE(short_key.is_ok());
    CHECK(short_key.status().message().find("exactly 32 bytes") != std::string::npos);
}

TEST_CASE("a key file has no name until it is whole and durable so a kill leaves no copy of the key behind") {
    TempDir dir;
    const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(watch >= 0);
    REQUIRE(::inotify_add_watch(watch, dir.path().c_str(), IN_CREATE | IN_MOVED_TO) >= 0);
    REQUIRE(create_key_file(dir.file("server.key")).is_ok());
    std::vector<std::string> named;  // every name that appeared in the folder, in order
    alignas(inotify_event) char buf[4096];
    for (ssize_t got; (got = ::read(watch, buf, sizeof buf)) > 0;) {
        for (ssize_t at = 0; at < got;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
            named.emplace_back(event->len ? event->name : "");
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        }
    }
    ::close(watch);
    CHECK(named == std::vector<std::string>{"server.key"});
}

TEST_CASE("a plain SQLite file is not an encrypted store") {
    TempDir dir;
    const auto path = dir.file("plain.db");
    {
        std::ofstream out(path, std::ios::binary);
        out << "SQLite format 3" << '\0' << std::string(4080, '\0');
    }
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::not_a_store);
}

TEST_CASE("a store whose key header was destroyed is not opened, and the message says only a backup brings it back") {
    TempDir dir;
    const auto path = dir.file("s.db");
    { Store store = open_ok(path, test_key()); }
    std::string bytes = testing::read_bytes(path);
    bytes.replace(0, testing::kKeyHeaderBytes, std::string(testing::kKeyHeaderBytes, '\0'));
    testing::write_bytes(path, bytes);
    auto store = Store::open(path, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::not_a_store);
    CHECK_THAT(store.status().message(), Catch::Contains("key header was destroyed") && Catch::Contains("backup"));
    CHECK(testing::read_bytes(path) == bytes);
}

TEST_CASE("a store file that is a symbolic link is refused, saying to open its target, which is left as it was") {
    // SQLite would open the target under its own name, not the one the key is registered under,
    // and a re-key, restore or erasure would replace or remove the link rather than the store.
    TempDir dir;
    const auto target = dir.file("s.db");
    {
        Store store = open_ok(target, test_key());
        REQUIRE(store.exec("CREATE TABLE t(x)").is_ok());
    }
    const std::string before = testing::read_bytes(target);
    const auto link = dir.file("link.db");
    std::filesystem::create_symlink(target, link);
    auto store = Store::open(link, test_key());
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(store.status().message(), Catch::Contains("symbolic link to " + target) && Catch::Contains("open the file it points to"));
    CHECK(testing::read_bytes(target) == before);
    CHECK(std::filesystem::is_symlink(link));
    open_ok(target, test_key());
}

TEST_CASE("a finished backup or salvage moved into place never replaces a file that appeared there meanwhile") {
    TempDir dir;
    const auto finished = dir.file("copy.partial");
    const auto target = dir.file("copy");
    std::ofstream(finished) << "the finished copy";
    std::ofstream(target) << "someone else's file, made while the copy was written";
    const Status refused = tsunagu::crypto_detail::move_into_place(finished, target, "backup");
    CHECK(refused.code() == ErrorCode::already_exists);
    CHECK_THAT(refused.message(), Catch::Contains(target) && Catch::Contains("left as it is"));
    CHECK(read_file(target) == "someone else's file, made while the copy was written");
    CHECK(read_file(finished) == "the finished copy");  // the caller removes it
    std::filesystem::remove(target);
    REQUIRE(tsunagu::crypto_detail::move_into_place(finished, target, "backup").is_ok());
    CHECK(read_file(target) == "the finished copy");
    CHECK_FALSE(std::filesystem::exists(finished));
}

TEST_CASE("a backup is an encrypted copy under its own key") {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key(1));
    write_rows(store, 0, 50, "BACKUP-MARKER");
    const auto backup = dir.file("backup.db");
    REQUIRE(store.backup_to(backup, test_key(9)).is_ok());
    CHECK(store.backup_to(backup, test_key(9)).code() == ErrorCode::already_exists);
    const std::string bytes = read_file(backup);
    CHECK(bytes.find("BACKUP-MARKER") == std::string::npos);
    CHECK(bytes.find("SQLite format 3") == std::string::npos);
    CHECK(Store::open(backup, test_key(1)).status().code() == ErrorCode::wrong_key);
    Store copy = open_ok(backup, test_key(9));
    CHECK(count_rows(copy) == 50);
}

TEST_CASE("destroying a store removes its files and its key") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_key());
        write_rows(store, 0, 10, "d");
    }
    REQUIRE(Store::destroy(path).is_ok());
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));
    CHECK_FALSE(std::filesystem::exists(path + ".erasing"));
    CHECK(Store::destroy(path).is_ok());  // idempotent
}

TEST_CASE("a destroy killed part way leaves nothing under the store's name and the next open finishes it") {
    TempDir dir;
    const auto path = dir.file("s.db");
    {
        Store store = open_ok(path, test_key());
        write_rows(store, 0, 10, "killed-erase");
    }
    // Where a destroy killed after its first step (the rename) leaves the files: the store renamed
    // away, and a WAL of its (one left by a crash) under the store's name.
    std::filesystem::rename(path, path + ".erasing");
    std::ofstream(path + "-wal") << "frames of the destroyed store";
    StoreOptions only_existing;
    only_existing.create_if_missing = false;
    auto gone = Store::open(path, test_key(), only_existing);
    CHECK(gone.status().code() == ErrorCode::not_found);  // no store, and no "not a store" either
    CHECK_FALSE(std::filesystem::exists(path + ".erasing"));
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));  // never played into the next store
    // The next open makes a new store there, empty.
    Store fresh = open_ok(path, test_key());
    CHECK(fresh.exec("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT)").is_ok());
    CHECK(count_rows(fresh) == 0);
}

TEST_CASE("temp tables and large sorts never reach the disk") {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key());
    write_rows(store, 0, 2000, "SORT-MARKER");
    REQUIRE(store.exec("CREATE TEMP TABLE scratch AS SELECT * FROM note").is_ok());
    auto q = store.prepare("SELECT body FROM note ORDER BY body DESC");
    REQUIRE(q.is_ok());
    int rows = 0;
    while (true) {
        auto r = q->step();
        REQUIRE(r.is_ok());
        if (!*r) break;
        ++rows;
    }
    CHECK(rows == 2000);
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        CHECK(read_file(entry.path()).find("SORT-MARKER") == std::string::npos);
    }
}

TEST_CASE("a cached statement that failed to prepare is prepared again once what it reads exists") {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key());
    const std::string sql = "SELECT count(*) FROM later";
    const Status missing = store.cached(sql).run();
    CHECK_THAT(missing.message(), Catch::Contains("no such table"));
    REQUIRE(store.exec("CREATE TABLE later(id INTEGER PRIMARY KEY); INSERT INTO later(id) VALUES(1)").is_ok());
    Statement& q = store.cached(sql);
    auto row = q.step();
    REQUIRE(row.is_ok());
    REQUIRE(*row);
    CHECK(q.column_int(0) == 1);
}

TEST_CASE("a transaction inside a transaction is a savepoint the outer commit decides for") {
    TempDir dir;
    Store store = open_ok(dir.file("s.db"), test_key());
    write_rows(store, 0, 1, "n");
    auto insert = [&](int id) {
        auto& q = store.cached("INSERT INTO note(id, body) VALUES(?1, 'nested')");
        q.bind(1, id);
        return q.run();
    };
    Status outer = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(insert(10));
        Status inner_failed = with_transaction(store, [&]() -> Status {
            TSUNAGU_TRY(insert(11));
            return Status(ErrorCode::validation, "inner step refused");
        });
        CHECK(inner_failed.code() == ErrorCode::validation);
        return with_transaction(store, [&]() { return insert(12); });
    });
    REQUIRE(outer.is_ok());
    CHECK(count_rows(store) == 3);  // 0, 10 and 12; the refused inner step left nothing

    Status rolled_back = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(with_transaction(store, [&]() { return insert(20); }));
        return Status(ErrorCode::conflict, "outer step refused");
    });
    CHECK(rolled_back.code() == ErrorCode::conflict);
    CHECK(count_rows(store) == 3);  // the inner step's commit was the outer's to make
    CHECK_FALSE(store.in_transaction());
}

// SQLite rewrites a spilled frame in place within a transaction, then writes the next frames'
// headers with zeroed salts and fills them in at commit without touching the bodies: binding the
// salts into the frame's encryption once made such transactions unreadable.
TEST_CASE("a transaction larger than the page cache that rewrites its own spilled pages commits and reads back") {
    for (JournalMode mode : {JournalMode::wal, JournalMode::rollback}) {
        TempDir dir;
        StoreOptions options;
        options.journal_mode = mode;
        Store store = open_ok(dir.file("s.db"), test_key(), options);
        REQUIRE(store.exec("PRAGMA cache_size=50; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").is_ok());
        for (int round = 0; round < 3; ++round) {
            Status s = with_transaction(store, [&]() -> Status {
                for (int i = 0; i < 20000; ++i) {
                    auto& q = store.cached("INSERT OR REPLACE INTO t(id, v) VALUES(?1, ?2)");
                    q.bind(1, i % 5000).bind(2, std::string(300, static_cast<char>('a' + i % 26)));
                    TSUNAGU_TRY(q.run());
                }
                return Status::ok();
            });
            INFO("round " << round << ": " << s.to_string());
            REQUIRE(s.is_ok());
        }
        CHECK(store.integrity_check().is_ok());
        store.close();
        Store reopened = open_ok(dir.file("s.db"), test_key(), options);
        auto& q = reopened.cached("SELECT count(*), min(v) FROM t");
        REQUIRE(*q.step());
        CHECK(q.column_int(0) == 5000);
    }
}

// The shim writes each WAL frame's header together with its page, holding the header back until
// the page comes. Held or not, a header must be on disk before another connection can see its
// frame: here the reader checks every commit at once, with no sync at commit to write it out,
// including commits that rewrite spilled frames (whose headers SQLite rewrites alone).
TEST_CASE("another connection reads every frame a writer has just committed, even without a sync") {
    for (const char* sync : {"OFF", "NORMAL", "FULL"}) {
        INFO("synchronous=" << sync);
        TempDir dir;
        const auto path = dir.file("s.db");
        Store writer = open_ok(path, test_key());
        REQUIRE(writer.exec(std::string("PRAGMA synchronous=") + sync +
                            "; PRAGMA cache_size=30; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
                    .is_ok());
        Store reader = open_ok(path, test_key());
        for (int round = 1; round <= 12; ++round) {
            const int rows = round % 3 == 0 ? 3000 : 40;  // every third one spills and rewrites
            Status s = with_transaction(writer, [&]() -> Status {
                for (int i = 0; i < rows; ++i) {
                    auto& q = writer.cached("INSERT OR REPLACE INTO t(id, v) VALUES(?1, ?2)");
                    q.bind(1, (round * 7919 + i) % 1500).bind(2, std::string(200, static_cast<char>('a' + round)));
                    TSUNAGU_TRY(q.run());
                }
                return Status::ok();
            });
            REQUIRE(s.is_ok());
            auto& q = reader.cached("SELECT count(*), sum(length(v)) FROM t");
            auto row = q.step();
            INFO("round " << round << ": " << row.status().to_string());
            REQUIRE(row.is_ok());
            REQUIRE(*row);
            auto& w = writer.cached("SELECT count(*) FROM t");
            REQUIRE(*w.step());
            CHECK(q.column_int(0) == w.column_int(0));
            CHECK(q.column_int(1) == 200 * w.column_int(0));
            w.reset();
            q.reset();
        }
        CHECK(reader.integrity_check().is_ok());
    }
}

TEST_CASE("two processes creating one new store at once never leave a store sealed under a key it does not hold") {
    TempDir dir("tsunagu-store-create-race");
    int both_created = 0;
    for (int round = 0; round < 40; ++round) {
        const std::string path = dir.file("race-" + std::to_string(round) + ".db");
        pid_t children[2];
        for (int who = 0; who < 2; ++who) {
            children[who] = ::fork();
            REQUIRE(children[who] >= 0);
            if (children[who] == 0) {
                // Each writes its mark under its own key; 0 when the store it made (or found, under
                // its key) took the mark, 3 when it was refused (busy, another key: nothing written).
                auto store = Store::open(path, test_key(static_cast<std::uint8_t>(10 + who)));
                if (!store) ::_exit(3);
                if (!store->exec("CREATE TABLE IF NOT EXISTS mark(who INTEGER)").is_ok()) ::_exit(4);
                if (!store->exec("INSERT INTO mark VALUES(" + std::to_string(who) + ")").is_ok()) ::_exit(4);
                ::_exit(0);
            }
        }
        int took[2];
        for (int who = 0; who < 2; ++who) {
            int status = 0;
            REQUIRE(::waitpid(children[who], &status, 0) == children[who]);
            REQUIRE(WIFEXITED(status));
            took[who] = WEXITSTATUS(status);
            REQUIRE((took[who] == 0 || took[who] == 3));
        }
        both_created += took[0] == 0 && took[1] == 0;
        // Every mark a process was told it wrote is there, under the key it wrote with.
        for (int who = 0; who < 2; ++who) {
            if (took[who] != 0) continue;
            INFO("round " << round << ", process " << who);
            Store store = open_ok(path, test_key(static_cast<std::uint8_t>(10 + who)));
            auto& q = store.cached("SELECT count(*) FROM mark WHERE who = ?1");
            q.bind(1, who);
            auto row = q.step();
            REQUIRE(row.is_ok());
            CHECK(q.column_int(0) == 1);
            q.reset();
        }
    }
    CHECK(both_created == 0);  // two keys: one store, one of them refused
    // What the refused creations built is gone once their stores were opened.
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        CHECK(entry.path().filename().string().find(".new") == std::string::npos);
    }
}
