// The push route's reading of a body as it was before parse_push_batch_text: through a JSON
// document (parse the body, check its fields, count the change sets, parse_push_batch). The
// reference that parse_push_batch_text must agree with, refusal words included.
#pragma once

#include <cstdint>
#include <string>

#include "api/src/json_input.h"
#include "sync/protocol.h"

namespace tsunagu::testing {

inline sync::PushBody push_body_through_document(const std::string& text, const std::string& replica,
                                                 const std::string& user, const sync::PushBodyLimits& limits) {
    using nlohmann::json;
    sync::PushBody out;
    auto body = api::parse_json_object(text, limits.max_depth);
    if (!body) {
        out.refusal = body.status();
        return out;
    }
    Status shape = api::check_fields(*body, {{"changes", api::JsonType::array, true},
                                             {"sent_at", api::JsonType::integer, false},
                                             {"clock_offset", api::JsonType::integer, false}});
    if (!shape) {
        out.refusal = shape;
        return out;
    }
    if ((*body)["changes"].size() > limits.max_changes) {
        out.too_many_changes = true;
        out.refusal = Status(ErrorCode::validation, "a push carries at most " + std::to_string(limits.max_changes) +
                                                        " change sets; push in smaller batches");
        return out;
    }
    json wire = {{"replica", replica},
                 {"user", user},
                 {"changes", std::move((*body)["changes"])},
                 {"sent_at", body->value("sent_at", std::int64_t{0})}};
    if (body->contains("clock_offset")) wire["clock_offset"] = (*body)["clock_offset"];
    auto batch = sync::parse_push_batch(wire);
    if (!batch) {
        out.refusal = batch.status();
        return out;
    }
    out.batch = std::move(*batch);
    return out;
}

}  // namespace tsunagu::testing
