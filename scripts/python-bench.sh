#!/usr/bin/env bash
# naslink.aio (the Python package) against the PyPI `fnos` client (pyfnos),
# the same signed appcgi.sysinfo.getHostName requests with 1 and 64 in
# flight, against the same release-built fnOS emulator, in the same run:
# ROUNDS rounds (default 5), each measuring both clients one after the
# other (alternating which goes first), then the median of the per-round
# rate ratios. Creates target/py-venv (the package, as scripts/python.sh
# installs it) and .venv-fnos (pinned fnos, as scripts/fnos-python-check.sh).
# Usage: bash scripts/python-bench.sh [--seconds S] [--rounds N]
set -euo pipefail

FNOS_VERSION=0.13.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SECONDS_EACH=2
ROUNDS=5
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

# pyfnos
FNOS_VENV="$ROOT/.venv-fnos"
if [ ! -x "$FNOS_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$FNOS_VENV"
fi
if [ "$("$FNOS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("fnos"))' 2>/dev/null)" != "$FNOS_VERSION" ]; then
    "$FNOS_VENV/bin/python" -m pip install --quiet "fnos==$FNOS_VERSION"
fi

# naslink (release build of the extension, as pip builds it)
VENV="$ROOT/target/py-venv"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.9,<2"
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-build-isolation --force-reinstall --no-deps "$ROOT/adapters/python"

cargo build --quiet --locked --release --manifest-path "$ROOT/Cargo.toml" -p naslink-sim --bin naslink-sim
SIM="$TARGET_DIR/release/naslink-sim"

LOG=$(mktemp)
OUT=$(mktemp -d)
"$SIM" fnos --listen 127.0.0.1:0 --fixed-key >"$LOG" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true; wait $SIM_PID 2>/dev/null || true; rm -rf "$LOG" "$OUT"' EXIT
ENDPOINT=
for _ in $(seq 1 300); do
    ENDPOINT=$(sed -n 's#^listening ws://\([^/]*\)/.*#\1#p' "$LOG")
    [ -n "$ENDPOINT" ] && break
    sleep 0.1
done
[ -n "$ENDPOINT" ] || { cat "$LOG" >&2; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
    run_naslink() { "$VENV/bin/python" "$ROOT/scripts/naslink_python_bench.py" --endpoint "$ENDPOINT" --seconds "$SECONDS_EACH" >"$OUT/naslink-$round.json"; }
    run_pyfnos() { "$FNOS_VENV/bin/python" "$ROOT/scripts/fnos_python_bench.py" --endpoint "$ENDPOINT" --seconds "$SECONDS_EACH" >"$OUT/pyfnos-$round.json"; }
    if [ $((round % 2)) -eq 1 ]; then run_naslink; run_pyfnos; else run_pyfnos; run_naslink; fi
done

"$VENV/bin/python" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {1: [], 64: []}
print(f"{'round':>5} {'in flight':>9} {'naslink.aio req/s':>18} {'pyfnos req/s':>13} {'ratio':>6} {'CPU/req ratio':>13}")
for r in range(1, rounds + 1):
    a = json.load(open(f"{out}/naslink-{r}.json"))["results"]
    b = json.load(open(f"{out}/pyfnos-{r}.json"))["results"]
    for x, y in zip(a, b):
        n = x["in_flight"]
        ratio = x["requests_per_second"] / y["requests_per_second"]
        cpu = (x["cpu_seconds"] / x["requests"]) / (y["cpu_seconds"] / y["requests"])
        rows[n].append((x["requests_per_second"], y["requests_per_second"], ratio, cpu))
        print(f"{r:>5} {n:>9} {x['requests_per_second']:>18.0f} {y['requests_per_second']:>13.0f} {ratio:>6.2f} {cpu:>13.2f}")
for n, target in ((1, 1.0), (64, 3.0)):
    med = statistics.median(r[2] for r in rows[n])
    a = statistics.median(r[0] for r in rows[n])
    b = statistics.median(r[1] for r in rows[n])
    cpu = statistics.median(r[3] for r in rows[n])
    verdict = "meets" if med >= target else "MISSES"
    print(f"median, {n:>2} in flight: naslink.aio {a:.0f} req/s, pyfnos {b:.0f} req/s, "
          f"ratio {med:.2f} ({verdict} the >= {target:g}x target), CPU per request ratio {cpu:.2f}")
PY
