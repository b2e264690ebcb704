#!/bin/sh
# hello: prints the greeting from its config file ($1), like examples/hello's C program.
conf="${1:-/etc/hello/hello.conf}"
if [ ! -r "$conf" ]; then
  echo "$conf: cannot read" >&2
  exit 1
fi
cat "$conf"
