#!/usr/bin/env bash
# tidy.sh [FILE…]: clang-tidy (checks in .clang-tidy) over the given sources, or every library and CLI source.
# clang-tidy needs one compile command per source, which a unity build does not give: this configures a
# non-unity tree in build-tidy/ (configure only, plus the generated protobuf header) and uses its database.
# Known limit (2026-11-28): clang-tidy 14 cannot parse some of GCC 12's libstdc++ headers as our flags include
# them (<atomic> in C++20 mode), so 91 of the sources end in clang-diagnostic-error; the first full run's other
# findings (25) were read and none was a bug (docs/decisions.md).
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
