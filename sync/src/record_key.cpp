// RecordKey: SipHash-2-4 of a record id, keyed with the store's secret.
#include "sync/src/record_key.h"

#include <sodium.h>

#include <cstring>

#include "sync/change.h"

namespace tsunagu::sync::detail {

static_assert(crypto_shorthash_BYTES == sizeof(std::int64_t));
static_assert(crypto_shorthash_KEYBYTES == sizeof(RecordKey::Secret));

std::int64_t RecordKey::of(const IdBytes& id) const {
    unsigned char hash[crypto_shorthash_BYTES];
    crypto_shorthash(hash, id.data(), id.size(), secret_.data());
    std::int32_t key = 0;  // SQLite stores it in 4 bytes
    std::memcpy(&key, hash, sizeof key);
    return key;
}

RecordKey::Secret RecordKey::fresh_secret() {
    // new_id() initialises libsodium and draws from its random source.
    return id_to_bytes(new_id());
}

std::string RecordKey::to_text(const Secret& secret) {
    return id_from_bytes(secret);
}

Result<RecordKey::Secret> RecordKey::from_text(std::string_view text) {
    if (!is_id(text)) {
        return Status(ErrorCode::corrupt,
                      "the store's record key secret is damaged (not 32 hex characters); "
                      "restore the store from a backup");
    }
    return id_to_bytes(text);
}

}  // namespace tsunagu::sync::detail
