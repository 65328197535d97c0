#!/usr/bin/env bash
# The Python package (adapters/python): builds and installs it into a venv
# under the repository (target/py-venv) with pip, as a user would
# (`pip install ./adapters/python`), then runs its pytest suite against the
# emulators. Needs CPython >= 3.9 (3.11 by default; PYTHON overrides).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV="$ROOT/target/py-venv"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9,<2" "pytest>=8" "mypy>=1.10"

cargo build --quiet --locked --manifest-path "$ROOT/Cargo.toml" -p naslink-sim --bin naslink-sim

# The binding is its own cargo workspace: the main format and clippy steps
# do not reach it. Clippy builds PyO3, which needs the interpreter.
cargo fmt --manifest-path "$ROOT/adapters/python/Cargo.toml" -- --check
PYO3_PYTHON="$VENV/bin/python" cargo clippy --quiet --locked \
    --manifest-path "$ROOT/adapters/python/Cargo.toml" --all-targets -- -D warnings

# The build backend from the venv (no isolated download on every run); the
# extension's cargo target dir (adapters/python/target) keeps builds warm.
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-build-isolation --force-reinstall --no-deps "$ROOT/adapters/python"

cd "$ROOT/adapters/python"
# The stubs and the asyncio layer type-check strictly against each other.
"$VENV/bin/python" -m mypy --strict python/naslink
NASLINK_SIM="$TARGET_DIR/debug/naslink-sim" "$VENV/bin/python" -m pytest -q tests "$@"
