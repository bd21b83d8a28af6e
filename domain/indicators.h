// The yearly indicators a supervisor reports to the council (../shared/DOMAIN.md), computed from
// approved records of one fiscal year (April 1 to March 31) and set against the year's targets.
//
// Only records whose review_status is "approved" and that are not deleted count: a draft, a
// submitted record awaiting review or a returned one does not, and a record returned and then
// approved counts once, with its values as approved. Each indicator dates a record by one of its
// fields (a dispatch by its date, a training course by its end date or else its start date); a
// record dated outside the fiscal year does not count.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/change.h"

namespace tsunagu::domain {

// One line of the report's definition.
struct IndicatorDefinition {
    std::string id;        // stable, lower_snake_case: the key of targets and of JSON rows
    std::string label_ja;  // as the city's status sheet words it
    std::string label_en;
};

// Every indicator, in the order of the city's table.
const std::vector<IndicatorDefinition>& indicator_definitions();
const IndicatorDefinition* find_indicator(std::string_view id);

// An area (team) of the organisation, for the breakdown.
struct Area {
    std::string id;
    std::string name;
};

struct IndicatorRow {
    IndicatorDefinition definition;
    std::optional<std::int64_t> target;  // none when the admins set no target for the year
    std::int64_t actual = 0;
    // actual / target; none without a target or with a target of 0.
    std::optional<double> rate;
    std::map<std::string, std::int64_t> by_area;  // area id -> actual ("" = no area)
    std::array<std::int64_t, 12> by_month{};      // April first
    // How many of the records counted (for a count of people: of their qualifying records) carry an
    // open conflict: their figure is the value that currently wins, which may still change. Approval
    // waits for conflicts to be resolved, but a conflict can arrive after it.
    std::int64_t in_conflict = 0;
};

// The achievement rate as people read it: actual / target as a percentage with one decimal,
// rounded half up from the exact integers ("6.3%" for 1 of 16, "63.6%" for 56 of 88); "" without
// a rate. The one place a rate is formatted: the CSV, the text table and the web page (which gets
// it as rate_text) all show this string.
std::string rate_text(const IndicatorRow& row);

struct IndicatorReport {
    int fiscal_year = 0;  // 2020 = April 1 2020 to March 31 2021
    std::vector<Area> areas;
    std::vector<IndicatorRow> rows;

    std::string first_day() const;  // "2020-04-01"
    std::string last_day() const;   // "2021-03-31"
    const IndicatorRow* row(std::string_view id) const;
};

// What the computation needs to know besides the records.
struct ReportInputs {
    int fiscal_year = 0;
    std::vector<Area> areas;                        // shown in this order
    std::map<std::string, std::int64_t> targets;    // indicator id -> target for the year
    // The area a record counts in on the date it counts at (e.g. its client's area that day, else
    // its author's team); "" = none.
    std::function<std::string(const sync::Record&, const std::string& date)> area_of;
};

// Computes the report from the records of every collection (any order; records of other
// collections, deleted and unapproved records are skipped).
IndicatorReport compute_indicators(const std::vector<sync::Record>& records, const ReportInputs& inputs);

// {"fiscal_year", "from", "to", "rows": [{"id", "label_ja", "label_en", "target", "actual",
// "rate", "rate_text", "in_conflict"}], "areas": [{"id", "name", "values": {indicator: n}}], "months": [{"month": "2020-04",
// "values": {...}}]}; target and rate are null when unknown.
sync::Json report_to_json(const IndicatorReport& report);
// The rows alone, as `tsunagu-server report --json` prints them.
sync::Json report_rows_to_json(const IndicatorReport& report);
// One table that opens in Excel on a Japanese Windows PC: UTF-8 with a byte-order mark, CRLF line
// ends, RFC 4180 quoting. Columns: id, 指標, Indicator, 目標, 実績, 達成率 (rate_text, empty without
// a target), 未解決の競合 (in_conflict), then one column per area and one per month. A cell that a
// spreadsheet would read as a formula (starting with = + - @, a tab or a carriage return: a team
// named "=HYPERLINK(...)") is written with a leading apostrophe, as OWASP advises.
std::string report_to_csv(const IndicatorReport& report);

// For a terminal: one line per indicator, figures first (they align whatever the label's width):
// "    88      56   63.6%  ピアサポーター派遣依頼件数 (Peer-support dispatch requests)".
std::string report_to_text(const IndicatorReport& report);

// The fields `record` lacks that an indicator it counts in adds up (a post-discharge liaison
// meeting's organisations and participants, a training course's trainees completed), by name, in
// the schema's order: approved without them, it would count 0 where a number belongs.
std::vector<std::string> summed_fields_missing(const sync::Record& record);

// What else keeps `record` from being counted rightly once approved, as of `today` (local
// "YYYY-MM-DD"), each as a phrase naming the field and what to do: a peer-supporter training
// course that has not ended (no end date, or one after today: it counts in the year it ends, with
// the trainees who completed it, known once it has); a discharge-support case that reached
// community transition support without its admission date (whether its person was a long-term
// inpatient; a phone on an older schema version may send none), or with that outcome and no date
// for it. Empty when nothing does.
std::vector<std::string> not_countable_yet(const sync::Record& record, std::string_view today);

// The fiscal year a "YYYY-MM-DD" date falls in (April 1 starts a year); none for a non-date.
std::optional<int> fiscal_year_of(std::string_view date);

}  // namespace tsunagu::domain
