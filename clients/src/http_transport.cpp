// HttpTransport over cpprestsdk's http_client: the only client-side file that includes it.
#include "clients/src/http_transport.h"

#include <cpprest/http_client.h>

namespace tsunagu::client {
namespace {

namespace http = web::http;

class CpprestTransport final : public HttpTransport {
public:
    CpprestTransport(const std::string& base_url, TransportOptions options)
        : client_(utility::conversions::to_string_t(base_url), config(options)) {}

    Result<HttpAnswer> send(const std::string& method, const std::string& path_and_query,
                            const std::string& body,
                            const std::map<std::string, std::string>& headers) override {
        try {
            http::http_request request(utility::conversions::to_string_t(method));
            request.set_request_uri(utility::conversions::to_string_t(path_and_query));
            for (const auto& [name, value] : headers) request.headers().add(name, value);
            if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
                request.set_body(body, "application/json");
            }
            http::http_response response = client_.request(request).get();
            HttpAnswer answer;
            answer.status = response.status_code();
            for (const auto& [name, value] : response.headers()) {
                std::string lower = name;
                for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                answer.headers[lower] = value;
            }
            auto bytes = response.extract_vector().get();
            answer.body.assign(bytes.begin(), bytes.end());
            return answer;
        } catch (const std::exception& e) {
            return Status(ErrorCode::unavailable,
                          std::string("cannot reach the server: ") + e.what() +
                              "; check the network and retry (nothing is lost)");
        }
    }

private:
    static http::client::http_client_config config(const TransportOptions& options) {
        http::client::http_client_config c;
        c.set_timeout(std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count() > 0
                          ? utility::seconds(std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count())
                          : utility::seconds(1));
        c.set_validate_certificates(options.verify_tls);
        return c;
    }
    http::client::http_client client_;
};

}  // namespace

std::unique_ptr<HttpTransport> make_http_transport(const std::string& base_url,
                                                   TransportOptions options) {
    return std::make_unique<CpprestTransport>(base_url, options);
}

}  // namespace tsunagu::client
