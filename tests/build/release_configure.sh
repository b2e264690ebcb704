#!/usr/bin/env bash
# A release build (what a packager or node operator types) must not turn compiler warnings into errors, while
# development builds (the default RelWithDebInfo, and scripts/test.sh) keep -Werror. Configures only.
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
werror() {  # BUILD_TYPE -> the QUORATE_WERROR the cache holds
  cmake -S "$src" -B "$tmp/$1" -G Ninja -DCMAKE_BUILD_TYPE="$1" >/dev/null
  sed -n 's/^QUORATE_WERROR:BOOL=//p' "$tmp/$1/CMakeCache.txt"
}
release=$(werror Release)
dev=$(werror RelWithDebInfo)
echo "Release: QUORATE_WERROR=$release; RelWithDebInfo: QUORATE_WERROR=$dev"
grep -q -- '-Werror' "$tmp/Release/build.ninja" && { echo "FAIL: a Release build compiles with -Werror" >&2; exit 1; }
grep -q -- '-Werror' "$tmp/RelWithDebInfo/build.ninja" || { echo "FAIL: a development build lost -Werror" >&2; exit 1; }
[ "$release" = OFF ] && [ "$dev" = ON ] || { echo "FAIL: unexpected defaults" >&2; exit 1; }
echo OK
