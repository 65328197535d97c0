#!/usr/bin/env bash
# Autobahn|Testsuite conformance run for naslink-core's WebSocket client.
#
#   bash scripts/autobahn.sh install   # Python 2.7 virtualenv with wstest (idempotent)
#   bash scripts/autobahn.sh run       # fuzzingserver on 127.0.0.1, our driver, compare
#
# autobahntestsuite is Python 2.7 only and its sdist lacks the requirements
# file, so its dependencies are pinned here by hand (versions known to install
# together; see shared/notes/dependencies.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv-autobahn"
tools="$root/.venv-tools"
work="$root/target/autobahn"
port="${AUTOBAHN_PORT:-9001}"

find_py27() {
    for p in "${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python2.7" "$(command -v python2.7 || true)"; do
        [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return; }
    done
    echo "autobahn.sh: no Python 2.7 found (pyenv 2.7.18 expected)" >&2
    exit 1
}

install() {
    if [ -x "$venv/bin/wstest" ] && "$venv/bin/python" -c 'import autobahntestsuite' 2>/dev/null; then
        return
    fi
    local py27
    py27=$(find_py27)
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check 'virtualenv==20.21.1'
    rm -rf "$venv"
    "$tools/bin/virtualenv" --quiet -p "$py27" "$venv"
    local pip=("$venv/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning)
    "${pip[@]}" 'pip==20.3.4' 'setuptools==44.0.0' 'wheel==0.36.2'
    "${pip[@]}" 'incremental==16.10.1' 'six==1.16.0' 'pyOpenSSL==19.1.0' 'cryptography==3.3.2'
    "${pip[@]}" --no-build-isolation 'Twisted==19.10.0'
    "${pip[@]}" 'txaio==2.1.0' 'zope.interface==4.6.0' 'jinja2==2.11.3' 'markupsafe==1.1.1' \
        'Werkzeug==1.0.1' 'klein==17.10.0' 'service_identity==18.1.0' 'unittest2==1.1.0' \
        'autobahn[accelerate,twisted]==0.10.9'
    "${pip[@]}" --no-deps 'autobahntestsuite==25.10.1'
    "$venv/bin/python" -c 'import autobahntestsuite' >/dev/null
}

run() {
    install
    rm -rf "$work"
    mkdir -p "$work"
    cat > "$work/fuzzingserver.json" <<JSON
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$work/reports",
  "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
    cargo build --release --quiet -p naslink-autobahn
    (cd "$work" && exec "$venv/bin/python" "$root/scripts/wstest_loopback.py" -m fuzzingserver -s fuzzingserver.json >"$work/wstest.log" 2>&1) &
    local server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
    timeout 900 "$root/target/release/naslink-autobahn" "ws://127.0.0.1:$port"
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    trap - EXIT
    python3 "$root/scripts/autobahn_compare.py" "$work/reports/index.json" "$root/tests/autobahn/expected.json"
}

case "${1:-run}" in
    install) install ;;
    run) run ;;
    *) echo "usage: $0 install|run" >&2; exit 2 ;;
esac
