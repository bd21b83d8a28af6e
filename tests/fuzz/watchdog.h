// A fuzz target's deadline for one input: fail() with the input when a run takes longer than
// `patience`, so that a hang is reported with what caused it by the replay too, rather than left
// to ctest's timeout (libFuzzer's own -timeout names no property). One watchdog thread a target.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "fuzz/fuzz_target.h"

namespace tsunagu::fuzz {

class Watchdog {
  public:
    explicit Watchdog(std::chrono::milliseconds patience = std::chrono::seconds(10))
        : patience_(patience), thread_([this] { watch(); }) {}
    ~Watchdog() {
        {
            std::lock_guard lock(mutex_);
            quit_ = true;
        }
        woken_.notify_one();
        thread_.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    // A run on `input` starts: fail(what, input) unless stop() comes within the patience.
    void start(std::string_view input, std::string what) {
        std::lock_guard lock(mutex_);
        input_.assign(input);
        what_ = std::move(what);
        deadline_ = std::chrono::steady_clock::now() + patience_;
        running_ = true;
    }
    void stop() {
        std::lock_guard lock(mutex_);
        running_ = false;
    }

  private:
    const std::chrono::milliseconds patience_;
    std::mutex mutex_;
    std::condition_variable woken_;
    std::string input_, what_;
    std::chrono::steady_clock::time_point deadline_;
    bool running_ = false, quit_ = false;
    std::thread thread_;  // last: starts once the rest is made

    void watch() {
        std::unique_lock lock(mutex_);
        while (!quit_) {
            woken_.wait_for(lock, std::chrono::milliseconds(100));
            if (running_ && std::chrono::steady_clock::now() > deadline_) fail(what_, input_);
        }
    }
};

}  // namespace tsunagu::fuzz
