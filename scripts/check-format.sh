#!/usr/bin/env bash
# check-format.sh: fails, naming the files, when clang-format (the style in .clang-format) would change a C++
# source the repository tracks. Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
cd "$root"
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v -e node_modules -e /generated/)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  printf 'check-format: not formatted as .clang-format says (%d of %d files):\n' "${#bad[@]}" "${#files[@]}" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says"
