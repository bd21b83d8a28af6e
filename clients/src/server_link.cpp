// Requests to the server with retry, backoff and jitter.
#include "clients/src/server_link.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <new>
#include <random>
#include <thread>

#include "crypto/secret.h"

namespace tsunagu::client {

Status refusal(const ServerAnswer& answer, const std::string& what) {
    if (answer.status == 401) {
        return Status(ErrorCode::forbidden,
                      "the server refused this device's session (" + answer.message() +
                          "); sign in again (tsunagu init), nothing on this device is lost");
    }
    if (answer.status == 403 && answer.error() == "password_change_required") {
        return Status(ErrorCode::forbidden, what + " refused: an administrator set your password, and it opens nothing "
                                                   "until you choose your own (tsunagu password, or the app's password "
                                                   "screen); nothing on this device is lost");
    }
    if (answer.status == 403) return Status(ErrorCode::forbidden, what + " refused: " + answer.message());
    const std::string http = " (HTTP " + std::to_string(answer.status) + ")";
    // A server error, a timeout or a throttle passes: the same request may succeed later.
    if (answer.status >= 500 || answer.status == 408 || answer.status == 429) {
        return Status(ErrorCode::unavailable, what + " failed: " + answer.message() + http + "; sync again later");
    }
    // Anything else (400, 404, 413, a redirect, ...) is the same however often it is repeated.
    std::string next = "check the server URL (tsunagu status shows it) and that it is a Tsunagu server this "
                       "app's version can talk to; update the app if it is older than the server";
    if (answer.status == 413) {
        next = "the request is larger than the server accepts; ask its administrator to raise the limit";
    } else if (answer.status >= 300 && answer.status < 400) {
        next = "the server answered with a redirect, which this device does not follow (its session must go "
               "to that server only): set the server URL to the address it should be";
    }
    return Status(ErrorCode::invalid_argument, what + " refused: " + answer.message() + http +
                                                   "; repeating it will not help: " + next);
}

bool is_wipe(const ServerAnswer& answer) { return answer.status == 401 && answer.error() == "wipe"; }

std::string ServerAnswer::error() const {
    if (body.is_object() && body.contains("error") && body["error"].is_string()) return body["error"];
    return {};
}

std::string ServerAnswer::message() const {
    if (body.is_object() && body.contains("message") && body["message"].is_string()) return body["message"];
    return "the server answered HTTP " + std::to_string(status);
}

ServerLink::ServerLink(std::unique_ptr<HttpTransport> transport, RetryPolicy policy)
    : transport_(std::move(transport)), policy_(std::move(policy)) {
    if (!policy_.sleep) policy_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    if (!policy_.random) {
        // Pushes fly beside each other, so two may back off at once: the engine is shared, locked.
        struct Jitter {
            std::mutex mutex;
            std::mt19937_64 engine{std::random_device{}()};
        };
        policy_.random = [jitter = std::make_shared<Jitter>()]() {
            std::lock_guard lock(jitter->mutex);
            return std::uniform_real_distribution<double>(0.0, 1.0)(jitter->engine);
        };
    }
    policy_.max_attempts = std::max(policy_.max_attempts, 1);
}

std::chrono::milliseconds ServerLink::retry_after(const HttpAnswer& answer) const {
    // Seconds only (an HTTP date would need the server's clock, which a phone's may not match),
    // at most the policy's longest wait: a proxy's "come back in an hour" is not obeyed blindly.
    const auto header = answer.headers.find("retry-after");
    if (header == answer.headers.end()) return std::chrono::milliseconds(0);
    std::int64_t seconds = 0;
    const std::string& text = header->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc() || end != text.data() + text.size() || seconds <= 0) return std::chrono::milliseconds(0);
    return std::min<std::chrono::milliseconds>(std::chrono::seconds(std::min<std::int64_t>(seconds, 86400)),
                                               policy_.max_delay);
}

std::chrono::milliseconds ServerLink::delay_before(int attempt) {
    // attempt 1 is the first retry: initial, 2x, 4x, ... capped; then half fixed, half random.
    auto delay = policy_.initial_delay;
    for (int i = 1; i < attempt && delay < policy_.max_delay; ++i) delay *= 2;
    delay = std::min(delay, policy_.max_delay);
    const double r = std::clamp(policy_.random(), 0.0, 1.0);
    return std::chrono::milliseconds(delay.count() / 2 +
                                     static_cast<std::int64_t>(r * static_cast<double>(delay.count()) / 2));
}

Result<HttpAnswer> ServerLink::exchange(const std::string& method, const std::string& path,
                                        const std::string& text, std::string_view token,
                                        std::size_t* retries, bool* maybe_done) {
    std::map<std::string, std::string> headers;
    if (!token.empty()) {
        // Built in place at its final size: no temporary copy of the token, nor a smaller buffer
        // outgrown, is freed unwiped; the one copy is wiped below.
        constexpr std::string_view kScheme = "Bearer ";
        std::string& authorization = headers["Authorization"];
        authorization.reserve(kScheme.size() + token.size());
        authorization.append(kScheme).append(token);
    }
    struct WipeHeaders {
        std::map<std::string, std::string>& headers;
        ~WipeHeaders() {
            for (auto& [name, value] : headers) wipe(value);
        }
    } wipe_headers{headers};
    std::string last_failure;
    std::chrono::milliseconds asked{0};  // the wait the last answer asked for (Retry-After)
    for (int attempt = 0; attempt < policy_.max_attempts; ++attempt) {
        if (attempt > 0) {
            if (retries) ++*retries;
            policy_.sleep(std::max(delay_before(attempt), asked));
        }
        auto answer = transport_->send(method, path, text, headers);
        if (!answer) {
            // Only the network's failures pass; a URL that is not one, a redirect or an answer
            // too large is refused the same way every time.
            if (answer.status().code() != ErrorCode::unavailable) return answer.status();
            last_failure = answer.status().message();
            if (maybe_done) *maybe_done = true;
            continue;
        }
        if (answer->status == 502 || answer->status == 503 || answer->status == 504) {
            last_failure = "the server answered HTTP " + std::to_string(answer->status);
            asked = retry_after(*answer);
            if (maybe_done && answer->status != 503) *maybe_done = true;
            continue;
        }
        return answer;
    }
    return Status(ErrorCode::unavailable,
                  "the server could not be reached after " + std::to_string(policy_.max_attempts) +
                      " attempts (" + last_failure +
                      "); nothing is lost: your changes stay on this device, sync again later");
}

namespace {

// At least the length of value.dump(): a string's byte is at most 6 ("\u00XX"), a number or a
// literal at most 32, plus quotes, colons, commas and brackets.
std::size_t dump_bound(const sync::Json& value) {
    switch (value.type()) {
        case sync::Json::value_t::string: return 6 * value.get_ref<const std::string&>().size() + 2;
        case sync::Json::value_t::object: {
            std::size_t n = 2;
            for (const auto& [key, member] : value.items()) n += 6 * key.size() + 4 + dump_bound(member);
            return n;
        }
        case sync::Json::value_t::array: {
            std::size_t n = 2;
            for (const auto& item : value) n += 1 + dump_bound(item);
            return n;
        }
        default: return 32;
    }
}

// body.dump(), written into one buffer reserved whole beforehand: a body may carry a password,
// and a string that grows frees each smaller buffer it leaves, with the password's first bytes
// in it, where nothing wipes them. The serializer's own buffer (on the stack) is wiped too.
std::string dump_in_place(const sync::Json& body) {
    using Serializer = nlohmann::detail::serializer<sync::Json>;
    // The serializer in storage of our own, destroyed and then wiped however the dump ends.
    struct WipedSerializer {
        alignas(Serializer) unsigned char storage[sizeof(Serializer)];
        Serializer* serializer;
        explicit WipedSerializer(std::string& out)
            : serializer(new (storage) Serializer(nlohmann::detail::output_adapter<char>(out), ' ')) {}
        ~WipedSerializer() {
            serializer->~Serializer();
            sodium_memzero(storage, sizeof storage);
        }
    };
    std::string text;
    text.reserve(dump_bound(body));
    try {
        WipedSerializer wiped(text);
        wiped.serializer->dump(body, false, false, 0);
    } catch (...) {
        wipe(text);
        throw;
    }
    return text;
}

}  // namespace

std::int64_t ServerAnswer::ms_since_headers() const {
    if (!headers_at) return -1;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - *headers_at).count();
}

Result<ServerAnswer> ServerLink::send(const std::string& method, const std::string& path,
                                      const sync::Json& body, std::string_view token,
                                      std::size_t* retries, bool* maybe_done) {
    std::string text = body.is_null() ? std::string() : dump_in_place(body);
    auto answer = exchange(method, path, text, token, retries, maybe_done);
    wipe(text);
    if (!answer) return answer.status();
    ServerAnswer out;
    out.status = answer->status;
    out.headers_at = answer->headers_at;
    out.body = sync::Json::parse(answer->body, nullptr, false);
    wipe(answer->body);
    return out;
}

Result<ServerAnswer> ServerLink::send_text(const std::string& method, const std::string& path,
                                           const std::string& text, std::string_view token,
                                           std::size_t* retries) {
    auto answer = exchange(method, path, text, token, retries);
    if (!answer) return answer.status();
    ServerAnswer out;
    out.status = answer->status;
    out.headers_at = answer->headers_at;
    if (out.status == 200) {
        out.text = std::move(answer->body);
    } else {
        out.body = sync::Json::parse(answer->body, nullptr, false);
    }
    return out;
}

}  // namespace tsunagu::client
