#!/usr/bin/env bash
# The workload of examples/workflows/memgate-pr.yml and memgate-accept-baseline.yml: run the
# service, drive a fixed load, save its heap profile (/debug/pprof/heap) to a file, several
# times (repeated runs let memgate tell noise from change).
#
#   scripts/soak.sh --out profiles/ [--runs 3]
#
# Copy to scripts/soak.sh and adapt the two marked lines: how your service is built and
# started (it must import net/http/pprof), and your load generator. The service here listens on
# a free port (-addr 127.0.0.1:0) and writes it to a file, so that parallel jobs never collide.
# Every run does the same amount of work, so the profiles compare; the duration the gate divides
# by is the `duration` of the memgate step (or components.<name>.duration in memgate.yml).
set -euo pipefail

out=profiles
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: $0 --out DIR [--runs N]" >&2; exit 2 ;;
  esac
done
out="${out%/}"
mkdir -p "$out"
work="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/soak.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# EDIT: build your service and your load generator.
go build -trimpath -o "$work/svc" ./cmd/svc
go build -trimpath -o "$work/load" ./cmd/load

for run in $(seq 1 "$runs"); do
  rm -f "$work/addr"
  "$work/svc" -addr 127.0.0.1:0 -addr-file "$work/addr" & pid=$!
  for _ in $(seq 1 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
  [ -s "$work/addr" ] || { echo "soak: the service did not start" >&2; exit 1; }
  addr="$(cat "$work/addr")"
  # EDIT: your load: the same amount of work in every run.
  "$work/load" -url "http://$addr/items" -n 3000 -seed "$run"
  # gc=1: a collection first, so that in-use memory is what is live, not what awaits the GC.
  curl -fsS -o "$out/heap-$run.pb.gz" "http://$addr/debug/pprof/heap?gc=1"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "soak: run $run: $out/heap-$run.pb.gz"
done
