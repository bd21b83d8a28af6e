// Group commit for writing requests. A commit that reaches the disk (fsync) costs milliseconds,
// while the work of a push costs tens of microseconds: one commit per request would cap the
// server at a few hundred writes per second, whatever the CPU. So writing requests that arrive
// while a group is committing wait; the next of them to lead runs all waiting work in one
// transaction, each piece under its own savepoint, and commits once for all.
//
// Contract: run() answers only after the work's writes are durable (the group committed), or,
// when the group's commit failed, with an error and none of its writes kept. A piece of work
// whose answer is a server error (5xx), or that throws, has its own writes rolled back; the
// others in its group are unaffected. So does a piece whose writes cannot be kept though it
// answered below 500 (on PostgreSQL, a statement that failed outside a savepoint of the piece's
// own aborts everything since the piece's savepoint): it is answered 500 instead. Work runs on whichever thread leads the group, one piece
// after another, on the group's own connection; it must not keep references to the connection
// after it returns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "api/http.h"
#include "api/src/connection_pool.h"

namespace tsunagu::api {

class CommitGroup {
public:
    using Work = std::function<HttpResponse(ServerConnection&)>;

    // At most `max_group` pieces of work share one commit.
    explicit CommitGroup(ConnectionPool& pool, std::size_t max_group = 64) : pool_(pool), max_group_(max_group) {}

    // `failure`, when given, is set to why the group's commit failed (ok when it did not fail).
    HttpResponse run(Work work, Status* failure = nullptr);
    // run() for work that answers a Status: a failure undoes the work's writes and is returned;
    // ok means its writes are durable.
    Status write(const std::function<Status(ServerConnection&)>& work);
    // Work whose caller need not wait for the disk (bookkeeping that may be lost in a crash, such
    // as a device's pull progress, which compaction only waits longer for): while a group is being
    // led it joins the next one and post() returns at once; otherwise it runs now as a group of
    // its own. Posted work is always run: the thread that leads a group leads another before it
    // returns when only posted work waits. A failure undoes its writes and is logged.
    void post(Work work);

    // Closes the group's connection (at shutdown, once no request runs). A later run() opens
    // another.
    void close();

    // Why the last group's commit failed, while no group has committed since (nullopt otherwise):
    // what /healthz reports when every write fails (a full disk, a data key rotated under it).
    std::optional<Status> failing() const;

    // Commits so far, and pieces of work committed: their ratio is the mean group size.
    std::size_t commits() const;
    std::size_t committed_work() const;
    // Pieces of work waiting for the next group (the one being led not counted).
    std::size_t waiting() const;

private:
    struct Item {
        explicit Item(Work w, bool posted_ = false) : work(std::move(w)), posted(posted_) {}
        Work work;
        const bool posted;  // owned by the group (post()): no thread waits for it
        HttpResponse answer;
        Status failure = Status::ok();  // why the group's commit failed, if it did
        bool done = false;
        std::condition_variable wake;  // its thread waits here, with mutex_, until done or asked to lead
    };
    // With mutex_ held (by `lock`): runs the next group and answers it. `self` is the caller's
    // own item, answered without a wake-up.
    void lead(std::unique_lock<std::mutex>& lock, const Item* self);
    // With mutex_ held: work waits that only posted items hold, so no waiting thread would lead it.
    bool only_posted_waiting() const;
    void execute(std::deque<Item*>& group);
    // With writer_ held: opens the group's transaction on the group's connection, opening that
    // first when there is none or it was lost (so one lost connection fails no group for good).
    Status begin();
    // Runs one piece under a savepoint of the group's open transaction and always sets its
    // answer. Writes are kept only when the answer is below 500 and the savepoint is released;
    // otherwise the transaction is rolled back to the savepoint (so the rest of the group is
    // unaffected) and the answer is a server error. Fails only when that rollback failed: the
    // group's transaction may then hold writes of a failed piece, and must not commit.
    Status run_in_savepoint(ServerConnection& connection, Item& item);

    ConnectionPool& pool_;
    std::mutex writer_;  // held while a group's transaction is open, and by close()
    // The group's own connection, opened on first use and kept: as the only writer's, its page
    // cache stays valid from one group to the next (another connection's commit would make
    // SQLite drop it, and every page read again is a page decrypted again). Replaced when lost.
    std::unique_ptr<ServerConnection> connection_;
    // When "clock_was_ahead" was last logged (with writer_): once every ten minutes at most, for a
    // server sharing its database with one whose clock runs fast meets it at every commit.
    std::optional<std::chrono::steady_clock::time_point> clock_warned_;
    const std::size_t max_group_;
    mutable std::mutex mutex_;
    std::deque<Item*> waiting_;
    bool leading_ = false;
    std::size_t commits_ = 0;
    std::size_t committed_work_ = 0;
    std::optional<Status> failing_;  // with mutex_
};

}  // namespace tsunagu::api
