#!/usr/bin/env bash
# The diff benchmark: two ~1 GiB images (3 layers of incompressible files) that differ in one byte of one
# file in the middle layer. Compares `quorate diff A B` through bench/compare.py (warm-up, alternating pairs,
# min/median/max of wall and CPU seconds, peak memory, load average) against `diff -r` of the two extracted
# trees and against the diffoci-style whole-tree comparison (extract both images' layers, then `diff -r`);
# never asserts absolute times.
# Usage: bench/run_diff.sh [WORKDIR]
#   env: SIZE_MIB (1024), BUILD_DIR, NO_BUILD=1, JOBS (build jobs, 1), QUORATE=path (use that binary), LIMIT (seconds per command,
#        1800), PAIRS (5)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$SRC/build-bench}
WORK=${1:-${TMPDIR:-/tmp}/quorate-diff-bench}
SIZE_MIB=${SIZE_MIB:-1024}
LIMIT=${LIMIT:-1800}
EPOCH=1700000000
GEN_VERSION=1  # bump when the generator below changes: cached images are regenerated
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[ "$SIZE_MIB" -ge 16 ] 2>/dev/null || { echo "SIZE_MIB must be an integer >= 16" >&2; exit 2; }

NPROC=$(nproc)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# bounded CMD...: runs CMD, killed (with its process group) after LIMIT seconds.
bounded() { timeout -k 10 "$LIMIT" "$@"; }

# ---- the binary ----
if [ -z "${QUORATE:-}" ]; then
  echo "== building quorate (Release) in $BUILD" >&2
  [ -f "$BUILD/build.ninja" ] || bounded cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  if [ "${NO_BUILD:-0}" != 1 ]; then
    bounded cmake --build "$BUILD" -j"${JOBS:-1}" --target quorate >&2 || echo "== build failed; using the quorate built before" >&2
  fi
  QUORATE=$(find "$BUILD" -maxdepth 3 -name quorate -type f -perm -u+x | head -n1)
fi
[ -n "$QUORATE" ] && [ -x "$QUORATE" ] || { echo "no quorate binary (set QUORATE=path or drop NO_BUILD)" >&2; exit 2; }
QUORATE=$(cd "$(dirname "$QUORATE")" && pwd)/$(basename "$QUORATE")
BUILD_TYPE=unknown
for c in "$(dirname "$QUORATE")/CMakeCache.txt" "$(dirname "$QUORATE")/../CMakeCache.txt"; do
  [ -f "$c" ] && { BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$c"); break; }
done
"$QUORATE" diff --help >/dev/null 2>&1 || { echo "$QUORATE has no diff subcommand" >&2; exit 2; }

# ---- the images (cached per size and generator version) ----
IMG=$WORK/img-${SIZE_MIB}M
A=$IMG/A
B=$IMG/B
STAMP="gen $GEN_VERSION size $SIZE_MIB epoch $EPOCH"

# fill DIR TOTAL_BYTES CHUNK_BYTES: DIR gets TOTAL_BYTES of random data as files of CHUNK_BYTES (one stream).
fill() {
  mkdir -p "$1"
  [ "$2" -gt 0 ] || return 0
  bounded head -c "$2" /dev/urandom | split -b "$3" -a 5 -d - "$1/part-"
}
# layer_tar DIR OUT: an uncompressed layer of DIR's contents, names without "./", sorted, one fixed mtime.
layer_tar() {
  (cd "$1" && LC_ALL=C ls -A) > "$1.top"
  bounded tar --format=posix --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1600000000 \
    -C "$1" -cf "$2" -T "$1.top"
  rm -f "$1.top"
}
# docker_archive OUT TAG LAYER_TAR...: a docker-archive (legacy <id>/layer.tar members) holding the layers.
docker_archive() {
  local out=$1 tag=$2; shift 2
  local d=$out.d i=0 ids=() names=()
  rm -rf "$d" && mkdir -p "$d"
  for l in "$@"; do
    i=$((i + 1))
    mkdir -p "$d/l$i"
    ln "$l" "$d/l$i/layer.tar" 2>/dev/null || cp "$l" "$d/l$i/layer.tar"
    ids+=("\"sha256:$(sha256sum < "$l" | cut -d' ' -f1)\"")
    names+=("\"l$i/layer.tar\"")
  done
  local IFS=,
  printf '{"architecture":"amd64","os":"linux","created":"2020-01-01T00:00:00Z","config":{"Env":["PATH=/usr/bin:/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "${ids[*]}" > "$d/config.json"
  printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":[%s]}]' "$tag" "${names[*]}" > "$d/manifest.json"
  unset IFS
  bounded tar --format=posix --sort=name -C "$d" -cf "$out" manifest.json config.json $(cd "$d" && ls -d l*)
  rm -rf "$d"
}

if [ ! -f "$IMG/stamp" ] || [ "$(cat "$IMG/stamp")" != "$STAMP" ]; then
  echo "== generating two ${SIZE_MIB} MiB images in $IMG" >&2
  rm -rf "$IMG" && mkdir -p "$IMG"
  T=$IMG/tree
  total=$((SIZE_MIB * 1048576))
  # Layer 1 (50%): four large files. Layer 2 (30%): 1 MiB files in 8 directories.
  # Layer 3 (20%): many small files (4, 16 and 64 KiB) in 12 directories.
  for i in 0 1 2 3; do fill "$T/l1/opt/data" $((total / 8)) $((total / 8)); mv "$T/l1/opt/data/part-00000" "$T/l1/opt/data/blob$i.bin"; done
  for i in 0 1 2 3 4 5 6 7; do fill "$T/l2/usr/lib/mod$i" $((total * 3 / 10 / 8)) 1048576; done
  for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
    chunk=$((4096 << (2 * (i % 3))))
    fill "$T/l3/usr/share/pkg$i" $((total / 5 / 12)) "$chunk"
  done
  for l in l1 l2 l3; do layer_tar "$T/$l" "$IMG/$l.tar"; done
  docker_archive "$IMG/a.tar" bench/diff:a "$IMG/l1.tar" "$IMG/l2.tar" "$IMG/l3.tar"
  echo "== normalizing image A" >&2
  bounded "$QUORATE" normalize --compression none --source-date-epoch "$EPOCH" "$IMG/a.tar" -o "$A" >/dev/null

  # Image B: one byte in the middle of the middle file of layer 2, flipped; size and mtime unchanged.
  CHANGED=$(cd "$T/l2" && find . -type f | LC_ALL=C sort | awk '{ l[NR] = $0 } END { print substr(l[int((NR + 1) / 2)], 3) }')
  f=$T/l2/$CHANGED
  off=$(($(stat -c %s "$f") / 2))
  old=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  printf "$(printf '\\%03o' $(((old + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
  touch -d @1600000000 "$f"
  layer_tar "$T/l2" "$IMG/l2b.tar"
  rm -rf "$T"
  docker_archive "$IMG/b.tar" bench/diff:b "$IMG/l1.tar" "$IMG/l2b.tar" "$IMG/l3.tar"
  rm -f "$IMG"/l*.tar "$IMG/a.tar"
  echo "== normalizing image B" >&2
  bounded "$QUORATE" normalize --compression none --source-date-epoch "$EPOCH" "$IMG/b.tar" -o "$B" >/dev/null
  rm -f "$IMG/b.tar"
  echo "$CHANGED" > "$IMG/changed"
  echo "$STAMP" > "$IMG/stamp"
fi
CHANGED=$(cat "$IMG/changed")

# layers_of LAYOUT: the layer blob paths of the layout's (only) image, in order.
layers_of() {
  python3 - "$1" <<'EOF'
import json, os, sys
d = sys.argv[1]
blob = lambda dg: os.path.join(d, "blobs", *dg.split(":", 1))
index = json.load(open(os.path.join(d, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
for l in manifest["layers"]:
    print(blob(l["digest"]))
EOF
}
mapfile -t LAYERS_A < <(layers_of "$A")
mapfile -t LAYERS_B < <(layers_of "$B")
[ "${#LAYERS_A[@]}" = 3 ] && [ "${#LAYERS_B[@]}" = 3 ] || { echo "expected 3 layers per image" >&2; exit 1; }

# ---- measuring (bench/compare.py: warm-up, alternating pairs, min/median/max, CPU seconds, load) ----
ROOT_A=$WORK/rootA
ROOT_B=$WORK/rootB
cleanup() { rm -rf "$ROOT_A" "$ROOT_B"; }
trap cleanup EXIT
q() { printf '%q ' "$QUORATE" "$@"; }
EXTRACT="mkdir '$ROOT_A' '$ROOT_B'"
for l in "${LAYERS_A[@]}"; do EXTRACT+=" && tar -xf '$l' -C '$ROOT_A'"; done
for l in "${LAYERS_B[@]}"; do EXTRACT+=" && tar -xf '$l' -C '$ROOT_B'"; done

# ---- sanity first (untimed): both name exactly the changed file ----
bounded "$QUORATE" diff "$A" "$B" > "$WORK/out.quorate.log" 2>&1 || true
q_lines=$(grep -cE '^ *(changed|added|removed|deleted) ' "$WORK/out.quorate.log" || true)
grep -qE "^ *changed $CHANGED( |\$)" "$WORK/out.quorate.log" && [ "$q_lines" = 1 ] || {
  echo "quorate diff did not name exactly $CHANGED:" >&2; head -n 20 "$WORK/out.quorate.log" >&2; exit 1; }
json_paths=$(bounded "$QUORATE" diff --json "$A" "$B" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert not j["manifest"] and not j["config"], "manifest or config differ"
print("\n".join("%d %s %s" % (l["index"], c["kind"], c["path"]) for l in j["layers"] for c in l["changes"]))') || true
[ "$json_paths" = "1 changed $CHANGED" ] || {
  echo "quorate diff --json: expected '1 changed $CHANGED', got: $json_paths" >&2; exit 1; }
cleanup
bash -c "$EXTRACT"
diff -r "$ROOT_A" "$ROOT_B" > "$WORK/out.diff_r.log" 2>&1 || true
[ "$(cat "$WORK/out.diff_r.log")" = "Binary files $ROOT_A/$CHANGED and $ROOT_B/$CHANGED differ" ] || {
  echo "diff -r did not name exactly $CHANGED:" >&2; head -n 20 "$WORK/out.diff_r.log" >&2; exit 1; }

sz() { du -sm "$1" | cut -f1; }
echo "diff benchmark: images A $(sz "$A") MiB, B $(sz "$B") MiB (OCI layouts, uncompressed layers),"
echo "  differing in one byte of $CHANGED (layer 1); cached in $IMG"
echo "quorate: $QUORATE (build type $BUILD_TYPE); nproc $NPROC; load average at start $LOAD_START"
echo
# `diff` exits 1 when the inputs differ, which is the expected outcome here.
COMPARE=(python3 "$SRC/bench/compare.py" --pairs "${PAIRS:-5}" --where "$IMG" --where "$WORK")
"${COMPARE[@]}" --title "quorate diff vs diff -r of the two extracted trees (extraction not counted)" \
  --a-name "quorate diff A B" --a "timeout -k 10 $LIMIT $(q diff "$A" "$B") >/dev/null; test \$? = 1" \
  --b-name "diff -r rootA rootB" --b "timeout -k 10 $LIMIT diff -r '$ROOT_A' '$ROOT_B' >/dev/null; test \$? = 1"
echo
cleanup
"${COMPARE[@]}" --title "quorate diff vs extract both images + diff -r (diffoci-style)" \
  --b-prep "rm -rf '$ROOT_A' '$ROOT_B'" \
  --a-name "quorate diff A B" --a "timeout -k 10 $LIMIT $(q diff "$A" "$B") >/dev/null; test \$? = 1" \
  --b-name "extract + diff -r" --b "timeout -k 10 $LIMIT bash -c \"$EXTRACT\" && { diff -r '$ROOT_A' '$ROOT_B' >/dev/null; test \$? = 1; }"
cleanup
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
