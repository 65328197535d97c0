#!/usr/bin/env bash
# Every check CI runs, in one command: bash scripts/test.sh
#
# Installs what it needs (Rust targets and components, the Python peers in
# virtualenvs under the repo) and fails on the first failing step.
# NASLINK_SKIP=autobahn,python,python-pkg,firmware skips named slow steps locally; CI skips none.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

skip="${NASLINK_SKIP:-}"
step() { printf '\n==> %s\n' "$*"; }
skipped() { [[ ",$skip," == *",$1,"* ]]; }

step "toolchain: targets and components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi >/dev/null

step "promtool (Debian package prometheus): the exporter test lints a scrape with it"
if ! command -v promtool >/dev/null; then
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
export NASLINK_REQUIRE_PROMTOOL=1

step "format"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, integration, doc)"
cargo test --workspace --locked

step "main job: the README's first command (debug build), as a newcomer runs it"
cargo run --locked -q -p host-example -- demo

step "no_std: naslink-core for Cortex-M"
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    cargo build -p naslink-core --locked --release --target "$target"
done

step "no_std + no allocator: link check (built alone)"
cargo build --locked --manifest-path tests/nostd-check/Cargo.toml --target-dir target/nostd-check
cargo build --locked --release --manifest-path tests/nostd-check/Cargo.toml --target-dir target/nostd-check
target/nostd-check/debug/naslink-nostd-check
target/nostd-check/release/naslink-nostd-check
echo "nostd-check: linked without std or allocator, and ran"

step "C ABI: panel.c (gcc -Werror) against the fnOS emulator under valgrind and ASan/UBSan"
bash scripts/capi.sh
step "C ABI: thumbv7em staticlib linked into bare-metal C with arm-none-eabi-gcc (flash/RAM budget)"
bash scripts/capi-bare-metal.sh

if skipped autobahn; then
    step "autobahn: skipped (NASLINK_SKIP)"
else
    step "autobahn testsuite (sections 1-10)"
    bash scripts/autobahn.sh run
fi

if [ -f scripts/fnos-python-check.sh ]; then
    if skipped python; then
        step "fnOS emulator vs the PyPI fnos client: skipped (NASLINK_SKIP)"
    else
        step "fnOS emulator vs the PyPI fnos client"
        bash scripts/fnos-python-check.sh
    fi
fi

if skipped python-pkg; then
    step "Python package (adapters/python): skipped (NASLINK_SKIP)"
else
    step "Python package (adapters/python): pip install, pytest against the emulators"
    bash scripts/python.sh
fi

if skipped firmware; then
    step "firmware: skipped (NASLINK_SKIP)"
else
    step "firmware: lint and panel tests (host, board, board+tls, cfms)"
    bash scripts/firmware.sh check
    step "firmware: Nucleo-F767ZI release builds within the flash/RAM budgets"
    bash scripts/firmware.sh build
    step "firmware: host build end to end against the emulators (TAP device in a netns)"
    bash scripts/firmware.sh host-test
fi

step "all checks passed"
