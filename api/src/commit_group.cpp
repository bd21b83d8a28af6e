// Group commit (see commit_group.h).
#include "api/src/commit_group.h"

#include <exception>

#include "api/src/observability.h"

namespace tsunagu::api {

HttpResponse CommitGroup::run(Work work) {
    Item item(std::move(work));
    std::unique_lock lock(mutex_);
    waiting_.push_back(&item);
    while (!item.done) {
        if (leading_) {
            item.wake.wait(lock);
            continue;
        }
        // Lead the next group: everything waiting now (this item among it, unless an earlier
        // group was full), up to the limit.
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
        // Wake exactly the threads that have an answer, and the one that leads next: each waits
        // on its own item, so the others sleep on.
        for (Item* done : group) {
            done->done = true;
            if (done != &item) done->wake.notify_one();
        }
        if (!waiting_.empty()) waiting_.front()->wake.notify_one();
    }
    return std::move(item.answer);
}

Status CommitGroup::write(const std::function<Status(ServerConnection&)>& work) {
    Status result = Status::ok();
    const HttpResponse answer = run([&](ServerConnection& connection) {
        result = work(connection);
        return result ? HttpResponse{} : HttpResponse::error(500, "internal", "rolled back");
    });
    if (result && answer.status >= 500) {
        return Status(ErrorCode::unavailable, "the store could not commit; retry shortly");
    }
    return result;
}

void CommitGroup::execute(std::deque<Item*>& group) {
    auto fail_all = [&](const Status& why) {
        log_event("error", "group_commit_failed", {{"error", why.to_string()}, {"requests", std::to_string(group.size())}});
        for (Item* item : group) item->answer = HttpResponse::error(503, "unavailable", "the store could not commit; retry shortly");
    };
    std::lock_guard writing(writer_);
    if (!connection_) {
        auto opened = pool_.open_dedicated();
        if (!opened) return fail_all(opened.status());
        connection_ = std::move(*opened);
    }
    ServerConnection& connection = *connection_;
    Store& store = connection.store;
    if (Status began = store.begin_immediate(); !began) return fail_all(began);
    for (Item* item : group) {
        // Each piece in a savepoint of the group's transaction: a server error undoes its writes only.
        Status kept = with_transaction(store, [&]() -> Status {
            try {
                item->answer = item->work(connection);
            } catch (const std::exception& e) {
                log_event("error", "handler_threw", {{"error", e.what()}});
                item->answer = HttpResponse::error(500, "internal", "unexpected server error; it was logged");
            }
            return item->answer.status >= 500 ? Status(ErrorCode::internal, "rolled back") : Status::ok();
        });
        (void)kept;
    }
    if (Status committed = store.commit(); !committed) {
        (void)store.rollback();
        return fail_all(committed);
    }
    std::lock_guard lock(mutex_);
    ++commits_;
    committed_work_ += group.size();
}

void CommitGroup::close() {
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

}  // namespace tsunagu::api
