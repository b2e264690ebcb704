#!/usr/bin/env bash
# scripts/builder-image.sh makes the same image twice: run offline (--from-host, busybox-static) two times, with
# different umasks, temporary directories and working directories, the two layouts are byte for byte the same
# and the printed manifest digests agree. (mmdebstrap's path needs a download; its reproducibility is
# mmdebstrap's and normalize's, measured in docs/image-store.md.)
# Usage: builder_image_twice.sh SOURCE_DIR QUORATE_BIN
set -euo pipefail
src=$1 quorate=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make() {  # name umask
  mkdir -p "$work/tmp-$1" "$work/cwd-$1"
  (cd "$work/cwd-$1" && umask "$2" && TMPDIR="$work/tmp-$1" \
    "$src/scripts/builder-image.sh" --from-host --include busybox-static --quorate "$quorate" "$work/$1" \
    2> "$work/$1.err" | tail -1)
}
a=$(make one 022) || { cat "$work/one.err" >&2; exit 1; }
b=$(make two 077) || { cat "$work/two.err" >&2; exit 1; }
echo "first:  $a"
echo "second: $b"
[[ $a == sha256:* ]] || { echo "FAIL: no manifest digest printed" >&2; exit 1; }
[ "$a" = "$b" ] || { echo "FAIL: two runs gave two digests" >&2; exit 1; }
diff -r "$work/one" "$work/two" || { echo "FAIL: the two layouts differ" >&2; exit 1; }
echo "same digest and the same bytes twice"
