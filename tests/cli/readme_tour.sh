#!/bin/sh
# readme_tour.sh QUORATE_BIN: runs README.md's "A tour of the subcommands" literally, in an empty temporary
# directory: every "$ " line of its console blocks, in order, with QUORATE_SRC set and quorate on the PATH.
# Each command must succeed, and every output line the README shows must be printed by it, except the lines
# that carry the README's key id (a reader's keys are their own) and the "…" that abridge.
set -eu
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/quorate-tour.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
ln -s "$bin" "$work/bin/quorate"
PATH="$work/bin:$PATH" QUORATE_SRC="$src"
export PATH QUORATE_SRC
readme_keyid=62d7a185fd0052435b3b290a1c49c86735f41760a5f35c4f99cc08f4d321cf88

# The tour's console blocks, as "CMD <command>" and "OUT <line>" records.
awk '
  /^## A tour of the subcommands/ { tour = 1; next }
  /^## / && tour { exit }
  tour && /^```console/ { block = 1; next }
  tour && /^```/ { block = 0; next }
  block && /^\$ / { sub(/^\$ /, ""); sub(/[ ]+# .*$/, ""); print "CMD " $0; next }
  block { print "OUT " $0 }
' "$src/README.md" > "$work/tour.txt"
[ -s "$work/tour.txt" ] || { echo "readme_tour: no console blocks found in the tour" >&2; exit 1; }

mkdir "$work/tour"
cd "$work/tour"
umask 022  # the README says its layer digests are those under umask 022
n=0 failed=0
out="$work/out.txt"
while IFS= read -r record; do
  kind=${record%% *} text=${record#* }
  if [ "$kind" = CMD ]; then
    n=$((n + 1))
    printf 'readme_tour: $ %s\n' "$text"
    if ! sh -c "$text" > "$out" 2>&1; then
      cat "$out"
      echo "readme_tour: command $n failed: $text" >&2
      exit 1
    fi
  else
    case $text in
      *"$readme_keyid"*|"…"|"") continue ;;
    esac
    if ! grep -qxF -- "$text" "$out"; then
      echo "readme_tour: command $n did not print the line the README shows:" >&2
      echo "  README: $text" >&2
      sed 's/^/  got:    /' "$out" >&2
      failed=1
    fi
  fi
done < "$work/tour.txt"
[ "$failed" -eq 0 ] || exit 1
echo "readme_tour: $n commands ran as the README shows"
