// WorkerQueue: bounded FIFO, fixed threads, drain on stop.
#include "api/src/worker_queue.h"

namespace tsunagu::api {

WorkerQueue::WorkerQueue(std::size_t threads, std::size_t capacity) : capacity_(capacity) {
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerQueue::~WorkerQueue() { drain_and_stop(); }

bool WorkerQueue::submit(Job job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || jobs_.size() >= capacity_) return false;
        jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
    return true;
}

void WorkerQueue::drain_and_stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

std::size_t WorkerQueue::depth() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

void WorkerQueue::run() {
    while (true) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping and drained
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        try {
            job();
        } catch (...) {
            // A job must answer its own request; never let one take a worker down.
        }
    }
}

}  // namespace tsunagu::api
