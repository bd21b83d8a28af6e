// Device::refused_on_server: this worker's refused changes as the server keeps them, from all her
// devices (GET /v1/sync/refused).
#include "clients/src/device_impl.h"

namespace tsunagu::client {
namespace {

// One entry of the server's list; false when it is not one (a newer server may add members,
// which are ignored, but never drop these). An optional member of another type reads as absent.
bool read_entry(const sync::Json& in, KeptRefusal& out) {
    if (!in.is_object()) return false;
    const auto text = [&](const char* key) { return in.contains(key) && in[key].is_string(); };
    const auto number = [&](const char* key) { return in.contains(key) && in[key].is_number_integer(); };
    if (!text("change_id") || !text("record") || !text("collection") || !text("device") || !text("code") ||
        !text("status") || !number("last_refused_at")) {
        return false;
    }
    // The optional members are read only when of their type: get<>() and value() throw otherwise.
    const auto text_or_empty = [&](const char* key) { return text(key) ? in[key].get<std::string>() : std::string(); };
    out.change_id = in["change_id"].get<std::string>();
    out.record = in["record"].get<std::string>();
    out.collection = in["collection"].get<std::string>();
    out.device_id = in["device"].get<std::string>();
    out.this_device = in.contains("this_device") && in["this_device"].is_boolean() && in["this_device"].get<bool>();
    out.code = error_code_named(in["code"].get<std::string>()).value_or(ErrorCode::forbidden);
    out.cause = text("cause") && sync::is_cause_word(in["cause"].get<std::string>()) ? in["cause"].get<std::string>() : "";
    out.reason = text_or_empty("reason");
    out.first_refused_at = number("first_refused_at") ? in["first_refused_at"].get<std::int64_t>() : 0;
    out.last_refused_at = in["last_refused_at"].get<std::int64_t>();
    out.times = number("times") ? in["times"].get<std::int64_t>() : 1;
    out.dismissed = in["status"] == "dismissed";
    out.comment = text_or_empty("comment");
    return true;
}

}  // namespace

Result<std::vector<KeptRefusal>> Device::refused_on_server(bool dismissed) {
    TSUNAGU_TRY(impl_->ready_for_records());
    Impl& d = *impl_;
    const std::string path = std::string("/v1/sync/refused?limit=1000&status=") + (dismissed ? "dismissed" : "open");
    auto link = d.server();
    TSUNAGU_TRY(link);
    auto answer = (*link)->send("GET", path, nullptr, d.session.token.view());
    TSUNAGU_TRY(answer);
    if (is_wipe(*answer)) return d.erase_revoked();
    if (answer->status != 200) return refusal(*answer, "listing refused changes");
    const sync::Json& body = answer->body;
    if (!body.is_object() || !body.contains("refused") || !body["refused"].is_array()) {
        return Status(ErrorCode::unavailable, "the server's list of refused changes is malformed; is " +
                                                  d.session.server_url + " a Tsunagu server of this version?");
    }
    std::vector<KeptRefusal> out;
    out.reserve(body["refused"].size());
    for (const auto& entry : body["refused"]) {
        KeptRefusal kept;
        if (!read_entry(entry, kept)) {
            return Status(ErrorCode::unavailable, "the server's list of refused changes holds a malformed entry");
        }
        out.push_back(std::move(kept));
    }
    return out;
}

}  // namespace tsunagu::client
