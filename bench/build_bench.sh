#!/usr/bin/env bash
# build_bench.sh: `quorate build` of the static-site example with a generated ~200 MiB tree of pages, against
# buildah (the reproducible builder a user would pick instead) and against tar | gzip -6 -n of the same files.
# Compared through bench/compare.py (warm-up, alternating pairs, min/median/max of wall and CPU seconds, load
# average); checks first that two quorate builds give the same digest.
# Usage: bench/build_bench.sh [QUORATE_BIN] (default: build/cli/quorate). env: BENCH_SIZE_MIB (200), PAIRS (5).
# Installs buildah with apt if absent.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
quorate="${1:-$root/build/cli/quorate}"
size_mib="${BENCH_SIZE_MIB:-200}"
[ -x "$quorate" ] || { echo "build_bench: no quorate binary at $quorate" >&2; exit 2; }

work="$(mktemp -d /tmp/quorate-build-bench.XXXXXX)"
cleanup() { buildah --storage-driver vfs rm --all >/dev/null 2>&1 || true; buildah --storage-driver vfs rmi --all --force >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v buildah >/dev/null 2>&1; then
  echo "build_bench: installing buildah" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi


# The repository: examples/static-site with site/ grown to ~size_mib of generated pages (text from a fixed
# seed: compressible like real HTML, identical on every run).
repo="$work/site"
mkdir -p "$repo"
cp -r "$root/examples/static-site/." "$repo/"
python3 - "$repo/site/pages" "$size_mib" <<'PY'
import os, random, sys
out, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261123)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
target, written, n = mib << 20, 0, 0
while written < target:
    d = os.path.join(out, "section-%03d" % (n // 100))
    os.makedirs(d, exist_ok=True)
    paras = []
    size = rng.randint(8 << 10, 120 << 10)
    body = 0
    while body < size:
        p = "<p>" + " ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + "</p>\n"
        paras.append(p)
        body += len(p)
    page = "<!doctype html>\n<html><head><title>page %d</title></head><body>\n%s</body></html>\n" % (n, "".join(paras))
    with open(os.path.join(d, "page-%05d.html" % n), "w") as f:
        f.write(page)
    written += len(page)
    n += 1
print("build_bench: generated %d pages, %.1f MiB" % (n, written / 1048576.0), file=sys.stderr)
PY
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org
export GIT_AUTHOR_DATE='@1700000000 +0000' GIT_COMMITTER_DATE='@1700000000 +0000'
(cd "$repo" && git init -q -b main . && git add -A && git commit -q -m bench)
commit="$(git -C "$repo" rev-parse HEAD)"
sync

# quorate build, twice (untimed): the digests must agree.
digest() { sed -n 's/^image *//p' "$1"; }
qbuild() { printf '%q ' "$quorate" build -q --repo "$repo" --commit "$commit" -o "$1" --work-dir "$work/qwork"; }
eval "$(qbuild "$work/q1")" > "$work/q1.txt"
eval "$(qbuild "$work/q2")" > "$work/q2.txt"
d1=$(digest "$work/q1.txt"); d2=$(digest "$work/q2.txt")
[ "$d1" = "$d2" ] || { echo "build_bench: digests differ: $d1 vs $d2" >&2; exit 1; }

# The buildah context: the equivalent Containerfile.
mkdir -p "$work/ctx"
git -C "$repo" archive "$commit" site | tar -x -C "$work/ctx"
printf 'FROM scratch\nCOPY site/ /srv/www/\nWORKDIR /srv/www\nEXPOSE 8080\nCMD ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]\n' > "$work/ctx/Containerfile"
buildah_clean="buildah --storage-driver vfs rm --all >/dev/null 2>&1; buildah --storage-driver vfs rmi --all --force >/dev/null 2>&1; rm -rf '$work/buildah-oci'; true"

echo "tree: $(du -sm "$repo/site" | cut -f1) MiB, $(find "$repo/site" -type f | wc -l) files; image $d1 in both quorate builds"
echo "sizes: quorate layer $(du -b "$work"/q1/blobs/sha256/* | sort -n | tail -1 | cut -f1) B"
echo
COMPARE=(python3 "$root/bench/compare.py" --pairs "${PAIRS:-5}" --where "$work")
"${COMPARE[@]}" --title "quorate build vs buildah build + push to an OCI layout" --goal 0.60 \
  --a-prep "rm -rf '$work/q'" --a-name "quorate build" --a "$(qbuild "$work/q") >/dev/null" \
  --b-prep "$buildah_clean" --b-name "buildah build + push" \
  --b "buildah --storage-driver vfs build -q --isolation chroot --timestamp 0 -t quorate-bench:latest -f '$work/ctx/Containerfile' '$work/ctx' >/dev/null && \
buildah --storage-driver vfs push -q quorate-bench:latest 'oci:$work/buildah-oci:latest' >/dev/null"
echo
# The floor of a single-threaded canonical tar.gz of the same files (from the checkout, already on disk).
"${COMPARE[@]}" --title "quorate build vs tar --sort=name ... | gzip -6 -n of the same files" \
  --a-prep "rm -rf '$work/q'" --a-name "quorate build" --a "$(qbuild "$work/q") >/dev/null" \
  --b-name "tar | gzip -6 -n" --b "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C '$repo/site' -cf - . | gzip -6 -n > '$work/tar.gz'"
echo "sizes: quorate layer $(du -b "$work"/q/blobs/sha256/* | sort -n | tail -1 | cut -f1) B, tar.gz $(stat -c %s "$work/tar.gz") B"
