#!/usr/bin/env bash
# The main job, end to end on one machine: a Debian gcc builder image (made once, cached) that the example
# recipe pins by digest; keys for 4 rebuild nodes, a verifier and a release manager; 3 honest nodes and 1 rogue
# node (its sandbox binary tampered with) plus the verifier, all on 127.0.0.1 with CURVE; `quorate submit` of
# examples/hello at its commit; the quorum decision; the builder image in the attestation; `quorate diff` of
# the rogue image against the accepted one; `quorate audit` of the example repository. Every process it starts
# is stopped by PID on exit.
#
#   ./scripts/demo.sh [--keep] [--offline]
#     --keep      leave the work directory (keys, configs, logs, built images)
#     --offline   make the builder image from this host's installed gcc packages instead of downloading
#                 Debian with mmdebstrap (no network; the test suite runs the demo this way)
#
# The builder image is cached in ${XDG_CACHE_HOME:-~/.cache}/quorate/builder-images/KEY, KEY naming every
# input (scripts/builder-image.sh --print-key); a second run reuses it. The nodes' image stores (each holding
# the image unpacked) are kept beside it in KEY.stores/. QUORATE_BIN=path/to/quorate skips the bootstrap and
# the build (the test suite runs the demo that way); QUORATE_BUILD_DIR=DIR builds in DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
keep=0
offline=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --offline) offline=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step=0
say() { step=$((step + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
show() { printf '$ %s\n' "$*" | sed "s|$work/||g; s|$quorate|quorate|g"; }

quorate=${QUORATE_BIN:-}
if [ -z "$quorate" ]; then
  say "installing what is missing and building quorate"
  ./scripts/bootstrap.sh
  build=${QUORATE_BUILD_DIR:-build}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" --target quorate
  quorate="$(cd "$build" && pwd)/cli/quorate"  # QUORATE_BUILD_DIR may be absolute
fi
if [ "$offline" = 0 ] && ! command -v mmdebstrap >/dev/null 2>&1; then
  say "installing mmdebstrap (it makes the builder image; --offline does without)"
  ./scripts/bootstrap.sh --only mmdebstrap
fi
started=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/quorate-demo.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $2 seconds for file $1 to exist; names the log $3 when it does not.
wait_for_file() {
  for _ in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "demo: $1 did not appear within $2 s; log:" >&2
  tail -5 "$3" >&2
  exit 1
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

honest=(node-a node-b node-c)
nodes=("${honest[@]}" node-rogue)

builder_name=example.org/quorate/builders/gcc
builder_args=(--name "$builder_name" --include "gcc,libc6-dev" --suite bookworm --epoch 1700000000 --quorate "$quorate")
if [ "$offline" = 1 ]; then
  builder_args+=(--from-host)
  say "the builder image: this host's gcc packages in one layer (--offline), made once and cached"
else
  say "the builder image: Debian bookworm with gcc (mmdebstrap, SOURCE_DATE_EPOCH 1700000000), made once and cached"
fi
key=$(./scripts/builder-image.sh --print-key "${builder_args[@]}")
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/quorate/builder-images
builder=$cache_root/$key
mkdir -p "$cache_root"
exec {lock_fd}>"$cache_root/$key.lock"
# Another demo making the same image: wait for it (bounded), then reuse what it made.
flock -w 1200 "$lock_fd" || { echo "demo: $cache_root/$key.lock still held after 20 minutes" >&2; exit 1; }
if [ -f "$builder/index.json" ]; then
  echo "reusing ${builder/#$HOME/\~} (made $(date -u -r "$builder/index.json" +%Y-%m-%dT%H:%M:%SZ))"
else
  made_at=$(date +%s)
  echo "$ scripts/builder-image.sh ${builder_args[*]/$quorate/quorate} ${builder/#$HOME/\~}"
  ./scripts/builder-image.sh "${builder_args[@]}" "$builder" >/dev/null
  echo "made in $(($(date +%s) - made_at)) s; later runs reuse it"
fi
exec {lock_fd}>&-
builder_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
  "$builder/index.json")
echo "builder image: $builder_name@$builder_digest"

say "the example repository: examples/hello as its own Git repository, pinning the builder image"
repo=$work/hello
mkdir -p "$repo"
cp -r examples/hello/. "$repo/"
# examples/hello/quorate.toml leaves the pin to whoever made the image (its digest is known only then).
grep -q '^# image = ' "$repo/quorate.toml" || { echo "demo: examples/hello/quorate.toml lost its '# image = ' line" >&2; exit 1; }
sed -i "s|^# image = .*|image = \"$builder_name@$builder_digest\"|" "$repo/quorate.toml"
sed -n '/^\[build\]/,/^$/p' "$repo/quorate.toml" | grep -v '^#' | sed 's/  *#.*//' 
export GIT_AUTHOR_NAME="Example Dev" GIT_AUTHOR_EMAIL=dev@example.org GIT_COMMITTER_NAME="Example Dev" \
  GIT_COMMITTER_EMAIL=dev@example.org
git -C "$repo" init -q -b main
git -C "$repo" add .
GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z git -C "$repo" commit -q -m "hello 1.0"
commit=$(git -C "$repo" rev-parse HEAD)
echo "$repo at $commit" | sed "s|$work/||"

say "keys: a signing key and a CURVE key per node; CURVE keys for the verifier and the release manager"
mkdir -p "$work/keys"
for n in "${nodes[@]}"; do
  show "$quorate" key generate --out "$work/keys/$n.key.pem"
  "$quorate" key generate --out "$work/keys/$n.key.pem" | sed "s|$work/||g"
  "$quorate" node --new-curve-key "$work/keys/$n" >/dev/null
done
"$quorate" node --new-curve-key "$work/keys/verifier" >/dev/null
"$quorate" node --new-curve-key "$work/keys/release-manager" >/dev/null
ls -l "$work/keys" | awk 'NR > 1 {print "  " $1, $NF}'

say "the rogue node: its sandbox binary runs each step as asked, then slips a payload into what the step wrote"
# A compromised gcc on the host no longer matters (steps run in the pinned image), and a tampered image is
# refused by the pin. What the pin cannot see is the node itself: here, the bwrap its config points to.
cat > "$work/rogue-bwrap" <<'EOF'
#!/bin/sh
# A compromised sandbox binary: runs the real bwrap, then appends a payload to every executable in /out.
/usr/bin/bwrap "$@"
status=$?
if [ "$status" = 0 ]; then
  while [ $# -ge 3 ]; do
    if [ "$1" = --bind ] && [ "$3" = /out ]; then
      /usr/bin/find "$2" -type f -perm -u+x -exec /bin/sh -c 'printf BACKDOOR >> "$1"' sh {} \;
    fi
    shift
  done
fi
exit "$status"
EOF
chmod 755 "$work/rogue-bwrap"
echo 'node-rogue.toml: [build] bwrap = "rogue-bwrap": /usr/bin/bwrap "$@", then printf BACKDOOR >> every executable in /out'

say "every node imports the builder image into its own image store (kept between runs, as a real node's is)"
# A node unpacks the image in its store on first use (337 MB for the mmdebstrap image): keeping the stores
# next to the cached image spares later runs that, and removing 4 unpacked copies at exit.
stores=$builder.stores
for n in "${nodes[@]}"; do
  show "$quorate" image import "${builder/#$HOME/\~}" --image-store "${stores/#$HOME/\~}/$n"
  "$quorate" image import "$builder" --image-store "$stores/$n"
done

say "starting 4 rebuild nodes on 127.0.0.1 (CURVE on; ports chosen by the system)"
for n in "${nodes[@]}"; do
  build_extra=""
  [ "$n" = node-rogue ] && build_extra='bwrap = "rogue-bwrap"'
  cat > "$work/$n.toml" <<EOF
node_id = "$n"
data_dir = "$n-data"
signing_key = "keys/$n.key.pem"

[network]
publish = "tcp://127.0.0.1:*"
control = "tcp://127.0.0.1:*"
endpoints_file = "$n-data/endpoints.json"
curve_secret_key = "keys/$n.curve.key"
allowed_clients = ["keys/verifier.curve.pub", "keys/release-manager.curve.pub"]

[build]
sandbox = "bubblewrap"
image_store = "$stores/$n"
keep_images = "$n-images"
$build_extra
EOF
  "$quorate" node --config "$work/$n.toml" 2>"$work/$n.log" &
  pids+=($!)
done
for n in "${nodes[@]}"; do
  wait_for_file "$work/$n-data/endpoints.json" 20 "$work/$n.log"
  echo "  $n: publish $(json_field "$work/$n-data/endpoints.json" publish), control $(json_field "$work/$n-data/endpoints.json" control)"
done

say "starting the verifier: policy k = 3 of 4, on_conflict = majority, votes only from pinned builder images"
{
  echo 'threshold = 3'
  echo 'match = "image"'
  echo 'on_conflict = "majority"'
  echo 'run_environment = "pinned"'
  for n in "${nodes[@]}"; do printf '\n[[nodes]]\nid = "%s"\npublic_key = "keys/%s.key.pem.pub.pem"\n' "$n" "$n"; done
} > "$work/policy.toml"
{
  cat <<EOF
policy = "policy.toml"
data_dir = "verifier-data"

[network]
publish = "tcp://127.0.0.1:*"
query = "tcp://127.0.0.1:*"
endpoints_file = "verifier-data/endpoints.json"
curve_secret_key = "keys/verifier.curve.key"
allowed_clients = ["keys/release-manager.curve.pub"]
history_timeout_ms = 1000
EOF
  for n in "${nodes[@]}"; do
    printf '\n[[nodes]]\nid = "%s"\npublish = "%s"\ncontrol = "%s"\ncurve_public_key = "keys/%s.curve.pub"\n' "$n" \
      "$(json_field "$work/$n-data/endpoints.json" publish)" "$(json_field "$work/$n-data/endpoints.json" control)" "$n"
  done
} > "$work/quorum.toml"
"$quorate" quorum --config "$work/quorum.toml" 2>"$work/verifier.log" &
pids+=($!)
wait_for_file "$work/verifier-data/endpoints.json" 20 "$work/verifier.log"
query=$(json_field "$work/verifier-data/endpoints.json" query)
cat "$work/policy.toml" | grep -v '^$' | grep -v public_key | tr '\n' ' ' | sed 's/\[\[nodes\]\]/\n  [[nodes]]/g; s/^/  /'
echo

say "the release manager submits hello at $commit to every node and waits for the decision"
submit=("$quorate" submit --repo "$repo" --commit "$commit" --curve-secret-key "$work/keys/release-manager.curve.key"
        --wait --quorum "$query" --quorum-key "$work/keys/verifier.curve.pub" --timeout 120)
for n in "${nodes[@]}"; do
  submit+=(--node "$(json_field "$work/$n-data/endpoints.json" control)" --node-key "$work/keys/$n.curve.pub")
done
show "${submit[@]}"
set +e
"${submit[@]}" --json >"$work/decision.json" 2>"$work/submit.log"
verdict=$?
set -e
"${submit[@]}" 2>/dev/null | sed "s|$work/||g" || true
if [ "$verdict" != 0 ]; then
  echo "demo: expected the quorum to accept the honest image (exit $verdict)" >&2
  tail -5 "$work/submit.log" >&2
  exit 1
fi
read -r accepted rogue_digest < <(python3 - "$work/decision.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["decision"]
rogue = [x["digest"] for x in d["dissenters"] if x["node_id"] == "node-rogue"]
print(d["digest"], rogue[0] if rogue else "none")
EOF
)
[ "$rogue_digest" != none ] || { echo "demo: the rogue node was not named as a dissenter" >&2; exit 1; }

say "what the attestations say they were built in: the builder image, by digest (SLSA resolvedDependencies)"
store=$work/verifier-data/store.db
show "$quorate" store show "$store" ID
for n in node-a node-rogue; do
  id=$("$quorate" store list --json "$store" | python3 -c '
import json, sys
for line in sys.stdin:
    j = json.loads(line)
    if j.get("kind") == "attestation" and j["node_id"] == sys.argv[1]:
        print(j["envelope_digest"][len("sha256:"):]); break' "$n")
  [ -n "$id" ] || { echo "demo: no attestation of $n in the verifier's store" >&2; exit 1; }
  "$quorate" store show "$store" "$id" > "$work/$n.attestation.json"
  python3 - "$work/$n.attestation.json" "$n" "$builder_digest" <<'EOF'
import base64, json, sys
shown, node, builder = sys.argv[1:]
statement = json.loads(base64.b64decode(json.load(open(shown))["envelope"]["payload"]))
deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
print("%s, image %s:" % (node, statement["subject"][0]["digest"]["sha256"][:12]))
for d in deps:
    digest = ", ".join("%s:%s" % (k, v) for k, v in sorted(d["digest"].items()))
    print("  %-34s %s" % (d.get("name") or d.get("uri", ""), digest))
if not any(d.get("digest", {}).get("sha256") == builder.split(":", 1)[1] for d in deps):
    sys.exit("demo: %s's attestation does not name the builder image %s" % (node, builder))
EOF
done
echo "same builder image, same commit: the rogue's tampering is not in its attestation; only the other nodes' votes show it"

say "why the rogue dissents: quorate diff of the accepted image against the rogue's"
a_image="$work/node-a-images/${accepted#sha256:}"
r_image="$work/node-rogue-images/${rogue_digest#sha256:}"
show "$quorate" diff "$a_image" "$r_image"
set +e
"$quorate" diff "$a_image" "$r_image" 2>&1 | sed "s|$work/||g"
diff_status=${PIPESTATUS[0]}
set -e
[ "$diff_status" = 1 ] || { echo "demo: quorate diff exited $diff_status, expected 1 (different)" >&2; exit 1; }

say "the same program from a Containerfile (examples/hello/Containerfile): a gcc stage, then FROM scratch"
# The builder image is the same pinned image, given as a build arg; RUN executes inside it (overlay mounts: root).
if [ "$(id -u)" = 0 ]; then
  cf=(build -q --repo "$repo" --commit "$commit" --recipe Containerfile --name example.org/quorate/hello
      --build-arg "BUILDER=$builder_name@$builder_digest" --image-store "$stores/node-a" --work-dir "$work/cf-work")
  show "$quorate" "${cf[@]}" -o "$work/cf-image"
  "$quorate" "${cf[@]}" -o "$work/cf-image" | sed "s|$work/||g"
  "$quorate" "${cf[@]}" -o "$work/cf-image-again" > "$work/cf-again.txt"
  cf1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/cf-image/index.json")
  cf2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/cf-image-again/index.json")
  [ "$cf1" = "$cf2" ] || { echo "demo: two Containerfile builds differ: $cf1 $cf2" >&2; exit 1; }
  echo "built twice: $cf1 both times"
  umoci unpack --image "$work/cf-image:latest" "$work/cf-bundle" >/dev/null
  show chroot cf-bundle/rootfs /usr/local/bin/hello /etc/hello/hello.conf
  chroot "$work/cf-bundle/rootfs" /usr/local/bin/hello /etc/hello/hello.conf
else
  echo "skipped: a Containerfile's RUN needs root on this machine (overlay mounts, docs/containerfile.md)"
fi

say "the auditor: quorate audit of the example repository against the verifier's store"
show "$quorate" audit --repo "$repo" --store "$work/verifier-data/store.db" --policy "$work/policy.toml"
"$quorate" audit --repo "$repo" --store "$work/verifier-data/store.db" --policy "$work/policy.toml" | sed "s|$work/||g"

say "stopping every process the demo started (${#pids[@]}: ${pids[*]})"
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid" || { echo "demo: process $pid exited $?" >&2; exit 1; }; done
pids=()
if [ "$keep" = 0 ]; then
  # The nodes' stores hold an unpacked builder image each: removing them takes a while on a slow disk.
  echo "all stopped; removing the work directory ($(du -sm "$work" | cut -f1) MB)"
  rm -rf "$work"
else
  echo "all stopped"
fi
echo "the demo took $(($(date +%s) - started)) s after the build"
