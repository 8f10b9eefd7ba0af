#!/usr/bin/env bash
# Scale harness for the render command: one Site, 2500 Listeners and 2500
# Connectors (one file each), rendered by the real binary as a whole
# process. Cold = first pass over a fresh copy (writes every file); warm =
# a later render that finds nothing changed: the first of them runs the
# pass and records it (internal/pass-record), the others stand on the
# record. Prints each run and the medians of wall time and peak RSS (GNU
# time).
#
#   internal/scale/render-harness.sh bin/site-controller [runs]
set -euo pipefail
bin=$(realpath "${1:?usage: $0 SITE-CONTROLLER [RUNS]}")
runs=${2:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$(dirname "$0")/../.."
go run ./internal/scale/scalegen -data-home "$work/pristine" -listeners 2500 -connectors 2500
for i in $(seq "$runs"); do cp -r "$work/pristine" "$work/cold-$i"; done
# let the copies reach the disk so that they do not slow the runs
sync; sleep 10
measure() { # label data-home
  /usr/bin/time -f "%e %M" -o "$work/t" "$bin" render --data-home "$2" scale >/dev/null
  read -r secs kb <"$work/t"
  echo "$1 ${secs}s ${kb}KB"
}
for i in $(seq "$runs"); do measure cold "$work/cold-$i"; done | tee "$work/cold"
for i in $(seq "$runs"); do measure warm "$work/cold-1"; done | tee "$work/warm"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for k in cold warm; do
  s=$(awk '{sub("s","",$2); print $2}' "$work/$k" | median)
  m=$(awk '{sub("KB","",$3); print $3}' "$work/$k" | median)
  echo "median $k: ${s}s, peak RSS $((m / 1024)) MB"
done
