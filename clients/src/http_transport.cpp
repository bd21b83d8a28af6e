// HttpTransport over cpprestsdk's http_client: the only client-side file that includes it.
#include "clients/src/http_transport.h"

#include <cpprest/http_client.h>

#include <stdexcept>

#include "sync/protocol.h"

namespace tsunagu::client {
namespace {

namespace http = web::http;
namespace streams = concurrency::streams;

// Thrown into cpprestsdk by BoundedBody when an answer grows past its limit.
struct AnswerTooLarge : std::length_error {
    AnswerTooLarge() : std::length_error("the answer is larger than the device reads") {}
};

// An answer's body as cpprestsdk writes it while it arrives, refused past `limit` bytes: the
// write fails, cpprestsdk gives up the exchange, and no more than the limit is ever held (its
// default buffer would take whatever the server sends). Write-only.
class BoundedBody final : public streams::details::streambuf_state_manager<std::uint8_t> {
public:
    explicit BoundedBody(std::size_t limit) : streambuf_state_manager(std::ios_base::out), limit_(limit) {}

    std::string text;       // read once the body is complete (content_ready)
    bool exceeded = false;  // a write past the limit was refused

    bool can_seek() const override { return false; }
    bool has_size() const override { return false; }
    size_t buffer_size(std::ios_base::openmode) const override { return 0; }
    void set_buffer_size(size_t, std::ios_base::openmode) override {}
    size_t in_avail() const override { return 0; }
    pos_type getpos(std::ios_base::openmode) const override { return static_cast<pos_type>(traits::eof()); }
    pos_type seekpos(pos_type, std::ios_base::openmode) override { return static_cast<pos_type>(traits::eof()); }
    pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override {
        return static_cast<pos_type>(traits::eof());
    }
    bool acquire(std::uint8_t*& ptr, size_t& count) override {
        ptr = nullptr;
        count = 0;
        return false;
    }
    void release(std::uint8_t*, size_t) override {}

    // Closing completes at once. The base class's close waits, on cpprestsdk's pool thread that
    // saw the refused write, for a continuation it schedules on that same pool: with no other pool
    // thread free (a device given one, or a process at exit) the exchange, and the device, hung.
    pplx::task<void> close(std::ios_base::openmode mode = std::ios_base::in | std::ios_base::out) override {
        if (mode & std::ios_base::out) m_stream_can_write = false;
        return pplx::task_from_result();
    }
    pplx::task<void> close(std::ios_base::openmode mode, std::exception_ptr failure) override {
        if (m_currentException == nullptr) m_currentException = failure;
        return close(mode);
    }

protected:
    pplx::task<int_type> _putc(std::uint8_t c) override {
        return _putn(&c, 1).then([c](size_t) { return static_cast<int_type>(c); });
    }
    pplx::task<size_t> _putn(const std::uint8_t* data, size_t count) override {
        if (count > limit_ - text.size()) {
            exceeded = true;
            return pplx::task_from_exception<size_t>(std::make_exception_ptr(AnswerTooLarge()));
        }
        text.append(reinterpret_cast<const char*>(data), count);
        return pplx::task_from_result(count);
    }
    pplx::task<int_type> _bumpc() override { return pplx::task_from_result(traits::eof()); }
    int_type _sbumpc() override { return traits::eof(); }
    pplx::task<int_type> _getc() override { return pplx::task_from_result(traits::eof()); }
    int_type _sgetc() override { return traits::eof(); }
    pplx::task<int_type> _nextc() override { return pplx::task_from_result(traits::eof()); }
    pplx::task<int_type> _ungetc() override { return pplx::task_from_result(traits::eof()); }
    pplx::task<size_t> _getn(std::uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
    size_t _scopy(std::uint8_t*, size_t) override { return 0; }
    pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
    std::uint8_t* _alloc(size_t) override { return nullptr; }
    void _commit(size_t) override {}

private:
    std::size_t limit_;
};

Status too_large(std::size_t limit) {
    return Status(ErrorCode::invalid_argument,
                  "the server's answer is larger than this device reads (" + std::to_string(limit >> 20) +
                      " MiB); it was not read. Is the server URL right? If it is, report this to its administrator");
}

class CpprestTransport final : public HttpTransport {
public:
    CpprestTransport(const std::string& base_url, TransportOptions options)
        : client_(utility::conversions::to_string_t(base_url), config(options)), options_(options) {}

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
            auto sink = std::make_shared<BoundedBody>(options_.max_answer_bytes);
            request.set_response_stream(streams::ostream(streams::streambuf<std::uint8_t>(sink)));
            pplx::cancellation_token_source cancel;
            http::http_response response = client_.request(request, cancel.get_token()).get();
            const auto headers_at = std::chrono::steady_clock::now();
            // An answer refused before its body is read: the exchange is ended (its connection
            // closed) and waited for, so that nothing reads on in the background after send().
            auto refuse = [&](Status why) {
                cancel.cancel();
                try {
                    response.content_ready().wait();
                } catch (const std::exception&) {
                }
                return why;
            };
            HttpAnswer answer;
            answer.status = response.status_code();
            answer.headers_at = headers_at;
            for (const auto& [name, value] : response.headers()) {
                std::string lower = name;
                for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                answer.headers[lower] = value;
            }
            if (answer.status >= 300 && answer.status < 400) {
                const auto location = answer.headers.find("location");
                return refuse(Status(ErrorCode::invalid_argument,
                              "the server answered HTTP " + std::to_string(answer.status) + ", a redirect" +
                                  (location == answer.headers.end() ? "" : " to " + location->second) +
                                  ", which this device does not follow: its session must go to the server it "
                                  "signed in to only. Set the server URL to the address it should be"));
            }
            if (response.headers().has(http::header_names::content_length) &&
                response.headers().content_length() > options_.max_answer_bytes) {
                return refuse(too_large(options_.max_answer_bytes));
            }
            try {
                response.content_ready().get();
            } catch (const std::exception&) {
                if (sink->exceeded) return too_large(options_.max_answer_bytes);
                throw;
            }
            answer.body = std::move(sink->text);
            return answer;
        } catch (const std::exception& e) {
            return Status(ErrorCode::unavailable,
                          "cannot reach the server: " + sync::exception_text(e) +
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
        // cpprestsdk 2.10.18 follows redirects only in its WinHTTP backend (not the Asio one used
        // here), up to max_redirects; zero says "never" to any backend. A 3xx is refused above.
        c.set_max_redirects(0);
        return c;
    }
    http::client::http_client client_;
    TransportOptions options_;
};

// The transport to a base URL the HTTP library refused: every request is refused, saying why.
class UnusableTransport final : public HttpTransport {
public:
    explicit UnusableTransport(std::string why) : why_(std::move(why)) {}
    Result<HttpAnswer> send(const std::string&, const std::string&, const std::string&,
                            const std::map<std::string, std::string>&) override {
        return Status(ErrorCode::invalid_argument, why_);
    }

private:
    std::string why_;
};

}  // namespace

std::unique_ptr<HttpTransport> make_http_transport(const std::string& base_url,
                                                   TransportOptions options) {
    try {
        return std::make_unique<CpprestTransport>(base_url, options);
    } catch (const std::exception&) {
        return std::make_unique<UnusableTransport>(
            "the server URL \"" + base_url +
            "\" is not a valid URL; write it as https://host or https://host:port, without spaces");
    }
}

}  // namespace tsunagu::client
