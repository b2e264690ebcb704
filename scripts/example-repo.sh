#!/bin/sh
# example-repo.sh EXAMPLE_DIR DEST: makes DEST a Git repository holding EXAMPLE_DIR's files in one commit with a
# fixed author, committer and date (2023-11-14T22:13:20Z), so that its commit id, and so the image digests the
# README shows, are the same on every machine. Prints the commit id.
set -eu
[ $# -eq 2 ] || { echo "usage: example-repo.sh EXAMPLE_DIR DEST" >&2; exit 2; }
src=$1 dest=$2
[ -d "$src" ] || { echo "example-repo.sh: $src: not a directory" >&2; exit 2; }
[ ! -e "$dest" ] || { echo "example-repo.sh: $dest exists; choose another destination" >&2; exit 2; }
mkdir -p "$dest"
cp -R "$src"/. "$dest"/
cd "$dest"
GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
GIT_AUTHOR_NAME=quorate GIT_AUTHOR_EMAIL=examples@quorate.invalid GIT_AUTHOR_DATE='@1700000000 +0000'
GIT_COMMITTER_NAME=quorate GIT_COMMITTER_EMAIL=examples@quorate.invalid GIT_COMMITTER_DATE='@1700000000 +0000'
export GIT_CONFIG_GLOBAL GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_AUTHOR_DATE GIT_COMMITTER_NAME \
  GIT_COMMITTER_EMAIL GIT_COMMITTER_DATE
git init -q -b main .
git add -A
git commit -q -m "example: $(basename "$src")"
git rev-parse HEAD
