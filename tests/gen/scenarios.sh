#!/usr/bin/env bash
# Regenerate the verdict scenario suite (tests/fixtures/scenarios/): real Go runs of
# tests/gen/scenarios, a service-like program (a bounded cache of decoded JSON payloads and
# 24 MiB of long-lived buffers), for the acceptance table in docs/noise.md
# (scripts/scenarios.py) and tests/test_scenarios.py.
#
#   noop-S-NN          no change, S = 60k or 120k requests (fixed work), NN = 01..12
#   leak-SHAPE-F-NN    120k requests, a fraction F (percent) of payloads retained:
#                      SHAPE one (literalStore) or spread (interface{} frames); NN = 01..06
#   pooled-NN          the optimization (allocation moves into readBody and shrinks)
#   churn-NN           4 extra 1 KiB scratch allocations per request
#   slow-NN            the no-change build, 120k requests, 1.7x the wall time (a slower runner)
#   paced-15s-NN, paced-60s-NN   time-paced: 1000 requests/s for 15 s and for 60 s (a rate the
#                      program sustains on a loaded 2-core runner, so that the work per second
#                      is the same in every run)
#
# runs.tsv records, per profile: name, variant, requests (empty when time-paced) and the
# wall-clock seconds the run took (what a CI user would pass as --duration).
# Every run uses Go's default MemProfileRate (512 KiB). Two runs at a time; ~15 minutes.
# VARIANTS="churn paced" regenerates only those (their rows in runs.tsv are replaced).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$HERE/../fixtures/scenarios}"
# shellcheck source=tests/gen/goenv.sh
source "$HERE/goenv.sh"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$HERE" && "$GO" build -trimpath -o "$TMP/scenarios" ./scenarios)
mkdir -p "$OUT"
: > "$TMP/runs.tsv"
VARIANTS="${VARIANTS:-all}"
want() { [[ "$VARIANTS" == all || " $VARIANTS " == *" $1 "* ]]; }
run() {  # name variant requests args...
  local name=$1 variant=$2 requests=$3 seed
  shift 3
  seed=$((10#${name##*-}))
  "$TMP/scenarios" -run-seed "$seed" -out "$OUT/$name.pb.gz" -wall "$TMP/$name.wall" "$@" 2>/dev/null
  printf '%s\t%s\t%s\t%s\n' "$name" "$variant" "$requests" "$(cat "$TMP/$name.wall")" >> "$TMP/runs.tsv"
}
# Time-paced runs mostly sleep: all of them at once, in the background.
paced=()
for i in 01 02 03; do
  want paced || continue
  run "paced-15s-$i" paced-15s "" -for 15s -rate 1000 & paced+=($!)
  run "paced-60s-$i" paced-60s "" -for 60s -rate 1000 & paced+=($!)
done
jobs=()
for s in 60k 120k; do
  want noop || break
  for i in $(seq -w 1 12); do jobs+=("noop-$s-$i noop-$s ${s%k}000"); done
done
for shape in one spread; do
  want leak || break
  for f in 0.3 0.75 1.5 3 6; do
    for i in $(seq -w 1 6); do
      jobs+=("leak-$shape-$f-$i leak-$shape-$f 120000 -leak $(python3 -c "print($f/100)") -leak-shape $shape")
    done
  done
done
for i in $(seq -w 1 6); do
  if want pooled; then jobs+=("pooled-$i pooled 120000 -pooled"); fi
  if want churn; then jobs+=("churn-$i churn 120000 -churn 4"); fi
  if want slow; then jobs+=("slow-$i slow 120000 -stretch 1.7"); fi
done
for ((k = 0; k < ${#jobs[@]}; k += 2)); do
  pair=()
  # shellcheck disable=SC2086
  set -- ${jobs[k]}; run "$1" "$2" "$3" -requests "$3" "${@:4}" & pair+=($!)
  if ((k + 1 < ${#jobs[@]})); then
    # shellcheck disable=SC2086
    set -- ${jobs[k+1]}; run "$1" "$2" "$3" -requests "$3" "${@:4}" & pair+=($!)
  fi
  wait "${pair[@]}"
done
if ((${#paced[@]})); then wait "${paced[@]}"; fi
# Rows of runs not made now are kept from the previous runs.tsv.
if [[ "$VARIANTS" != all && -f "$OUT/runs.tsv" ]]; then
  tail -n +2 "$OUT/runs.tsv" | awk -F'\t' 'NR == FNR { made[$1] = 1; next } !($1 in made)' \
    "$TMP/runs.tsv" - > "$TMP/kept.tsv"
  cat "$TMP/kept.tsv" >> "$TMP/runs.tsv"
fi
{ printf 'name\tvariant\trequests\twall_seconds\n'; sort "$TMP/runs.tsv"; } > "$OUT/runs.tsv.new"
mv "$OUT/runs.tsv.new" "$OUT/runs.tsv"
echo "wrote $(($(wc -l < "$OUT/runs.tsv") - 1)) profiles to $OUT"
