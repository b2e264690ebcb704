#!/usr/bin/env bash
# Installs the Debian 12 packages quorate needs to build, test and run its demo.
# Installs nothing when everything is already present; uses sudo when not root.
#
#   scripts/bootstrap.sh                 everything the build, the tests and the demo need
#   scripts/bootstrap.sh --only PKG...   just these Debian packages (scripts/builder-image.sh: mmdebstrap)
set -euo pipefail

only=()
if [ "${1:-}" = --only ]; then
  shift
  [ $# -gt 0 ] || { echo "bootstrap: --only needs package names" >&2; exit 2; }
  only=("$@")
elif [ $# -gt 0 ]; then
  echo "bootstrap: unknown argument '$1' (usage: bootstrap.sh [--only PKG...])" >&2
  exit 2
fi

packages=(
  build-essential cmake ninja-build pkg-config git
  libarchive-dev libssl-dev libzstd-dev zlib1g-dev liblzma-dev libbz2-dev
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  libgit2-dev libsqlite3-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  clang clang-format
  tar libarchive-tools gzip pigz zstd xz-utils bzip2 openssl
  skopeo umoci bubblewrap busybox-static docker-registry podman buildah
  diffoscope-minimal gnupg
  softhsm2 opensc p11-kit libp11-kit-dev
  python3 sqlite3 curl time  # time: bench/compare.py reads a command's peak RSS through GNU time
  iproute2 iptables  # bench/scale_bench.py: network namespaces, partitions (tests/scale)
)

[ ${#only[@]} -eq 0 ] || packages=("${only[@]}")
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js may come from elsewhere than Debian (nodesource); only ask apt when absent.
if [ ${#only[@]} -eq 0 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The independent verifier of the interop test (@sigstore/verify), pinned by tests/interop/package-lock.json and
# installed project-locally; nothing to do when it is installed and the lock file has not changed since.
[ ${#only[@]} -eq 0 ] || exit 0
interop="$(cd "$(dirname "$0")/.." && pwd)/tests/interop"
if [ -f "$interop/package-lock.json" ] &&
   { [ ! -f "$interop/node_modules/.package-lock.json" ] ||
     [ "$interop/package-lock.json" -nt "$interop/node_modules/.package-lock.json" ]; }; then
  echo "bootstrap: npm ci in tests/interop" >&2
  (cd "$interop" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
