// The key of the records' index: a 32-bit keyed hash of a record id. Inserts land at random in
// that index, so a batch of changes rewrites most of its pages: the index's size is its cost.
// Entries of a 4-byte integer take half the pages of 16-byte blobs, and compare faster.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "crypto/status.h"
#include "sync/src/ids_bytes.h"

namespace tsunagu::sync::detail {

// Two ids may share a key (one lookup in 4,000 at a million records): readers of the index
// compare the full id, and the cost of a shared key is one more row read. The hash is keyed
// with a secret of the store (SipHash-2-4), so that no device can choose ids that share one and
// slow the upstream's lookups down.
class RecordKey {
  public:
    using Secret = std::array<std::uint8_t, 16>;

    explicit RecordKey(const Secret& secret) : secret_(secret) {}

    // In the range of a signed 32-bit integer.
    std::int64_t of(const IdBytes& id) const;
    std::int64_t of(std::string_view hex) const { return of(id_to_bytes(hex)); }

    static Secret fresh_secret();
    // As stored in sync_meta: 32 hex characters.
    static std::string to_text(const Secret& secret);
    static Result<Secret> from_text(std::string_view text);

  private:
    Secret secret_;
};

}  // namespace tsunagu::sync::detail
