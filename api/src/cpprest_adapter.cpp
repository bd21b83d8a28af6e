// The cpprestsdk adapter: the only file in api/ that includes cpprestsdk.
//
// Its listener has sharp edges (measured here): no body or header limits, no read timeouts, a
// blocking extract can deadlock the pool, and an exception escaping an unobserved continuation
// kills the process. So: the pool is sized explicitly; the body limit is enforced from
// Content-Length before extracting; bodies are extracted by continuation, never .get() on a pool
// thread; handlers run on our bounded WorkerQueue; every chain ends in a step that observes and
// swallows exceptions; every request gets exactly one reply (an atomic flag guards it).
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>

#include "api/src/http_server.h"
#include "crypto/secret.h"
#include "api/src/worker_queue.h"

namespace tsunagu::api {
namespace {

namespace http = web::http;
using http::experimental::listener::http_listener;
using http::experimental::listener::http_listener_config;

// A request's id, for logs and the X-Request-Id header: 16 hex characters, distinct within the
// process's life and not guessable from one another (a keyed hash, SipHash-2-4, of a counter, under
// a key drawn at start), so they reveal neither how many requests the server answered nor the
// next id. One hash, not a system call to the random source per request.
std::string new_request_id() {
    static const auto key = [] {
        std::array<unsigned char, crypto_shorthash_KEYBYTES> k{};
        randombytes_buf(k.data(), k.size());
        return k;
    }();
    static std::atomic<std::uint64_t> counter{0};
    const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    unsigned char count[sizeof n];
    std::memcpy(count, &n, sizeof n);
    unsigned char id[crypto_shorthash_BYTES];
    crypto_shorthash(id, count, sizeof count, key.data());
    char hex[2 * crypto_shorthash_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    return hex;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

class CpprestServer final : public HttpServer {
public:
    CpprestServer(const ListenerLimits& limits, HttpHandler handler, LaneClassifier lane_of)
        : limits_(limits), handler_(std::move(handler)), lane_of_(std::move(lane_of)) {
        if (limits.worker_threads > 0) {
            workers_ = std::make_unique<WorkerQueue>(limits.worker_threads, limits.queue_capacity,
                                                     limits.password_queue_capacity);
        }
    }

    ~CpprestServer() override { stop(0); }

    Status open(const std::string& url, const std::optional<TlsFiles>& tls) {
        http_listener_config config;
        config.set_timeout(utility::seconds(limits_.request_timeout_seconds));
        if (tls) {
            // The listener calls this once when it opens, so certificate and key are parsed once.
            TlsFiles files = *tls;
            config.set_ssl_context_callback([files](boost::asio::ssl::context& ctx) {
                ctx.set_options(boost::asio::ssl::context::default_workarounds |
                                boost::asio::ssl::context::no_sslv2 |
                                boost::asio::ssl::context::no_sslv3 |
                                boost::asio::ssl::context::no_tlsv1 |
                                boost::asio::ssl::context::no_tlsv1_1 |
                                boost::asio::ssl::context::single_dh_use);
                ctx.use_certificate_chain_file(files.certificate_chain);
                ctx.use_private_key_file(files.private_key, boost::asio::ssl::context::pem);
            });
        }
        try {
            listener_ = std::make_unique<http_listener>(utility::conversions::to_string_t(url), config);
            listener_->support([this](http::http_request request) { accept(std::move(request)); });
            // cpprestsdk answers these two itself unless told otherwise: TRACE by echoing the
            // request, its cookie and token included. Both go to the router (405), like any method.
            for (const auto& method : {http::methods::TRCE, http::methods::OPTIONS}) {
                listener_->support(method, [this](http::http_request request) { accept(std::move(request)); });
            }
            listener_->open().wait();
        } catch (const std::exception& e) {
            listener_.reset();
            return Status(ErrorCode::unavailable,
                          std::string("cannot listen on ") + url + ": " + e.what());
        }
        return Status::ok();
    }

    void stop(int grace_seconds) override {
        std::lock_guard lock(stop_mutex_);
        if (!listener_) return;
        stopping_.store(true);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
        while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        try {
            listener_->close().wait();
        } catch (...) {
            // Closing a listener whose connections already failed is not an error worth a crash.
        }
        if (workers_) workers_->drain_and_stop();
        listener_.reset();
    }

    std::size_t in_flight() const override { return in_flight_.load(); }
    std::size_t queue_depth() const override { return workers_ ? workers_->depth() : 0; }

private:
    struct Exchange {
        http::http_request request;
        std::atomic<bool> answered{false};
        std::string request_id;
    };

    void accept(http::http_request request) {
        auto exchange = std::make_shared<Exchange>();
        exchange->request = std::move(request);
        exchange->request_id = new_request_id();
        ++in_flight_;
        if (stopping_.load()) {
            reply(exchange, HttpResponse::error(503, "shutting_down",
                                                "the server is restarting; retry in a few seconds"));
            return;
        }
        const auto& headers = exchange->request.headers();
        if (headers.has(U("Transfer-Encoding"))) {
            reply(exchange, HttpResponse::error(411, "length_required",
                                                "send the body with a Content-Length header, not "
                                                "chunked"));
            return;
        }
        const auto length = headers.content_length();
        if (length > limits_.max_body_bytes) {
            reply(exchange, HttpResponse::error(
                                413, "body_too_large",
                                "request body of " + std::to_string(length) + " bytes exceeds the " +
                                    std::to_string(limits_.max_body_bytes) +
                                    "-byte limit; send smaller batches"));
            return;
        }
        exchange->request.extract_vector()
            .then([this, exchange](pplx::task<std::vector<unsigned char>> body) {
                HttpRequest plain;
                try {
                    auto bytes = body.get();
                    if (bytes.size() > limits_.max_body_bytes) {
                        reply(exchange, HttpResponse::error(413, "body_too_large",
                                                            "request body exceeds the limit"));
                        return;
                    }
                    plain.body.assign(bytes.begin(), bytes.end());
                    // A sign-in's password: the handler wipes its own copy (parse_secret_body);
                    // this one goes too. (cpprestsdk's socket buffers are beyond our reach.)
                    sodium_memzero(bytes.data(), bytes.size());
                    translate(exchange->request, plain);
                } catch (const std::exception&) {
                    reply(exchange, HttpResponse::error(400, "bad_request",
                                                        "the request could not be read (malformed "
                                                        "URL or body, or connection cut)"));
                    return;
                }
                plain.request_id = exchange->request_id;
                const Lane lane = lane_of_ ? lane_of_(plain) : Lane::interactive;
                auto job = [this, exchange, plain = std::move(plain)]() mutable {
                    HttpResponse response;
                    try {
                        response = handler_(plain);
                    } catch (...) {
                        response = HttpResponse::error(500, "internal",
                                                       "unexpected server error; it was logged");
                    }
                    reply(exchange, response);
                };
                if (!workers_) {
                    job();  // inline mode: trivial handlers only
                    return;
                }
                if (!workers_->submit(std::move(job), lane)) reply(exchange, at_capacity(lane));
            })
            .then([this, exchange](pplx::task<void> done) {
                try {
                    done.get();
                } catch (...) {
                    reply(exchange, HttpResponse::error(500, "internal", "unexpected server error"));
                }
            });
    }

    // The answer to a request its lane has no room for.
    static HttpResponse at_capacity(Lane lane) {
        HttpResponse busy =
            lane == Lane::password
                ? HttpResponse::error(503, "busy",
                                      "too many sign-ins are waiting for their password check; "
                                      "try again in a few seconds")
                : HttpResponse::error(503, "busy", "the server is at capacity; retry after a short wait");
        busy.headers.emplace_back("Retry-After", lane == Lane::password ? "5" : "1");
        return busy;
    }

    static void translate(const http::http_request& in, HttpRequest& out) {
        out.method = utility::conversions::to_utf8string(in.method());
        const auto& uri = in.request_uri();
        out.path = web::uri::decode(uri.path());
        for (const auto& [key, value] : web::uri::split_query(uri.query())) {
            out.query[web::uri::decode(key)] = web::uri::decode(value);
        }
        for (const auto& [name, value] : in.headers()) out.headers[lower(name)] = value;
        out.remote_address = in.remote_address();
    }

    void reply(const std::shared_ptr<Exchange>& exchange, HttpResponse response) {
        if (exchange->answered.exchange(true)) return;  // exactly one reply per request
        http::http_response out(static_cast<http::status_code>(response.status));
        out.headers().add(U("X-Request-Id"), exchange->request_id);
        add_security_headers(response);
        for (const auto& [name, value] : response.headers) out.headers().add(name, value);
        out.set_body(response.body, response.content_type);
        wipe(response.body);  // a sign-in's token: the answer keeps its own copy until it is sent
        try {
            exchange->request.reply(out).then([this](pplx::task<void> sent) {
                try {
                    sent.get();
                } catch (...) {
                    // The client went away; nothing to answer to.
                }
                --in_flight_;
            });
        } catch (...) {
            --in_flight_;
        }
    }

    ListenerLimits limits_;
    HttpHandler handler_;
    LaneClassifier lane_of_;
    std::unique_ptr<WorkerQueue> workers_;
    std::unique_ptr<http_listener> listener_;
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<bool> stopping_{false};
    std::mutex stop_mutex_;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> start_http_server(const std::string& url,
                                                      const std::optional<TlsFiles>& tls,
                                                      const ListenerLimits& limits,
                                                      HttpHandler handler,
                                                      LaneClassifier lane_of) {
    static std::once_flag pool_sized;
    std::call_once(pool_sized, [&] {
        // cpprestsdk's pool only moves bytes; handlers run on our own workers.
        crossplat::threadpool::initialize_with_threads(limits.io_threads);
    });
    if (url.rfind("https://", 0) == 0 && !tls) {
        return Status(ErrorCode::invalid_argument,
                      "https needs --tls-cert and --tls-key (PEM files)");
    }
    auto server = std::make_unique<CpprestServer>(limits, std::move(handler), std::move(lane_of));
    TSUNAGU_TRY(server->open(url, tls));
    return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace tsunagu::api
