// Hybrid logical clocks: wall-clock time plus a counter, so that every replica stamps its changes
// in an order that respects causality even when its wall clock is wrong or jumps backwards.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tsunagu::sync {

// One clock reading. Readings compare by wall time, then counter. Two replicas can produce the
// same reading; merge.h breaks such ties by replica id, never the clock.
struct Hlc {
    static constexpr std::uint32_t kCounterLimit = 1u << 16;

    std::int64_t wall_ms = 0;   // milliseconds since the Unix epoch, >= 0
    std::uint32_t counter = 0;  // < kCounterLimit

    // Packs into one integer with the same order (for SQLite columns and the stored state).
    std::int64_t packed() const noexcept { return wall_ms * kCounterLimit + counter; }
    static Hlc from_packed(std::int64_t packed) noexcept {
        return {packed / kCounterLimit, static_cast<std::uint32_t>(packed % kCounterLimit)};
    }
    // The smallest reading after this one.
    Hlc next() const noexcept {
        return counter + 1 < kCounterLimit ? Hlc{wall_ms, counter + 1} : Hlc{wall_ms + 1, 0};
    }
    // "1732500000000-3": the wire form.
    std::string to_string() const;
    // Parses the wire form; nullopt for anything else (negative, overflowing, leading zeros,
    // trailing bytes).
    static std::optional<Hlc> parse(std::string_view text);

    friend auto operator<=>(const Hlc&, const Hlc&) = default;
};

// Milliseconds since the Unix epoch. Injected so tests can skew and rewind time.
using WallClock = std::function<std::int64_t()>;
WallClock system_wall_clock();

// A clock counting from the machine's start, which no setting of the wall clock moves: `boot`
// tells one start from another (0: none known, and the reading is not used), `ms` is the time since.
struct BootReading {
    std::uint64_t boot = 0;
    std::int64_t ms = 0;
};
using BootClock = std::function<BootReading()>;
// Linux, Android included: the kernel's boot id and CLOCK_BOOTTIME (which counts time asleep
// too). Elsewhere, or when either cannot be read: readings of boot 0.
BootClock system_boot_clock();

// A replica's clock. Every tick() is strictly greater than every earlier tick and every reading
// passed to observe(), whatever the wall clock does, unless its owner lets go of a reading too far
// ahead (let_go_if_ahead) or rewinds it (rewind_to). Not thread-safe: one owner.
class HybridClock {
  public:
    explicit HybridClock(WallClock wall, Hlc last = {}, BootClock boot = {});

    // A fresh reading for a local event.
    Hlc tick();
    // Merges a reading received from a peer: later ticks come after it.
    void observe(Hlc remote);
    // True when `remote` is further ahead of this clock's wall time than `max_ahead_ms`: a peer
    // whose clock is wrong. The upstream does not observe() such a reading (it would drag every
    // later stamp into the future); it stamps the change afresh instead.
    bool is_too_far_ahead(Hlc remote, std::int64_t max_ahead_ms) const;

    // Wall time as this clock sees it: the injected wall clock plus the learned offset; or, while
    // anchored and the machine has not restarted since, the anchor's time plus the boot clock's
    // time since it, whatever the wall clock was set to meanwhile.
    std::int64_t wall_now() const;
    // Ties wall time to the boot clock: `wall_ms` (the upstream's time, just heard) at `at`. No
    // effect without a boot clock, or with a reading of boot 0.
    void anchor(BootReading at, std::int64_t wall_ms) noexcept {
        anchor_at_ = at;
        anchor_wall_ms_ = wall_ms;
    }
    // Whether wall_now() counts by the boot clock now (anchored, and the machine not restarted since).
    bool anchored() const { return anchored_now().has_value(); }
    // The boot clock's reading now (boot 0 without one).
    BootReading boot_now() const { return boot_ ? boot_() : BootReading{}; }
    // A correction added to the wall clock (a device learns it from the upstream's time).
    void set_offset_ms(std::int64_t offset_ms) { offset_ms_ = offset_ms; }
    std::int64_t offset_ms() const noexcept { return offset_ms_; }

    // The latest reading issued or observed.
    Hlc last() const noexcept { return last_; }
    // Lets go of a latest reading more than `max_ahead_ms` ahead of wall_now(): its wall clock was
    // set back since (it ran fast), or the reading came from a store a fast clock wrote. Later
    // ticks follow wall time again instead of counting on from a time that has not come; the
    // readings issued while it ran fast keep their stamps. Returns how far ahead the reading
    // was, 0 when it is kept.
    std::int64_t let_go_if_ahead(std::int64_t max_ahead_ms);
    // Sets the latest reading, possibly backwards: only for a device whose earlier readings came
    // from a skewed wall clock and are being re-stamped (see Device). Later ticks follow `to`.
    void rewind_to(Hlc to) noexcept { last_ = to; }

  private:
    // The anchor's time plus the boot clock's time since it; none when not anchored in this boot.
    std::optional<std::int64_t> anchored_now() const;

    WallClock wall_;
    BootClock boot_;
    std::int64_t offset_ms_ = 0;
    BootReading anchor_at_;
    std::int64_t anchor_wall_ms_ = 0;
    Hlc last_;
};

}  // namespace tsunagu::sync
