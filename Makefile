# Thin wrapper over CMake so that the quick start is two commands: `make serve` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DATA_DIR ?= data
BACKUP_DIR ?= backups
CMAKE_FLAGS ?=

.PHONY: all deps build serve test asan tsan fuzz bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

# The build tree is configured once (CMake reconfigures it itself when a CMakeLists.txt changes).
# Its Makefile, not its CMakeCache.txt, says a configure succeeded: CMake writes the cache even
# when configuring fails, and a run after a failed one must configure again.
$(BUILD_DIR)/Makefile:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/Makefile
	cmake --build $(BUILD_DIR) -j $(JOBS)

LISTEN ?= http://127.0.0.1:8080

# Starts the server on its embedded default: an encrypted store under ./data, loopback only.
# On first run (no store yet) it creates the demo organisation and prints how to sign in; later
# runs serve what is there (the demo's sign-in details stay in $(DATA_DIR)/demo-accounts.txt).
# It backs itself up daily into $(BACKUP_DIR), keeping a week (put it on another disk).
serve: deps $(BUILD_DIR)/Makefile
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tsunagu-server
	@if [ ! -e $(DATA_DIR)/tsunagu.db ] || [ -e $(DATA_DIR)/demo-accounts.txt ]; then demo=--demo; fi; \
	exec $(BUILD_DIR)/api/tsunagu-server --data $(DATA_DIR) --listen $(LISTEN) --backup-dir $(BACKUP_DIR) $$demo

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

# The whole suite under ThreadSanitizer (the server's threads, queues and group commit).
tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) --timeout 900

# Coverage-guided fuzzing (libFuzzer, with ASan and UBSan) of the readers of untrusted input
# (tests/fuzz/): each target for FUZZ_SECONDS, from its seeds and what earlier runs found.
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/install-deps.sh fuzz
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS) --target fuzz_targets
	bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	@for b in $(BUILD_DIR)/bench/*_bench; do echo "== $$b"; $$b; done

format:
	find crypto sync api clients tests bench -name '*.cpp' -o -name '*.h' -o -name '*.c' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
