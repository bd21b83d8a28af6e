// A bounded queue of jobs run by a fixed set of threads: where SQLite work happens, so the HTTP
// library's I/O threads never block. When the queue is full, submit() refuses instead of growing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tsunagu::api {

class WorkerQueue {
public:
    using Job = std::function<void()>;

    // Starts `threads` workers; `on_thread_exit` runs on each worker as it stops (closing its
    // thread-local resources). Jobs must not throw; one that does is caught and dropped.
    WorkerQueue(std::size_t threads, std::size_t capacity);
    WorkerQueue(const WorkerQueue&) = delete;
    WorkerQueue& operator=(const WorkerQueue&) = delete;
    ~WorkerQueue();

    // Queues a job; false when the queue is full or stopping (the caller answers 503).
    bool submit(Job job);
    // Stops accepting, runs every job already queued, joins the workers. Idempotent.
    void drain_and_stop();
    std::size_t depth() const;

private:
    void run();
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Job> jobs_;
    std::vector<std::thread> threads_;
    std::size_t capacity_;
    bool stopping_ = false;
};

}  // namespace tsunagu::api
