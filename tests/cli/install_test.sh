#!/bin/sh
# install_test.sh BUILD_DIR QUORATE_BIN: `cmake --install` into an empty prefix puts the binary, the man page
# and the documentation the help texts name where a user finds them without the source (issue 18); the man
# page renders without warnings and describes every command `quorate --help` lists.
set -eu
build=$1 bin=$2
prefix=$(mktemp -d "${TMPDIR:-/tmp}/quorate-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > "$prefix.log" 2>&1 || { cat "$prefix.log"; rm -f "$prefix.log"; exit 1; }
rm -f "$prefix.log"
fail=0
for f in bin/quorate share/man/man1/quorate.1 share/doc/quorate/README.md share/doc/quorate/docs/recipe.md \
         share/doc/quorate/docs/policy.md share/doc/quorate/examples/policy.toml; do
  [ -f "$prefix/$f" ] || { echo "install_test: $f was not installed" >&2; fail=1; }
done
page="$prefix/share/man/man1/quorate.1"
# Rendered, with every groff warning on: none may appear.
warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || true
[ -z "$warnings" ] || { echo "install_test: the man page has warnings:" >&2; echo "$warnings" >&2; fail=1; }
grep -q '@QUORATE_DOCDIR@' "$page" && { echo "install_test: @QUORATE_DOCDIR@ not substituted" >&2; fail=1; }
# Every command of `quorate --help` has an entry in COMMANDS (a .B line starting with its name).
commands=$("$bin" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$commands" ] || { echo "install_test: no commands found in quorate --help" >&2; exit 1; }
for c in $commands; do
  grep -q "^\.B $c\( \|\$\)" "$page" || { echo "install_test: the man page does not describe '$c'" >&2; fail=1; }
done
# --help says where the documentation went.
"$bin" --help | grep -q "man quorate" || { echo "install_test: quorate --help does not point at the man page" >&2; fail=1; }
[ "$fail" -eq 0 ] || exit 1
echo "install_test: installed and described: $(echo $commands | wc -w) commands"
