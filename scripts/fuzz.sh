#!/usr/bin/env bash
# Builds the fuzz targets with clang (-DQUORATE_FUZZ=ON) and runs each for a bounded time on its seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60). Exits non-zero when a target finds a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${QUORATE_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DQUORATE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(sed -n 's/^ *quorate_fuzz(\([a-z_0-9]*\) .*/\1/p' fuzz/CMakeLists.txt)
cmake --build "$build" -j "$(nproc)" --target $targets
findings="$build/findings"
mkdir -p "$findings"
status=0
for t in $targets; do
  corpus=$(mktemp -d)
  [ -d "fuzz/corpus/$t" ] && cp fuzz/corpus/"$t"/* "$corpus"/
  echo "fuzz: $t for ${seconds}s"
  "$build/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -artifact_prefix="$findings/$t-" \
    "$corpus" 2>&1 | { grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs|ERROR|SUMMARY|Test unit written' || true; } || status=1
  rm -rf "$corpus"
done
if [ "$status" != 0 ]; then
  echo "fuzz: findings in $findings (keep the fixed ones as regression inputs in fuzz/corpus/<target>/)" >&2
fi
exit "$status"
