// A bounded queue of jobs run by a fixed set of threads: where SQLite work happens, so the HTTP
// library's I/O threads never block. Two lanes: interactive jobs (pushes, sign-ins, supervisor
// screens) always go first, and bulk jobs (pull pages) may occupy all workers but one, so a
// morning rush of initial syncs never makes a small push wait behind it. When a lane is full,
// submit() refuses instead of growing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tsunagu::api {

enum class Lane { interactive, bulk };

class WorkerQueue {
public:
    using Job = std::function<void()>;

    // Starts `threads` workers (at least 2, so one is always free for interactive work).
    // Jobs must not throw; one that does is caught and dropped.
    WorkerQueue(std::size_t threads, std::size_t capacity);
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
    bool take(Job& job);  // with mutex_ held
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Job> interactive_;
    std::deque<Job> bulk_;
    std::vector<std::thread> threads_;
    std::size_t capacity_;
    std::size_t max_bulk_running_;
    std::size_t bulk_running_ = 0;
    bool stopping_ = false;
};

}  // namespace tsunagu::api
