// Which backups a rotation keeps: the newest few, then one per week and one per month further
// back (api/src/backup_retention.h).
#include <catch2/catch.hpp>

#include <ctime>
#include <map>
#include <string>

#include "api/src/backup_retention.h"

using tsunagu::api::BackupTime;
using tsunagu::api::retain;
using tsunagu::api::RetentionPolicy;

namespace {

// The moment "YYYY-MM-DD HH:MM" UTC, in unix milliseconds.
std::int64_t at(const char* when) {
    std::tm utc{};
    REQUIRE(std::sscanf(when, "%4d-%2d-%2d %2d:%2d", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                        &utc.tm_min) == 5);
    utc.tm_year -= 1900;
    utc.tm_mon -= 1;
    return static_cast<std::int64_t>(::timegm(&utc)) * 1000;
}

// Each backup's reasons to be kept, joined ("newest+weekly"; "" when it is to be removed).
std::map<std::string, std::string> reasons(const std::vector<BackupTime>& backups, const RetentionPolicy& policy) {
    std::map<std::string, std::string> out;
    for (const auto& r : retain(backups, policy)) {
        std::string joined;
        for (const auto& why : r.kept_as) joined += (joined.empty() ? "" : "+") + why;
        out[r.name] = joined;
    }
    return out;
}

}  // namespace

TEST_CASE("a rotation keeps the newest backups, then the newest of each recent week and month") {
    // Daily backups at 03:00 from Monday 2026-10-26 to Saturday 2026-12-05, newest first.
    std::vector<BackupTime> daily;
    for (std::int64_t t = at("2026-12-05 03:00"); t >= at("2026-10-26 03:00"); t -= 24LL * 3600 * 1000) {
        daily.push_back({std::to_string(t), t});
    }
    auto name = [](const char* when) { return std::to_string(at(when)); };

    SECTION("the newest N alone, as before weekly and monthly existed") {
        const auto kept = reasons(daily, {3, 0, 0});
        CHECK(kept.at(name("2026-12-05 03:00")) == "newest");
        CHECK(kept.at(name("2026-12-03 03:00")) == "newest");
        CHECK(kept.at(name("2026-12-02 03:00")).empty());
        std::size_t removed = 0;
        for (const auto& [n, why] : kept) removed += why.empty();
        CHECK(removed == daily.size() - 3);
    }

    SECTION("weekly: the newest of each of the last W weeks that hold one (weeks from Monday, UTC)") {
        const auto kept = reasons(daily, {2, 3, 0});
        CHECK(kept.at(name("2026-12-05 03:00")) == "newest+weekly");  // this week's newest
        CHECK(kept.at(name("2026-12-04 03:00")) == "newest");
        CHECK(kept.at(name("2026-11-29 03:00")) == "weekly");  // Sunday: last week's newest
        CHECK(kept.at(name("2026-11-30 03:00")).empty());        // Monday of this week
        CHECK(kept.at(name("2026-11-22 03:00")) == "weekly");
        CHECK(kept.at(name("2026-11-15 03:00")).empty());  // a fourth week
    }

    SECTION("monthly: the newest of each of the last M months that hold one") {
        const auto kept = reasons(daily, {1, 0, 3});
        CHECK(kept.at(name("2026-12-05 03:00")) == "newest+monthly");
        CHECK(kept.at(name("2026-11-30 03:00")) == "monthly");
        CHECK(kept.at(name("2026-10-31 03:00")) == "monthly");
        CHECK(kept.at(name("2026-10-26 03:00")).empty());
        std::size_t kept_count = 0;
        for (const auto& [n, why] : kept) kept_count += !why.empty();
        CHECK(kept_count == 3);
    }

    SECTION("weeks or months without a backup are not counted: the server was off for a while") {
        std::vector<BackupTime> gaps{{"dec", at("2026-12-05 03:00")},
                                     {"nov-late", at("2026-11-03 03:00")},
                                     {"nov-early", at("2026-11-02 03:00")},
                                     {"aug", at("2026-08-15 03:00")},
                                     {"jan", at("2026-01-10 03:00")}};
        const auto kept = reasons(gaps, {1, 3, 0});
        CHECK(kept.at("dec") == "newest+weekly");
        CHECK(kept.at("nov-late") == "weekly");  // Tuesday and Monday of one week: the newer
        CHECK(kept.at("nov-early").empty());
        CHECK(kept.at("aug") == "weekly");
        CHECK(kept.at("jan").empty());
    }

    SECTION("ISO weeks cross the new year: 2026-12-31 (Thursday) and 2027-01-03 (Sunday) are one week") {
        std::vector<BackupTime> new_year{{"sun", at("2027-01-03 03:00")},
                                         {"thu", at("2026-12-31 03:00")},
                                         {"sun-before", at("2026-12-27 03:00")}};
        const auto kept = reasons(new_year, {0, 2, 0});
        CHECK(kept.at("sun") == "weekly");
        CHECK(kept.at("thu").empty());
        CHECK(kept.at("sun-before") == "weekly");
    }

    SECTION("nothing to keep, or nothing at all") {
        CHECK(retain({}, {7, 4, 12}).empty());
        const auto kept = reasons(daily, {0, 0, 0});
        for (const auto& [n, why] : kept) CHECK(why.empty());
    }
}
