// The key of the records' index: a 64-bit keyed hash of a record id. An 8-byte integer index is
// smaller than one of 16-byte blobs (fewer pages for every insert to dirty) and compares faster.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "crypto/status.h"
#include "sync/src/ids_bytes.h"

namespace tsunagu::sync::detail {

// Two ids may share a key (rarely): readers of the index compare the full id. The hash is keyed
// with a secret of the store (SipHash-2-4), so that no device can choose ids that share one and
// slow the upstream's lookups down.
class RecordKey {
  public:
    using Secret = std::array<std::uint8_t, 16>;

    explicit RecordKey(const Secret& secret) : secret_(secret) {}

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
