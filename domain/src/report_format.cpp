// The indicator report as JSON (for the API and scripts) and as CSV (for Excel).
#include <cstdio>
#include <string_view>

#include "domain/indicators.h"

namespace tsunagu::domain {
namespace {

constexpr const char* kBom = "\xEF\xBB\xBF";

std::string month_name(int fiscal_year, int index) {
    const int month = (index + 3) % 12 + 1;
    const int year = month >= 4 ? fiscal_year : fiscal_year + 1;
    return std::to_string(year) + (month < 10 ? "-0" : "-") + std::to_string(month);
}

sync::Json optional_json(const std::optional<std::int64_t>& v) { return v ? sync::Json(*v) : sync::Json(); }

// A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection). Their
// full-width forms too (＝＋－＠, as a Japanese input method types them): whether a given Excel
// takes them for a formula is not known here, and an apostrophe before a team's name costs nothing.
bool reads_as_formula(const std::string& text) {
    if (text.empty()) return false;
    if (std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos) return true;
    for (std::string_view wide : {"\uFF1D", "\uFF0B", "\uFF0D", "\uFF20"}) {
        if (text.starts_with(wide)) return true;
    }
    return false;
}

// RFC 4180: quote a field holding a comma, quote, or line break; double inner quotes. A cell that
// would read as a formula gets a leading apostrophe first.
std::string csv_field(const std::string& cell) {
    const std::string text = reads_as_formula(cell) ? "'" + cell : cell;
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}


std::int64_t value_in(const std::map<std::string, std::int64_t>& by_area, const std::string& area) {
    auto it = by_area.find(area);
    return it == by_area.end() ? 0 : it->second;
}

}  // namespace

std::string rate_text(const IndicatorRow& row) {
    if (!row.rate || !row.target || *row.target <= 0) return {};
    // Tenths of a percent, rounded half up: floor((actual * 1000 + target / 2) / target), in
    // integers (a double's 0.0625 * 100 prints as 6.2 or 6.3 depending on who formats it).
    const std::int64_t target = *row.target;
    const std::int64_t tenths = (row.actual * 2000 + target) / (2 * target);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "%";
}

sync::Json report_rows_to_json(const IndicatorReport& report) {
    sync::Json rows = sync::Json::array();
    for (const auto& r : report.rows) {
        rows.push_back({{"id", r.definition.id},
                        {"label_ja", r.definition.label_ja},
                        {"label_en", r.definition.label_en},
                        {"target", optional_json(r.target)},
                        {"actual", r.actual},
                        {"rate", r.rate ? sync::Json(*r.rate) : sync::Json()},
                        {"rate_text", r.rate ? sync::Json(rate_text(r)) : sync::Json()},
                        {"in_conflict", r.in_conflict}});
    }
    return rows;
}

sync::Json report_to_json(const IndicatorReport& report) {
    sync::Json areas = sync::Json::array();
    for (const auto& area : report.areas) {
        sync::Json values = sync::Json::object();
        for (const auto& r : report.rows) values[r.definition.id] = value_in(r.by_area, area.id);
        areas.push_back({{"id", area.id}, {"name", area.name}, {"values", std::move(values)}});
    }
    sync::Json months = sync::Json::array();
    for (int m = 0; m < 12; ++m) {
        sync::Json values = sync::Json::object();
        for (const auto& r : report.rows) values[r.definition.id] = r.by_month[m];
        months.push_back({{"month", month_name(report.fiscal_year, m)}, {"values", std::move(values)}});
    }
    return {{"fiscal_year", report.fiscal_year},
            {"from", report.first_day()},
            {"to", report.last_day()},
            {"rows", report_rows_to_json(report)},
            {"areas", std::move(areas)},
            {"months", std::move(months)}};
}

std::string report_to_csv(const IndicatorReport& report) {
    std::string out = kBom;
    auto line = [&out](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i) {
            if (i) out += ',';
            out += csv_field(cells[i]);
        }
        out += "\r\n";
    };
    std::vector<std::string> header = {"id", "指標", "Indicator", "目標", "実績", "達成率", "未解決の競合"};
    for (const auto& area : report.areas) header.push_back(area.name);
    for (int m = 0; m < 12; ++m) header.push_back(month_name(report.fiscal_year, m));
    line(header);
    for (const auto& r : report.rows) {
        std::vector<std::string> cells = {r.definition.id,
                                          r.definition.label_ja,
                                          r.definition.label_en,
                                          r.target ? std::to_string(*r.target) : "",
                                          std::to_string(r.actual),
                                          rate_text(r),
                                          std::to_string(r.in_conflict)};
        for (const auto& area : report.areas) cells.push_back(std::to_string(value_in(r.by_area, area.id)));
        for (int m = 0; m < 12; ++m) cells.push_back(std::to_string(r.by_month[m]));
        line(cells);
    }
    return out;
}

std::string report_to_text(const IndicatorReport& report) {
    std::string out = "Fiscal year " + std::to_string(report.fiscal_year) + " (" + report.first_day() + " to " +
                      report.last_day() + "), approved records\n";
    out += "  target  actual    rate  indicator\n";
    for (const auto& r : report.rows) {
        char figures[64];
        std::snprintf(figures, sizeof figures, "%8s%8lld%8s  ", r.target ? std::to_string(*r.target).c_str() : "-",
                      static_cast<long long>(r.actual), r.rate ? rate_text(r).c_str() : "-");
        out += figures + r.definition.label_ja + " (" + r.definition.label_en + ")";
        if (r.in_conflict > 0) out += "  [open conflicts: " + std::to_string(r.in_conflict) + "]";
        out += "\n";
    }
    return out;
}

}  // namespace tsunagu::domain
