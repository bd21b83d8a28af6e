// The yearly indicators: which records count, in which fiscal year, area and month; and the
// report's JSON and CSV forms.
#include <catch2/catch.hpp>

#include <sstream>

#include "domain/indicators.h"

namespace tsunagu::domain {
namespace {

using sync::Json;
using sync::Record;

Record record(const std::string& collection, Json fields, const std::string& status = "approved") {
    static int next = 0;
    Record r;
    r.id = "r" + std::to_string(++next);
    r.collection = collection;
    r.owner = "worker";
    r.fields = std::move(fields);
    r.fields["review_status"] = status;
    return r;
}

Record dispatch(const std::string& date, const std::string& status = "approved",
                const std::string& source = "医療機関", const std::string& format = "group") {
    return record("peer_support_dispatch",
                  {{"date", date}, {"duration_min", 60}, {"request_source", source}, {"format", format}}, status);
}

IndicatorReport report(const std::vector<Record>& records, int fy = 2020,
                       std::map<std::string, std::int64_t> targets = {}) {
    ReportInputs in;
    in.fiscal_year = fy;
    in.targets = std::move(targets);
    in.areas = {{"north", "北区"}, {"south", "南区"}};
    in.area_of = [](const Record& r, const std::string&) { return r.fields.value("area_hint", std::string("north")); };
    return compute_indicators(records, in);
}

std::int64_t actual(const IndicatorReport& r, const std::string& id) {
    const IndicatorRow* row = r.row(id);
    REQUIRE(row);
    return row->actual;
}

// Splits CSV text (no quoted line breaks) into cells.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        REQUIRE(!line.empty());
        REQUIRE(line.back() == '\r');  // CRLF line ends, for Excel
        line.pop_back();
        std::vector<std::string> cells;
        std::string cell;
        bool quoted = false;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const char c = line[i];
            if (quoted) {
                if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cell += '"', ++i;
                else if (c == '"') quoted = false;
                else cell += c;
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                cells.push_back(cell), cell.clear();
            } else {
                cell += c;
            }
        }
        cells.push_back(cell);
        rows.push_back(cells);
    }
    return rows;
}


// The row of `id` in a report's JSON rows; the test stops when there is none.
const Json& json_row(const Json& rows, const std::string& id) {
    const auto found = std::find_if(rows.begin(), rows.end(), [&](const Json& r) { return r["id"] == id; });
    REQUIRE(found != rows.end());
    return *found;
}
}  // namespace

TEST_CASE("the fiscal year runs from April 1 to March 31") {
    CHECK(fiscal_year_of("2020-04-01") == 2020);
    CHECK(fiscal_year_of("2021-03-31") == 2020);
    CHECK(fiscal_year_of("2020-03-31") == 2019);
    CHECK(fiscal_year_of("2021-04-01") == 2021);
    CHECK_FALSE(fiscal_year_of("2020-13-01"));
    CHECK_FALSE(fiscal_year_of("yesterday"));
}

TEST_CASE("records dated March 31 and April 1 count in different fiscal years") {
    std::vector<Record> records = {dispatch("2020-03-31"), dispatch("2020-04-01"), dispatch("2021-03-31"),
                                   dispatch("2021-04-01")};
    CHECK(actual(report(records, 2019), "dispatch_requests") == 1);
    CHECK(actual(report(records, 2020), "dispatch_requests") == 2);
    CHECK(actual(report(records, 2021), "dispatch_requests") == 1);
}

TEST_CASE("only approved records that are not deleted count") {
    Record deleted = dispatch("2020-05-01");
    deleted.deleted = true;
    std::vector<Record> records = {dispatch("2020-05-01", "draft"), dispatch("2020-05-01", "submitted"),
                                   dispatch("2020-05-01", "returned"), deleted, dispatch("2020-05-01")};
    CHECK(actual(report(records), "dispatch_requests") == 1);
}

TEST_CASE("a record counts once, with the values it holds as it stands approved") {
    // The engine keeps one record per id, whatever its history: it is counted as it stands. (The
    // whole round, returned, corrected and approved over the server, is a care-domain API test.)
    Record r = dispatch("2020-06-10", "approved", "本人・在宅", "individual");
    IndicatorReport got = report({r});
    CHECK(actual(got, "dispatch_requests") == 1);
    CHECK(actual(got, "dispatch_requests_home") == 1);
    CHECK(actual(got, "dispatch_individual") == 1);
    CHECK(actual(got, "dispatch_requests_medical") == 0);
}

TEST_CASE("dispatches break down by request source and by format") {
    std::vector<Record> records = {dispatch("2020-04-02", "approved", "医療機関", "group"),
                                   dispatch("2020-04-03", "approved", "地域援助事業者", "online"),
                                   dispatch("2020-04-04", "approved", "本人・在宅", "individual"),
                                   dispatch("2020-04-05", "approved", "本人・在宅", "online")};
    IndicatorReport got = report(records);
    CHECK(actual(got, "dispatch_requests") == 4);
    CHECK(actual(got, "dispatch_requests_medical") == 1);
    CHECK(actual(got, "dispatch_requests_provider") == 1);
    CHECK(actual(got, "dispatch_requests_home") == 2);
    CHECK(actual(got, "dispatch_group") == 1);
    CHECK(actual(got, "dispatch_individual") == 1);
    CHECK(actual(got, "dispatch_online") == 2);
}

TEST_CASE("meetings count by kind, and the post-discharge liaison meeting sums organisations and participants") {
    auto meeting = [](const std::string& kind, const std::string& date, int orgs = 0, int people = 0) {
        return record("meeting", {{"kind", kind}, {"date", date}, {"organisations", orgs}, {"participants", people}});
    };
    std::vector<Record> records = {meeting("subcommittee", "2020-05-20"), meeting("subcommittee", "2020-06-20"),
                                   meeting("working_group", "2020-07-01"), meeting("council", "2021-03-01"),
                                   meeting("regional_liaison", "2020-09-09"), meeting("liaison", "2020-10-10"),
                                   meeting("practitioner_liaison", "2020-10-20"),
                                   meeting("post_discharge_liaison", "2020-11-17", 14, 28),
                                   meeting("case_conference", "2020-12-01")};
    IndicatorReport got = report(records);
    CHECK(actual(got, "subcommittee_meetings") == 2);
    CHECK(actual(got, "working_group_meetings") == 1);
    CHECK(actual(got, "council_meetings") == 1);
    CHECK(actual(got, "regional_liaison_meetings") == 1);
    CHECK(actual(got, "practitioner_liaison_meetings") == 1);  // 関係実務者連携会議 only, not その他の連絡会
    CHECK(actual(got, "post_discharge_liaison_meetings") == 1);
    CHECK(actual(got, "post_discharge_liaison_organisations") == 14);
    CHECK(actual(got, "post_discharge_liaison_participants") == 28);
}

TEST_CASE("trainees count when their course ends in the year, or starts in it without an end date") {
    std::vector<Record> records = {
        record("training_course", {{"course", "a"}, {"start_date", "2020-03-01"}, {"end_date", "2020-05-01"}, {"completed", 5}}),
        record("training_course", {{"course", "b"}, {"start_date", "2021-02-01"}, {"end_date", "2021-04-10"}, {"completed", 7}}),
        record("training_course", {{"course", "c"}, {"start_date", "2020-10-01"}, {"completed", 3}})};
    CHECK(actual(report(records), "peer_supporters_trained") == 8);
}

TEST_CASE("a training course is approved for the report once it has ended and a transition case once it has its dates") {
    const std::string today = "2021-03-20";
    auto course = [](Json fields) {
        fields["course"] = "x";
        fields["start_date"] = "2021-03-10";
        fields["completed"] = 5;
        return record("training_course", fields, "submitted");
    };
    auto gaps = [&](const Record& r) { return not_countable_yet(r, today); };
    // Its end decides its year, and its trainees completed are known once it has ended.
    REQUIRE(gaps(course({})).size() == 1);
    CHECK_THAT(gaps(course({}))[0], Catch::StartsWith("end_date"));
    REQUIRE(gaps(course({{"end_date", "2021-04-20"}})).size() == 1);
    CHECK_THAT(gaps(course({{"end_date", "2021-04-20"}}))[0], Catch::Contains("after today"));
    CHECK(gaps(course({{"end_date", today}})).empty());
    CHECK(gaps(course({{"course_kind", "follow_up"}})).empty());  // counted by no indicator

    auto case_with = [](Json fields) {
        fields["client"] = "c";
        fields["hospital"] = "h";
        return record("discharge_support_case", fields, "submitted");
    };
    CHECK(gaps(case_with({{"outcome", "ongoing"}})).empty());
    // A phone on care schema v1 may send an outcome without the admission date (the rule came in v2):
    // needed only when the case counts, having reached transition support.
    const auto without_admission = gaps(case_with({{"outcome", "community_transition_support"},
                                                   {"outcome_date", "2021-01-05"}, {"transition_date", "2021-01-05"}}));
    REQUIRE(without_admission.size() == 1);
    CHECK_THAT(without_admission[0], Catch::StartsWith("admitted_since"));
    CHECK(gaps(case_with({{"outcome", "discharged"}, {"outcome_date", "2021-01-05"}})).empty());
    const auto without_date = gaps(case_with({{"outcome", "community_transition_support"}, {"admitted_since", "2018-01-05"}}));
    REQUIRE(without_date.size() == 1);
    CHECK_THAT(without_date[0], Catch::StartsWith("transition_date"));
    CHECK(gaps(case_with({{"outcome", "community_transition_support"}, {"admitted_since", "2018-01-05"},
                          {"transition_date", "2021-01-05"}})).empty());
}

TEST_CASE("peer supporters trained counts the training course itself and not a follow-up or other course") {
    auto course = [](const char* kind, int completed) {
        Json fields = {{"course", "x"}, {"start_date", "2020-09-01"}, {"end_date", "2020-12-15"}, {"completed", completed}};
        if (kind) fields["course_kind"] = kind;
        return record("training_course", fields);
    };
    // A course written before care schema v4 has no kind: it counts, as it did when written.
    std::vector<Record> records = {course("peer_supporter_training", 8), course("follow_up", 6), course("other", 4),
                                   course(nullptr, 2)};
    CHECK(actual(report(records), "peer_supporters_trained") == 10);
    // Nor does approving a follow-up need its trainees completed, which no indicator adds up.
    Record follow_up = course("follow_up", 0);
    follow_up.fields.erase("completed");
    CHECK(summed_fields_missing(follow_up).empty());
    Record training = course("peer_supporter_training", 0);
    training.fields.erase("completed");
    CHECK(summed_fields_missing(training) == std::vector<std::string>{"completed"});
}

namespace {

Record discharge(const std::string& client, const std::string& outcome, const std::string& date,
                 const std::string& admitted = "2018-04-01") {
    return record("discharge_support_case", {{"client", client}, {"hospital", "h"}, {"admitted_since", admitted},
                                             {"outcome", outcome}, {"outcome_date", date}});
}

}  // namespace

TEST_CASE("community transition counts each inpatient once, by the date of the outcome") {
    std::vector<Record> records = {discharge("c1", "community_transition_support", "2020-05-01"),
                                   discharge("c1", "community_transition_support", "2020-08-01"),
                                   discharge("c2", "community_transition_support", "2020-09-01"),
                                   discharge("c3", "ongoing", "2020-09-01"),
                                   discharge("c4", "community_transition_support", "2021-04-01")};
    IndicatorReport got = report(records);
    CHECK(actual(got, "community_transition") == 2);
}

TEST_CASE("a person counts in the month and area of their first qualifying outcome of the year, so months add up") {
    Record later = discharge("c1", "community_transition_support", "2020-05-01");
    later.fields["area_hint"] = "south";
    // Listed out of order: the earliest date decides, whatever the order of the records.
    std::vector<Record> records = {discharge("c1", "community_transition_support", "2020-08-01"), later,
                                   discharge("c2", "community_transition_support", "2020-09-01")};
    const IndicatorReport got = report(records);  // kept: row() points into it
    const IndicatorRow* row = got.row("community_transition");
    REQUIRE(row);
    CHECK(row->actual == 2);
    CHECK(row->by_month[1] == 1);  // May: c1's first
    CHECK(row->by_month[4] == 0);  // August: c1 again, counted already
    CHECK(row->by_month[5] == 1);  // September: c2
    std::int64_t months = 0;
    for (auto n : row->by_month) months += n;
    CHECK(months == row->actual);
    CHECK(row->by_area.at("south") == 1);
    CHECK(row->by_area.at("north") == 1);
}

TEST_CASE("community transition counts only long-term inpatients: in hospital a year or more at the outcome") {
    std::vector<Record> records = {
        discharge("long", "community_transition_support", "2020-10-01", "2019-10-01"),   // exactly a year
        discharge("short", "community_transition_support", "2020-10-01", "2019-10-02"),  // a day short
        discharge("recent", "community_transition_support", "2020-10-01", "2020-06-01"),
        record("discharge_support_case", {{"client", "unknown"}, {"hospital", "h"},
                                          {"outcome", "community_transition_support"}, {"outcome_date", "2020-10-01"}})};
    CHECK(actual(report(records), "community_transition") == 1);
}

TEST_CASE("a transition that moved on to discharge still counts in the year it started") {
    // Started transition support in FY2020 and was discharged in FY2021: the case's outcome
    // moved on, its transition_date (care schema v4) did not.
    Record moved_on = discharge("c1", "discharged", "2021-05-20");
    moved_on.fields["transition_date"] = "2020-11-02";
    Record straight_home = discharge("c2", "discharged", "2020-12-01");  // never used transition support
    Record dated = discharge("c3", "community_transition_support", "2021-01-10");
    dated.fields["transition_date"] = "2020-12-20";  // the date given wins over the outcome's
    const std::vector<Record> records = {moved_on, straight_home, dated};
    const IndicatorReport fy2020 = report(records);
    CHECK(actual(fy2020, "community_transition") == 2);
    CHECK(fy2020.row("community_transition")->by_month[7] == 1);  // November, not May
    CHECK(fy2020.row("community_transition")->by_month[8] == 1);  // December, not January
    CHECK(actual(report(records, 2021), "community_transition") == 0);
    // An outcome corrected back to ongoing has not reached it, whatever date the case kept.
    Record corrected = discharge("c5", "ongoing", "2020-12-01");
    corrected.fields["transition_date"] = "2020-11-02";
    CHECK(actual(report({corrected}), "community_transition") == 0);
    // Long-term is judged at the transition: admitted 2019-11-10, a year in hospital only by the
    // discharge, not by the start of transition support.
    Record short_stay = discharge("c4", "discharged", "2021-02-01", "2019-11-10");
    short_stay.fields["transition_date"] = "2020-11-02";
    CHECK(actual(report({short_stay}), "community_transition") == 0);
}

TEST_CASE("each indicator says how many of the records it counted carry an open conflict") {
    sync::Conflict open;
    open.field = "duration_min";
    Record disputed = dispatch("2020-07-01");
    disputed.conflicts.push_back(open);
    Record disputed_draft = dispatch("2020-07-01", "submitted");
    disputed_draft.conflicts.push_back(open);
    IndicatorReport got = report({disputed, disputed_draft, dispatch("2020-07-02")});
    CHECK(got.row("dispatch_requests")->actual == 2);
    CHECK(got.row("dispatch_requests")->in_conflict == 1);
    CHECK(got.row("dispatch_group")->in_conflict == 1);
    CHECK(got.row("council_meetings")->in_conflict == 0);
    Json rows = report_rows_to_json(got);
    CHECK(json_row(rows, "dispatch_requests")["in_conflict"] == 1);
    auto csv = parse_csv(report_to_csv(got).substr(3));
    CHECK(csv[0][6] == "未解決の競合");
    const auto at = static_cast<std::size_t>(got.row("dispatch_requests") - got.rows.data()) + 1;
    CHECK(csv[at][6] == "1");
    CHECK(report_to_text(got).find("[open conflicts: 1]") != std::string::npos);
}

TEST_CASE("rates are rounded half up from the exact figures, once, for the CSV, the text and the page") {
    std::vector<Record> one = {dispatch("2020-07-01")};
    IndicatorReport got = report(one, 2020, {{"dispatch_requests", 16}});  // 6.25%
    CHECK(rate_text(*got.row("dispatch_requests")) == "6.3%");
    Json rows = report_rows_to_json(got);
    CHECK(json_row(rows, "dispatch_requests")["rate_text"] == "6.3%");
    CHECK(json_row(rows, "council_meetings")["rate_text"].is_null());
    CHECK(report_to_csv(got).find(",16,1,6.3%,") != std::string::npos);
    CHECK(report_to_text(got).find("6.3%") != std::string::npos);
    std::vector<Record> many(56, dispatch("2020-07-01"));
    CHECK(rate_text(*report(many, 2020, {{"dispatch_requests", 88}}).row("dispatch_requests")) == "63.6%");
    CHECK(rate_text(*report(many, 2020, {{"dispatch_requests", 56}}).row("dispatch_requests")) == "100.0%");
    CHECK(rate_text(*report({}, 2020, {{"dispatch_requests", 3}}).row("dispatch_requests")) == "0.0%");
    std::vector<Record> two(2, dispatch("2020-07-01"));
    CHECK(rate_text(*report(two, 2020, {{"dispatch_requests", 3}}).row("dispatch_requests")) == "66.7%");
}

TEST_CASE("targets give achievement rates, and indicators without a target have none") {
    std::vector<Record> records;
    for (int i = 0; i < 56; ++i) records.push_back(dispatch("2020-07-01"));
    IndicatorReport got = report(records, 2020, {{"dispatch_requests", 88}, {"council_meetings", 0}});
    const IndicatorRow* row = got.row("dispatch_requests");
    REQUIRE(row->target == 88);
    REQUIRE(row->rate);
    CHECK(*row->rate == Approx(56.0 / 88.0));
    CHECK_FALSE(got.row("council_meetings")->rate);
    CHECK_FALSE(got.row("subcommittee_meetings")->target);
}

TEST_CASE("the breakdown by area and month adds up to the year") {
    Record south = dispatch("2021-03-15");
    south.fields["area_hint"] = "south";
    Record nowhere = dispatch("2020-04-15");
    nowhere.fields["area_hint"] = "";
    IndicatorReport got = report({dispatch("2020-04-01"), dispatch("2020-04-30"), south, nowhere});
    const IndicatorRow* row = got.row("dispatch_requests");
    CHECK(row->actual == 4);
    CHECK(row->by_area.at("north") == 2);
    CHECK(row->by_area.at("south") == 1);
    CHECK(row->by_area.at("") == 1);
    CHECK(row->by_month[0] == 3);   // April 2020
    CHECK(row->by_month[11] == 1);  // March 2021
    REQUIRE(got.areas.size() == 3);  // the records without an area get a column of their own
    CHECK(got.areas.back().id.empty());

    Json json = report_to_json(got);
    CHECK(json["from"] == "2020-04-01");
    CHECK(json["to"] == "2021-03-31");
    CHECK(json["months"].size() == 12);
    CHECK(json["months"][0]["month"] == "2020-04");
    CHECK(json["months"][11]["month"] == "2021-03");
    CHECK(json["months"][0]["values"]["dispatch_requests"] == 3);
    CHECK(json["areas"][1]["name"] == "南区");
    CHECK(json["areas"][1]["values"]["dispatch_requests"] == 1);
}

TEST_CASE("report rows in JSON carry id, both labels, target, actual and rate") {
    Json rows = report_rows_to_json(report({dispatch("2020-07-01")}, 2020, {{"dispatch_requests", 4}}));
    REQUIRE(rows.is_array());
    REQUIRE(rows.size() == indicator_definitions().size());
    for (const Json& row : rows) {
        for (const char* key : {"id", "label_ja", "label_en", "target", "actual", "rate"}) CHECK(row.contains(key));
    }
    const Json& dispatches = json_row(rows, "dispatch_requests");
    CHECK(dispatches["label_ja"] == "ピアサポーター派遣依頼件数");
    CHECK(dispatches["target"] == 4);
    CHECK(dispatches["actual"] == 1);
    CHECK(dispatches["rate"] == 0.25);
    CHECK(rows[0]["target"].is_null());
    CHECK(rows[0]["rate"].is_null());
}

TEST_CASE("the CSV starts with a byte-order mark and parses back to the same figures") {
    std::vector<Record> records;
    for (int i = 0; i < 56; ++i) records.push_back(dispatch("2020-0" + std::to_string(4 + i % 6) + "-10"));
    IndicatorReport got = report(records, 2020, {{"dispatch_requests", 88}, {"peer_supporters_trained", 20}});
    const std::string csv = report_to_csv(got);
    REQUIRE(csv.rfind("\xEF\xBB\xBF", 0) == 0);
    auto rows = parse_csv(csv.substr(3));
    REQUIRE(rows.size() == got.rows.size() + 1);
    CHECK(rows[0][0] == "id");
    CHECK(rows[0][1] == "指標");
    CHECK(rows[0][3] == "目標");
    CHECK(rows[0][4] == "実績");
    CHECK(rows[0][5] == "達成率");
    CHECK(rows[0][6] == "未解決の競合");
    CHECK(rows[0][7] == "北区");
    CHECK(rows[0].back() == "2021-03");
    for (std::size_t i = 0; i < got.rows.size(); ++i) {
        const auto& cells = rows[i + 1];
        const IndicatorRow& row = got.rows[i];
        REQUIRE(cells.size() == rows[0].size());
        CHECK(cells[0] == row.definition.id);
        CHECK(cells[1] == row.definition.label_ja);
        CHECK(cells[2] == row.definition.label_en);
        CHECK(cells[3] == (row.target ? std::to_string(*row.target) : ""));
        CHECK(std::stoll(cells[4]) == row.actual);
        std::int64_t months = 0;
        for (std::size_t m = 0; m < 12; ++m) months += std::stoll(cells[cells.size() - 12 + m]);
        CHECK(months == row.actual);
    }
    const auto& dispatch_row = rows[1 + static_cast<std::size_t>(got.row("dispatch_requests") - got.rows.data())];
    CHECK(dispatch_row[5] == "63.6%");
}

TEST_CASE("CSV cells with commas and quotes are quoted") {
    IndicatorReport got = report({});
    got.areas = {{"a", "North, \"old\" town"}};
    const std::string csv = report_to_csv(got);
    CHECK(csv.find(",\"North, \"\"old\"\" town\",") != std::string::npos);
}

TEST_CASE("CSV cells that a spreadsheet would run as a formula start with an apostrophe") {
    IndicatorReport got = report({});
    got.areas = {{"a", "=HYPERLINK(\"http://x\",\"x\")"}, {"b", "+1"}, {"c", "-1"}, {"d", "@SUM(A1)"},
                 {"e", "\tTab"}, {"f", "\rCR"}, {"g", "北区 = 1"}, {"h", "＝1+1"}, {"i", "＋1"}, {"j", "－1"},
                 {"k", "＠SUM(A1)"}, {"l", "北区＝1"}};
    const auto header = parse_csv(report_to_csv(got).substr(3))[0];
    CHECK(header[7] == "'=HYPERLINK(\"http://x\",\"x\")");
    CHECK(header[8] == "'+1");
    CHECK(header[9] == "'-1");
    CHECK(header[10] == "'@SUM(A1)");
    CHECK(header[11] == "'\tTab");
    CHECK(header[13] == "北区 = 1");  // only a leading character makes a formula
    CHECK(header[14] == "'＝1+1");      // full-width, as a Japanese input method types them
    CHECK(header[15] == "'＋1");
    CHECK(header[16] == "'－1");
    CHECK(header[17] == "'＠SUM(A1)");
    CHECK(header[18] == "北区＝1");
    const std::string csv = report_to_csv(got);
    CHECK(csv.find(",\"'\rCR\",") != std::string::npos);  // quoted, as it holds a line break
}

}  // namespace tsunagu::domain
