#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzz build (`make fuzz`), each for a while:
#   scripts/fuzz.sh BUILD_DIR SECONDS [TARGET ...]     (all targets when none is named)
# Each starts from its seeds, the regression corpus tests/fuzz/corpus/<target>/ and what earlier
# runs found (BUILD_DIR/fuzz-corpus/<target>/, which grows). An input that breaks a target is
# written to BUILD_DIR/fuzz-crashes/; the script goes on with the next target, then fails naming
# every target that broke. Once the bug is fixed, copy the input into tests/fuzz/corpus/<target>/:
# `make test` replays it from then on.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS [TARGET ...]" >&2
  exit 2
fi
build=$1
seconds=$2
shift 2
source_dir=$(cd "$(dirname "$0")/.." && pwd)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for program in "$build"/tests/fuzz/*_fuzz; do
    name=$(basename "$program")
    targets+=("${name%_fuzz}")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets in $build/tests/fuzz (configure with the fuzz preset: make fuzz)" >&2
  exit 2
fi

crashes="$build/fuzz-crashes"
mkdir -p "$crashes"
broken=()
for target in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$target"
  seeds="$build/fuzz-seeds/$target"
  log="$build/fuzz-$target.log"
  mkdir -p "$corpus"
  "$build/tests/fuzz/${target}_fuzz_replay" --write-seeds "$seeds" >/dev/null
  inputs=("$corpus" "$seeds")
  if [ -d "$source_dir/tests/fuzz/corpus/$target" ]; then inputs+=("$source_dir/tests/fuzz/corpus/$target"); fi
  echo "== $target: ${seconds} s"
  if "$build/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 \
      -dict="$source_dir/tests/fuzz/json.dict" -artifact_prefix="$crashes/$target-" "${inputs[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   ${runs:-?} inputs, ${coverage:-cov: ?} edges, corpus $(ls "$corpus" | wc -l) files, peak RSS ${rss:-?} MB: every property held"
  else
    broken+=("$target")
    echo "   BROKEN: the input is in $crashes/ (the log: $log)"
    grep -A4 -E "^fuzz target|ERROR: (AddressSanitizer|libFuzzer)|runtime error" "$log" | head -20 || true
  fi
done

if [ ${#broken[@]} -gt 0 ]; then
  echo "fuzz: broken: ${broken[*]}" >&2
  exit 1
fi
echo "fuzz: every target held for ${seconds} s"
