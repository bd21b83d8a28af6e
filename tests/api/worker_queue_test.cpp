// The worker pool's lanes: who may wait, who may run, and what a full lane answers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/src/worker_queue.h"

using tsunagu::api::Lane;
using tsunagu::api::WorkerQueue;

namespace {

// Jobs that hold their worker until released, counting how many of them run at once.
struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool open = false;
    int running = 0, most_at_once = 0, started = 0;

    WorkerQueue::Job job() {
        return [this] {
            std::unique_lock lock(mutex);
            ++started;
            most_at_once = std::max(most_at_once, ++running);
            changed.notify_all();
            changed.wait(lock, [this] { return open; });
            --running;
        };
    }
    // True once `n` jobs have started, within a few seconds.
    bool wait_started(int n) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, std::chrono::seconds(5), [&] { return started >= n; });
    }
    int running_now() {
        std::lock_guard lock(mutex);
        return running;
    }
    void release() {
        {
            std::lock_guard lock(mutex);
            open = true;
        }
        changed.notify_all();
    }
};

// Submits a job that sets `done`, and says whether it ran within a few seconds.
bool runs_soon(WorkerQueue& queue, Lane lane) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    if (!queue.submit([done] { *done = true; }, lane)) return false;
    for (int i = 0; i < 500 && !*done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return *done;
}

}  // namespace

TEST_CASE("password jobs run one at a time and never keep interactive work waiting") {
    WorkerQueue queue(4, 16, 8);
    Gate sign_ins;
    REQUIRE(queue.submit(sign_ins.job(), Lane::password));
    REQUIRE(sign_ins.wait_started(1));
    for (int i = 0; i < 8; ++i) CHECK(queue.submit(sign_ins.job(), Lane::password));

    SECTION("a push submitted behind them runs at once, on one of the workers they leave free") {
        CHECK(runs_soon(queue, Lane::interactive));
        CHECK(queue.depth() == 8);
    }
    SECTION("their lane refuses the one over its own capacity while the others still take work") {
        CHECK_FALSE(queue.submit(sign_ins.job(), Lane::password));
        CHECK(runs_soon(queue, Lane::interactive));
        CHECK(runs_soon(queue, Lane::bulk));
    }
    sign_ins.release();
    queue.drain_and_stop();
    CHECK(sign_ins.started == 9);
    CHECK(sign_ins.most_at_once == 1);
}

TEST_CASE("pull pages may take every worker but one and the last is kept for interactive work") {
    WorkerQueue queue(3, 16);
    Gate pulls;
    for (int i = 0; i < 5; ++i) REQUIRE(queue.submit(pulls.job(), Lane::bulk));
    REQUIRE(pulls.wait_started(2));
    CHECK(runs_soon(queue, Lane::interactive));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(pulls.running_now() == 2);
    pulls.release();
    queue.drain_and_stop();
    CHECK(pulls.most_at_once == 2);
    CHECK(pulls.started == 5);
}

TEST_CASE("pull pages and sign-ins at once still leave a worker for pushes") {
    WorkerQueue queue(3, 16, 8);
    Gate pulls, sign_ins;
    for (int i = 0; i < 2; ++i) REQUIRE(queue.submit(pulls.job(), Lane::bulk));
    REQUIRE(pulls.wait_started(2));
    REQUIRE(queue.submit(sign_ins.job(), Lane::password));
    CHECK(runs_soon(queue, Lane::interactive));
    CHECK(sign_ins.running_now() == 0);  // it would have taken the last worker
    pulls.release();
    CHECK(sign_ins.wait_started(1));
    // A sign-in running, pull pages take no more than leaves one worker for pushes.
    Gate more_pulls;
    for (int i = 0; i < 3; ++i) REQUIRE(queue.submit(more_pulls.job(), Lane::bulk));
    REQUIRE(more_pulls.wait_started(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(more_pulls.running_now() == 1);
    CHECK(runs_soon(queue, Lane::interactive));
    sign_ins.release();
    more_pulls.release();
    queue.drain_and_stop();
    CHECK(more_pulls.started == 3);
}

TEST_CASE("a stopping queue runs what every lane holds and then refuses") {
    std::atomic<int> ran{0};
    {
        WorkerQueue queue(2, 16, 4);
        Gate first;
        REQUIRE(queue.submit(first.job(), Lane::password));
        REQUIRE(first.wait_started(1));
        for (Lane lane : {Lane::interactive, Lane::bulk, Lane::password}) {
            for (int i = 0; i < 3; ++i) REQUIRE(queue.submit([&ran] { ++ran; }, lane));
        }
        std::thread stopper([&] { queue.drain_and_stop(); });
        first.release();
        stopper.join();
        CHECK_FALSE(queue.submit([&ran] { ++ran; }));
    }
    CHECK(ran == 9);
}
