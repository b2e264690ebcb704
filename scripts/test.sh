#!/usr/bin/env bash
# Installs what is missing, builds everything (warnings are errors) and runs every test; prints the ctest summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
build=${QUORATE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUORATE_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 600
