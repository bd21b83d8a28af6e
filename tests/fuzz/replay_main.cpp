// The fuzz targets without libFuzzer, as a test: each runs its seeds, every file of its regression
// corpus (tests/fuzz/corpus/<target>/: inputs that once broke it), then --rounds inputs made by
// breaking those at random (bytes flipped, cut, repeated, spliced, JSON tokens and odd numbers put
// in), from a fixed --seed so that a failure happens again. Coverage-guided fuzzing is `make fuzz`;
// this keeps what it found fixed, and looks a little further each run of `make test`.
//
// Usage: <target>_fuzz_replay [--rounds N] [--seed K] [--seconds S] [--corpus DIR] [FILE|DIR ...]
//        (--corpus DIR: a folder of inputs that may not exist yet; FILE|DIR must)
//        <target>_fuzz_replay --write-seeds DIR   (the seeds as files, to start libFuzzer from)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "fuzz/files.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/mutate.h"

namespace fs = std::filesystem;
using tsunagu::fuzz::read_file;
using tsunagu::fuzz::target;

namespace {

// The files named, and the files in the folders named, in name order.
std::vector<std::string> read_inputs(const std::vector<std::string>& paths) {
    std::vector<std::string> inputs;
    for (const auto& p : paths) {
        std::vector<fs::path> files;
        if (fs::is_directory(p)) {
            for (const auto& entry : fs::directory_iterator(p)) {
                const bool hidden = entry.path().filename().string().starts_with(".");
                if (entry.is_regular_file() && !hidden) files.push_back(entry.path());
            }
            std::sort(files.begin(), files.end());
        } else if (fs::is_regular_file(p)) {
            files.emplace_back(p);
        } else {
            std::fprintf(stderr, "%s: no file or folder %s\n", target().name, p.c_str());
            std::exit(2);
        }
        for (const auto& f : files) inputs.push_back(read_file(f));
    }
    return inputs;
}

int write_seeds(const fs::path& dir) {
    fs::create_directories(dir);
    int n = 0;
    for (const auto& seed : target().seeds()) {
        char name[32];
        std::snprintf(name, sizeof name, "seed-%02d", n++);
        tsunagu::fuzz::write_file(dir / name, seed);
    }
    std::printf("%s: %d seeds written to %s\n", target().name, n, dir.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    long rounds = 10'000;
    unsigned long seed = 20261205;
    double seconds = 30;
    std::vector<std::string> paths;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--rounds" && has_value) {
            rounds = std::atol(argv[++i]);
        } else if (a == "--seed" && has_value) {
            seed = std::strtoul(argv[++i], nullptr, 10);
        } else if (a == "--seconds" && has_value) {
            seconds = std::atof(argv[++i]);
        } else if (a == "--corpus" && has_value) {
            if (fs::exists(argv[++i])) paths.push_back(argv[i]);
        } else if (a == "--write-seeds" && has_value) {
            return write_seeds(argv[++i]);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr,
                         "usage: %s [--rounds N] [--seed K] [--seconds S] [--corpus DIR] [FILE|DIR ...]\n"
                         "       %s --write-seeds DIR\n",
                         argv[0], argv[0]);
            return 2;
        } else {
            paths.push_back(a);
        }
    }

    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> inputs = target().seeds();
    const std::size_t seed_count = inputs.size();
    for (auto& input : read_inputs(paths)) inputs.push_back(std::move(input));
    for (const auto& input : inputs) {
        tsunagu::fuzz::set_context("a seed or corpus file");
        tsunagu::fuzz::run_target(input);
    }

    tsunagu::fuzz::Mutator mutator(inputs, seed);
    long done = 0;
    for (; done < rounds; ++done) {
        // The clock is read every 256 rounds: a slow build (sanitizers) stops early rather than
        // holding up the suite, and says so.
        if (done % 256 == 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) {
            break;
        }
        const std::string input = mutator.next();
        char context[96];
        std::snprintf(context, sizeof context, "round %ld of --seed %lu", done, seed);
        tsunagu::fuzz::set_context(context);
        tsunagu::fuzz::run_target(input);
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %zu seeds, %zu corpus files, %ld mutated inputs (seed %lu) in %.2f s: every property held%s\n",
                target().name, seed_count, inputs.size() - seed_count, done, seed, took,
                done < rounds ? " (stopped at the time limit)" : "");
    return 0;
}
