#!/usr/bin/env bash
# The issue-2 normalize benchmark: generates a ~400 MiB layer (GNU tar, shuffled order, pax noise), then
# times quorate's normalize in each compression mode against the baselines, all in this one run, and prints
# time and peak-memory ratios. Usage: bench/run_normalize.sh [WORKDIR]   (env: BUILD_DIR, EPOCH, REPEAT)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$SRC/build-bench}
WORK=${1:-${TMPDIR:-/tmp}/quorate-normalize-bench}
EPOCH=${EPOCH:-1700000000}
mkdir -p "$WORK"

echo "== building normalize_bench and quorate in $BUILD" >&2
[ -f "$BUILD/build.ninja" ] || cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
DRIVER=$BUILD/bench/normalize_bench
if [ "${NO_BUILD:-0}" = 1 ]; then
  :
elif ! cmake --build "$BUILD" -j2 --target normalize_bench >&2; then
  [ -x "$DRIVER" ] || exit 2
  echo "== build failed; benchmarking the normalize_bench built before" >&2
fi
[ "${NO_BUILD:-0}" = 1 ] || cmake --build "$BUILD" -j2 --target quorate >&2 || true
QUORATE=$(find "$BUILD" -maxdepth 3 -name quorate -type f -perm -u+x | head -n1)

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

# How normalize is run: the CLI once it has `normalize`, else the driver over the same library call.
USE_CLI=0
HOW="normalize_bench layer (the library call; quorate normalize not built yet)"
if [ -n "$QUORATE" ] && "$QUORATE" normalize --help >/dev/null 2>&1; then
  USE_CLI=1
  HOW="quorate normalize"
fi
# normalize_cmd OUT MODE: sets CMD to the command normalizing LAYER into OUT.
normalize_cmd() {
  rm -f "$1"
  if [ "$USE_CLI" = 1 ]; then
    CMD=("$QUORATE" normalize "$LAYER" -o "$1" --compression "$2" --source-date-epoch "$EPOCH")
  else
    CMD=("$DRIVER" layer "$LAYER" "$1" --compression "$2" --source-date-epoch "$EPOCH")
  fi
}

# measure NAME CMD...: runs CMD REPEAT times (default 3) under /usr/bin/time and records the median seconds
# and the largest peak RSS (KiB) as T[NAME], M[NAME]. Before each run: dirty pages are flushed (`sync`), so
# one command's writeback does not land on the next one's clock, and OUTPUT_FILE (when set) is removed.
declare -A T M
REPEAT=${REPEAT:-3}
measure() {
  local name=$1; shift
  local times=() peak=0 t m
  for _ in $(seq "$REPEAT"); do
    [ -n "${OUTPUT_FILE:-}" ] && rm -f "$OUTPUT_FILE"
    sync
    /usr/bin/time -f "%e %M" -o "$WORK/time.$name" "$@" >"$WORK/out.$name.log"
    read -r t m < "$WORK/time.$name"
    times+=("$t")
    [ "$m" -gt "$peak" ] && peak=$m
  done
  T[$name]=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (REPEAT + 1) / 2 ))p")
  M[$name]=$peak
  printf '  %-14s %7.2f s %8.1f MiB   (runs: %s)\n' "$name" "${T[$name]}" "$(echo "${M[$name]}/1024" | bc -l)" "${times[*]}" >&2
}
ratio() { echo "scale=2; ${T[$1]} / ${T[$2]}" | bc -l; }

cat "$LAYER" >/dev/null  # warm the page cache for everyone alike
echo "== measuring ($HOW), layer $(du -m "$LAYER" | cut -f1) MiB, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
OUT=$WORK/out
normalize_cmd "$OUT.tar" none
OUTPUT_FILE=$OUT.tar measure q_none "${CMD[@]}"
measure sha256sum sha256sum "$OUT.tar"
measure tar_recipe bash -c "rm -rf '$WORK/x' && mkdir '$WORK/x' && tar --warning=no-timestamp -xf '$LAYER' -C '$WORK/x' && \
  tar --sort=name --mtime=@$EPOCH --clamp-mtime --owner=0 --group=0 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --format=posix -C '$WORK/x' -cf '$WORK/recipe.tar' ."
rm -rf "$WORK/x"
normalize_cmd "$OUT.tar.gz" gzip
OUTPUT_FILE=$OUT.tar.gz measure q_gzip "${CMD[@]}"
OUTPUT_FILE=$WORK/c.gz measure q_gzip_only "$DRIVER" compress "$OUT.tar" "$WORK/c.gz" --compression gzip --threads 2
measure gzip bash -c "gzip -6 -n < '$OUT.tar' > '$WORK/b.gz'"
measure pigz bash -c "pigz -6 -n -p2 < '$OUT.tar' > '$WORK/b.pigz.gz'"
normalize_cmd "$OUT.tar.zst" zstd
OUTPUT_FILE=$OUT.tar.zst measure q_zstd "${CMD[@]}"
OUTPUT_FILE=$WORK/c.zst measure q_zstd_only "$DRIVER" compress "$OUT.tar" "$WORK/c.zst" --compression zstd --threads 1
measure zstd bash -c "zstd -q -3 -T1 < '$OUT.tar' > '$WORK/b.zst'"

# Sanity: compressed outputs decompress to the canonical tar.
want=$(sha256sum < "$OUT.tar" | cut -d' ' -f1)
for f in "$OUT.tar.gz:gzip -dc" "$WORK/c.gz:gzip -dc" "$OUT.tar.zst:zstd -dc" "$WORK/c.zst:zstd -dc"; do
  got=$(${f#*:} < "${f%%:*}" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "MISMATCH: ${f%%:*} does not decompress to the canonical tar" >&2; exit 1; }
done
mib() { echo "scale=1; $(stat -c %s "$1") / 1048576" | bc -l; }

echo
echo "normalize benchmark: $(mib "$LAYER") MiB layer -> $(mib "$OUT.tar") MiB canonical tar ($HOW)"
echo "each time is the median of $REPEAT runs (sync before each), peak memory the largest of them"
printf '%-44s %8s %10s %s\n' "mode" "time s" "peak MiB" "ratio"
row() { printf '%-44s %8.2f %10.1f %s\n' "$1" "${T[$2]}" "$(echo "${M[$2]}/1024" | bc -l)" "${3:-}"; }
row "normalize, uncompressed" q_none "1.00"
row "  sha256sum of the output" sha256sum "normalize/sha256sum = $(ratio q_none sha256sum)"
row "  (a) extract + GNU tar recipe" tar_recipe "(a)/normalize = $(ratio tar_recipe q_none) (goal >= 4)"
row "normalize --compression gzip (all threads)" q_gzip "normalize-gzip/pigz = $(ratio q_gzip pigz)"
row "  compressor alone, gzip, 2 threads" q_gzip_only "compressor/pigz = $(ratio q_gzip_only pigz) (goal <= 1.1)"
row "  gzip -6 -n" gzip "gzip/compressor = $(ratio gzip q_gzip_only)"
row "  pigz -6 -n -p2" pigz ""
row "normalize --compression zstd" q_zstd "normalize-zstd/zstd = $(ratio q_zstd zstd)"
row "  compressor alone, zstd, 1 worker" q_zstd_only "compressor/zstd = $(ratio q_zstd_only zstd) (goal <= 1.2)"
row "  zstd -3 -T1" zstd ""
echo "sizes MiB: quorate gzip $(mib "$OUT.tar.gz"), gzip $(mib "$WORK/b.gz"), pigz $(mib "$WORK/b.pigz.gz"); quorate zstd $(mib "$OUT.tar.zst"), zstd $(mib "$WORK/b.zst")"
echo "peak memory goal: < 100 MiB in every normalize mode; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
