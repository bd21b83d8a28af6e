// Group commit (see commit_group.h).
#include "api/src/commit_group.h"

#include <exception>
#include <memory>
#include <typeinfo>

#include "api/src/error_response.h"
#include "api/src/observability.h"

namespace tsunagu::api {

namespace {
// True on a thread while it runs a piece of group work: such work waiting on the group would wait
// for itself (a route in the group must append to the trail in its own transaction).
thread_local bool running_group_work = false;
}  // namespace

HttpResponse CommitGroup::run(Work work, Status* failure) {
    if (running_group_work) {
        log_event("error", "group_work_reentered", {});
        return HttpResponse::error(500, "internal", "unexpected server error; it was logged");
    }
    Item item(std::move(work));
    std::unique_lock lock(mutex_);
    waiting_.push_back(&item);
    // Until this item is answered, and then while only posted work waits with nobody leading.
    while (!item.done || (!leading_ && only_posted_waiting())) {
        if (leading_) {
            item.wake.wait(lock);
            continue;
        }
        lead(lock, &item);
    }
    if (failure != nullptr) *failure = item.failure;
    return std::move(item.answer);
}

void CommitGroup::post(Work work) {
    std::unique_lock lock(mutex_);
    if (leading_) {
        waiting_.push_back(std::make_unique<Item>(std::move(work), /*posted=*/true).release());
        return;
    }
    lock.unlock();
    const HttpResponse answer = run(std::move(work));
    if (answer.status >= 500) log_event("error", "posted_write_failed", {{"status", std::to_string(answer.status)}});
}

bool CommitGroup::only_posted_waiting() const {
    if (waiting_.empty()) return false;
    for (const Item* waiting : waiting_) {
        if (!waiting->posted) return false;
    }
    return true;
}

void CommitGroup::lead(std::unique_lock<std::mutex>& lock, const Item* self) {
    // The next group: everything waiting now, up to the limit.
    leading_ = true;
    std::deque<Item*> group;
    while (!waiting_.empty() && group.size() < max_group_) {
        group.push_back(waiting_.front());
        waiting_.pop_front();
    }
    lock.unlock();
    execute(group);
    lock.lock();
    leading_ = false;
    // Wake exactly the threads that have an answer, and one waiting thread to lead next: each
    // waits on its own item, so the others sleep on.
    for (Item* done : group) {
        if (done->posted) {
            const std::unique_ptr<Item> owned(done);
            if (owned->answer.status >= 500) {
                log_event("error", "posted_write_failed", {{"status", std::to_string(owned->answer.status)}});
            }
            continue;
        }
        done->done = true;
        if (done != self) done->wake.notify_one();
    }
    for (Item* next : waiting_) {
        if (!next->posted) {
            next->wake.notify_one();
            break;
        }
    }
}

Status CommitGroup::write(const std::function<Status(ServerConnection&)>& work) {
    if (running_group_work) {
        log_event("error", "group_work_reentered", {});
        return Status(ErrorCode::internal, "work of the write group asked the group again (a route in the group "
                                           "appends to the trail in its own transaction)");
    }
    Status result = Status::ok();
    Status failure = Status::ok();
    const HttpResponse answer = run(
        [&](ServerConnection& connection) {
            result = work(connection);
            return result ? HttpResponse{} : HttpResponse::error(500, "internal", "rolled back");
        },
        &failure);
    if (result && answer.status >= 500) {
        // A full disk is said as such (the devices keep their work); anything else is retried.
        if (failure.code() == ErrorCode::storage_full) return failure;
        return Status(ErrorCode::unavailable, "the store could not commit; retry shortly");
    }
    return result;
}

namespace {

constexpr const char* kOpen = "SAVEPOINT tsunagu_request";
constexpr const char* kUndo = "ROLLBACK TO tsunagu_request; RELEASE tsunagu_request";
constexpr const char* kKeep = "RELEASE tsunagu_request";

}  // namespace

Status CommitGroup::run_in_savepoint(ServerConnection& connection, Item& item) {
    Store& store = connection.store;
    if (Status opened = store.exec(kOpen); !opened) {
        // Nothing of this piece was written. The group goes on: when the transaction itself is
        // unusable (its connection lost), its commit fails and every piece hears so.
        log_event("error", "request_savepoint_failed", {{"error", opened.to_string()}});
        item.answer = HttpResponse::error(503, "unavailable", "the store could not take this write; retry shortly");
        return Status::ok();
    }
    try {
        struct Running {
            Running() { running_group_work = true; }
            ~Running() { running_group_work = false; }
        } running;
        item.answer = item.work(connection);
    } catch (const std::exception& e) {
        // The type only, as ServerCore logs it: the message may quote what the request carried.
        log_event("error", "handler_threw", {{"exception", typeid(e).name()}});
        item.answer = HttpResponse::error(500, "internal", "unexpected server error; it was logged");
    }
    if (item.answer.status >= 500) return store.exec(kUndo);
    if (Status kept = store.exec(kKeep); !kept) {
        // On PostgreSQL a failed statement aborts the transaction up to the last savepoint: work
        // that met one outside a savepoint of its own (and answered as if only that statement had
        // failed, as on SQLite) cannot keep anything. Back to this piece's savepoint, so the group
        // goes on, and the piece is answered as failed: none of its writes were kept.
        log_event("error", "request_rolled_back",
                  {{"error", kept.to_string()}, {"answered", std::to_string(item.answer.status)}});
        item.answer = HttpResponse::error(500, "internal", "the request's writes were undone; it was logged: retry");
        return store.exec(kUndo);
    }
    return Status::ok();
}

void CommitGroup::execute(std::deque<Item*>& group) {
    auto fail_all = [&](const Status& why) {
        log_event("error", "group_commit_failed", {{"error", why.to_string()}, {"requests", std::to_string(group.size())}});
        // A full disk answers 507 storage_full (said once for the group); anything else, retry.
        const HttpResponse answer =
            why.code() == ErrorCode::storage_full
                ? error_response(why)
                : HttpResponse::error(503, "unavailable", "the store could not commit; retry shortly");
        for (Item* item : group) {
            item->answer = answer;
            item->failure = why;
        }
        std::lock_guard lock(mutex_);
        failing_ = why;
    };
    std::lock_guard writing(writer_);
    Status began = begin();
    if (!began) return fail_all(began);
    ServerConnection& connection = *connection_;
    Store& store = connection.store;
    for (Item* item : group) {
        // A piece's writes that could not be undone must not be committed with the others.
        if (Status sound = run_in_savepoint(connection, *item); !sound) {
            (void)store.rollback();
            return fail_all(sound);
        }
    }
    if (Status committed = store.commit(); !committed) {
        (void)store.rollback();
        return fail_all(committed);
    }
    // What is committed now can never be missing later, unless the database went back in time.
    if (connection.upstream) {
        (void)connection.upstream->note_committed_sequence();
        if (const std::int64_t ahead = connection.upstream->take_clock_let_go_ms(); ahead > 0) {
            const auto now = std::chrono::steady_clock::now();
            if (!clock_warned_ || now - *clock_warned_ >= std::chrono::minutes(10)) {
                clock_warned_ = now;
                log_event("warning", "clock_was_ahead",
                          {{"ahead_ms", std::to_string(ahead)},
                           {"hint", "the stored clock was ahead of this machine's: this machine's clock ran fast and "
                                    "was set back, or another server sharing the database runs fast. Changes are "
                                    "stamped by this machine's clock again; keep every server's clock synchronised "
                                    "(NTP)"}});
            }
        }
    }
    std::lock_guard lock(mutex_);
    ++commits_;
    committed_work_ += group.size();
    failing_.reset();
}

Status CommitGroup::begin() {
    // Twice at most: a connection found lost here has run nothing of the group yet, so the group
    // begins again on a new one (the database restarted, or ended this server's sessions).
    for (int attempt = 0;; ++attempt) {
        if (connection_ && !connection_->store.healthy()) connection_.reset();
        if (!connection_) {
            auto opened = pool_.open_dedicated();
            TSUNAGU_TRY(opened);
            connection_ = std::move(*opened);
        }
        Status began = connection_->store.begin_immediate();
        if (began || connection_->store.healthy() || attempt == 1) return began;
        log_event("warning", "writer_reconnecting", {{"error", began.to_string()}});
    }
}

std::optional<Status> CommitGroup::failing() const {
    std::lock_guard lock(mutex_);
    return failing_;
}

void CommitGroup::close() {
    {
        // Posted work still waiting (none should: its group's leader runs it) is run first.
        std::unique_lock lock(mutex_);
        while (!leading_ && !waiting_.empty()) lead(lock, nullptr);
    }
    std::lock_guard writing(writer_);
    connection_.reset();
}

std::size_t CommitGroup::commits() const {
    std::lock_guard lock(mutex_);
    return commits_;
}

std::size_t CommitGroup::committed_work() const {
    std::lock_guard lock(mutex_);
    return committed_work_;
}

std::size_t CommitGroup::waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

}  // namespace tsunagu::api
