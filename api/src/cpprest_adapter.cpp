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

// What a request's continuations use, kept alive by them: cpprestsdk may still run one (a body
// that finished, or failed, as the listener closed) after stop() returned and the server is gone.
// Once `stopped`, such a continuation answers without reaching the handler, whose state (the
// server's core) goes with the server.
struct Shared {
    Shared(const ListenerLimits& l, HttpHandler h, LaneClassifier c) : limits(l), handler(std::move(h)), lane_of(std::move(c)) {
        if (limits.worker_threads > 0) {
            workers = std::make_unique<WorkerQueue>(limits.worker_threads, limits.queue_capacity,
                                                    limits.password_queue_capacity);
        }
    }

    const ListenerLimits limits;
    const HttpHandler handler;
    const LaneClassifier lane_of;
    std::unique_ptr<WorkerQueue> workers;  // drained and stopped by stop(): a job submitted after is refused
    std::atomic<std::size_t> in_flight{0};
    std::atomic<bool> stopping{false};     // new requests are turned away
    std::atomic<bool> stopped{false};      // the handler may be gone
    std::atomic<std::size_t> running{0};   // run()s under way
};

struct Exchange {
    http::http_request request;
    std::atomic<bool> answered{false};
    std::string request_id;
};

// The answer to a request its lane has no room for.
HttpResponse at_capacity(Lane lane) {
    HttpResponse busy =
        lane == Lane::password
            ? HttpResponse::error(503, "busy",
                                  "too many sign-ins are waiting for their password check; "
                                  "try again in a few seconds")
            : HttpResponse::error(503, "busy", "the server is at capacity; retry after a short wait");
    busy.headers.emplace_back("Retry-After", lane == Lane::password ? "5" : "1");
    return busy;
}

HttpResponse shutting_down() {
    return HttpResponse::error(503, "shutting_down", "the server is restarting; retry in a few seconds");
}

void translate(const http::http_request& in, HttpRequest& out) {
    out.method = utility::conversions::to_utf8string(in.method());
    const auto& uri = in.request_uri();
    out.path = web::uri::decode(uri.path());
    for (const auto& [key, value] : web::uri::split_query(uri.query())) {
        out.query[web::uri::decode(key)] = web::uri::decode(value);
    }
    for (const auto& [name, value] : in.headers()) out.headers[lower(name)] = value;
    out.remote_address = in.remote_address();
}

void reply(const std::shared_ptr<Shared>& shared, const std::shared_ptr<Exchange>& exchange, HttpResponse response) {
    if (exchange->answered.exchange(true)) return;  // exactly one reply per request
    http::http_response out(static_cast<http::status_code>(response.status));
    out.headers().add(U("X-Request-Id"), exchange->request_id);
    add_security_headers(response);
    for (const auto& [name, value] : response.headers) out.headers().add(name, value);
    out.set_body(response.body, response.content_type);
    wipe(response.body);  // a sign-in's token: the answer keeps its own copy until it is sent
    try {
        exchange->request.reply(out).then([shared](pplx::task<void> sent) {
            try {
                sent.get();
            } catch (...) {
                // The client went away; nothing to answer to.
            }
            --shared->in_flight;
        });
    } catch (...) {
        --shared->in_flight;
    }
}

// The body read, the request runs on a worker (or is answered at once when it cannot).
void run(const std::shared_ptr<Shared>& shared, const std::shared_ptr<Exchange>& exchange,
         pplx::task<std::vector<unsigned char>> body) {
    // Counted while it runs: stop() waits, once `stopped` is set, for no run to be left, so that
    // none reaches the lane classifier or the handler (both the server's) after stop() returned.
    ++shared->running;
    struct Leaving {
        Shared& shared;
        ~Leaving() { --shared.running; }
    } leaving{*shared};
    HttpRequest plain;
    try {
        // Observed first, whatever follows: a failed task nobody observed aborts the process.
        auto bytes = body.get();
        if (bytes.size() > shared->limits.max_body_bytes) {
            return reply(shared, exchange, HttpResponse::error(413, "body_too_large", "request body exceeds the limit"));
        }
        plain.body.assign(bytes.begin(), bytes.end());
        // A sign-in's password: the handler wipes its own copy (parse_secret_body);
        // this one goes too. (cpprestsdk's socket buffers are beyond our reach.)
        sodium_memzero(bytes.data(), bytes.size());
        translate(exchange->request, plain);
    } catch (const std::exception&) {
        // Cut by the listener closing (the server stopping): the device is told to come back.
        if (shared->stopping.load()) return reply(shared, exchange, shutting_down());
        return reply(shared, exchange,
                     HttpResponse::error(400, "bad_request",
                                         "the request could not be read (malformed URL or body, or connection cut)"));
    }
    if (shared->stopped.load()) return reply(shared, exchange, shutting_down());
    plain.request_id = exchange->request_id;
    const Lane lane = shared->lane_of ? shared->lane_of(plain) : Lane::interactive;
    auto job = [shared, exchange, plain = std::move(plain)]() mutable {
        HttpResponse response;
        try {
            response = shared->handler(plain);
        } catch (...) {
            response = HttpResponse::error(500, "internal", "unexpected server error; it was logged");
        }
        reply(shared, exchange, response);
    };
    if (!shared->workers) return job();  // inline mode: trivial handlers only
    // Refused once the workers were drained (the server stopping): their handler may be gone.
    if (!shared->workers->submit(std::move(job), lane)) {
        reply(shared, exchange, shared->stopping.load() ? shutting_down() : at_capacity(lane));
    }
}

void accept(const std::shared_ptr<Shared>& shared, http::http_request request) {
    auto exchange = std::make_shared<Exchange>();
    exchange->request = std::move(request);
    exchange->request_id = new_request_id();
    ++shared->in_flight;
    if (shared->stopping.load()) return reply(shared, exchange, shutting_down());
    const auto& headers = exchange->request.headers();
    if (headers.has(U("Transfer-Encoding"))) {
        return reply(shared, exchange,
                     HttpResponse::error(411, "length_required",
                                         "send the body with a Content-Length header, not chunked"));
    }
    const auto length = headers.content_length();
    if (length > shared->limits.max_body_bytes) {
        return reply(shared, exchange,
                     HttpResponse::error(413, "body_too_large",
                                         "request body of " + std::to_string(length) + " bytes exceeds the " +
                                             std::to_string(shared->limits.max_body_bytes) +
                                             "-byte limit; send smaller batches"));
    }
    exchange->request.extract_vector()
        .then([shared, exchange](pplx::task<std::vector<unsigned char>> body) { run(shared, exchange, std::move(body)); })
        .then([shared, exchange](pplx::task<void> done) {
            try {
                done.get();
            } catch (...) {
                reply(shared, exchange, HttpResponse::error(500, "internal", "unexpected server error"));
            }
        });
}

class CpprestServer final : public HttpServer {
public:
    CpprestServer(const ListenerLimits& limits, HttpHandler handler, LaneClassifier lane_of)
        : shared_(std::make_shared<Shared>(limits, std::move(handler), std::move(lane_of))) {}

    ~CpprestServer() override { stop(0); }

    Status open(const std::string& url, const std::optional<TlsFiles>& tls) {
        http_listener_config config;
        config.set_timeout(utility::seconds(shared_->limits.request_timeout_seconds));
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
            auto take = [shared = shared_](http::http_request request) { accept(shared, std::move(request)); };
            listener_->support(take);
            // cpprestsdk answers these two itself unless told otherwise: TRACE by echoing the
            // request, its cookie and token included. Both go to the router (405), like any method.
            for (const auto& method : {http::methods::TRCE, http::methods::OPTIONS}) listener_->support(method, take);
            listener_->open().wait();
        } catch (const std::exception& e) {
            listener_.reset();
            return Status(ErrorCode::unavailable,
                          std::string("cannot listen on ") + url + ": " + e.what());
        }
        return Status::ok();
    }

    // Requests in flight get `grace_seconds` to finish; then the listener closes, the workers run
    // what they were given, and the handler is never called again (Shared::stopped).
    void stop(int grace_seconds) override {
        std::lock_guard lock(stop_mutex_);
        if (!listener_) return;
        shared_->stopping.store(true);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
        while (shared_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        try {
            listener_->close().wait();
        } catch (...) {
            // Closing a listener whose connections already failed is not an error worth a crash.
        }
        if (shared_->workers) shared_->workers->drain_and_stop();
        shared_->stopped.store(true);
        // A run() that began before `stopped` may still classify its request or run it inline;
        // one that begins after answers shutting_down without either. (A run is short: it hands
        // the request to the drained workers, which refuse it.)
        while (shared_->running.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        listener_.reset();
    }

    std::size_t in_flight() const override { return shared_->in_flight.load(); }
    std::size_t queue_depth() const override { return shared_->workers ? shared_->workers->depth() : 0; }

private:
    std::shared_ptr<Shared> shared_;
    std::unique_ptr<http_listener> listener_;
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
