// A bounded queue of jobs run by a fixed set of threads: where SQLite work happens, so the HTTP
// library's I/O threads never block. Three lanes (api/http.h): interactive jobs (pushes,
// supervisor screens) go before bulk jobs (pull pages), which may occupy all workers but one, so
// a morning rush of initial syncs never makes a small push wait behind it; password jobs
// (Argon2id, one at a time in the process) run one at a time, ahead of the others when none is
// running, so that a crowd of sign-ins holds one worker, never all of them. When a lane is full,
// submit() refuses instead of growing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "api/http.h"

namespace tsunagu::api {

class WorkerQueue {
public:
    using Job = std::function<void()>;

    // Starts `threads` workers (at least 2, so one is always free for interactive work). The
    // interactive and bulk lanes each hold up to `capacity` waiting jobs, the password lane up to
    // `password_capacity`. Jobs must not throw; one that does is caught and dropped.
    WorkerQueue(std::size_t threads, std::size_t capacity, std::size_t password_capacity = 64);
    WorkerQueue(const WorkerQueue&) = delete;
    WorkerQueue& operator=(const WorkerQueue&) = delete;
    ~WorkerQueue();

    // Queues a job; false when its lane is full or the queue is stopping (the caller answers 503).
    bool submit(Job job, Lane lane = Lane::interactive);
    // Stops accepting, runs every job already queued, joins the workers. Idempotent.
    void drain_and_stop();
    std::size_t depth() const;

private:
    void run();
    bool can_take() const;   // with mutex_ held
    bool password_may_start() const;  // with mutex_ held
    bool bulk_may_start() const;      // with mutex_ held
    Lane take(Job& job);     // with mutex_ held, can_take() true
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Job> interactive_;
    std::deque<Job> bulk_;
    std::deque<Job> password_;
    std::vector<std::thread> threads_;
    std::size_t threads_count_;
    std::size_t capacity_;
    std::size_t password_capacity_;
    std::size_t bulk_running_ = 0;
    bool password_running_ = false;
    bool stopping_ = false;
};

}  // namespace tsunagu::api
