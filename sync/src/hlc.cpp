// Hybrid logical clock: ticks, observation of peers' readings and the wire form.
#include "sync/hlc.h"

#include <time.h>

#include <charconv>
#include <chrono>
#include <fstream>
#include <string>

namespace tsunagu::sync {

std::string Hlc::to_string() const {
    return std::to_string(wall_ms) + "-" + std::to_string(counter);
}

std::optional<Hlc> Hlc::parse(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) return std::nullopt;
    // Only the form to_string() writes: no leading zeros, so that one reading has one text.
    if ((text[0] == '0' && dash > 1) || (text[dash + 1] == '0' && dash + 2 < text.size())) return std::nullopt;
    Hlc out;
    const char* wall_end = text.data() + dash;
    auto [p1, e1] = std::from_chars(text.data(), wall_end, out.wall_ms);
    if (e1 != std::errc() || p1 != wall_end || out.wall_ms < 0) return std::nullopt;
    // Keep packed() within int64.
    if (out.wall_ms > INT64_MAX / static_cast<std::int64_t>(kCounterLimit) - 1) return std::nullopt;
    const char* end = text.data() + text.size();
    auto [p2, e2] = std::from_chars(wall_end + 1, end, out.counter);
    if (e2 != std::errc() || p2 != end || out.counter >= kCounterLimit) return std::nullopt;
    return out;
}

WallClock system_wall_clock() {
    return [] {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    };
}

BootClock system_boot_clock() {
    // The boot id is read once per process: "5f1c...-..." folded to 64 bits (0 when unreadable).
    static const std::uint64_t boot = [] {
        std::ifstream in("/proc/sys/kernel/random/boot_id");
        std::string id;
        if (!std::getline(in, id)) return std::uint64_t{0};
        std::uint64_t folded = 1469598103934665603ULL;  // FNV-1a
        for (unsigned char c : id) folded = (folded ^ c) * 1099511628211ULL;
        return folded == 0 ? std::uint64_t{1} : folded;
    }();
    return [] {
        timespec now{};
        if (boot == 0 || ::clock_gettime(CLOCK_BOOTTIME, &now) != 0) return BootReading{};
        return BootReading{boot, static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000};
    };
}

HybridClock::HybridClock(WallClock wall, Hlc last, BootClock boot)
    : wall_(std::move(wall)), boot_(std::move(boot)), last_(last) {}

std::optional<std::int64_t> HybridClock::anchored_now() const {
    if (!boot_ || anchor_at_.boot == 0) return std::nullopt;
    const BootReading reading = boot_();
    if (reading.boot != anchor_at_.boot || reading.ms < anchor_at_.ms) return std::nullopt;
    return anchor_wall_ms_ + (reading.ms - anchor_at_.ms);
}

std::int64_t HybridClock::wall_now() const {
    if (const auto anchored = anchored_now()) return *anchored;
    const std::int64_t now = wall_() + offset_ms_;
    return now < 0 ? 0 : now;
}

Hlc HybridClock::tick() {
    const std::int64_t now = wall_now();
    last_ = now > last_.wall_ms ? Hlc{now, 0} : last_.next();
    return last_;
}

void HybridClock::observe(Hlc remote) {
    if (remote > last_) last_ = remote;
}

std::int64_t HybridClock::let_go_if_ahead(std::int64_t max_ahead_ms) {
    const std::int64_t now = wall_now();
    if (last_.wall_ms - now <= max_ahead_ms) return 0;
    const std::int64_t ahead = last_.wall_ms - now;
    last_ = Hlc{now, 0};
    return ahead;
}

bool HybridClock::is_too_far_ahead(Hlc remote, std::int64_t max_ahead_ms) const {
    return remote.wall_ms > wall_now() + max_ahead_ms;
}

}  // namespace tsunagu::sync
