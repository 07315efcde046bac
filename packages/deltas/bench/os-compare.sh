#!/bin/sh
# Compares `ostree static-delta generate` with ostree-ts on real OS trees
# (test-images/cache/os-vN-ostree), then cross-applies both deltas.
# Usage: sh packages/deltas/bench/os-compare.sh [WORKDIR] [FROM_TREE] [TO_TREE]
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=${1:-/tmp/ostree-ts-os-compare}
V1=${2:-$ROOT/test-images/cache/os-v1-ostree}
V2=${3:-$ROOT/test-images/cache/os-v2-ostree}
OURS="node $ROOT/apps/cli/dist/ostree-ts.mjs"
rm -rf "$W" && mkdir -p "$W"
R=$W/repo
ostree init --repo=$R --mode=archive
C1=$(ostree commit --repo=$R -b os --no-xattrs --timestamp=2024-01-01T00:00:00Z -s v1 "$V1")
C2=$(ostree commit --repo=$R -b os --no-xattrs --timestamp=2024-02-01T00:00:00Z -s v2 "$V2")
echo "C1=$C1 C2=$C2"
measure() { # name, args...
  name=$1; shift
  mkdir -p "$W/$name"
  /usr/bin/time -f "$name: wall=%e s user=%U s sys=%S s maxrss=%M KB" "$@" --filename="$W/$name/superblock" >"$W/$name.out" 2>"$W/$name.err" || { cat "$W/$name.err"; exit 1; }
  tail -1 "$W/$name.err"
  parts=$(find "$W/$name" -type f -name '[0-9]*' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  sb=$(stat -c %s "$W/$name/superblock")
  fb=$(ostree static-delta show --repo=$R "$W/$name/superblock" 2>/dev/null | sed -n 's/^Total Fallback Size: \([0-9]*\).*/\1/p')
  echo "$name: parts=$parts superblock=$sb fallbacks=${fb:-?} total=$((parts + sb + ${fb:-0}))"
}
for opts in "" "--min-fallback-size=0"; do
  tag=$(echo "$opts" | tr -dc 'a-z0-9')
  measure "ostree$tag" ostree static-delta generate --repo=$R --from=$C1 --to=$C2 $opts
  measure "ours$tag" $OURS static-delta generate --repo=$R --from=$C1 --to=$C2 $opts
done
# Cross-apply the fallback-free deltas into bare-user repos holding C1, then fsck with the real ostree.
for who in ostreeminfallbacksize0 oursminfallbacksize0; do
  B=$W/apply-$who
  ostree init --repo=$B --mode=bare-user
  ostree pull-local --repo=$B $R $C1 >/dev/null
  /usr/bin/time -f "apply $who with ostree: wall=%e s maxrss=%M KB" ostree static-delta apply-offline --repo=$B "$W/$who/superblock"
  ostree fsck --repo=$B | tail -1
  B2=$W/apply-ours-$who
  ostree init --repo=$B2 --mode=bare-user
  ostree pull-local --repo=$B2 $R $C1 >/dev/null
  /usr/bin/time -f "apply $who with ostree-ts: wall=%e s maxrss=%M KB" $OURS static-delta apply-offline --repo=$B2 "$W/$who/superblock"
  ostree fsck --repo=$B2 | tail -1
done
