#!/usr/bin/env bash
# containerfile_bench.sh: one multi-stage Containerfile through `quorate build` and through buildah (issue 14):
# `buildah build --layers --timestamp 0 --isolation chroot --storage-driver vfs` + push to an OCI layout, as
# quorate writes one. Both start from the same busybox builder image (made here from Debian's busybox-static with
# umoci, loaded into quorate's image store and into a private buildah storage, referenced by digest).
# Compared through bench/compare.py (warm-up, alternating pairs, min/median/max of wall and CPU seconds, load
# average); first checks that repeated quorate builds give one digest, and reports whether buildah's do.
# Usage: bench/containerfile_bench.sh [QUORATE_BIN] (default: build/cli/quorate).
# env: BENCH_FILES (2000 source files of ~4 KiB), PAIRS (5), WORKDIR (where to work; default /tmp; /dev/shm takes
# the disk out of the figures). Needs root (overlay mounts), buildah, umoci.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
quorate="${1:-$root/build/cli/quorate}"
files="${BENCH_FILES:-2000}"
[ -x "$quorate" ] || { echo "containerfile_bench: no quorate binary at $quorate" >&2; exit 2; }
command -v buildah >/dev/null || { echo "containerfile_bench: buildah is missing (scripts/bootstrap.sh)" >&2; exit 2; }

work="$(mktemp -d "${WORKDIR:-/tmp}/quorate-cf-bench.XXXXXX")"
bh=(buildah --root "$work/bh-root" --runroot "$work/bh-run" --storage-driver vfs)
cleanup() { "${bh[@]}" rm --all >/dev/null 2>&1 || true; "${bh[@]}" rmi --all --force >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export TMPDIR="$work"

# The builder image: static busybox and its applets, /tmp; an OCI layout.
umoci init --layout "$work/busybox" >/dev/null
umoci new --image "$work/busybox:busybox" >/dev/null
umoci unpack --rootless --image "$work/busybox:busybox" "$work/bb" >/dev/null
mkdir -p "$work/bb/rootfs/bin" "$work/bb/rootfs/tmp" && chmod 1777 "$work/bb/rootfs/tmp"
# The mount points a runtime needs, as distribution images have them: without them buildah's chroot isolation
# leaves them, empty, in its RUN layers (docs/containerfile.md), and the file comparison below would show them.
mkdir -p "$work/bb/rootfs/dev" "$work/bb/rootfs/proc" "$work/bb/rootfs/sys" "$work/bb/rootfs/run" "$work/bb/rootfs/etc"
touch "$work/bb/rootfs/etc/hostname" "$work/bb/rootfs/etc/hosts" "$work/bb/rootfs/etc/resolv.conf"
cp /bin/busybox "$work/bb/rootfs/bin/busybox"
for a in sh cat echo ls mkdir rm cp ln chmod find sort gzip sha256sum seq tar wc xargs; do ln -s busybox "$work/bb/rootfs/bin/$a"; done
umoci repack --image "$work/busybox:busybox" "$work/bb" >/dev/null
umoci config --image "$work/busybox:busybox" --config.env PATH=/bin >/dev/null
digest=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$work/busybox/index.json")
base="example.org/busybox@$digest"
"$quorate" image import --image-store "$work/store" "$work/busybox" >/dev/null

# The project: source files from a fixed seed, and the Containerfile. The build stage packs and checksums the
# tree, makes and deletes files; the final stage copies the results, removes one, sets ENV and ENTRYPOINT.
repo="$work/project"
mkdir -p "$repo"
python3 - "$repo/src" "$files" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261128)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
for i in range(n):
    d = os.path.join(out, "m%02d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(700)) + "\n")
PY
cat > "$repo/Containerfile" <<EOF
FROM $base AS build
WORKDIR /work
COPY src/ ./src/
RUN mkdir -p /out/share && tar -cf - src | gzip -n > /out/share/src.tar.gz \\
 && find src -type f | sort | xargs sha256sum > /out/share/SHA256SUMS \\
 && seq 1 200000 > /out/share/numbers && rm -rf src/m00
RUN cp -r src /out/share/tree && rm /bin/ls

FROM $base
COPY --from=build /out/ /opt/app/
RUN rm /opt/app/share/numbers && echo ready > /opt/app/state
ENV APP_HOME=/opt/app
ENTRYPOINT ["/bin/cat", "/opt/app/state"]
EOF
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org
export GIT_AUTHOR_DATE='@1700000000 +0000' GIT_COMMITTER_DATE='@1700000000 +0000'
(cd "$repo" && git init -q -b main . && git add -A && git commit -q -m bench)
sync

qbuild() {
  printf '%q ' "$quorate" build -q --repo "$repo" --commit main --recipe Containerfile --name example.org/bench/app \
    --image-store "$work/store" --work-dir "$work/qwork" -o "$1"
}
bclean="cd '$work' && ${bh[*]} rm --all >/dev/null 2>&1; ${bh[*]} rmi --all --force >/dev/null 2>&1; rm -rf '$work/b'; \
${bh[*]} pull -q oci:busybox:busybox > '$work/base-id' && ${bh[*]} tag \$(cat '$work/base-id') example.org/busybox:busybox"
bbuild="cd '$repo' && ${bh[*]} build -q --pull=never --layers --timestamp 0 --isolation chroot -f Containerfile \
-t example.org/bench/app:latest . >/dev/null && ${bh[*]} push -q example.org/bench/app:latest 'oci:$work/b:latest' >/dev/null"

# Repeated runs, untimed: quorate's digests must agree; buildah's are reported.
digest_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$1/index.json"; }
for i in 1 2 3; do rm -rf "$work/q$i"; eval "$(qbuild "$work/q$i")" >/dev/null; done
q1=$(digest_of "$work/q1"); q2=$(digest_of "$work/q2"); q3=$(digest_of "$work/q3")
[ "$q1" = "$q2" ] && [ "$q2" = "$q3" ] || { echo "containerfile_bench: quorate digests differ: $q1 $q2 $q3" >&2; exit 1; }
bdigests=()
for i in 1 2; do bash -c "$bclean" && bash -c "$bbuild" && bdigests+=("$(digest_of "$work/b")"); done
"$quorate" diff --ignore mtime "$work/q1" "$work/b" > "$work/diff.txt" 2>&1 || true
diff_line=$(grep -c '^  \(added\|removed\|changed\)' "$work/diff.txt" || true)

echo "source: $files files, $(du -sm "$repo/src" | cut -f1) MiB; quorate digest $q1 (3 runs, identical)"
echo "buildah digests over 2 runs: ${bdigests[*]}"
echo "quorate diff --ignore mtime quorate buildah: $diff_line file differences"
grep '^  \(added\|removed\|changed\)' "$work/diff.txt" | head -20 || true
echo
python3 "$root/bench/compare.py" --pairs "${PAIRS:-5}" --where "$work" \
  --title "multi-stage Containerfile: quorate build vs buildah build --layers + push (vfs, chroot)" --goal 0.70 \
  --a-prep "rm -rf '$work/q' '$work/qwork'" --a-name "quorate build" --a "$(qbuild "$work/q") >/dev/null" \
  --b-prep "$bclean" --b-name "buildah build + push" --b "$bbuild"
