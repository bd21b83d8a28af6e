// What the targets that build a world once per process (a server, a device, their records) share.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "crypto/status.h"
#include "fuzz/fuzz_target.h"

namespace tsunagu::fuzz {

// A step of setting a world up: a failure there is the harness's, reported through fail().
template <typename T>
T set_up(Result<T> result) {
    if (!result) fail("setting the world up: " + result.status().message(), "");
    return std::move(*result);
}
inline void set_up(const Status& status) {
    if (!status) fail("setting the world up: " + status.message(), "");
}

// A home visit to `client`, as the care schema takes one, with its review status. (Its visitor is
// named: the worlds' users are names, not the record ids a visitor is, so none is filled in.)
inline nlohmann::json home_visit(const std::string& client, const char* review_status) {
    return {{"client", client},      {"visitor", std::string(32, 'f')},    {"date", "2025-06-10"},
            {"duration_min", 40},    {"purpose", "check_in"},              {"observations", "眠れている。"},
            {"review_status", review_status}};
}

}  // namespace tsunagu::fuzz
