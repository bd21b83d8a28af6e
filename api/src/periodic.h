// A task run again and again on a thread of its own, until stop(): the compaction's timer and the
// scheduled backups'. The task says how long to wait before its next run, so that a schedule can
// retry a failed run sooner, or follow a clock kept on disk.
//
// Contract: start() once; the first run comes after `first_after`. stop() wakes the thread, waits
// for a run in progress to return, and is idempotent; no run starts after it. Runs never overlap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace tsunagu::api {

class Periodic {
public:
    using Task = std::function<std::chrono::milliseconds()>;  // runs once; answers the wait until the next

    Periodic() = default;
    ~Periodic() { stop(); }
    Periodic(const Periodic&) = delete;
    Periodic& operator=(const Periodic&) = delete;

    void start(std::chrono::milliseconds first_after, Task task);
    void stop();

private:
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace tsunagu::api
