// Fuzz target device_server: the device library (clients/, what a phone runs) talking to a broken
// or hostile server: any status, any body, or no answer at all, for every request it makes. The
// device is a real one, on a real encrypted replica signed in to the real server (in process), and
// holds a worker's offline work: a client and two visits, never synced. Each input is a script of
// the server's answers; before each, the replica is put back as it was. A new phone signs in
// and syncs; then the device signs in again, syncs, lists its refused changes on the server, and
// syncs again (as the script's first byte says), all answered from the script, then:
//   - nothing threw, and it was over within seconds;
//   - the replica was wiped only if the server said so (401 "wipe");
//   - the replica opens again, and answers its status;
//   - the worker's offline work is all still there, every change in the outbox and every record
//     readable, but what a 200 answer named (a push's outcomes, a page's acknowledgements,
//     records or evictions). The ids are random: the fuzzer names them only by keeping them from
//     the recorded answers. So errors, failures and garbage take nothing away.
//
// The script: a byte of which calls to make (16: a new phone signs in and syncs, on a replica of
// its own; then 1: sign in, 2: sync, 4: list the refused changes, 8: sync again), then answers in the order the device asks, each a byte for the status (one of
// kStatuses, or no answer: a cut network), two for the body's length (little-endian) and the body.
// Once the script runs out, the network is cut.
#include <atomic>
#include <functional>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "clients/device.h"
#include "clients/src/http_transport.h"
#include "crypto/store.h"
#include "domain/care_schema.h"
#include "fuzz/files.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/http_request.h"
#include "support/in_process_server.h"
#include "fuzz/watchdog.h"
#include "fuzz/world.h"
#include "support/temp_dir.h"
#include "sync/engine.h"

namespace tsunagu::fuzz {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kStatuses[] = {200, 200, 200, 200, 400, 401, 403, 404, 409, 413, 423, 429, 500, 502, 503, 507};
constexpr std::uint8_t kNoAnswer = 0xff;  // and any byte past kStatuses
constexpr const char* kPassphrase = "a phone's passphrase";
constexpr const char* kUrl = "http://127.0.0.1:9";  // never dialled: every transport here is in process

// What the device library sends, answered by someone else.
class ForwardingTransport : public client::HttpTransport {
  public:
    using Answer = std::function<Result<client::HttpAnswer>(const std::string& method, const std::string& path,
                                                            const std::string& body,
                                                            const std::map<std::string, std::string>& headers)>;
    explicit ForwardingTransport(Answer answer) : answer_(std::move(answer)) {}
    Result<client::HttpAnswer> send(const std::string& method, const std::string& path, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
        return answer_(method, path, body, headers);
    }

  private:
    Answer answer_;
};

client::DeviceOptions device_options(ForwardingTransport::Answer answer) {
    client::DeviceOptions options;
    options.kdf = KdfParams::fast_for_tests();
    options.retry.max_attempts = 2;
    options.retry.sleep = [](std::chrono::milliseconds) {};
    options.transport = [answer = std::move(answer)](const std::string&) {
        return std::make_unique<ForwardingTransport>(answer);
    };
    return options;
}

// The files of a folder, by name.
using Files = std::map<std::string, std::string>;

Files read_folder(const fs::path& folder) {
    Files files;
    for (const auto& entry : fs::directory_iterator(folder)) files[entry.path().filename().string()] = read_file(entry.path());
    return files;
}

void write_folder(const fs::path& folder, const Files& files) {
    std::error_code ignored;
    fs::remove_all(folder, ignored);
    fs::create_directories(folder);
    for (const auto& [name, bytes] : files) write_file(folder / name, bytes);
}

// The real server in process, the worker's replica signed in to it with offline work, and the
// conversations the seeds are made of; made once per process.
class World {
  public:
    World() {
        const std::string admin = token_of(server("", "POST", "/v1/auth/sign-in",
                                                  json{{"username", "admin"},
                                                       {"password", server_.first_admin_password()},
                                                       {"device_name", "office"}}.dump()));
        const json team = expect_ok(server(admin, "POST", "/v1/admin/teams", R"({"name":"Kita"})"));
        expect_ok(server(admin, "POST", "/v1/admin/users",
                         json{{"username", "kita-visitor"}, {"role", "home_visitor"},
                              {"team_id", team["team"]["id"]}, {"password", "kita-visitor-password-1"}, {"must_change_password", false}}.dump()));

        // The worker's phone: signed in, then offline work, never synced.
        {
            auto device = open_device(pristine_home(), real_server());
            set_up(device.sign_in(kUrl, "kita-visitor", "kita-visitor-password-1"));
            client_ = set_up(device.create("client", {{"pseudonym", "K-001"}, {"area", "Kita"}}));
            records_ = {client_, set_up(device.create("home_visit", home_visit(client_, "draft"))),
                        set_up(device.create("home_visit", home_visit(client_, "submitted")))};
            const client::DeviceStatus status = set_up(device.status());
            user_id_ = status.user_id;
            device_id_ = status.device_id;
        }
        pristine_outbox_ = outbox_ids(pristine_home());
        if (pristine_outbox_.size() != 3) fail("the pristine replica's outbox does not hold its 3 changes", "");
        pristine_ = read_folder(pristine_home());
    }

    const Files& pristine() const { return pristine_; }
    const std::vector<std::string>& records() const { return records_; }
    const std::set<std::string>& pristine_outbox() const { return pristine_outbox_; }

    // The ids of the changes in the outbox of the replica in `home`, read through the engine
    // itself (the device library shows counts only). Empty when it does not open.
    std::set<std::string> outbox_ids(const fs::path& home) const {
        std::set<std::string> ids;
        auto store = Store::open((home / "replica.db").string(), KeySource::passphrase(kPassphrase, KdfParams::fast_for_tests()));
        if (!store) return ids;
        auto engine = sync::Device::open(*store, domain::care_schema(), {.user = user_id_, .replica_id = device_id_});
        if (!engine) return ids;
        auto outbox = engine->outbox();
        if (!outbox) return ids;
        for (const auto& pending : *outbox) ids.insert(pending.change.id);
        return ids;
    }
    fs::path home() const { return dir_.path() / "home"; }
    fs::path new_phone_home() const { return dir_.path() / "new-phone"; }

    // Conversations with the real server, recorded as scripts: its answers, in the order asked.
    std::vector<std::string> seeds() {
        std::vector<std::string> out;
        for (std::uint8_t calls : {2, 1 | 2 | 4 | 8, 4, 16}) {
            write_folder(home(), pristine_);
            std::string script(1, static_cast<char>(calls));
            std::mutex mutex;
            auto recording = [&](const std::string& method, const std::string& path, const std::string& body,
                                 const std::map<std::string, std::string>& headers) -> Result<client::HttpAnswer> {
                auto answer = real_server()(method, path, body, headers);
                std::lock_guard lock(mutex);
                if (answer) script += scripted(answer->status, answer->body);
                return answer;
            };
            auto device = open_device(home(), recording);
            run_calls(device, calls, recording);
            out.push_back(std::move(script));
        }
        // Answers the server gives in other states: a revoked device, an expired session, a full
        // disk, a proxy's error page, a sign-in answer of the wrong shape.
        out.push_back(std::string(1, 2) + scripted(401, R"({"error":"wipe","message":"revoked"})"));
        out.push_back(std::string(1, 2 | 8) + scripted(401, R"({"error":"session_expired","message":"sign in"})") +
                      scripted(507, R"({"error":"storage_full","message":"later"})"));
        out.push_back(std::string(1, 2) + scripted(502, "<html>Bad Gateway</html>") +
                      scripted(200, "<html>a captive portal</html>"));
        out.push_back(std::string(1, 1) + scripted(200, R"({"token":7,"device_id":[],"user":"x"})"));
        out.push_back(std::string(1, 4) +
                      scripted(200, R"({"refused":[{"change_id":"c","record":"r","collection":"client","device":"d",)"
                                    R"("code":"forbidden","status":"open","last_refused_at":1,"this_device":"yes",)"
                                    R"("reason":5,"comment":[]}]})"));
        return out;
    }

    client::Device open_device(const fs::path& home, ForwardingTransport::Answer answer) {
        return set_up(client::Device::open(home.string(), kPassphrase, device_options(std::move(answer))));
    }

    // The calls the script's first byte names, in order; their errors are answers, not failures.
    // A new phone's first sign-in and sync (16) come first, on a replica of their own.
    void run_calls(client::Device& device, std::uint8_t calls, const ForwardingTransport::Answer& answer) {
        if (calls & 16) {
            std::error_code ignored;
            fs::remove_all(new_phone_home(), ignored);
            client::Device phone = open_device(new_phone_home(), answer);
            if (phone.sign_in(kUrl, "kita-visitor", "kita-visitor-password-1")) (void)phone.sync();
        }
        if (calls & 1) (void)device.sign_in(kUrl, "kita-visitor", "kita-visitor-password-1");
        if (calls & 2) (void)device.sync();
        if (calls & 4) (void)device.refused_on_server();
        if (calls & 8) (void)device.sync();
    }

    static std::string scripted(int status, const std::string& body) {
        std::uint8_t code = kNoAnswer;
        for (std::size_t i = 0; i < std::size(kStatuses); ++i) {
            if (kStatuses[i] == status) {
                code = static_cast<std::uint8_t>(i);
                break;
            }
        }
        if (code == kNoAnswer) fail("the real server answered " + std::to_string(status), "");
        const std::size_t length = std::min<std::size_t>(body.size(), 0xffff);
        return std::string{static_cast<char>(code), static_cast<char>(length & 0xff), static_cast<char>(length >> 8)} +
               body.substr(0, length);
    }

  private:
    testing::TempDir dir_{"tsunagu-fuzz", scratch_base()};  // first: removed last
    testing::InProcessServer server_{dir_};
    Files pristine_;
    std::string client_;
    std::vector<std::string> records_;
    std::string user_id_, device_id_;
    std::set<std::string> pristine_outbox_;

    fs::path pristine_home() const { return dir_.path() / "pristine"; }

    ForwardingTransport::Answer real_server() {
        return [this](const std::string& method, const std::string& path, const std::string& body,
                      const std::map<std::string, std::string>& headers) -> Result<client::HttpAnswer> {
            api::HttpRequest request = http_request(method, path, headers, body);
            const api::HttpResponse response = server_.handle(request);
            return client::HttpAnswer{response.status, response.body, {}, std::nullopt};
        };
    }

    api::HttpResponse server(const std::string& token, const std::string& method, const std::string& path,
                             const std::string& body) {
        std::map<std::string, std::string> headers;
        if (!token.empty()) headers["Authorization"] = "Bearer " + token;
        auto answer = real_server()(method, path, body, headers);
        api::HttpResponse r;
        r.status = answer->status;
        r.body = answer->body;
        return r;
    }

    static json expect_ok(const api::HttpResponse& r) {
        if (r.status < 200 || r.status > 299) fail("setting the world up: " + std::to_string(r.status) + " " + r.body, "");
        return json::parse(r.body);
    }
    static std::string token_of(const api::HttpResponse& r) { return expect_ok(r)["token"]; }
};

World& world() {
    static World w;
    return w;
}

// The server's side of one input: its answers in order, and what it said.
class Script {
  public:
    explicit Script(std::string_view answers) : answers_(answers) {}

    Result<client::HttpAnswer> next() {
        std::lock_guard lock(mutex_);  // a sync may keep two pushes in flight
        if (answers_.size() < 3) return cut();
        const auto code = static_cast<std::uint8_t>(answers_[0]);
        const std::size_t length = static_cast<std::uint8_t>(answers_[1]) | (static_cast<std::uint8_t>(answers_[2]) << 8);
        const std::string body(answers_.substr(3, length));
        answers_.remove_prefix(std::min(answers_.size(), 3 + length));
        if (code >= std::size(kStatuses)) return cut();
        const int status = kStatuses[code];
        if (status == 200) answered_200 += body + '\n';  // a separator no id holds
        if (status == 401) {
            const json parsed = json::parse(body, nullptr, false);
            if (parsed.is_object() && parsed.contains("error") && parsed["error"] == "wipe") said_wipe = true;
        }
        return client::HttpAnswer{status, body, {}, std::nullopt};
    }

    // Read once the device is done with the script.
    std::string answered_200;  // every body answered with 200, one after the other
    bool said_wipe = false;

  private:
    std::mutex mutex_;
    std::string_view answers_;

    static Result<client::HttpAnswer> cut() { return Status(ErrorCode::unavailable, "connection reset (scripted)"); }
};

void run(std::string_view input) {
    World& w = world();
    write_folder(w.home(), w.pristine());
    const std::uint8_t calls = input.empty() ? 0 : static_cast<std::uint8_t>(input[0]);
    Script script(input.empty() ? input : input.substr(1));
    auto answer = [&script](const std::string&, const std::string&, const std::string&,
                            const std::map<std::string, std::string>&) { return script.next(); };

    static Watchdog watchdog;
    watchdog.start(input, "took more than 10 s to answer a scripted server");
    bool wiped = false;
    {
        client::Device device = w.open_device(w.home(), answer);
        w.run_calls(device, calls, answer);
    }
    wiped = !fs::exists(w.home() / "replica.db");  // clients/src/device.cpp's name for it
    watchdog.stop();
    if (wiped) {
        check(script.said_wipe, "the replica was wiped though the server never said wipe", input);
        return;
    }

    // The work the device made offline may leave it only when a 200 answer named it: a push's
    // outcomes, a page's acknowledgements, evictions or records. Its ids are random: the fuzzer
    // can only name them by keeping them from the recorded answers.
    auto named = [&](const std::string& id) { return script.answered_200.find(id) != std::string::npos; };
    {
        auto reopened = client::Device::open(w.home().string(), kPassphrase, device_options(answer));
        check(reopened.is_ok(), "the replica does not open again: " + reopened.status().message(), input);
        check(reopened->status().is_ok(), "the replica answers no status", input);
        for (const auto& record : w.records()) {
            check(reopened->get(record).is_ok() || named(record), "record " + record + " made offline is gone", input);
        }
    }
    const auto outbox = w.outbox_ids(w.home());
    for (const auto& change : w.pristine_outbox()) {
        check(outbox.count(change) || named(change),
              "offline change " + change + " left the outbox with no answer naming it", input);
    }
}

std::vector<std::string> seeds() { return world().seeds(); }

}  // namespace

const Target& target() {
    static const Target t{"device_server", run, seeds};
    return t;
}

}  // namespace tsunagu::fuzz
