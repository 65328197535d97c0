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

# Emulators started so far (pid and log file), stopped on exit.
PIDS=()
LOGS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -f "${LOGS[@]}"
}
trap cleanup EXIT

# start_emulator FLAGS...: start one emulator on an ephemeral port and set
# ENDPOINT to its HOST:PORT once it reports it.
start_emulator() {
    local log
    log=$(mktemp)
    LOGS+=("$log")
    "$SIM" fnos --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    ENDPOINT=
    for _ in $(seq 1 300); do
        ENDPOINT=$(sed -n 's#^listening ws://\([^/]*\)/.*#\1#p' "$log")
        [ -n "$ENDPOINT" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "emulator exited early:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "emulator did not report its address within 30 s" >&2
    exit 1
}

start_emulator --user admin --password admin --guest guest:guest
echo "emulator at $ENDPOINT"
"$VENV/bin/python" "$ROOT/scripts/fnos_python_check.py" \
    --endpoint "$ENDPOINT" --user admin --password admin --guest guest:guest

start_emulator --user admin --password admin --two-factor-code 246810
echo "two-factor emulator at $ENDPOINT"
"$VENV/bin/python" "$ROOT/scripts/fnos_python_check.py" \
    --endpoint "$ENDPOINT" --user admin --password admin --two-factor-code 246810
