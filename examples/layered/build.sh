#!/usr/bin/env bash
# Builds examples/layered twice over: the base (examples/static-site committed with fixed dates, so its digest
# is the one pinned in quorate.toml), then this image on it. Prints both digests.
#   examples/layered/build.sh [OUT_DIR]      (QUORATE_BIN: the quorate binary; default: quorate on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
examples=$(dirname "$here")
quorate=${QUORATE_BIN:-quorate}
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/quorate-layered.XXXXXX")}
mkdir -p "$out"
cd "$out"

# A Git repository of one commit whose id depends only on the files, names and dates given here.
commit_dir() {
  local src=$1 repo=$2
  rm -rf "$repo" && mkdir -p "$repo" && cp -r "$src"/. "$repo"/
  git -C "$repo" init -q -b main
  git -C "$repo" add .
  GIT_AUTHOR_NAME="Example Dev" GIT_AUTHOR_EMAIL=dev@example.org GIT_COMMITTER_NAME="Example Dev" \
    GIT_COMMITTER_EMAIL=dev@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
    git -C "$repo" -c commit.gpgsign=false commit -q -m "example"
}

commit_dir "$examples/static-site" static-site
rm -rf base layered
"$quorate" build -q --repo static-site --commit main -o base
echo "base:    $(python3 -c 'import json; print(json.load(open("base/index.json"))["manifests"][0]["digest"])')"
commit_dir "$here" layered-src
"$quorate" build -q --repo layered-src --commit main -o layered
echo "layered: $(python3 -c 'import json; print(json.load(open("layered/index.json"))["manifests"][0]["digest"])')"
echo "in $out"
