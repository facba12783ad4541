#!/bin/sh
# Regenerate the Python example's profiles and its baseline, as a user of memgate would make
# them. Run from anywhere; uses the memgate of the repository it lives in (python -m memgate
# from the repository root) and the python on PATH.
#
#   examples/python/regenerate.sh
#
# baseline-run1/2: two runs of the code under review's base; candidate-ok: the same code
# again; candidate-leak: the change that removes the cache's bound (--leak).
set -eu
cd "$(dirname "$0")/../.."
py="${PYTHON:-python}"
out=examples/python/profiles
mkdir -p "$out"
capture() {
    name="$1"; shift
    "$py" -m memgate capture -o "$out/$name.pb.gz" --duration 1m -- \
        "$py" examples/python/json_cache.py "$@"
}
capture baseline-run1
capture baseline-run2
capture candidate-ok
capture candidate-leak --leak
"$py" -m memgate baseline update --component python-example \
    "$out/baseline-run1.pb.gz" "$out/baseline-run2.pb.gz" \
    --reason "Baseline of the bundled Python example: two runs of examples/python/json_cache.py (600 payloads, 2,400 requests, bounded cache)." \
    --approved-by "memgate maintainers"
"$py" -m memgate check --component python-example --policy examples/python/memgate.yml \
    "$out/candidate-ok.pb.gz" >/dev/null
echo "ok: the baseline passes candidate-ok; now check candidate-leak:" >&2
"$py" -m memgate check --component python-example --policy examples/python/memgate.yml \
    "$out/candidate-leak.pb.gz" || true
