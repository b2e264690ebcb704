#!/usr/bin/env bash
# Makes a Debian builder image (for a recipe's `[build] image`) reproducibly and writes it as a canonical OCI
# image layout: mmdebstrap of SUITE with PACKAGES at SOURCE_DATE_EPOCH, one layer, then `quorate normalize`.
#
#   scripts/builder-image.sh [options] OUT_DIR
#
#   --suite SUITE      Debian suite (default: bookworm)
#   --include PKGS     comma-separated packages besides the variant's (default: gcc,libc6-dev)
#   --variant NAME     mmdebstrap variant (default: essential: no apt, no init; enough for a compiler)
#   --mirror URL       Debian archive (default: http://deb.debian.org/debian). For an image that is the same
#                      next year, give a snapshot: http://snapshot.debian.org/archive/debian/20261101T000000Z/
#   --epoch N          SOURCE_DATE_EPOCH: mtimes and the image's dates (default: $SOURCE_DATE_EPOCH, else 1700000000)
#   --name NAME        the image's reference name in index.json (default: example.org/quorate/builders/gcc)
#   --from-host        offline: no download and no mmdebstrap. The root file system is the files of this host's
#                      installed packages PKGS, dash (/bin/sh, for run steps) and their dependencies (dpkg -L,
#                      without docs), so its digest depends on the host's package versions. Used by the test
#                      suite's demo.
#   --print-key        print a key of every input above (and of this script, quorate's version and, with
#                      --from-host, the host's package versions) and exit: a cache key
#   --quorate PATH     quorate binary (default: $QUORATE_BIN, else `quorate` on PATH, else build/cli/quorate)
#
# Progress goes to stderr; the manifest digest (sha256:...) is the last line of stdout. OUT_DIR must not exist;
# it appears only when complete. Same inputs and same archive state give the same digest: mmdebstrap honours
# SOURCE_DATE_EPOCH, and quorate normalize writes a canonical layer. With a moving archive (deb.debian.org)
# the digest changes when the suite does (a point release, a security update): pin a snapshot to keep it.
# Needs mmdebstrap (Debian package; `scripts/bootstrap.sh --only mmdebstrap` installs it). As root it runs in
# mmdebstrap's root mode; otherwise in its unshare mode, which needs unprivileged user namespaces and
# subordinate ids for the user (the uidmap package, /etc/subuid).
set -euo pipefail
script=$(readlink -f "$0")
src=$(dirname "$(dirname "$script")")

suite=bookworm
include=gcc,libc6-dev
variant=essential
mirror=http://deb.debian.org/debian
epoch=${SOURCE_DATE_EPOCH:-1700000000}
name=example.org/quorate/builders/gcc
from_host=0
print_key=0
quorate=${QUORATE_BIN:-}
out=""

die() { echo "builder-image: $*" >&2; exit 2; }
note() { printf 'builder-image: %s\n' "$*" >&2; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (try --help)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --suite) need_value "$@"; suite=$2; shift 2 ;;
    --include) need_value "$@"; include=$2; shift 2 ;;
    --variant) need_value "$@"; variant=$2; shift 2 ;;
    --mirror) need_value "$@"; mirror=$2; shift 2 ;;
    --epoch) need_value "$@"; epoch=$2; shift 2 ;;
    --name) need_value "$@"; name=$2; shift 2 ;;
    --quorate) need_value "$@"; quorate=$2; shift 2 ;;
    --from-host) from_host=1; shift ;;
    --print-key) print_key=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$script" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) [ -z "$out" ] || die "one OUT_DIR only ('$out' and '$1')"; out=$1; shift ;;
  esac
done
[[ "$epoch" =~ ^[0-9]+$ ]] || die "--epoch must be a number of seconds, not '$epoch'"
[[ "$include" =~ ^[a-z0-9][a-z0-9.+-]*(,[a-z0-9][a-z0-9.+-]*)*$ ]] || die "--include must be package names separated by commas, not '$include'"
[[ "$suite" =~ ^[a-z0-9-]+$ ]] || die "--suite must be a suite name like bookworm, not '$suite'"
[[ "$name" =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || die "--name must be an image name like example.org/builders/gcc, not '$name'"

if [ -z "$quorate" ]; then
  if command -v quorate >/dev/null 2>&1; then quorate=$(command -v quorate)
  elif [ -x "$src/build/cli/quorate" ]; then quorate=$src/build/cli/quorate
  else die "no quorate binary: build it (cmake --build build --target quorate) or give --quorate PATH"; fi
fi
[ -x "$quorate" ] || die "--quorate $quorate is not an executable"
command -v python3 >/dev/null 2>&1 || die "python3 is missing (apt-get install python3)"

# The host packages of --from-host: PKGS and what they depend on, installed ones only, one "name version" a line.
host_packages() {
  python3 - "$include" <<'EOF'
import subprocess, sys
def query(fmt, pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=" + fmt, pkg], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""
def installed(pkg):
    return query("${db:Status-Abbrev}", pkg).startswith("ii")
todo, seen = sys.argv[1].split(",") + ["dash"], {}
for p in todo:
    if not installed(p):
        sys.exit("builder-image: package %s is not installed on this host (--from-host takes installed packages)" % p)
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen[p] = query("${Version}", p)
    for group in query("${Pre-Depends}, ${Depends}", p).split(","):
        for alternative in group.split("|"):  # the first alternative that is installed
            dep = alternative.strip().split(" ")[0].split(":")[0]
            if dep and installed(dep):
                todo.append(dep)
                break
for p in sorted(seen):
    print(p, seen[p])
EOF
}

key_text() {
  echo "builder-image.sh $(sha256sum "$script" | cut -d' ' -f1)"
  echo "quorate $("$quorate" --version 2>&1 | head -1)"
  echo "suite=$suite include=$include variant=$variant epoch=$epoch name=$name from_host=$from_host"
  if [ "$from_host" = 1 ]; then dpkg --print-architecture; host_packages; else echo "mirror=$mirror"; fi
}
if [ "$print_key" = 1 ]; then key_text | sha256sum | cut -c1-16; exit 0; fi

[ -n "$out" ] || die "OUT_DIR is missing (try --help)"
[ ! -e "$out" ] || die "$out exists; remove it or choose another OUT_DIR"
mkdir -p "$(dirname "$out")"

work=$(mktemp -d "${TMPDIR:-/tmp}/builder-image.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/raw/blobs/sha256"
rootfs=$work/rootfs.tar
started=$(date +%s)

if [ "$from_host" = 0 ]; then
  command -v mmdebstrap >/dev/null 2>&1 ||
    die "mmdebstrap is not installed: scripts/bootstrap.sh --only mmdebstrap (or apt-get install mmdebstrap); --from-host needs no download"
  made_by="mmdebstrap --variant=$variant --include=$include $suite $mirror (SOURCE_DATE_EPOCH=$epoch)"
  note "$made_by: downloading and installing (about 350 MB and 1 to 3 minutes for gcc)"
  # mmdebstrap prints its phases on stderr ("I: downloading packages with apt..."); they are the progress.
  SOURCE_DATE_EPOCH=$epoch mmdebstrap --variant="$variant" --include="$include" --format=tar \
    "$suite" "$rootfs" "$mirror" ||
    die "mmdebstrap failed (exit $?); is $mirror reachable? is '$suite' a suite there? see its messages above"
else
  made_by="files of the host's packages $include,dash and their dependencies (dpkg -L)"
  note "--from-host: $made_by"
  host_packages | cut -d' ' -f1 > "$work/packages"
  note "$(wc -l < "$work/packages") packages: $(tr '\n' ' ' < "$work/packages")"
  # Every path the packages own that exists, with its directory part resolved (Debian 12 merges /bin, /lib,
  # /lib64, /sbin into /usr through top-level links; those links are added as they are), docs left out.
  xargs -a "$work/packages" dpkg -L | python3 -c '
import os, sys
skip = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/")
paths = set()
for top in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
    if os.path.islink("/" + top):
        paths.add(top)
for line in sys.stdin:
    p = line.rstrip("\n")
    if not p.startswith("/") or p == "/." or not os.path.lexists(p):
        continue
    real = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
    if real.startswith(skip) or real + "/" in skip:
        continue
    if os.path.isdir(real) and not os.path.islink(real):
        real = os.path.realpath(real)
    while real not in ("/", ""):
        paths.add(real.lstrip("/"))
        real = os.path.dirname(real)
sys.stdout.write("".join(p + "\0" for p in sorted(paths)))
' > "$work/files"
  note "$(tr -cd '\0' < "$work/files" | wc -c) paths; writing the root file system tar"
  tar --create --file "$rootfs" --directory / --no-recursion --null --files-from "$work/files" ||
    die "tar of the host's files failed (exit $?)"
fi
note "root file system: $(du -m "$rootfs" | cut -f1) MB tar after $(($(date +%s) - started)) s"

# An OCI layout around the tar as it is (the layer blob is the tar itself, moved, not copied) ...
layer_hex=$(sha256sum "$rootfs" | cut -d' ' -f1)
layer_size=$(stat -c %s "$rootfs")
mv "$rootfs" "$work/raw/blobs/sha256/$layer_hex"
case "$(dpkg --print-architecture)" in
  amd64) arch=amd64 ;; arm64) arch=arm64 ;; i386) arch=386 ;; armhf) arch=arm ;; *) arch=$(dpkg --print-architecture) ;;
esac
python3 - "$work/raw" "$layer_hex" "$layer_size" "$arch" "$name" "$made_by" "$suite" "$include" \
  "$([ "$from_host" = 1 ] && echo host || echo "$mirror")" <<'EOF'
import hashlib, json, os, sys
raw, layer_hex, layer_size, arch, name, made_by, suite, include, mirror = sys.argv[1:]
def blob(obj):
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(raw, "blobs", "sha256", hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}
config = {
    "architecture": arch, "os": "linux",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["/bin/sh"],
        "Labels": {"org.quorate.builder.suite": suite, "org.quorate.builder.packages": include,
                   "org.quorate.builder.archive": mirror},
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_hex]},
    "history": [{"created_by": made_by}],
}
c = blob(config)
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **c),
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": "sha256:" + layer_hex, "size": int(layer_size)}]}
m = blob(manifest)
index = {"schemaVersion": 2, "manifests": [dict(mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": name}, **m)]}
with open(os.path.join(raw, "index.json"), "w") as f:
    json.dump(index, f)
with open(os.path.join(raw, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
EOF

# ... then its canonical form: sorted entries, clamped mtimes, owners 0, gzip with fixed parameters.
note "quorate normalize: canonical layer (gzip) and config"
"$quorate" normalize "$work/raw" -o "$out" --source-date-epoch "$epoch" --json > "$work/summary.json" ||
  die "quorate normalize failed (exit $?)"
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["output"]["manifest_digest"])' "$work/summary.json")
note "wrote $out ($(du -sm "$out" | cut -f1) MB) in $(($(date +%s) - started)) s"
echo "$digest"
