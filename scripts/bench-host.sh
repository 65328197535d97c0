#!/usr/bin/env bash
# Host benchmark: ensures .venv-fnos holds the pinned PyPI `fnos` client
# (the same way scripts/fnos-python-check.sh does), then runs naslink-bench
# in release, which measures naslink and, in the same run against the same
# emulator, the Python client. Extra arguments go to naslink-bench
# (e.g. --seconds 3 --mib 64). Needs Python >= 3.11 (PYTHON overrides).
set -euo pipefail

FNOS_VERSION=0.13.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv-fnos"
PYTHON=${PYTHON:-python3}

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

cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" -p host-example --bin naslink-bench -- \
    --python "$VENV/bin/python" "$@"
