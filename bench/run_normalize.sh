#!/usr/bin/env bash
# The normalize benchmark: generates a ~400 MiB layer (GNU tar, shuffled order, pax noise), then compares
# `quorate normalize` in each compression mode against a baseline through bench/compare.py (warm-up, then
# alternating pairs; min/median/max of wall and CPU seconds; load average; noise flagged). Never asserts times.
# Usage: bench/run_normalize.sh [WORKDIR]
#   WORKDIR: default /dev/shm/quorate-normalize-bench when /dev/shm is a tmpfs with 3 GiB free, else
#            ${TMPDIR:-/tmp}/quorate-normalize-bench. The goals are stated for tmpfs.
#   env: BUILD_DIR (build-bench), QUORATE=path (use that binary, build nothing), NO_BUILD=1, JOBS (1), EPOCH,
#        PAIRS (5), ONLY (comma list of: floor,recipe,gzip,zstd; default all)
#   Comparisons and goals:
#     floor   normalize --compression none  vs  openssl dgst -sha256 of its output      goal <= 1.5x
#     recipe  normalize --compression none  vs  extract + GNU tar's reproducible recipe   (no goal; < 1 = faster)
#     gzip    normalize --compression gzip  vs  pigz -6 -n -p2 of the canonical tar       goal <= 1.1x
#     zstd    normalize --compression zstd  vs  zstd -3 -T1 of the canonical tar          goal <= 1.2x
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$SRC/build-bench}
EPOCH=${EPOCH:-1700000000}
PAIRS=${PAIRS:-5}
ONLY=${ONLY:-floor,recipe,gzip,zstd}
if [ -z "${1:-}" ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
   [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((3 << 20)) ]; then
  WORK=/dev/shm/quorate-normalize-bench
else
  WORK=${1:-${TMPDIR:-/tmp}/quorate-normalize-bench}
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
COMPARE=(python3 "$SRC/bench/compare.py" --pairs "$PAIRS" --where "$WORK")
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

if [ -z "${QUORATE:-}" ]; then
  echo "== building quorate in $BUILD" >&2
  [ -f "$BUILD/build.ninja" ] || cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  [ "${NO_BUILD:-0}" = 1 ] || cmake --build "$BUILD" -j"${JOBS:-1}" --target quorate >&2 ||
    echo "== build failed; benchmarking the quorate built before" >&2
  QUORATE=$(find "$BUILD" -maxdepth 3 -name quorate -type f -perm -u+x | head -n1)
fi
[ -n "$QUORATE" ] && [ -x "$QUORATE" ] || { echo "no quorate binary (set QUORATE=path)" >&2; exit 2; }

# The layer under test; regenerated only when the generator changes.
LAYER=$WORK/layer.tar
GEN_SUM=$(sha256sum "$SRC/bench/normalize_gen.py" | cut -c1-16)
if [ ! -f "$LAYER" ] || [ "$(cat "$WORK/layer.gen" 2>/dev/null)" != "$GEN_SUM" ]; then
  echo "== generating the layer in $WORK" >&2
  rm -rf "$WORK/tree" && mkdir -p "$WORK/tree"
  python3 "$SRC/bench/normalize_gen.py" "$WORK/tree"
  # Non-canonical order (a fixed shuffle), foreign owners, pax atime/ctime records: what normalize repairs.
  (cd "$WORK/tree" && find . -mindepth 1 | LC_ALL=C sort | python3 -c \
    'import random,sys; l=sys.stdin.read().split("\n")[:-1]; random.Random(7).shuffle(l); print("\n".join(l))' \
    > "$WORK/order.txt")
  tar --format=posix --owner=1000 --group=1000 --no-recursion -C "$WORK/tree" -cf "$LAYER" -T "$WORK/order.txt"
  rm -rf "$WORK/tree"
  echo "$GEN_SUM" > "$WORK/layer.gen"
fi

q() { printf '%q ' "$QUORATE" normalize "$LAYER" --source-date-epoch "$EPOCH" "$@"; }
# The canonical tar every baseline reads: one normalize run, kept apart from the outputs being timed.
CANON=$WORK/canonical.tar
eval "$(q -o "$CANON" --compression none)" >/dev/null
mib() { echo "scale=1; $(stat -c %s "$1") / 1048576" | bc -l; }
echo "normalize benchmark: $(mib "$LAYER") MiB layer -> $(mib "$CANON") MiB canonical tar; quorate $QUORATE"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo

if wants floor; then
  "${COMPARE[@]}" --title "floor: normalize --compression none vs openssl dgst -sha256 of the canonical tar" \
    --a-name "normalize none" --a-prep "rm -f '$WORK/out.tar'" --a "$(q -o "$WORK/out.tar" --compression none)" \
    --b-name "openssl dgst -sha256" --b "openssl dgst -sha256 '$CANON'" --goal 1.5 --a-rss-goal 100
  cmp -s "$WORK/out.tar" "$CANON" || { echo "MISMATCH: two uncompressed normalize runs differ" >&2; exit 1; }
  echo
fi
if wants recipe; then
  "${COMPARE[@]}" --title "normalize --compression none vs extract + GNU tar's reproducible recipe" \
    --prep "rm -rf '$WORK/out.tar' '$WORK/x' '$WORK/recipe.tar'" \
    --a-name "normalize none" --a "$(q -o "$WORK/out.tar" --compression none)" \
    --b-name "extract + GNU tar recipe" --b "mkdir '$WORK/x' && tar --warning=no-timestamp -xf '$LAYER' -C '$WORK/x' && \
tar --sort=name --mtime=@$EPOCH --clamp-mtime --owner=0 --group=0 --numeric-owner \
--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --format=posix -C '$WORK/x' -cf '$WORK/recipe.tar' ."
  rm -rf "$WORK/x" "$WORK/recipe.tar"
  echo
fi
if wants gzip; then
  "${COMPARE[@]}" --title "normalize --compression gzip vs pigz -6 -n -p2 of the canonical tar" \
    --a-name "normalize gzip" --a-prep "rm -f '$WORK/out.tar.gz'" --a "$(q -o "$WORK/out.tar.gz" --compression gzip)" \
    --b-name "pigz -6 -n -p2" --b "pigz -6 -n -p2 < '$CANON' > '$WORK/pigz.gz'" --goal 1.1 --a-rss-goal 100
  [ "$(gzip -dc < "$WORK/out.tar.gz" | sha256sum)" = "$(sha256sum < "$CANON")" ] ||
    { echo "MISMATCH: the gzip layer does not decompress to the canonical tar" >&2; exit 1; }
  eval "$(q -o "$WORK/t1.tar.gz" --compression gzip --threads 1)" >/dev/null
  cmp -s "$WORK/t1.tar.gz" "$WORK/out.tar.gz" || { echo "MISMATCH: gzip bytes depend on --threads" >&2; exit 1; }
  echo "  sizes: quorate gzip $(mib "$WORK/out.tar.gz") MiB, pigz $(mib "$WORK/pigz.gz") MiB; bytes equal with --threads 1 and the default"
  rm -f "$WORK/t1.tar.gz" "$WORK/pigz.gz"
  echo
fi
if wants zstd; then
  "${COMPARE[@]}" --title "normalize --compression zstd vs zstd -3 -T1 of the canonical tar" \
    --a-name "normalize zstd" --a-prep "rm -f '$WORK/out.tar.zst'" --a "$(q -o "$WORK/out.tar.zst" --compression zstd)" \
    --b-name "zstd -3 -T1" --b "zstd -q -3 -T1 < '$CANON' > '$WORK/zstd.zst'" --goal 1.2 --a-rss-goal 100
  [ "$(zstd -dc < "$WORK/out.tar.zst" | sha256sum)" = "$(sha256sum < "$CANON")" ] ||
    { echo "MISMATCH: the zstd layer does not decompress to the canonical tar" >&2; exit 1; }
  eval "$(q -o "$WORK/t2.tar.zst" --compression zstd --threads 2)" >/dev/null
  cmp -s "$WORK/t2.tar.zst" "$WORK/out.tar.zst" || { echo "MISMATCH: zstd bytes depend on --threads" >&2; exit 1; }
  echo "  sizes: quorate zstd $(mib "$WORK/out.tar.zst") MiB, zstd $(mib "$WORK/zstd.zst") MiB; bytes equal with --threads 2 and the default"
  rm -f "$WORK/t2.tar.zst" "$WORK/zstd.zst"
  echo
fi
