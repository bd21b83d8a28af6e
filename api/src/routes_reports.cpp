// Reports: the yearly indicators against targets, as JSON or as CSV for Excel.
//
// The report holds counts only, never record content or ids, over the whole organisation, with a
// breakdown by area: supervisors report the city's table to the council, and admins prepare it.
// Field workers have no access.
#include "api/src/reports.h"
#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

HttpResponse indicators(RequestContext& ctx) {
    const Role role = ctx.who().user.role;
    if (role != Role::supervisor && role != Role::admin) {
        return HttpResponse::error(403, "forbidden", "only supervisors and administrators read reports");
    }
    auto fy = fiscal_year_parameter(ctx.request);
    if (!fy) return error_response(fy.status());
    const std::string format = ctx.request.query.count("format") ? ctx.request.query.at("format") : "json";
    if (format != "json" && format != "csv") {
        return HttpResponse::error(400, "invalid", "query parameter \"format\": json or csv");
    }
    auto report = indicator_report(ctx.store, ctx.upstream, *fy);
    if (!report) return error_response(report.status());
    // Counts only, but over every area's care records: read by whom, when, is on the trail.
    if (Status a = ctx.audit_in_group("report.read", "fy" + std::to_string(*fy), format); !a) return error_response(a);
    if (format == "json") return json_response(200, domain::report_to_json(*report));
    HttpResponse csv;
    csv.content_type = "text/csv; charset=utf-8";
    csv.headers.emplace_back("Content-Disposition",
                             "attachment; filename=\"indicators-FY" + std::to_string(*fy) + ".csv\"");
    csv.body = domain::report_to_csv(*report);
    return csv;
}

}  // namespace

std::vector<Route> report_routes() {
    return {
        {"GET", "/v1/reports/indicators", Access::signed_in, indicators, /*outside_group=*/true},
    };
}

}  // namespace tsunagu::api
