#!/usr/bin/env bash
# ctest: @sigstore/verify (not ours) verifies quorate's Sigstore bundles, Ed25519 and P-256, and refuses a tampered one.
# Usage: sigstore_interop.sh QUORATE_BIN BUILD_RESULT.json. Exit 77 (skipped) only when the verifier is not installed.
set -euo pipefail
quorate=$1
result=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/node_modules/@sigstore/verify" ] || ! command -v node >/dev/null; then
  echo "SKIP: @sigstore/verify is not installed in tests/interop/node_modules (scripts/bootstrap.sh installs it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for type in ed25519 p256; do
  "$quorate" key generate --out "$work/$type" --type "$type" >/dev/null
  "$quorate" attest --key "$work/$type" --node-id "node-$type" "$result" -o "$work/$type.bundle.json" --bundle >/dev/null
  node "$here/verify_bundle.js" "$work/$type.bundle.json" "$work/$type.pub.pem"
  if node "$here/verify_bundle.js" --tamper "$work/$type.bundle.json" "$work/$type.pub.pem"; then
    echo "FAIL: @sigstore/verify accepted a tampered $type bundle"
    exit 1
  fi
done
# The wrong key must not verify either.
if node "$here/verify_bundle.js" "$work/ed25519.bundle.json" "$work/p256.pub.pem"; then
  echo "FAIL: @sigstore/verify accepted a bundle with another key"
  exit 1
fi
echo "sigstore interop: ok"
