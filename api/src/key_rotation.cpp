// Rotating the servers' key file (tsunagu-server rotate-key): for the embedded store, a new key
// file and a new data key under it, every page sealed again; on PostgreSQL, a new data key for the
// tenant, every sealed value sealed again under it, wrapped under the new key file.
#include <filesystem>

#include "api/server.h"
#include "api/src/data_folder.h"
#include "crypto/durable.h"
#include "crypto/secret.h"
#include "crypto/store.h"
#include "pg/pg.h"
#include "pg/presence.h"
#include "pg/tenant_key.h"

namespace tsunagu::api {
namespace {

namespace fs = std::filesystem;

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec_a, ec_b;
    if (fs::equivalent(a, b, ec_a)) return true;
    const fs::path canonical_a = fs::weakly_canonical(a, ec_a), canonical_b = fs::weakly_canonical(b, ec_b);
    return !ec_a && !ec_b && canonical_a == canonical_b;
}

// The new key file is named, and is not the one in use (`old_path`).
Status check_new_key_file(const std::string& old_path, const std::string& new_key_file) {
    if (new_key_file.empty()) {
        return Status(ErrorCode::invalid_argument, "name the new key file with --new-key-file (a new path)");
    }
    if (same_file(old_path, new_key_file)) {
        return Status(ErrorCode::invalid_argument,
                      "the new key file is the key file in use (" + old_path + "): name another path");
    }
    return Status::ok();
}

// The rotation writes a sealed copy of the store beside it before it replaces it: refused before
// anything changes when the folder's disk has no room for one (the store and its WAL, and 1 MiB).
Status check_room_for_copy(const std::string& data_dir, const std::string& store_path) {
    std::error_code ec;
    std::uintmax_t needed = fs::file_size(store_path, ec) + (1u << 20);
    const std::uintmax_t wal = fs::file_size(store_path + "-wal", ec);
    if (!ec) needed += wal;
    const fs::space_info space = fs::space(data_dir, ec);
    if (ec || space.available >= needed) return Status::ok();
    const auto mib = [](std::uintmax_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; };
    return Status(ErrorCode::storage_full,
                  "not enough free space in " + data_dir + " for the key rotation: it writes a sealed copy of "
                  "the store beside it (about " + mib(needed) + "), and " + mib(space.available) +
                  " are free; nothing was changed: free space on that disk and run the command again");
}

// The key file `path` to rotate to, created (0600) when it does not exist yet, and on disk before
// anything is sealed under it.
Result<KeySource> new_key_at(const std::string& path) {
    if (!fs::exists(path)) TSUNAGU_TRY(create_key_file(path));
    // A key file the operator has just written may still be in the page cache; after the
    // rotation the old key opens nothing, and a power cut would leave no key that does.
    TSUNAGU_TRY(make_durable(path));
    return KeySource::key_file(path);
}

}  // namespace

Result<PostgresKeyRotated> rotate_postgres_key(const std::string& postgres, const std::string& tenant,
                                               const std::string& data_dir, const std::string& key_file,
                                               const std::string& new_key_file) {
    ensure_sodium();
    const std::string old_path = key_path_for(data_dir, key_file);
    TSUNAGU_TRY(check_new_key_file(old_path, new_key_file));
    auto old_key = KeySource::key_file(old_path);
    if (!old_key) {
        return Status(old_key.status().code(), "the servers' key file: " + old_key.status().message() +
                                                   " (give it with --key-file)");
    }
    auto connection = pg::Connection::open(postgres);
    TSUNAGU_TRY(connection);
    // Held until the connection closes: no server runs, or starts, while the records are rewritten.
    TSUNAGU_TRY(pg::ServerPresence::take_alone(*connection, tenant));
    auto new_key = new_key_at(new_key_file);
    TSUNAGU_TRY(new_key);
    auto done = pg::reseal_tenant(*connection, tenant, old_key->material(), new_key->material());
    TSUNAGU_TRY(done);
    return PostgresKeyRotated{done->already, done->rows, done->values};
}

Result<KeyRotated> rotate_key(const std::string& data_dir, const std::string& key_file,
                              const std::string& new_key_file) {
    ensure_sodium();
    const std::string store_path = store_path_in(data_dir);
    if (!fs::exists(store_path)) {
        return Status(ErrorCode::not_found, "no store in " + data_dir + " (expected " + store_path + ")");
    }
    const std::string old_path = key_path_for(data_dir, key_file);
    TSUNAGU_TRY(check_new_key_file(old_path, new_key_file));
    auto lock = DataFolderLock::take(data_dir, DataFolderLock::Mode::exclusive);
    TSUNAGU_TRY(lock);

    StoreOptions live;  // as the server opens it
    live.create_if_missing = false;
    KeyRotated done{new_key_file, false, ""};
    TSUNAGU_TRY(check_room_for_copy(data_dir, store_path));
    auto new_key = new_key_at(new_key_file);
    TSUNAGU_TRY(new_key);
    // A rotation stopped part way (killed, power cut) is taken up again: the store may already
    // open with the new key file.
    auto store = Store::open(store_path, *new_key, live);
    if (store) {
        done.resumed = true;
    } else {
        if (store.status().code() != ErrorCode::wrong_key) return store.status();
        if (!fs::exists(old_path)) {
            return Status(ErrorCode::not_found, "no key file at " + old_path +
                                                    ": give the key file that seals the store with --key-file");
        }
        auto old_key = KeySource::key_file(old_path);
        TSUNAGU_TRY(old_key);
        store = Store::open(store_path, *old_key, live);
        if (!store) {
            if (store.status().code() != ErrorCode::wrong_key) return store.status();
            return Status(ErrorCode::wrong_key, "neither " + old_path + " nor " + new_key_file +
                                                    " opens the store in " + data_dir + "; nothing was changed");
        }
        // From here only the new key file opens the store (the same data key, wrapped anew), and
        // no server starts on it until the pages are sealed under a new data key (the mark)...
        TSUNAGU_TRY(mark_rotation_started(data_dir, new_key_file));
        TSUNAGU_TRY(store->change_key(*new_key));
    }
    // ... and now under a new data key: whoever kept the old key file and copies of the store's key
    // header can read none of what the store holds from now on.
    TSUNAGU_TRY(store->rekey());
    TSUNAGU_TRY(store->integrity_check());
    done.cipher = store->page_cipher();
    store->close();
    TSUNAGU_TRY(mark_rotation_finished(data_dir));
    return done;
}

}  // namespace tsunagu::api
