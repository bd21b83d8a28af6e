// Operations: health and metrics.
#include "api/src/server_core.h"

namespace tsunagu::api {
namespace {

bool is_loopback(const std::string& address) {
    return address.rfind("127.", 0) == 0 || address == "::1" || address.rfind("::ffff:127.", 0) == 0;
}

}  // namespace

std::vector<Route> operations_routes() {
    return {
        {"GET", "/healthz", Access::anyone,
         [](RequestContext& ctx) {
             auto& q = ctx.store.cached("SELECT 1");
             auto row = q.step();
             if (!row) return HttpResponse::error(503, "unhealthy", "the store does not answer");
             q.reset();
             // Reads work, but every write fails until an operator acts: said, for the load
             // balancer and the operator (the reason's details are in the log).
             if (auto failing = ctx.core.commit_group().failing()) {
                 if (failing->code() == ErrorCode::storage_full) {
                     return HttpResponse::error(503, "storage_full",
                                                "writes fail: the data folder's disk is full; free space");
                 }
                 if (failing->code() == ErrorCode::wrong_key) {
                     return HttpResponse::error(503, "key_rotated",
                                                "writes fail: the data key was rotated since this server "
                                                "started; restart it with the new key file");
                 }
             }
             return json_response(200, {{"status", "ok"}});
         },
         /*outside_group=*/true},
        {"GET", "/metrics", Access::anyone,
         [](RequestContext& ctx) {
             // Scraped from the machine itself. nginx does not forward /metrics, and a request it
             // forwards anyway (a configuration that lets it through) comes from loopback too:
             // the X-Forwarded-For that tsunagu_proxy_params sets tells it apart.
             if (!is_loopback(ctx.request.remote_address) ||
                 ctx.request.headers.contains("x-forwarded-for") || ctx.request.headers.contains("forwarded")) {
                 return HttpResponse::error(403, "forbidden",
                                            "metrics are served on loopback only, not through a proxy");
             }
             auto gauges = ctx.core.load_gauges ? ctx.core.load_gauges()
                                                : std::pair<std::size_t, std::size_t>{0, 0};
             HttpResponse r;
             r.content_type = "text/plain; version=0.0.4";
             r.body = ctx.core.metrics().render(gauges.first, gauges.second, ctx.core.commit_group().commits(),
                                                ctx.core.commit_group().committed_work());
             return r;
         },
         /*outside_group=*/true},
    };
}

}  // namespace tsunagu::api
