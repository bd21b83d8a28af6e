// The cache of authenticated sessions (see session_cache.h).
#include "api/src/session_cache.h"

namespace tsunagu::api {

std::optional<SessionCache::Entry> SessionCache::find(const std::string& session_id, std::int64_t generation) {
    std::lock_guard lock(mutex_);
    if (generation != generation_) {
        entries_.clear();
        generation_ = generation;
        return std::nullopt;
    }
    auto it = entries_.find(session_id);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

void SessionCache::keep(const std::string& session_id, std::int64_t generation, Entry entry) {
    std::lock_guard lock(mutex_);
    if (generation != generation_) return;
    if (entries_.size() >= capacity_) entries_.clear();
    entries_.insert_or_assign(session_id, std::move(entry));
}

void SessionCache::clock_read(const std::string& session_id, std::int64_t ahead_ms, std::int64_t at) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(session_id);
    if (it == entries_.end()) return;
    it->second.device.clock_ahead_ms = ahead_ms;
    it->second.device.clock_read_at = at;
}

void SessionCache::seen(const std::string& session_id, std::int64_t at) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(session_id);
    if (it != entries_.end()) it->second.device.last_seen_at = at;
}

}  // namespace tsunagu::api
