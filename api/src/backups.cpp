// Scheduled backups of the embedded store: naming, rotation and the schedule.
#include "api/src/backups.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "api/src/shell_command.h"
#include "crypto/durable.h"
#include "crypto/store.h"
#include "sync/change.h"

namespace tsunagu::api {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrefix = "tsunagu-";
constexpr const char* kSuffix = ".backup";
constexpr std::chrono::milliseconds kMaxRetryWait{60LL * 60 * 1000};
// A backup named more than this ahead of the clock is set apart (see Backups::list), kept as this.
constexpr std::int64_t kNamedAheadMs = 24LL * 60 * 60 * 1000;
constexpr const char* kNamedAhead = "named_ahead";

bool is_named_ahead(const BackupFile& b) { return b.kept_as.size() == 1 && b.kept_as.front() == kNamedAhead; }

// When the newest backup of the rotation was taken (listed first), 0 when there is none: one
// named ahead of the clock is not it.
std::int64_t newest_taken_at(const Result<std::vector<BackupFile>>& found) {
    if (!found || found->empty() || is_named_ahead(found->front())) return 0;
    return found->front().taken_at_ms;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "tsunagu-20261205-031500-123.backup" for 2026-12-05 03:15:00.123 UTC.
std::string name_for(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char name[64];
    std::snprintf(name, sizeof name, "%s%04d%02d%02d-%02d%02d%02d-%03d%s", kPrefix, utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms % 1000), kSuffix);
    return name;
}

// The moment a name made by name_for stands for; nullopt for any other name.
std::optional<std::int64_t> time_of(const std::string& name) {
    if (name.size() != std::char_traits<char>::length(kPrefix) + 19 + std::char_traits<char>::length(kSuffix)) {
        return std::nullopt;
    }
    std::tm utc{};
    int ms = 0, used = 0;
    if (std::sscanf(name.c_str(), "tsunagu-%4d%2d%2d-%2d%2d%2d-%3d.backup%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                    &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &ms, &used) != 7 ||
        static_cast<std::size_t>(used) != name.size()) {
        return std::nullopt;
    }
    utc.tm_year -= 1900;
    utc.tm_mon -= 1;
    const std::time_t seconds = ::timegm(&utc);
    if (seconds < 0 || name_for(static_cast<std::int64_t>(seconds) * 1000 + ms) != name) return std::nullopt;
    return static_cast<std::int64_t>(seconds) * 1000 + ms;
}

std::string with_reason(const std::string& what, const std::error_code& ec) { return what + ": " + ec.message(); }

constexpr const char* kClaim = ".tsunagu-installation";

constexpr auto kClaimWriteWait = std::chrono::seconds(2);

// The installation that claimed `folder`: its id, "" when unclaimed; an error when it cannot be read.
// A claim found empty is being written in place by another server (claim's fallback below creates
// it, then writes it): it is read again for up to kClaimWriteWait before it counts as damaged.
Result<std::string> claimant(const fs::path& folder) {
    const fs::path path = folder / kClaim;
    const auto give_up = std::chrono::steady_clock::now() + kClaimWriteWait;
    while (true) {
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            if (ec) return Status(ErrorCode::io_error, with_reason("cannot read " + path.string(), ec));
            return std::string();
        }
        std::ifstream in(path);
        if (!in) {
            return Status(ErrorCode::io_error, "cannot read " + path.string() +
                                                   ": make it readable by the server, or remove it if this "
                                                   "server's backups are the only ones in the folder");
        }
        std::string id;
        if (std::getline(in, id) && !id.empty()) return id;
        if (std::chrono::steady_clock::now() >= give_up) {
            return Status(ErrorCode::io_error,
                          path.string() + " names no installation (a server stopped while writing it?): remove it "
                                          "if this server's backups are the only ones in the folder");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// Claims `folder` for `installation` unless another did: the id is written under a name of this
// process's own, made durable, then linked to the claim's name, which fails when it exists (two
// servers starting at once: one claims, the other reads the claim). Answers the claimant.
Result<std::string> claim(const fs::path& folder, const std::string& installation) {
    auto current = claimant(folder);
    if (!current || !current->empty()) return current;
    const std::string draft = (folder / (std::string(kClaim) + ".new." + sync::new_id())).string();
    {
        std::ofstream out(draft, std::ios::trunc);
        out << installation << "\n";
        out.close();
        if (!out) return Status(ErrorCode::io_error, "cannot write " + draft);
    }
    Status durable = make_durable(draft);
    int linked = durable ? ::link(draft.c_str(), (folder / kClaim).c_str()) : -1;
    int link_errno = errno;
    if (durable && linked != 0 && (link_errno == EPERM || link_errno == ENOTSUP || link_errno == EOPNOTSUPP ||
                                   link_errno == ENOSYS)) {
        // A file system without hard links (vfat, exFAT, some network shares): the claim is
        // created exclusively instead, and written in place.
        UniqueFd fd(::open((folder / kClaim).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        link_errno = errno;
        linked = fd ? 0 : -1;
        if (fd) {
            const std::string line = installation + "\n";
            const bool written = ::write(fd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size());
            if (fd.close() != 0 || !written) return Status(ErrorCode::io_error, "cannot write the claim of " + folder.string());
        }
    }
    std::error_code ec;
    fs::remove(draft, ec);
    TSUNAGU_TRY(durable);
    if (linked != 0 && link_errno != EEXIST) {
        return Status(ErrorCode::io_error, "cannot claim the backup folder " + folder.string() + ": " +
                                               std::strerror(link_errno));
    }
    if (linked == 0) TSUNAGU_TRY(make_durable((folder / kClaim).string()));
    return claimant(folder);
}

}  // namespace

Backups::Backups(Metrics& metrics, std::string data_dir, std::string key_file, BackupPolicy policy)
    : metrics_(metrics), data_dir_(std::move(data_dir)), key_file_(std::move(key_file)), policy_(std::move(policy)) {}

Backups::~Backups() { stop(); }

Status Backups::prepare(const std::string& installation) {
    if (!enabled()) return Status::ok();
    if (policy_.keep < 1 || policy_.keep > 10000) {
        return Status(ErrorCode::invalid_argument, "--backup-keep takes how many backups to keep, from 1 to 10000");
    }
    if (policy_.keep_weekly > 10000 || policy_.keep_monthly > 10000) {
        return Status(ErrorCode::invalid_argument,
                      "--backup-keep-weekly and --backup-keep-monthly take how many weeks or months, from 0 to 10000");
    }
    if (policy_.every.count() < 1000) {
        return Status(ErrorCode::invalid_argument, "--backup-every must be at least a second (it takes hours)");
    }
    std::error_code ec;
    fs::create_directories(policy_.folder, ec);
    if (ec || !fs::is_directory(policy_.folder)) {
        return Status(ErrorCode::io_error, "cannot use " + policy_.folder + " as the backup folder" +
                                               (ec ? ": " + ec.message() : ": it is not a folder"));
    }
    ::chmod(policy_.folder.c_str(), 0700);
    // Writable now, rather than at the first backup hours later.
    const std::string probe = (fs::path(policy_.folder) / ".tsunagu-write-probe").string();
    if (!UniqueFd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))) {
        return Status(ErrorCode::io_error, "cannot write in the backup folder " + policy_.folder);
    }
    fs::remove(probe, ec);
    if (!policy_.passphrase_file.empty()) TSUNAGU_TRY(check_passphrase_file(policy_.passphrase_file));
    const std::string claim_path = (fs::path(policy_.folder) / kClaim).string();
    auto owner = claim(policy_.folder, installation);
    TSUNAGU_TRY(owner);
    if (*owner != installation) {
        return Status(ErrorCode::conflict,
                      "the backup folder " + policy_.folder + " holds the backups of another installation (" +
                          *owner + ", this one is " + installation +
                          "): give each server its own --backup-dir, as each removes the backups its rotation does "
                          "not keep. If this data folder was made afresh, and the old installation's backups are "
                          "no longer wanted, remove " + claim_path);
    }
    claim_lock_.reset(::open(claim_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (claim_lock_ && ::flock(claim_lock_.get(), LOCK_EX | LOCK_NB) != 0) {
        const int why = errno;
        claim_lock_.reset();
        if (why == EWOULDBLOCK) {
            return Status(ErrorCode::conflict,
                          "another server of this installation uses the backup folder " + policy_.folder +
                              " (a restored copy started beside it?): the two would rotate each other's backups "
                              "away. Stop it, or give this one its own --backup-dir");
        }
        // (A file system without locks: the claim alone guards the folder.)
    }
    // What a backup killed part way left (back_up_data writes NAME.partial, then renames it), and
    // what a destroy of one killed part way left (NAME.partial.erasing: Store::destroy finishes it).
    constexpr std::string_view kPartial = ".partial";
    constexpr std::string_view kErasing = ".erasing";
    for (const auto& entry : fs::directory_iterator(policy_.folder, ec)) {
        std::string name = entry.path().filename().string();
        std::string path = entry.path().string();
        if (name.ends_with(kErasing)) {
            name.resize(name.size() - kErasing.size());
            path.resize(path.size() - kErasing.size());
        }
        if (name.ends_with(kPartial) && time_of(name.substr(0, name.size() - kPartial.size()))) {
            (void)Store::destroy(path);
        }
    }
    if (ec) return Status(ErrorCode::io_error, with_reason("cannot list the backup folder " + policy_.folder, ec));
    return Status::ok();
}

Status Backups::can_take() const {
    if (policy_.postgres) {
        return Status(ErrorCode::conflict,
                      "this server keeps its data in PostgreSQL: back it up with pg_dump (then, after restoring "
                      "a dump, tsunagu-server restore --postgres)");
    }
    if (!enabled()) {
        return Status(ErrorCode::conflict,
                      "this server takes no backups of its own: start it with --backup-dir DIR (or run "
                      "tsunagu-server backup)");
    }
    return Status::ok();
}

Result<BackupFile> Backups::run() {
    TSUNAGU_TRY(can_take());
    std::lock_guard one_at_a_time(running_);
    return take(data_version());
}

Result<std::optional<BackupFile>> Backups::run_if_changed() {
    TSUNAGU_TRY(can_take());
    std::lock_guard one_at_a_time(running_);
    auto version = data_version();
    std::error_code ec;
    if (version && backed_up_version_ == *version &&
        fs::is_regular_file(fs::path(policy_.folder) / backed_up_name_, ec)) {
        const std::int64_t at = now_ms();
        {
            std::lock_guard lock(state_);
            last_unchanged_ = Unchanged{at, backed_up_name_};
            last_failure_.reset();
        }
        metrics_.add_backup_unchanged(at / 1000);
        log_event("info", "backup_unchanged", {{"file", backed_up_name_}, {"hint", "nothing was written since it"}});
        // No new backup will carry this state off the machine: if its copy failed, try it again.
        if (copies() && !copied_or_waiting(backed_up_name_)) copy_later(backed_up_name_);
        return std::optional<BackupFile>();
    }
    auto taken = take(version);
    TSUNAGU_TRY(taken);
    return std::optional<BackupFile>(std::move(*taken));
}

Result<std::int64_t> Backups::data_version() {
    if (!watcher_) {
        auto opened = open_live_store(data_dir_, key_file_);
        TSUNAGU_TRY(opened);
        watcher_.emplace(std::move(*opened));
    }
    auto version = watcher_->data_version();
    if (!version) watcher_.reset();  // opened anew next time
    return version;
}

Result<BackupFile> Backups::take(const Result<std::int64_t>& version) {
    const auto started = std::chrono::steady_clock::now();
    if (!version) {
        log_event("error", "backup_watch_failed",
                  {{"reason", version.status().message()}, {"hint", "every scheduled backup is taken meanwhile"}});
    }
    // Named after the newest backup, even when the wall clock stepped back: names sort as the
    // backups were taken, so rotation never removes the newest.
    std::int64_t at = now_ms();
    if (const std::int64_t newest = newest_taken_at(list()); newest > 0) at = std::max(at, newest + 1);
    const fs::path folder(policy_.folder);
    while (fs::exists(folder / name_for(at)) || fs::exists(folder / (name_for(at) + ".partial"))) ++at;
    const std::string name = name_for(at);
    auto written = back_up_data(data_dir_, key_file_, (folder / name).string(), policy_.passphrase_file);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!written) {
        {
            std::lock_guard lock(state_);
            last_failure_ = BackupFailure{now_ms(), written.status().message()};
        }
        metrics_.add_backup(false, 0, seconds, 0);
        log_event("error", "backup_failed",
                  {{"file", name}, {"reason", written.status().message()},
                   {"hint", "check the backup folder's disk and permissions; the schedule tries again"}});
        return written.status();
    }
    backed_up_version_ = version ? std::optional<std::int64_t>(*version) : std::nullopt;
    backed_up_name_ = name;
    {
        std::lock_guard lock(state_);
        last_failure_.reset();
        last_unchanged_.reset();
    }
    log_event("info", "backup",
              {{"file", name}, {"bytes", std::to_string(written->bytes)},
               {"ms", std::to_string(static_cast<long long>(seconds * 1000))}});
    BackupFile taken{name, written->bytes, at, {"newest"}};
    for (const BackupFile& b : prune()) {
        if (b.name == name) taken.kept_as = b.kept_as;
    }
    // Counted once the rotation is done: whoever sees the count sees the folder as it stays.
    metrics_.add_backup(true, written->bytes, seconds, at / 1000);
    if (copies()) copy_later(name);
    return taken;
}

Result<std::vector<BackupFile>> Backups::list() const {
    std::vector<BackupFile> found;
    if (!enabled()) return found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(policy_.folder, ec)) {
        const std::string name = entry.path().filename().string();
        const auto at = time_of(name);
        if (!at || !entry.is_regular_file()) continue;
        std::error_code size_ec;
        const std::uintmax_t bytes = entry.file_size(size_ec);
        found.push_back({name, size_ec ? 0 : bytes, *at, {}});
    }
    if (ec) return Status(ErrorCode::io_error, with_reason("cannot list the backup folder " + policy_.folder, ec));
    // A backup named more than a day ahead was taken under a clock set wrong (or put there by
    // hand): it is kept, listed last and left out of the rotation, where it would pass for the
    // newest for years (every later backup named after it, one week's slot for all of them, the
    // age of the newest backup read from it).
    const std::int64_t ahead_after = now_ms() + kNamedAheadMs;
    const auto ahead = std::stable_partition(found.begin(), found.end(),
                                             [&](const BackupFile& b) { return b.taken_at_ms <= ahead_after; });
    const auto newest_first = [](const BackupFile& a, const BackupFile& b) { return a.name > b.name; };
    std::sort(found.begin(), ahead, newest_first);
    std::sort(ahead, found.end(), newest_first);
    std::vector<BackupTime> times;
    times.reserve(found.size());
    for (auto it = found.begin(); it != ahead; ++it) times.push_back({it->name, it->taken_at_ms});
    const std::vector<Retained> kept = retain(times, retention());
    for (std::size_t i = 0; i < kept.size(); ++i) found[i].kept_as = kept[i].kept_as;
    for (auto it = ahead; it != found.end(); ++it) it->kept_as = {kNamedAhead};
    return found;
}

std::vector<BackupFile> Backups::prune() {
    auto found = list();
    if (!found) {
        log_event("error", "backup_rotation_failed", {{"reason", found.status().message()}});
        return {};
    }
    for (const BackupFile& backup : *found) {
        if (is_named_ahead(backup)) {
            log_event("warning", "backup_named_ahead",
                      {{"file", backup.name},
                       {"hint", "its name is over a day ahead of the clock: it was taken under a wrong clock, or put "
                                "there by hand; it is kept out of the rotation, remove it once it is not needed"}});
        }
        if (!backup.kept_as.empty()) continue;
        std::error_code ec;
        fs::remove(fs::path(policy_.folder) / backup.name, ec);
        if (ec) {
            log_event("error", "backup_rotation_failed", {{"file", backup.name}, {"reason", ec.message()}});
        } else {
            log_event("info", "backup_removed",
                      {{"file", backup.name}, {"keep", std::to_string(policy_.keep)},
                       {"keep_weekly", std::to_string(policy_.keep_weekly)},
                       {"keep_monthly", std::to_string(policy_.keep_monthly)}});
        }
    }
    return std::move(*found);
}

std::optional<BackupFailure> Backups::last_failure() const {
    std::lock_guard lock(state_);
    return last_failure_;
}

std::optional<Backups::Unchanged> Backups::last_unchanged() const {
    std::lock_guard lock(state_);
    return last_unchanged_;
}

std::int64_t Backups::next_at_ms() const {
    std::lock_guard lock(state_);
    return next_at_ms_;
}

std::chrono::milliseconds Backups::run_scheduled() {
    const bool ok = run_if_changed().is_ok();
    const std::chrono::milliseconds wait =
        ok ? policy_.every : std::min(std::max(policy_.every / 10, std::chrono::milliseconds(1000)), kMaxRetryWait);
    std::lock_guard lock(state_);
    next_at_ms_ = now_ms() + wait.count();
    return wait;
}

void Backups::start() {
    if (!enabled()) return;
    // Due one period after the newest backup: a restart neither skips one nor takes one early.
    const std::int64_t newest = newest_taken_at(list());
    const std::int64_t now = now_ms();
    const std::int64_t every = policy_.every.count();
    const std::int64_t due = newest == 0 ? now : std::clamp(newest + every, now, now + every);
    {
        std::lock_guard lock(state_);
        next_at_ms_ = due;
    }
    timer_.start(std::chrono::milliseconds(due - now), [this] { return run_scheduled(); });
}

void Backups::stop() {
    timer_.stop();
    {
        std::lock_guard lock(copy_mutex_);
        stopping_ = true;
    }
    copy_wake_.notify_all();
    if (copier_.joinable()) copier_.join();
}

CopyState Backups::copy_state() const {
    std::lock_guard lock(copy_mutex_);
    CopyState state = copied_;
    state.waiting = to_copy_.size();
    return state;
}

bool Backups::copied_or_waiting(const std::string& name) const {
    std::lock_guard lock(copy_mutex_);
    return copied_.last_copied == name || std::find(to_copy_.begin(), to_copy_.end(), name) != to_copy_.end() ||
           copying_ == name;
}

void Backups::copy_later(const std::string& name) {
    {
        std::lock_guard lock(copy_mutex_);
        to_copy_.push_back(name);
        // The oldest beyond `keep` are rotated away before they could be copied anyway.
        while (to_copy_.size() > policy_.keep) {
            log_event("error", "backup_copy_skipped",
                      {{"file", to_copy_.front()}, {"hint", "the copy command is slower than the schedule"}});
            to_copy_.pop_front();
        }
        if (!copier_.joinable() && !stopping_) copier_ = std::thread([this] { copy_loop(); });
    }
    copy_wake_.notify_all();
}

void Backups::copy_loop() {
    std::unique_lock lock(copy_mutex_);
    while (true) {
        copy_wake_.wait(lock, [&] { return stopping_ || !to_copy_.empty(); });
        if (stopping_) return;
        const std::string name = to_copy_.front();
        to_copy_.pop_front();
        copying_ = name;
        lock.unlock();
        const auto started = std::chrono::steady_clock::now();
        const std::string path = (fs::path(policy_.folder) / name).string();
        // Rotated away meanwhile (a slow command, a short schedule): nothing to copy.
        Status copied = fs::exists(path) ? run_shell_command(policy_.copy_command, path, policy_.copy_timeout, stopping_)
                                         : Status(ErrorCode::not_found, "rotated away before it could be copied");
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        metrics_.add_backup_copy(copied.is_ok());
        if (copied) {
            log_event("info", "backup_copied", {{"file", name}, {"ms", std::to_string(ms.count())}});
        } else {
            log_event("error", "backup_copy_failed",
                      {{"file", name}, {"reason", copied.message()},
                       {"hint", "the backup stays in the folder; check the copy command (--backup-copy-command)"}});
        }
        lock.lock();
        copying_.clear();
        if (copied) {
            copied_.last_copied = name;
            copied_.last_copied_at_ms = now_ms();
            copied_.last_failure.reset();
        } else {
            copied_.last_failure = BackupFailure{now_ms(), copied.message()};
        }
    }
}

}  // namespace tsunagu::api
