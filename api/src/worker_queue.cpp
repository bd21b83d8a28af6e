// WorkerQueue: three bounded FIFO lanes, fixed threads, drain on stop.
#include "api/src/worker_queue.h"

#include <algorithm>

namespace tsunagu::api {

WorkerQueue::WorkerQueue(std::size_t threads, std::size_t capacity, std::size_t password_capacity)
    : threads_count_(std::max<std::size_t>(threads, 2)), capacity_(capacity), password_capacity_(password_capacity) {
    threads_.reserve(threads_count_);
    for (std::size_t i = 0; i < threads_count_; ++i) threads_.emplace_back([this] { run(); });
}

WorkerQueue::~WorkerQueue() { drain_and_stop(); }

bool WorkerQueue::submit(Job job, Lane lane) {
    {
        std::lock_guard lock(mutex_);
        auto& queue = lane == Lane::bulk ? bulk_ : lane == Lane::password ? password_ : interactive_;
        const std::size_t limit = lane == Lane::password ? password_capacity_ : capacity_;
        if (stopping_ || queue.size() >= limit) return false;
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
    return interactive_.size() + bulk_.size() + password_.size();
}

// Bulk and password jobs together leave one worker free for interactive work: a morning rush of
// pulls and a crowd of sign-ins at once never make a push wait for either.
bool WorkerQueue::password_may_start() const {
    return !password_.empty() && !password_running_ && bulk_running_ + 1 < threads_count_;
}
bool WorkerQueue::bulk_may_start() const {
    return !bulk_.empty() && bulk_running_ + (password_running_ ? 1 : 0) + 1 < threads_count_;
}

bool WorkerQueue::can_take() const { return password_may_start() || !interactive_.empty() || bulk_may_start(); }

Lane WorkerQueue::take(Job& job) {
    // A password job first when none runs: it has waited behind the others' turn already, and
    // only one ever runs, so it cannot crowd the interactive work out.
    auto pop = [&job](std::deque<Job>& queue) {
        job = std::move(queue.front());
        queue.pop_front();
    };
    if (password_may_start()) {
        pop(password_);
        password_running_ = true;
        return Lane::password;
    }
    if (!interactive_.empty()) {
        pop(interactive_);
        return Lane::interactive;
    }
    pop(bulk_);
    ++bulk_running_;
    return Lane::bulk;
}

void WorkerQueue::run() {
    while (true) {
        Job job;
        Lane lane = Lane::interactive;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] {
                return can_take() || (stopping_ && interactive_.empty() && bulk_.empty() && password_.empty());
            });
            if (!can_take()) return;  // stopping and drained
            lane = take(job);
        }
        try {
            job();
        } catch (...) {
            // A job must answer its own request; never let one take a worker down.
        }
        if (lane != Lane::interactive) {
            {
                std::lock_guard lock(mutex_);
                if (lane == Lane::bulk) --bulk_running_;
                else password_running_ = false;
            }
            ready_.notify_all();
        }
    }
}

}  // namespace tsunagu::api
