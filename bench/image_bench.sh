#!/usr/bin/env bash
# image_bench.sh: the image store's two costs, through bench/compare.py (warm-up, alternating pairs,
# min/median/max of wall and CPU seconds, load average):
#   warm   `quorate build` of a C program inside a pinned gcc builder image already unpacked in the store
#          (manifest and config hashed against the pin on every build; a layer blob only while its recorded
#          stat differs from the file's, docs/decisions.md "Verified layer blobs") against the same recipe on the
#          host toolchain (no [build] image). Goal: at most 1.1x.
#   cold   verify + unpack of that builder image into a fresh rootfs (bench/image_bench, the store's own
#          code) against `tar -xzf` of its layer. Goal: at most 1.5x.
# The builder image is made here from the host's gcc toolchain (the files of the Debian packages below, ~345
# MB, one layer normalized by `quorate normalize`), cached in $IMAGE_CACHE between runs.
# Usage: bench/image_bench.sh [BUILD_DIR] (default: build). env: PAIRS (5), ONLY=warm,cold, WORKDIR (a fresh
# /tmp/quorate-image-bench.*), IMAGE_CACHE (/tmp/quorate-image-bench-cache).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
quorate="$build/cli/quorate"
driver="$build/bench/image_bench"
pairs="${PAIRS:-5}"
only="${ONLY:-warm,cold}"
cache="${IMAGE_CACHE:-/tmp/quorate-image-bench-cache}"
for b in "$quorate" "$driver"; do [ -x "$b" ] || { echo "image_bench: no $b (ninja -C $build quorate image_bench)" >&2; exit 2; }; done

work="${WORKDIR:-$(mktemp -d /tmp/quorate-image-bench.XXXXXX)}"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

packages="gcc-12 cpp-12 gcc cpp g++-12 g++ libstdc++-12-dev binutils binutils-x86-64-linux-gnu binutils-common
  libbinutils libctf0 libctf-nobfd0 libjansson4 libc6 libc6-dev libc-dev-bin libgcc-12-dev linux-libc-dev
  libcrypt-dev libcrypt1 libnsl-dev libtirpc-dev libisl23 libmpc3 libmpfr6 libgmp10 zlib1g libzstd1 libgcc-s1
  libstdc++6 libcc1-0 libgomp1 libitm1 libatomic1 libasan8 liblsan0 libtsan2 libubsan1 libquadmath0 dash
  coreutils make perl-base libperl5.36 perl-modules-5.36 perl patch"

# The builder image: an OCI layout with one canonical gzip layer and a config whose Env has PATH.
make_image() {
  local out="$1" tmp="$cache/tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # shellcheck disable=SC2086
  dpkg -L $packages 2>/dev/null | python3 -c '
import os, sys
top = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64", "lib32": "usr/lib32"}
names = {"bin", "sbin", "lib", "lib64", "etc", "etc/ld.so.cache", "etc/ld.so.conf", "usr", "usr/bin", "usr/lib"}
for line in sys.stdin:
    p = line.strip().lstrip("/")
    if not p or p.startswith("."): continue
    first, _, rest = p.partition("/")
    if first in top and rest: p = top[first] + "/" + rest
    if not os.path.lexists("/" + p): continue
    parts = p.split("/")
    for i in range(1, len(parts) + 1): names.add("/".join(parts[:i]))
for n in sorted(names):
    if os.path.lexists("/" + n): print(n)
' > "$tmp/list"
  tar --no-recursion -C / -cf "$tmp/layer.tar" -T "$tmp/list"
  "$quorate" normalize "$tmp/layer.tar" -o "$tmp/layer.tar.gz" --source-date-epoch 1700000000 --json > "$tmp/layer.json"
  python3 - "$tmp" "$out" <<'PY'
import hashlib, json, os, shutil, sys
tmp, out = sys.argv[1], sys.argv[2]
summary = json.load(open(os.path.join(tmp, "layer.json")))
def canon(v): return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()
os.makedirs(os.path.join(out, "blobs/sha256"))
def blob(data=None, path=None):
    if path:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
        digest, size = h.hexdigest(), os.path.getsize(path)
        shutil.move(path, os.path.join(out, "blobs/sha256", digest))
    else:
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        open(os.path.join(out, "blobs/sha256", digest), "wb").write(data)
    return "sha256:" + digest, size
diff_id = summary["diff_ids"][0]
ld, ls = blob(path=os.path.join(tmp, "layer.tar.gz"))
config = canon({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
cd, cs = blob(config)
manifest = canon({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]})
md, ms = blob(manifest)
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(out, "index.json"), "wb").write(canon({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
     "annotations": {"org.opencontainers.image.ref.name": "gcc-host"}}]}))
print("image_bench: builder image %s, layer %.1f MiB compressed" % (md, ls / 1048576.0), file=sys.stderr)
PY
  rm -rf "$tmp"
}

if [ ! -f "$cache/image/index.json" ]; then
  echo "image_bench: making the builder image from the host's gcc toolchain (once; cached in $cache)" >&2
  rm -rf "$cache/image" && mkdir -p "$cache"
  make_image "$cache/image"
fi
store="$work/store"
digest="$("$quorate" image import "$cache/image" --image-store "$store" | cut -d' ' -f1)"
hex="${digest#sha256:}"
layer="$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+sys.argv[2])); print(m["layers"][0]["digest"][7:])' "$store" "$hex")"
echo "image_bench: builder image $digest, layer $(du -m "$store/blobs/sha256/$layer" | cut -f1) MiB, unpacked $(tar -tvzf "$store/blobs/sha256/$layer" | awk '{s+=$3} END {printf "%.0f", s/1048576}') MiB" >&2

if [[ ",$only," == *",warm,"* ]]; then
  repo="$work/repo"
  mkdir -p "$repo"
  cp "$root/examples/hello/hello.c" "$root/examples/hello/hello.conf" "$repo/"
  sed '/^\[build\]/a image = "example.org/gcc-host@'"$digest"'"' "$root/examples/hello/quorate.toml" > "$repo/image.toml"
  cp "$root/examples/hello/quorate.toml" "$repo/host.toml"
  export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org
  export GIT_AUTHOR_DATE='@1700000000 +0000' GIT_COMMITTER_DATE='@1700000000 +0000'
  (cd "$repo" && git init -q -b main . && git add -A && git commit -q -m bench)
  commit="$(git -C "$repo" rev-parse HEAD)"
  build_cmd() {  # recipe, output
    echo "$quorate build -q --repo $repo --commit $commit --recipe $1 -o $2 --image-store $store --work-dir $work/w-$1"
  }
  python3 "$root/bench/compare.py" --title "warm: quorate build in the pinned gcc builder image (cache warm) vs on the host toolchain" \
    --a-name "build in image" --a "$(build_cmd image.toml "$work/out-image")" --a-prep "rm -rf $work/out-image" \
    --b-name "build on host" --b "$(build_cmd host.toml "$work/out-host")" --b-prep "rm -rf $work/out-host" \
    --pairs "$pairs" --where "$work" --goal 1.1
fi

if [[ ",$only," == *",cold,"* ]]; then
  # Each run's output is moved aside, not deleted, until the end: ext4 allocating inodes right after thousands
  # were deleted scans for ones not recently deleted (__ext4_new_inode -> recently_deleted was 80% of an unpack's
  # CPU in perf), so a delete between runs made each run slower than the one before, on either side.
  mkdir -p "$work/kept"
  python3 "$root/bench/compare.py" --title "cold: verify + unpack of the builder image (ImageStore::rootfs) vs tar -xzf of its layer" \
    --a-name "store unpack" --a "$driver unpack $store $digest" \
    --a-prep "[ ! -e $store/rootfs/$hex ] || mv $store/rootfs/$hex $work/kept/a.\$(date +%s%N); sync" \
    --b-name "tar -xzf" --b "tar -xzf $store/blobs/sha256/$layer -C $work/tar-x" \
    --b-prep "[ ! -e $work/tar-x ] || mv $work/tar-x $work/kept/b.\$(date +%s%N); mkdir $work/tar-x; sync" \
    --pairs "$pairs" --where "$work" --goal 1.5
fi
