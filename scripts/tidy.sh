#!/usr/bin/env bash
# tidy.sh [FILE…]: clang-tidy (checks in .clang-tidy) over the given sources, or every library and CLI source.
# clang-tidy needs one compile command per source, which a unity build does not give: this configures a
# non-unity tree in build-tidy/ (configure only, plus the generated protobuf header) and uses its database.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
db="$root/build-tidy"
command -v clang-tidy >/dev/null || { echo "tidy.sh: clang-tidy is not installed (apt-get install clang-tidy)" >&2; exit 2; }
cmake -S "$root" -B "$db" -G Ninja -DQUORATE_UNITY_BUILD=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
ninja -C "$db" wire/generated/quorate/wire/v1/messages.pb.h >/dev/null
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(cd "$root" && git ls-files '*/src/*.cc' 'cli/*.cc' 'quorum/daemon/src/*.cc' | sort -u)
  set -- "${files[@]/#/$root/}"
fi
clang-tidy -p "$db" --quiet "$@"
