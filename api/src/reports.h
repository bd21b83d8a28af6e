// The yearly indicator report over the server's store: targets kept per fiscal year, and the
// report computed from the engine's approved records (domain/indicators.h). Used by the API, by
// `tsunagu-server report` (no server running) and by the demo organisation.
#pragma once

#include <cstdint>
#include <map>
#include <vector>
#include <string>

#include "api/http.h"
#include "crypto/store.h"
#include "domain/indicators.h"
#include "sync/engine.h"

namespace tsunagu::api {

class Targets {
public:
    static Status create_schema(Store& store);
    // Indicator id -> target, for one fiscal year.
    static Result<std::map<std::string, std::int64_t>> of_year(Store& store, int fiscal_year);
    // Sets (replaces) the given indicators' targets. Refuses an unknown indicator or a target out of
    // 0..1,000,000, naming it, before writing anything.
    static Status set(Store& store, int fiscal_year, const std::map<std::string, std::int64_t>& targets);
    // Removes the named targets for the year (the report then shows none: no rate), whether or not
    // the indicator is still defined; never refuses for an id.
    static Status remove(Store& store, int fiscal_year, const std::vector<std::string>& indicators);
};

// The report for one fiscal year, over every approved record. A record counts in its client's
// area (client-linked records) or else its author's team.
Result<domain::IndicatorReport> indicator_report(Store& store, sync::Upstream& upstream, int fiscal_year);

// The "fy" query parameter: a fiscal year from 2000 to 2100.
Result<int> fiscal_year_parameter(const HttpRequest& request);

}  // namespace tsunagu::api
