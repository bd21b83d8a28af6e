// Advisory lock keys derived from names, so that every server derives the same one.
#pragma once

#include <cstdint>
#include <string_view>

namespace tsunagu::pg::detail {

// A stable 64-bit key for `name` within `domain` (FNV-1a, kept non-negative).
inline std::int64_t lock_key(std::string_view domain, std::string_view name) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::string_view part : {domain, std::string_view("/"), name}) {
        for (unsigned char c : part) {
            h ^= c;
            h *= 1099511628211ull;
        }
    }
    return static_cast<std::int64_t>(h >> 1);
}

// The lock writers of a tenant take for each write transaction (PgBackend::begin_immediate).
inline std::int64_t writers_lock(std::string_view tenant) { return lock_key("tsunagu-writers", tenant); }
// The lock servers of a tenant hold shared for as long as they run (pg/presence.h).
inline std::int64_t servers_lock(std::string_view tenant) { return lock_key("tsunagu-servers", tenant); }

}  // namespace tsunagu::pg::detail
