#!/usr/bin/env bash
# The firmware example: board build with its size table, and the host
# end-to-end check against the fnOS emulator.
#
#   bash scripts/firmware.sh build       # Nucleo-F767ZI release ELF, with and without `tls`
#   bash scripts/firmware.sh check       # fmt, clippy (host, board, board+tls), panel, display and PNG unit tests
#   bash scripts/firmware.sh host-test   # TAP device in a private netns (needs root):
#                                        # fnOS (password, then a device token only), CFMS
#                                        # (3 with the protocol-13 probe's fallback, then 13
#                                        # with a lockdown event), and CFMS over wss:// with
#                                        # a pinned certificate
#   bash scripts/firmware.sh host-test cfms   # the plain ws:// CFMS runs only
#
# The firmware is its own cargo workspace (firmware-example/Cargo.toml) with
# its own lock file and target directory (target/firmware). Cargo runs from
# firmware-example/ so that its .cargo/config.toml (compact crypto for the
# board, DEFMT_LOG) applies: cargo reads configuration from the working
# directory, not from the manifest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fw="$root/firmware-example"
target_dir="${FIRMWARE_TARGET_DIR:-$root/target/firmware}"
case $target_dir in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
cargo_fw() { # subcommand, then its arguments
    local sub=$1
    shift
    (cd "$fw" && cargo "$sub" --locked --manifest-path "$fw/Cargo.toml" --target-dir "${fw_target:-$target_dir}" "$@")
}

size_tool() {
    if command -v arm-none-eabi-size >/dev/null; then echo arm-none-eabi-size; return; fi
    if command -v size >/dev/null && size --help 2>&1 | grep -q elf32-littlearm; then echo size; return; fi
    if command -v llvm-size >/dev/null; then echo llvm-size; return; fi
    apt-get update -qq >/dev/null && apt-get install -y -qq binutils-arm-none-eabi >/dev/null
    echo arm-none-eabi-size
}

# Budgets in bytes: flash = text + data, static RAM = data + bss.
check_size() { # name elf flash_budget ram_budget
    local name=$1 elf=$2 flash_budget=$3 ram_budget=$4 text data bss
    read -r text data bss < <("$(size_tool)" -A -d "$elf" | awk '
        $1 ~ /^\.(vector_table|text|rodata)$/ { t += $2 }
        $1 ~ /^\.data$/ { d += $2 }
        $1 ~ /^\.(bss|uninit)$/ { b += $2 }
        END { print t, d, b }')
    local flash=$((text + data)) ram=$((data + bss))
    awk -v n="$name" -v f="$flash" -v fb="$flash_budget" -v r="$ram" -v rb="$ram_budget" 'BEGIN {
        printf "%-12s flash %7d B (%5.1f KiB, budget %d KiB)  static RAM %6d B (%4.1f KiB, budget %d KiB)\n",
            n, f, f / 1024, fb / 1024, r, r / 1024, rb / 1024 }'
    [ "$flash" -le "$flash_budget" ] && [ "$ram" -le "$ram_budget" ] || {
        echo "$name: over budget" >&2
        return 1
    }
}

build() {
    rustup target add thumbv7em-none-eabihf >/dev/null
    local elf="$target_dir/thumbv7em-none-eabihf/release/panel-board"
    # fnOS server keys are RSA-2048: the plain fnOS panel leaves the core's
    # 4096-bit arithmetic out (about 4 KiB); the TLS builds keep it for
    # certificates with RSA keys up to 4096 bits. The array joins the one
    # in firmware-example/.cargo/config.toml.
    cargo_fw build --release --target thumbv7em-none-eabihf --features board --bin panel-board \
        --config 'target.thumbv7em-none-eabihf.rustflags=["--cfg", "naslink_rsa_max_2048"]'
    cp "$elf" "$target_dir/panel-board.elf"
    # Built as a pinned wss:// panel is (certificate check included); the
    # pin is a placeholder, only the code size matters here.
    NASLINK_URL="wss://nas.lan:5667/websocket?type=main" NASLINK_TLS_PIN_SHA256="$(printf '0%.0s' {1..64})" \
        cargo_fw build --release --target thumbv7em-none-eabihf --features board,tls --bin panel-board
    cp "$elf" "$target_dir/panel-board-tls.elf"
    # A device-token panel (NASLINK_TOKEN, no password): built with
    # `naslink_token_only`, which leaves the password login's RSA and
    # AES-CBC encryption out of the core. The token is a placeholder (only
    # the prefix is checked at build time); only the size matters here.
    NASLINK_TOKEN="nlt1.AAAAAAAAAAAA" NASLINK_PASSWORD="" fw_target="$target_dir/token-board" \
        cargo_fw build --release --target thumbv7em-none-eabihf --features board --bin panel-board \
        --config 'target.thumbv7em-none-eabihf.rustflags=["--cfg", "naslink_rsa_max_2048", "--cfg", "naslink_token_only"]'
    cp "$target_dir/token-board/thumbv7em-none-eabihf/release/panel-board" "$target_dir/panel-board-token.elf"
    # The CFMS panel, for information: the budgets are set for fnOS.
    cargo_fw build --release --target thumbv7em-none-eabihf --features board,cfms --bin panel-board
    cp "$elf" "$target_dir/panel-board-cfms.elf"
    echo "size ($(size_tool)):"
    "$(size_tool)" -B -d "$target_dir/panel-board.elf" "$target_dir/panel-board-token.elf" \
        "$target_dir/panel-board-tls.elf" "$target_dir/panel-board-cfms.elf"
    local ok=0
    check_size "fnOS" "$target_dir/panel-board.elf" $((128 * 1024)) $((32 * 1024)) || ok=1
    check_size "fnOS, token" "$target_dir/panel-board-token.elf" $((128 * 1024)) $((32 * 1024)) || ok=1
    check_size "fnOS + TLS" "$target_dir/panel-board-tls.elf" $((208 * 1024)) $((64 * 1024)) || ok=1
    check_size "CFMS" "$target_dir/panel-board-cfms.elf" $((128 * 1024)) $((32 * 1024)) || true
    return $ok
}

netns_up() {
    ns="naslink-fw-$$"
    ip netns add "$ns"
    sim_pid=""
    cleanup() {
        if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; fi
        ip netns del "$ns" 2>/dev/null || true
    }
    trap cleanup EXIT
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip tuntap add dev tap0 mode tap
    ip netns exec "$ns" ip addr add 192.168.69.1/24 dev tap0
    ip netns exec "$ns" ip link set tap0 up
}

start_sim() { # log file, then the emulator's arguments
    local out=$1
    shift
    ip netns exec "$ns" "$sim" "$@" >>"$out" 2>&1 &
    sim_pid=$!
    for _ in $(seq 50); do
        ip netns exec "$ns" bash -c "echo > /dev/tcp/192.168.69.1/$port" 2>/dev/null && return
        sleep 0.2
    done
    echo "emulator did not start" >&2
    return 1
}

expect() { # log, description, extended regex, minimum count
    local n
    n=$(grep -Ec "$3" "$1" || true)
    if [ "$n" -ge "$4" ]; then echo "ok   $2 ($n)"; else echo "FAIL $2 ($n < $4)"; fail=1; fi
}

expect_none() { # log, description, extended regex
    local n
    n=$(grep -Ec "$3" "$1" || true)
    if [ "$n" -eq 0 ]; then echo "ok   $2"; else echo "FAIL $2 ($n times)"; fail=1; fi
}

# The CFMS panel with `tls`, built for wss:// with the given extra
# settings (NAME=value ...), copied to $target_dir/panel-host-<variant>.
build_tls_panel() { # variant, then settings
    local variant=$1
    shift
    (
        # Empty counts as unset; the caller's environment must not leak in.
        export NASLINK_URL="wss://192.168.69.1:$port/" NASLINK_TLS_PIN_SHA256= NASLINK_TLS_INSECURE= "$@"
        fw_target="$target_dir/cfms-tls" cargo_fw build --features host,cfms,tls --bin panel-host
    )
    cp "$target_dir/cfms-tls/debug/panel-host" "$target_dir/panel-host-$variant"
}

stop_sim() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
        sim_pid=""
    fi
}

tls_test() {
    echo "--- CFMS over wss:// (self-signed ECDSA P-256 certificate, made at each start)"
    build_tls_panel unpinned
    build_tls_panel insecure NASLINK_TLS_INSECURE=1
    stop_sim
    start_sim "$log/cfms-tls-sim.log" cfms --listen "192.168.69.1:$port" --lockdown \
        --user admin --password admin
    local pin wrong l status
    pin=$(grep -oE 'certificate SHA-256: [0-9a-f]{64}' "$log/cfms-tls-sim.log" | tail -n 1 | cut -d' ' -f3 || true)
    [ -n "$pin" ] || { echo "FAIL the emulator printed no certificate fingerprint"; fail=1; return; }
    # The same fingerprint with its last digit changed.
    wrong="${pin:0:63}$(printf '%x' $(((0x${pin:63:1} + 1) % 16)))"
    build_tls_panel pinned NASLINK_TLS_PIN_SHA256="$pin"
    build_tls_panel wrong-pin NASLINK_TLS_PIN_SHA256="$wrong"

    for variant in pinned wrong-pin unpinned insecure; do
        status=0
        NASLINK_RUN_SECS=8 ip netns exec "$ns" "$target_dir/panel-host-$variant" \
            >"$log/tls-$variant.log" 2>"$log/tls-$variant.err" || status=$?
        echo "  $variant:"
        tail -n 3 "$log/tls-$variant.log" | sed 's/^/    /'
        [ "$status" -eq 0 ] || { echo "FAIL panel-host ($variant) exited with $status"; fail=1; }
    done
    l="$log/tls-pinned.log"
    expect "$l" "pinned: says which certificate it accepts" "^note  \| tls: certificate pinned, sha256 $pin\$" 1
    expect "$l" "pinned: logged in over wss://" '^note  \| logged in$' 1
    expect "$l" "pinned: live lockdown state" '^panel \| lockdown ON$' 1
    expect "$l" "pinned: no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    l="$log/tls-wrong-pin.log"
    expect "$l" "wrong pin: refused, naming the server's fingerprint" \
        "^note  \| tls: server certificate is not the pinned one, sha256 $pin\$" 1
    expect_none "$l" "wrong pin: never logged in" '^note  \| logged in$'
    l="$log/tls-unpinned.log"
    expect "$l" "no pin: wss:// refused at startup" '^note  \| wss:// needs NASLINK_TLS_PIN_SHA256' 1
    expect_none "$l" "no pin: never connected" '^panel \| connections [1-9]'
    l="$log/tls-insecure.log"
    expect "$l" "insecure opt-in: says so at startup" '^note  \| WARNING: tls server certificate NOT verified' 1
    expect "$l" "insecure opt-in: logged in" '^note  \| logged in$' 1
    stop_sim
}

# The fnOS panel built with a device token and no password: the token
# comes from `naslink login --device-token` against the emulator; the panel
# must log in with it, and once the emulator restarts (forgetting every
# login, as a NAS does with a revoked token) show that the token is refused.
token_test() {
    echo "--- fnOS with a device token only (NASLINK_TOKEN, no password in the build)"
    local url="ws://192.168.69.1:$port/websocket?type=main" token status=0 l
    start_sim "$log/token-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin
    token=$(ip netns exec "$ns" env -u NASLINK_TOKEN NASLINK_PASSWORD=admin \
        "$naslink" --url "$url" --timeout 10 login --device-token 2>>"$log/token-login.err" || true)
    case $token in
        nlt1.*) echo "ok   naslink login --device-token printed a token" ;;
        *) echo "FAIL naslink login --device-token printed no token"; fail=1; stop_sim; return ;;
    esac
    (
        export NASLINK_URL="$url" NASLINK_PASSWORD= NASLINK_USER= NASLINK_TOKEN="$token"
        # Its own target directory: the password build in $target_dir/debug
        # is what the other runs use.
        # As the board's token build: no password login code at all, so
        # this run also proves the token login needs none of it.
        RUSTFLAGS="--cfg naslink_token_only" fw_target="$target_dir/token" \
            cargo_fw build --features host --bin panel-host
    )
    cp "$target_dir/token/debug/panel-host" "$target_dir/panel-host-token"
    NASLINK_RUN_SECS=6 ip netns exec "$ns" "$target_dir/panel-host-token" \
        >"$log/token.log" 2>"$log/token.err" || status=$?
    tail -n 3 "$log/token.log"
    l="$log/token.log"
    expect "$l" "token only: logged in" '^note  \| logged in$' 1
    expect "$l" "token only: host name from the NAS" '^panel \| fnos-sim +online$' 1
    expect "$l" "token only: live figures" '^panel \| cpu [0-9]+% [0-9]+C  mem [0-9]+%$' 1
    expect "$l" "token only: no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    [ "$status" -eq 0 ] || { echo "FAIL panel-host (token) exited with $status"; fail=1; }
    # A fresh emulator knows no login: the token is refused, as a revoked one.
    stop_sim
    start_sim "$log/token-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin
    status=0
    NASLINK_RUN_SECS=6 ip netns exec "$ns" "$target_dir/panel-host-token" \
        >"$log/token-refused.log" 2>"$log/token-refused.err" || status=$?
    tail -n 3 "$log/token-refused.log"
    l="$log/token-refused.log"
    expect "$l" "refused token: says so" '^note  \| the NAS refused the device token \(revoked or expired\)$' 1
    expect "$l" "refused token: the panel shows it" 'token refused$' 1
    expect_none "$l" "refused token: never logged in" '^note  \| logged in$'
    [ "$status" -eq 0 ] || { echo "FAIL panel-host (refused token) exited with $status"; fail=1; }
    stop_sim
}

# The fnOS runs of host_test (its locals are visible here).
fnos_runs() {
    echo "--- fnOS: each connection is cut after 40 frames; the panel must reconnect"
    start_sim "$log/fnos-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin \
        --drop-after-frames 40
    NASLINK_RUN_SECS=$secs ip netns exec "$ns" "$target_dir/debug/panel-host" \
        >"$log/fnos.log" 2>"$log/fnos.err" || status=$?
    kill "$sim_pid"
    wait "$sim_pid" 2>/dev/null || true
    tail -n 8 "$log/fnos.log"
    l="$log/fnos.log"
    expect "$l" "logged in, at least twice" '^note  \| logged in$' 2
    expect "$l" "host name from the NAS" '^panel \| fnos-sim +online$' 1
    expect "$l" "real CPU (busy, temperature) and memory figures" '^panel \| cpu [0-9]+% [0-9]+C  mem [0-9]+%$' 1
    expect "$l" "storage used/total" '^panel \| disk [0-9.]+[KMGTP]/[0-9.]+[KMGTP]$' 1
    expect "$l" "health verdict OK" '^panel \| OK$' 1
    expect "$l" "no alerts" '^panel \| no alerts$' 1
    expect "$l" "hottest disk and pool state" '^panel \| [a-z0-9]+ [0-9]+C +pool ok$' 1
    expect_none "$l" "never a warning" '^panel \| (WARNING|CRITICAL)'
    expect "$l" "the forced disconnect was seen" '^note  \| (connection closed|transport failed)$' 1
    expect "$l" "reconnected" '^note  \| connection [2-9]' 1
    expect "$l" "no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    [ "$status" -eq 0 ] || { echo "panel-host (fnOS) exited with $status"; fail=1; }

    token_test
    echo "--- fnOS, unhealthy: vol1's pool degraded, disk sda at 55 C"
    status=0
    start_sim "$log/fnos-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin \
        --degraded-pool --hot-disk 55
    rm -f "$log/panel-unhealthy.png"
    NASLINK_RUN_SECS=8 NASLINK_PNG="$log/panel-unhealthy.png" ip netns exec "$ns" "$target_dir/debug/panel-host" \
        >"$log/fnos-unhealthy.log" 2>"$log/fnos-unhealthy.err" || status=$?
    stop_sim
    tail -n 7 "$log/fnos-unhealthy.log"
    l="$log/fnos-unhealthy.log"
    expect "$l" "health verdict CRITICAL" '^panel \| CRITICAL$' 1
    expect "$l" "the worst reason first" '^panel \| pool vol1 degraded$' 1
    expect "$l" "hottest disk and pool state" '^panel \| sda 55C +degraded$' 1
    expect_none "$l" "never OK" '^panel \| OK'
    expect "$l" "no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    [ "$status" -eq 0 ] || { echo "panel-host (fnOS, unhealthy) exited with $status"; fail=1; }
    # NASLINK_PNG: the last refresh as a 128x64 one-bit grayscale PNG.
    if python3 - "$log/panel-unhealthy.png" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR", "not a PNG"
assert struct.unpack(">IIBB", d[16:26]) == (128, 64, 1, 0), struct.unpack(">IIBB", d[16:26])
PY
    then echo "ok   the panel picture (128x64 PNG)"; else echo "FAIL the panel picture"; fail=1; fi

    echo "--- fnOS, a non-admin account: the parts it may not read (errno 4352) show as unknown"
    status=0
    NASLINK_URL="ws://192.168.69.1:$port/websocket?type=main" NASLINK_USER=guest NASLINK_PASSWORD=guest \
        fw_target="$target_dir/guest" cargo_fw build --features host --bin panel-host
    start_sim "$log/fnos-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin \
        --guest guest:guest --degraded-pool
    NASLINK_RUN_SECS=8 ip netns exec "$ns" "$target_dir/guest/debug/panel-host" \
        >"$log/fnos-guest.log" 2>"$log/fnos-guest.err" || status=$?
    stop_sim
    tail -n 7 "$log/fnos-guest.log"
    l="$log/fnos-guest.log"
    expect "$l" "logged in" '^note  \| logged in$' 1
    expect "$l" "host name still shown" '^panel \| fnos-sim +online$' 1
    expect "$l" "no verdict with neither disks nor pools" '^panel \| health --$' 1
    expect_none "$l" "never a verdict" '^panel \| (OK|WARNING|CRITICAL)'
    expect "$l" "disks and pools unknown" '^panel \| temp -- +pool --$' 1
    [ "$status" -eq 0 ] || { echo "panel-host (fnOS, non-admin) exited with $status"; fail=1; }

    echo "--- fnOS: another login kicks the session after 3 s; the panel must stop"
    status=0
    start_sim "$log/fnos-sim.log" fnos --listen "192.168.69.1:$port" --user admin --password admin \
        --kick-after 3
    NASLINK_RUN_SECS=10 ip netns exec "$ns" "$target_dir/debug/panel-host" \
        >"$log/fnos-kicked.log" 2>"$log/fnos-kicked.err" || status=$?
    stop_sim
    tail -n 9 "$log/fnos-kicked.log"
    l="$log/fnos-kicked.log"
    expect "$l" "logged in" '^note  \| logged in$' 1
    expect "$l" "the kicked push was seen" '^note  \| kicked: another login took this session over$' 1
    expect "$l" "the panel says why" '^panel \| fnos-sim +kicked$' 1
    expect "$l" "and that it stopped" '^panel \| kicked: not retrying$' 1
    expect_none "$l" "never reconnected" '^note  \| connection [2-9]'
    [ "$status" -eq 0 ] || { echo "panel-host (fnOS, kicked) exited with $status"; fail=1; }

}

host_test() {
    local only="${1:-}" l
    local secs="${NASLINK_RUN_SECS:-30}" log="$target_dir/host-test" status=0
    port=5666
    fail=0
    mkdir -p "$log"
    rm -f "$log"/*.log "$log"/*.err
    cargo build --locked -p naslink-sim -p host-example --bin naslink-sim --bin naslink \
        --manifest-path "$root/Cargo.toml"
    local host_target
    host_target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"
    sim="$host_target/naslink-sim"
    naslink="$host_target/naslink"
    export NASLINK_USER=admin NASLINK_PASSWORD=admin NASLINK_POLL_SECS=1
    if [ "$only" != cfms ]; then
        NASLINK_URL="ws://192.168.69.1:$port/websocket?type=main" \
            cargo_fw build --features host --bin panel-host
    fi
    NASLINK_URL="ws://192.168.69.1:$port/" \
        fw_target="$target_dir/cfms" cargo_fw build --features host,cfms --bin panel-host
    netns_up

    # `host-test cfms`: the plain ws:// CFMS runs only.
    if [ "$only" != cfms ]; then fnos_runs; fi

    echo "--- CFMS: the server is restarted halfway; the panel must reconnect"
    status=0
    start_sim "$log/cfms-sim.log" cfms --listen "192.168.69.1:$port" --plain --lockdown \
        --user admin --password admin
    NASLINK_RUN_SECS=16 ip netns exec "$ns" "$target_dir/cfms/debug/panel-host" \
        >"$log/cfms.log" 2>"$log/cfms.err" &
    local panel_pid=$!
    sleep 6
    kill "$sim_pid"
    wait "$sim_pid" 2>/dev/null || true
    start_sim "$log/cfms-sim.log" cfms --listen "192.168.69.1:$port" --plain --lockdown \
        --user admin --password admin
    wait "$panel_pid" || status=$?
    tail -n 8 "$log/cfms.log"
    l="$log/cfms.log"
    expect "$l" "logged in, at least twice" '^note  \| logged in$' 2
    expect "$l" "server name" '^panel \| CFMS WebSocket online$' 1
    expect "$l" "version" '^panel \| version [0-9]' 1
    expect "$l" "lockdown state" '^panel \| lockdown ON$' 1
    expect "$l" "reconnected" '^panel \| connections [2-9]' 1
    expect "$l" "the protocol-13 probe was closed: text from then on" \
        '^note  \| protocol 3-5 server: reconnecting speaking text$' 1
    expect "$l" "protocol version" '^panel \| protocol 3$' 1
    expect "$l" "no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    [ "$status" -eq 0 ] || { echo "panel-host (CFMS) exited with $status"; fail=1; }

    echo "--- CFMS protocol 13 (negotiated): an admin turns lockdown on; the panel shows the event"
    status=0
    stop_sim
    start_sim "$log/cfms13-sim.log" cfms --listen "192.168.69.1:$port" --plain --protocol 13 \
        --user admin --password admin
    NASLINK_RUN_SECS=12 ip netns exec "$ns" "$target_dir/cfms/debug/panel-host" \
        >"$log/cfms13.log" 2>"$log/cfms13.err" &
    panel_pid=$!
    sleep 5
    ip netns exec "$ns" "$naslink" --url "ws://192.168.69.1:$port/" --timeout 10 \
        raw lockdown '{"status":true}' >"$log/cfms13-lockdown.out" 2>&1 ||
        { echo "FAIL naslink raw lockdown (protocol 13)"; fail=1; }
    wait "$panel_pid" || status=$?
    stop_sim
    tail -n 8 "$log/cfms13.log"
    l="$log/cfms13.log"
    expect "$l" "13: logged in" '^note  \| logged in$' 1
    expect "$l" "13: server name" '^panel \| CFMS WebSocket online$' 1
    expect "$l" "13: protocol version" '^panel \| protocol 13$' 1
    expect "$l" "13: lockdown off at first" '^panel \| lockdown OFF$' 1
    expect "$l" "13: the lockdown event arrived" '^note  \| lockdown pushed: ON$' 1
    expect "$l" "13: lockdown shown" '^panel \| lockdown ON$' 1
    expect_none "$l" "13: never fell back to text" '^note  \| protocol 3-5 server'
    expect "$l" "13: no heap allocation in the panel task" '^note  \| heap allocations in the panel task: 0$' 1
    [ "$status" -eq 0 ] || { echo "panel-host (CFMS 13) exited with $status"; fail=1; }

    if [ "$only" != cfms ]; then tls_test; fi
    return $fail
}

check() {
    rustup target add thumbv7em-none-eabihf >/dev/null
    (cd "$fw" && cargo fmt -- --check)
    cargo_fw clippy --features host --all-targets -- -D warnings
    cargo_fw clippy --release --target thumbv7em-none-eabihf --features board --bin panel-board -- -D warnings
    cargo_fw clippy --release --target thumbv7em-none-eabihf --features board,tls --bin panel-board -- -D warnings
    cargo_fw clippy --features host,cfms --all-targets -- -D warnings
    cargo_fw clippy --release --target thumbv7em-none-eabihf --features board,cfms,tls --bin panel-board -- -D warnings
    # With `host`: the PNG picture's test too.
    cargo_fw test --lib --features host
}

case "${1:-}" in
    check) check ;;
    build) build ;;
    host-test) host_test "${2:-}" ;;
    *) echo "usage: $0 check|build|host-test" >&2; exit 2 ;;
esac
