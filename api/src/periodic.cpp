// A task on a timer thread of its own.
#include <algorithm>

#include "api/src/periodic.h"

namespace tsunagu::api {

void Periodic::start(std::chrono::milliseconds first_after, Task task) {
    std::lock_guard starting(mutex_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this, first_after, task = std::move(task)] {
        std::unique_lock lock(mutex_);
        std::chrono::milliseconds wait = first_after;
        while (!wake_.wait_for(lock, wait, [this] { return stopping_; })) {
            lock.unlock();
            wait = std::max(task(), std::chrono::milliseconds(1));
            lock.lock();
        }
    });
}

void Periodic::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

}  // namespace tsunagu::api
