// Plain HTTP request/response helpers.
#include <nlohmann/json.hpp>

#include "api/http.h"

namespace tsunagu::api {

const std::string& HttpRequest::header(const std::string& name) const {
    static const std::string kEmpty;
    auto it = headers.find(name);
    return it == headers.end() ? kEmpty : it->second;
}

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
    return r;
}

}  // namespace tsunagu::api
