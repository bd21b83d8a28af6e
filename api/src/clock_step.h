// The server's wall clock can be set back: by an operator, an NTP step, a virtual machine restored
// from a snapshot. Times stored before the step then lie ahead of `now`, and a rule "ends N
// seconds after the stored time" would run N seconds plus the step. Whoever stores a time to
// measure from checks it with set_back_since and does not trust a time from the future.
#pragma once

#include <cstdint>

namespace tsunagu::api {

// How far ahead a stored time may lie before it counts as a clock set back: NTP's small
// corrections and seconds rounded either way stay well within it.
inline constexpr std::int64_t kClockStepToleranceSeconds = 60;

// Whether `stored_at` (seconds, stored at some earlier `now`) lies ahead of `now` by more than
// the tolerance: the clock was set back since it was stored.
constexpr bool set_back_since(std::int64_t stored_at, std::int64_t now) {
    return stored_at > now + kClockStepToleranceSeconds;
}

}  // namespace tsunagu::api
