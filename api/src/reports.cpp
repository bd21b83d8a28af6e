// The indicator report over the server's store (see reports.h).
#include "api/src/reports.h"

#include "api/src/caseload.h"
#include "crypto/store.h"
#include "domain/care_schema.h"

namespace tsunagu::api {

Status Targets::create_schema(Store& store) {
    return store.exec(R"sql(
CREATE TABLE IF NOT EXISTS yearly_target(
  fiscal_year INTEGER NOT NULL,
  indicator TEXT NOT NULL,
  target INTEGER NOT NULL,
  PRIMARY KEY(fiscal_year, indicator));
)sql");
}

Result<std::map<std::string, std::int64_t>> Targets::of_year(Store& store, int fiscal_year) {
    auto& q = store.cached("SELECT indicator, target FROM yearly_target WHERE fiscal_year = ?1");
    q.bind(1, fiscal_year);
    std::map<std::string, std::int64_t> out;
    TSUNAGU_TRY(each_row(q, [&](const Statement&) {
        out[std::string(q.column_text(0))] = q.column_int(1);
    }));
    return out;
}

Status Targets::set(Store& store, int fiscal_year, const std::map<std::string, std::int64_t>& targets) {
    for (const auto& [indicator, value] : targets) {
        if (!domain::find_indicator(indicator)) {
            return Status(ErrorCode::validation,
                          "targets: no indicator \"" + indicator.substr(0, 64) +
                              "\"; see GET /v1/reports/indicators for the indicator ids");
        }
        if (value < 0 || value > 1'000'000) {
            return Status(ErrorCode::validation, "targets." + indicator + ": a whole number from 0 to 1000000");
        }
    }
    return with_transaction(store, [&]() -> Status {
        for (const auto& [indicator, value] : targets) {
            auto& q = store.cached(
                "INSERT INTO yearly_target(fiscal_year, indicator, target) VALUES(?1, ?2, ?3) "
                "ON CONFLICT(fiscal_year, indicator) DO UPDATE SET target = excluded.target");
            TSUNAGU_TRY(q.bind(1, fiscal_year).bind(2, indicator).bind(3, value).run());
        }
        return Status::ok();
    });
}

Status Targets::remove(Store& store, int fiscal_year, const std::vector<std::string>& indicators) {
    // Any id, known or not: a target kept for an indicator since dropped can go too, and nothing
    // here can refuse after set() wrote.
    return with_transaction(store, [&]() -> Status {
        for (const auto& indicator : indicators) {
            auto& q = store.cached("DELETE FROM yearly_target WHERE fiscal_year = ?1 AND indicator = ?2");
            TSUNAGU_TRY(q.bind(1, fiscal_year).bind(2, indicator).run());
        }
        return Status::ok();
    });
}

Result<domain::IndicatorReport> indicator_report(Store& store, sync::Upstream& upstream, int fiscal_year) {
    domain::ReportInputs inputs;
    inputs.fiscal_year = fiscal_year;
    auto targets = Targets::of_year(store, fiscal_year);
    if (!targets) return targets.status();
    inputs.targets = std::move(*targets);

    auto& teams = store.cached("SELECT id, name FROM team ORDER BY name");
    TSUNAGU_TRY(each_row(teams, [&](const Statement&) {
        inputs.areas.push_back({std::string(teams.column_text(0)), std::string(teams.column_text(1))});
    }));
    auto areas = AreaHistory::read(store, AreaOf::client);
    if (!areas) return areas.status();
    auto author_teams = AreaHistory::read(store, AreaOf::worker);
    if (!author_teams) return author_teams.status();
    // The area the record's client was in on the record's date, else the one its author was in
    // then: a client or a worker moved since leaves last year's figures where they were.
    inputs.area_of = [&](const sync::Record& r, const std::string& date) -> std::string {
        auto client = r.fields.find("client");
        if (client != r.fields.end() && client->is_string()) {
            std::string area = areas->area_on(client->get<std::string>(), date);
            if (!area.empty()) return area;
        }
        return author_teams->area_on(r.owner, date);
    };

    std::vector<sync::Record> records;
    for (const auto& collection : upstream.schema().collections) {
        if (collection.name == "client") continue;
        auto listed = upstream.list(collection.name);
        if (!listed) return listed.status();
        for (auto& r : *listed) records.push_back(std::move(r));
    }
    return domain::compute_indicators(records, inputs);
}

Result<int> fiscal_year_parameter(const HttpRequest& request) {
    auto it = request.query.find("fy");
    try {
        std::size_t used = 0;
        const int fy = it == request.query.end() ? -1 : std::stoi(it->second, &used);
        if (fy < 2000 || fy > 2100 || used != it->second.size()) throw std::out_of_range("fy");
        return fy;
    } catch (const std::exception&) {
        return Status(ErrorCode::validation,
                      "query parameter \"fy\": a fiscal year such as 2020 (April 2020 to March 2021)");
    }
}

}  // namespace tsunagu::api
