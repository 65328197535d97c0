#!/usr/bin/env bash
# Fidelity check of the fnOS emulator against pyfnos (PyPI `fnos`), an
# independent Python client: creates .venv-fnos with a pinned fnos, starts
# the emulator on an ephemeral loopback port, runs scripts/fnos_python_check.py.
# Exits non-zero on any failure. Needs Python >= 3.11 (PYTHON overrides).
set -euo pipefail

FNOS_VERSION=0.13.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv-fnos"
PYTHON=${PYTHON:-python3}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "fnos $FNOS_VERSION needs Python >= 3.11; set PYTHON=python3.11" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("fnos"))' 2>/dev/null)" != "$FNOS_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet "fnos==$FNOS_VERSION"
fi

cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p naslink-sim --bin naslink-sim
SIM="$TARGET_DIR/debug/naslink-sim"

LOG=$(mktemp)
"$SIM" fnos --listen 127.0.0.1:0 --user admin --password admin --guest guest:guest >"$LOG" 2>&1 &
SIM_PID=$!
cleanup() {
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT

ENDPOINT=
for _ in $(seq 1 300); do
    ENDPOINT=$(sed -n 's#^listening ws://\([^/]*\)/.*#\1#p' "$LOG")
    [ -n "$ENDPOINT" ] && break
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
        echo "emulator exited early:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$ENDPOINT" ]; then
    echo "emulator did not report its address within 30 s" >&2
    exit 1
fi
echo "emulator at $ENDPOINT"

"$VENV/bin/python" "$ROOT/scripts/fnos_python_check.py" \
    --endpoint "$ENDPOINT" --user admin --password admin --guest guest:guest
