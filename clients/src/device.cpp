// The device library: opening the encrypted replica, signing in, offline edits and reads.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <vector>

#include "clients/src/device_impl.h"
#include "crypto/durable.h"
#include "crypto/unique_fd.h"
#include "crypto/secret.h"
#include "domain/care_schema.h"

namespace tsunagu::client {

namespace {

// The shortest passphrase a replica is made or re-keyed with, in characters (UTF-8 code points:
// "見守り記録の合言葉" counts 9). On a lost phone it is all that stands between whoever has the
// file and the records: Argon2id makes each guess cost about 0.2 s of one machine's time, so a
// 4-digit PIN falls in well under an hour. Apps that hold a key in the phone's keystore pass it
// as a raw key instead (crypto/store.h).
constexpr std::size_t kMinPassphraseCharacters = 8;
// What the command line reads of a passphrase typed at its prompt (clients/cli/terminal.h): a
// longer one, set from the environment or by an app, could not be typed there.
constexpr std::size_t kMaxPassphraseBytes = 1024;

Status check_new_passphrase(std::string_view passphrase) {
    if (passphrase.size() > kMaxPassphraseBytes) {
        return Status(ErrorCode::invalid_argument,
                      "a replica's passphrase has at most " + std::to_string(kMaxPassphraseBytes) + " bytes (this one has " +
                          std::to_string(passphrase.size()) + "): a longer one could not be typed at the prompt");
    }
    std::size_t characters = 0;
    for (unsigned char c : passphrase) characters += (c & 0xC0) != 0x80;  // not a continuation byte
    if (characters >= kMinPassphraseCharacters) return Status::ok();
    return Status(ErrorCode::invalid_argument,
                  "a replica's passphrase needs at least " + std::to_string(kMinPassphraseCharacters) +
                      " characters (this one has " + std::to_string(characters) +
                      "): on a lost phone it is all that protects the records; a few words are easy to remember");
}

// The session a sign-in answer gives, into `session`: false when the answer is not one (a member
// missing or of another type; a newer server may add members, which are ignored). Each member's
// type is checked before it is read: get<>() and value() throw on another type, and nothing a
// server or a proxy answers may throw out of the device library. The token is moved into guarded
// memory and wiped from the answer.
bool read_sign_in(sync::Json& b, const std::string& username, Session& session) {
    const auto text = [](const sync::Json& in, const char* key) { return in.contains(key) && in[key].is_string(); };
    if (!b.is_object() || !text(b, "token") || !text(b, "device_id") || !b.contains("user") || !b["user"].is_object()) {
        return false;
    }
    const sync::Json& user = b["user"];
    for (const char* key : {"id", "username", "role", "team_id"}) {
        if (user.contains(key) && !user[key].is_string() && !user[key].is_null()) return false;
    }
    if (!text(user, "id") || b["token"].get_ref<const std::string&>().empty() ||
        b["device_id"].get_ref<const std::string&>().empty()) {
        return false;
    }
    const auto member = [&](const char* key, const std::string& otherwise) {
        return text(user, key) ? user[key].get<std::string>() : otherwise;
    };
    session.token = Secret::take(b["token"].get_ref<std::string&>());
    session.device_id = b["device_id"].get<std::string>();
    session.user_id = user["id"].get<std::string>();
    session.username = member("username", username);
    session.role = member("role", "");
    session.team_id = member("team_id", "");
    return true;
}

bool matches(const sync::Json& value, const sync::Json& wanted) {
    if (value == wanted) return true;
    if (value.is_array() && !wanted.is_array()) {
        for (const auto& item : value) {
            if (item == wanted) return true;
        }
    }
    return false;
}

}  // namespace

Result<bool> file_exists(const std::string& path, const std::string& what) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    if (ec) {
        return Status(ErrorCode::io_error, "cannot look into " + what + " (" + ec.message() +
                                               "); check that the path is right and short enough");
    }
    return exists;
}

// Text sent to the server must be UTF-8 (JSON carries nothing else): refused naming what, never
// showing it (a password, perhaps).
Status check_utf8(std::string_view text, const char* what) {
    if (sync::is_utf8(text)) return Status::ok();
    return Status(ErrorCode::invalid_argument,
                  std::string(what) + " is not valid UTF-8 text; give it as UTF-8 (an app passing modified UTF-8 or "
                                      "another encoding must convert it)");
}

// Wipes a request body's secret members when it goes, whatever the way out (an exception too).
class WipedOnExit {
public:
    WipedOnExit(sync::Json& body, std::initializer_list<const char*> members) : body_(body), members_(members) {}
    WipedOnExit(const WipedOnExit&) = delete;
    WipedOnExit& operator=(const WipedOnExit&) = delete;
    ~WipedOnExit() {
        for (const char* name : members_) {
            auto it = body_.find(name);
            if (it != body_.end() && it->is_string()) wipe(it->get_ref<std::string&>());
        }
    }

private:
    sync::Json& body_;
    std::vector<const char*> members_;
};

bool sends_secrets_safely(const std::string& server_url) {
    return server_url.rfind("https://", 0) == 0 ||
           (server_url.rfind("http://", 0) == 0 && sync::is_loopback_url(server_url));
}

Status Device::Impl::ready_for_records() const {
    if (wiped) {
        return Status(ErrorCode::forbidden,
                      "this device was revoked and its replica erased; close it, then open the home again and "
                      "sign in to start afresh");
    }
    if (!engine) {
        return Status(ErrorCode::invalid_argument,
                      "this replica is not signed in yet; sign in first (tsunagu init --server URL --user NAME)");
    }
    return Status::ok();
}

Status Device::Impl::empty_wal() {
    // A debt paid is recorded first, so that the checkpoint takes that write along too.
    if (session.wal_holds_evicted) TSUNAGU_TRY(save_wal_holds_evicted(*store, false));
    auto checkpoint = store->prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    TSUNAGU_TRY(checkpoint);
    auto row = checkpoint->step();
    TSUNAGU_TRY(row);
    // (busy, frames in the WAL, frames checkpointed); a replica in rollback mode has no WAL.
    const bool held_off = *row && checkpoint->column_int(0) != 0;
    checkpoint->reset();
    if (held_off) TSUNAGU_TRY(save_wal_holds_evicted(*store, true));
    session.wal_holds_evicted = held_off;
    return Status::ok();
}

Status Device::Impl::open_engine() {
    sync::DeviceOptions engine_options;
    engine_options.user = session.user_id;
    engine_options.replica_id = session.device_id;
    engine_options.wall = options.wall;
    engine_options.boot = options.boot;
    auto opened = sync::Device::open(*store, domain::care_schema(), engine_options);
    if (!opened) return opened.status();
    engine = std::make_unique<sync::Device>(std::move(*opened));
    return Status::ok();
}

std::unique_ptr<ServerLink> Device::Impl::make_link(const std::string& url) const {
    auto transport = options.transport ? options.transport(url) : make_http_transport(url);
    return std::make_unique<ServerLink>(std::move(transport), options.retry);
}

Result<ServerLink*> Device::Impl::server() {
    if (!link) {
        // A session stored by an older build may name a server it would now refuse.
        if (!sends_secrets_safely(session.server_url)) {
            return Status(ErrorCode::invalid_argument,
                          "this replica's session is with " + session.server_url +
                              ", over plain HTTP to another machine: its token would cross the network in clear, so "
                              "nothing was sent. Sign in again with the server's https:// address (tsunagu init "
                              "--server https://...); nothing on this device is lost");
        }
        link = make_link(session.server_url);
    }
    return link.get();
}

Result<std::optional<std::size_t>> Device::Impl::wipe_counting_unsent() {
    auto hold = lock.hold_exclusive("erase the revoked replica");
    if (!hold) {
        if (hold.status().code() != ErrorCode::busy) return hold.status();
        // The other would go on recording into erased files, its work vanishing unseen and
        // uncounted; erased later, the replica takes that work along counted (wiped_unsent).
        return Status(ErrorCode::busy,
                      "the server revoked this device, but its replica in " + home +
                          " cannot be erased yet: another process (the app, or another tsunagu command) or another "
                          "handle has it open. Close that, then sync again, which erases it. Nothing was erased yet");
    }
    std::optional<std::size_t> unsent = 0;
    if (engine) {
        // A replica too damaged to count still goes: the count is then unknown, never 0.
        auto outbox = engine->outbox_counts();
        unsent = outbox ? std::optional<std::size_t>(outbox->total()) : std::nullopt;
    }
    engine.reset();
    store->close();
    store.reset();
    session = Session{};
    link.reset();
    wiped = true;
    TSUNAGU_TRY(Store::destroy(db_path));
    return unsent;
}

std::string unsent_changes_text(const std::optional<std::size_t>& unsent) {
    return unsent ? std::to_string(*unsent) + " change(s)" : "an unknown number of changes (they could not be counted)";
}

Status Device::Impl::erase_revoked() {
    auto unsent = wipe_counting_unsent();
    TSUNAGU_TRY(unsent);
    return Status(ErrorCode::forbidden, "this device was revoked by an administrator and its replica erased, with " +
                                            unsent_changes_text(*unsent) +
                                            " the server did not have; ask your supervisor");
}

std::string resync_marker(const std::string& home) { return (std::filesystem::path(home) / kResyncMarker).string(); }

Status mark_resync(const std::string& home) {
    const std::string marker = resync_marker(home);
    if (!UniqueFd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600))) {
        return Status(ErrorCode::io_error, "cannot write " + marker + ": " + std::strerror(errno));
    }
    return make_durable(marker);
}

Status clear_resync_mark(const std::string& home) {
    const std::string marker = resync_marker(home);
    if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
        return Status(ErrorCode::io_error, "cannot remove " + marker + ": " + std::strerror(errno));
    }
    return make_removal_durable(marker);
}

Result<std::unique_ptr<Device::Impl>> open_locked(ReplicaLock lock, const std::string& home,
                                                  std::string_view passphrase, DeviceOptions options) {
    auto impl = std::make_unique<Device::Impl>(std::move(lock));
    impl->home = home;
    impl->db_path = (std::filesystem::path(home) / kDatabaseName).string();
    impl->options = std::move(options);
    StoreOptions store_options;
    store_options.journal_mode = impl->options.journal_mode;
    auto store = Store::open(impl->db_path, KeySource::passphrase(passphrase, impl->options.kdf), store_options);
    if (!store) {
        if (store.status().code() == ErrorCode::wrong_key) {
            return Status(ErrorCode::wrong_key,
                          "wrong passphrase for the replica in " + home + "; nothing was changed, try again");
        }
        if (store.status().code() == ErrorCode::corrupt) {
            // A phone has no backup of its replica, and its files hold the work not yet synced.
            return Status(ErrorCode::corrupt,
                          "the replica in " + home + " is damaged (" + store.status().message() +
                              "). Do not delete its files: the work not yet synced is in them. Salvage it into a "
                              "new home folder (tsunagu --home NEW salvage " + home +
                              "): every commit its files still hold comes along, and what was synced comes "
                              "back from the server at the next sync");
        }
        return store.status();
    }
    impl->store = std::make_unique<Store>(std::move(*store));
    TSUNAGU_TRY(prepare_session_table(*impl->store));
    auto session = load_session(*impl->store);
    if (!session) return session.status();
    impl->session = std::move(*session);
    if (impl->session.wal_holds_evicted) TSUNAGU_TRY(impl->empty_wal());
    if (!impl->session.user_id.empty()) {
        TSUNAGU_TRY(impl->open_engine());
        if (::access(resync_marker(home).c_str(), F_OK) == 0) {
            TSUNAGU_TRY(impl->engine->pull_everything_again());
            TSUNAGU_TRY(clear_resync_mark(home));
        }
    }
    return impl;
}

Result<bool> Device::exists(const std::string& home) {
    if (home.empty()) return Status(ErrorCode::invalid_argument, "the replica's home folder is empty");
    return file_exists((std::filesystem::path(home) / kDatabaseName).string(), "the replica's home folder " + home);
}

Result<Device> Device::open(const std::string& home, std::string_view passphrase, DeviceOptions options) {
    if (home.empty()) return Status(ErrorCode::invalid_argument, "the replica's home folder is empty");
    if (passphrase.empty()) return Status(ErrorCode::invalid_argument, "the passphrase is empty");
    const std::string db_path = (std::filesystem::path(home) / kDatabaseName).string();
    // A replica is made only under a passphrase long enough; one made before keeps opening.
    auto exists = file_exists(db_path, "the replica's home folder " + home);
    TSUNAGU_TRY(exists);
    if (!*exists) TSUNAGU_TRY(check_new_passphrase(passphrase));
    std::error_code ec;
    const bool made = std::filesystem::create_directories(home, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create the folder " + home + ": " + ec.message());
    // Only a folder made here: `--home /tmp` must not take /tmp from everyone else.
    if (made) ::chmod(home.c_str(), 0700);
    // Before the store is opened (which removes what a re-key killed part way left): a passphrase
    // change under way in another process holds the lock exclusive, and this open waits for nothing.
    auto lock = ReplicaLock::share(home);
    TSUNAGU_TRY(lock);
    auto impl = open_locked(std::move(*lock), home, passphrase, std::move(options));
    TSUNAGU_TRY(impl);
    return Device(std::move(*impl));
}

Status Device::change_passphrase(std::string_view current, std::string_view next) {
    Impl& d = *impl_;
    if (d.wiped) return Status(ErrorCode::forbidden, "this device was revoked and its replica erased");
    if (next.empty()) return Status(ErrorCode::invalid_argument, "the new passphrase is empty");
    TSUNAGU_TRY(check_new_passphrase(next));
    auto bytes = [](std::string_view text) {
        return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    };
    if (constant_time_equal(bytes(current), bytes(next))) {
        return Status(ErrorCode::invalid_argument, "the new passphrase is the current one; choose another");
    }
    // A process with the replica open would go on with the file renamed away below, and lose all
    // it commits from then on: none may have it open meanwhile.
    auto hold = d.lock.hold_exclusive("change the passphrase");
    TSUNAGU_TRY(hold);
    // The current passphrase must open the replica itself (a second, read-only look).
    StoreOptions look;
    look.journal_mode = d.options.journal_mode;
    look.create_if_missing = false;
    auto opened = Store::open(d.db_path, KeySource::passphrase(current, d.options.kdf), look);
    if (!opened) {
        if (opened.status().code() == ErrorCode::wrong_key) {
            return Status(ErrorCode::wrong_key, "the current passphrase is wrong; nothing was changed");
        }
        return opened.status();
    }
    opened->close();
    // A new data key, not only the old one wrapped again: whoever kept the old passphrase and a
    // copy of the old key header (a phone backup, a copied replica) reads nothing written from
    // now on. One rename switches key and passphrase: killed at any point, the replica opens,
    // whole, with the current passphrase or with the new one.
    return d.store->rekey(KeySource::passphrase(next, d.options.kdf));
}

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::Device(Device&&) noexcept = default;
Device& Device::operator=(Device&&) noexcept = default;
Device::~Device() = default;

const std::string& Device::home() const { return impl_->home; }
std::string Device::database_path() const { return impl_->db_path; }
const sync::Schema& Device::schema() const { return domain::care_schema(); }

bool Device::wiped() const { return impl_->wiped; }

Status Device::sign_in(const std::string& server_url, const std::string& username, std::string_view password,
                       const std::string& device_name) {
    if (impl_->wiped) return impl_->ready_for_records();
    if (!sends_secrets_safely(server_url)) {
        // The password, then every session token, would cross the network in clear.
        return Status(ErrorCode::invalid_argument,
                      "server URL \"" + server_url +
                          "\": must start with https:// (http:// only for a server on this machine: "
                          "127.0.0.1, [::1] or localhost)");
    }
    std::string url = server_url;
    while (!url.empty() && url.back() == '/') url.pop_back();

    // The sign-in goes over a link of its own, and the session (URL, token, link) changes only
    // once it succeeded: a sign-in refused by another server must leave every later request going
    // to the server this replica is signed in to, with its token never sent anywhere else.
    TSUNAGU_TRY(check_utf8(username, "the username"));
    TSUNAGU_TRY(check_utf8(password, "the password"));
    TSUNAGU_TRY(check_utf8(device_name, "the device name"));
    std::unique_ptr<ServerLink> link = impl_->make_link(url);
    sync::Json body = {{"username", username}, {"password", ""}, {"device_name", device_name}};
    WipedOnExit wiped(body, {"password"});
    body["password"].get_ref<std::string&>().assign(password);  // its one copy, wiped on the way out
    if (impl_->session.device_id.empty()) {
        auto proposed = proposed_device_id(*impl_->store);
        TSUNAGU_TRY(proposed);
        body["device_id"] = std::move(*proposed);
    } else {
        body["device_id"] = impl_->session.device_id;
    }
    auto answer = link->send("POST", "/v1/auth/sign-in", body, "");
    if (!answer) return answer.status();
    if (answer->status != 200) {
        const std::string code = answer->error();
        if (code == "bad_credentials") {
            return Status(ErrorCode::forbidden, "wrong username or password for " + url + "; check both and try again");
        }
        if (answer->status == 401 || answer->status == 403 || answer->status == 423 || answer->status == 429) {
            return Status(ErrorCode::forbidden, "sign-in refused: " + answer->message());
        }
        return refusal(*answer, "sign-in to " + url);
    }
    Session next;
    next.server_url = url;
    next.last_sync_ms = impl_->session.last_sync_ms;
    // Not the sign-in's to forget: evicted records' pages may still wait in the WAL to be emptied.
    next.wal_holds_evicted = impl_->session.wal_holds_evicted;
    if (!read_sign_in(answer->body, username, next)) {
        return Status(ErrorCode::unavailable, "the server's sign-in answer is malformed; is " + url + " a Tsunagu server?");
    }
    if (!impl_->session.user_id.empty() && impl_->session.user_id != next.user_id) {
        return Status(ErrorCode::forbidden,
                      "this replica belongs to " + impl_->session.username +
                          "; use another home folder (--home) for " + username);
    }
    if (impl_->engine && impl_->engine->replica_id() != next.device_id) {
        return Status(ErrorCode::conflict,
                      "the server registered this replica as a new device (was it revoked?); use a new home folder");
    }
    TSUNAGU_TRY(save_session(*impl_->store, next));
    impl_->session = std::move(next);
    impl_->link = std::move(link);
    if (!impl_->engine) TSUNAGU_TRY(impl_->open_engine());
    return Status::ok();
}

Status Device::change_password(std::string_view current, std::string_view replacement) {
    TSUNAGU_TRY(impl_->ready_for_records());
    Impl& d = *impl_;
    auto link = d.server();
    TSUNAGU_TRY(link);
    TSUNAGU_TRY(check_utf8(current, "the current password"));
    TSUNAGU_TRY(check_utf8(replacement, "the new password"));
    sync::Json body = {{"current_password", ""}, {"password", ""}};
    WipedOnExit wiped(body, {"current_password", "password"});
    body["current_password"].get_ref<std::string&>().assign(current);  // their one copies, wiped on the way out
    body["password"].get_ref<std::string&>().assign(replacement);
    bool maybe_done = false;
    auto answer = (*link)->send("POST", "/v1/me/password", body, d.session.token.view(), nullptr, &maybe_done);
    TSUNAGU_TRY(answer);
    if (answer->status == 200) return Status::ok();
    if (is_wipe(*answer)) return d.erase_revoked();
    if (answer->error() == "wrong_password" && maybe_done) {
        // An attempt whose answer was lost may have made the change: the retry's "current"
        // password is then the old one, wrong.
        return Status(ErrorCode::unavailable,
                      "the server did not answer an earlier attempt, and now the current password no longer "
                      "matches: the change was probably made. Sign in with the new password to check; if "
                      "it is refused, the old one still holds");
    }
    if (answer->error() == "wrong_password") {
        return Status(ErrorCode::forbidden, "the current password is wrong; nothing was changed (too many wrong "
                                            "ones lock the account for a while)");
    }
    if (answer->status == 423 || answer->status == 429) {
        return Status(ErrorCode::forbidden, "password change refused: " + answer->message());
    }
    if (answer->status == 400) return Status(ErrorCode::invalid_argument, "password change refused: " + answer->message());
    return refusal(*answer, "the password change");
}

Result<std::string> Device::create(std::string_view collection, const sync::Json& fields) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->create(collection, fields);
}

Status Device::update(std::string_view record, const sync::Json& fields) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->update(record, fields);
}

Status Device::remove(std::string_view record) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->remove(record);
}

Status Device::resolve(std::string_view record, std::string_view field, const sync::Json& value) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->resolve(record, field, value);
}

Status Device::update(std::string_view record, const sync::Json& fields, const sync::AsRead& as_read) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->update(record, fields, as_read);
}

Status Device::remove(std::string_view record, const sync::AsRead& as_read) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->remove(record, as_read);
}

Status Device::resolve(std::string_view record, std::string_view field, const sync::Json& value,
                       const sync::AsRead& as_read) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->resolve(record, field, value, as_read);
}

Status Device::resolve_deletion(std::string_view record, sync::DeletionResolution resolution) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->resolve_deletion(record, resolution);
}

Result<sync::Record> Device::get(std::string_view record) {
    TSUNAGU_TRY(impl_->ready_for_records());
    auto found = impl_->engine->get(record);
    if (!found) return found.status();
    if (!found->has_value()) {
        return Status(ErrorCode::not_found, "no record " + std::string(record) + " on this device");
    }
    return std::move(**found);
}

Result<std::vector<sync::Record>> Device::list(std::string_view collection, const sync::Json& filter) {
    TSUNAGU_TRY(impl_->ready_for_records());
    if (!schema().find(collection)) {
        return Status(ErrorCode::invalid_argument, "unknown collection \"" + std::string(collection) + "\"");
    }
    if (!filter.is_null() && !filter.is_object()) {
        return Status(ErrorCode::invalid_argument, "a filter must be a JSON object of field values");
    }
    auto all = impl_->engine->list(collection);
    if (!all) return all.status();
    if (filter.is_null() || filter.empty()) return all;
    std::vector<sync::Record> kept;
    for (auto& r : *all) {
        bool ok = true;
        for (const auto& [field, wanted] : filter.items()) {
            auto it = r.fields.find(field);
            if (it == r.fields.end() ? !wanted.is_null() : !matches(*it, wanted)) {
                ok = false;
                break;
            }
        }
        if (ok) kept.push_back(std::move(r));
    }
    return kept;
}

Result<std::vector<sync::Conflict>> Device::conflicts() {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->conflicts();
}

Result<std::vector<RefusedChange>> Device::Impl::refused() const {
    auto kept = engine->outbox(sync::PendingState::refused);
    TSUNAGU_TRY(kept);
    std::vector<RefusedChange> out;
    out.reserve(kept->size());
    for (const auto& p : *kept) {
        out.push_back({p.change.id, p.change.record, p.change.collection, p.code, p.reason, p.cause});
    }
    return out;
}

Result<std::vector<RefusedChange>> Device::refused() {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->refused();
}

Result<std::size_t> Device::retry_refused() {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->retry_refused();
}

Result<std::size_t> Device::discard_refused(const std::string& record) {
    TSUNAGU_TRY(impl_->ready_for_records());
    return impl_->engine->discard_refused(record);
}

Result<DeviceStatus> Device::status() {
    if (impl_->wiped) return impl_->ready_for_records();
    DeviceStatus s;
    const Session& session = impl_->session;
    s.signed_in = session.signed_in();
    s.server_url = session.server_url;
    s.username = session.username;
    s.user_id = session.user_id;
    s.role = session.role;
    s.device_id = session.device_id;
    s.last_sync_ms = session.last_sync_ms;
    if (!impl_->engine) return s;
    // Counted, never read: a phone offline for weeks holds more changes than it has memory for.
    auto outbox = impl_->engine->outbox_counts();
    if (!outbox) return outbox.status();
    s.pending = outbox->to_push;
    s.refused = outbox->refused;
    s.held = outbox->evicted;
    auto conflicts = impl_->engine->conflicts();
    if (!conflicts) return conflicts.status();
    s.conflicts = conflicts->size();
    s.clock_offset_ms = impl_->engine->clock_offset_ms();
    auto cursor = impl_->engine->cursor();
    if (!cursor) return cursor.status();
    s.cursor = *cursor;
    return s;
}

}  // namespace tsunagu::client
