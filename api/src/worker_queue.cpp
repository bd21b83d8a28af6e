// WorkerQueue: two bounded FIFO lanes, fixed threads, drain on stop.
#include "api/src/worker_queue.h"

#include <algorithm>

namespace tsunagu::api {

WorkerQueue::WorkerQueue(std::size_t threads, std::size_t capacity)
    : capacity_(capacity), max_bulk_running_(std::max<std::size_t>(threads, 2) - 1) {
    threads = std::max<std::size_t>(threads, 2);
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerQueue::~WorkerQueue() { drain_and_stop(); }

bool WorkerQueue::submit(Job job, Lane lane) {
    {
        std::lock_guard lock(mutex_);
        auto& queue = lane == Lane::interactive ? interactive_ : bulk_;
        if (stopping_ || queue.size() >= capacity_) return false;
        queue.push_back(std::move(job));
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
    return interactive_.size() + bulk_.size();
}

bool WorkerQueue::take(Job& job) {
    if (!interactive_.empty()) {
        job = std::move(interactive_.front());
        interactive_.pop_front();
        return false;
    }
    job = std::move(bulk_.front());
    bulk_.pop_front();
    ++bulk_running_;
    return true;
}

void WorkerQueue::run() {
    while (true) {
        Job job;
        bool bulk = false;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] {
                return !interactive_.empty() || (!bulk_.empty() && bulk_running_ < max_bulk_running_) ||
                       (stopping_ && interactive_.empty() && bulk_.empty());
            });
            if (interactive_.empty() && bulk_.empty()) return;  // stopping and drained
            bulk = take(job);
        }
        try {
            job();
        } catch (...) {
            // A job must answer its own request; never let one take a worker down.
        }
        if (bulk) {
            {
                std::lock_guard lock(mutex_);
                --bulk_running_;
            }
            ready_.notify_all();
        }
    }
}

}  // namespace tsunagu::api
