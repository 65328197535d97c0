#!/usr/bin/env bash
# Link proof for C firmware: build libnaslink_capi.a for thumbv7em-none-eabihf
# (profile capi-firmware: opt-level z, LTO, panic = abort), link it into a
# bare-metal C program with arm-none-eabi-gcc (-nostdlib and a linker
# script: no C library at all; memcpy and friends come from the Rust
# library's compiler-builtins), and print the flash
# (text + data) and static RAM (data + bss) the library adds over the same
# program without it, and the connection memory the program provides.
# Fails over 96 KiB flash or 24 KiB RAM (library static RAM + connection
# memory) for fnOS.
#   bash scripts/capi-bare-metal.sh
# Installs gcc-arm-none-eabi with apt-get when it is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v arm-none-eabi-gcc >/dev/null; then
    echo "capi-bare-metal: installing gcc-arm-none-eabi"
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq gcc-arm-none-eabi >/dev/null
fi
rustup target add thumbv7em-none-eabihf >/dev/null

target=thumbv7em-none-eabihf
cargo rustc --locked -q -p naslink-capi --profile capi-firmware --target "$target" \
    --features panic-handler --crate-type staticlib
lib="target/$target/capi-firmware/libnaslink_capi.a"
out=target/capi-bare-metal
mkdir -p "$out"

src=adapters/c/bare-metal
cflags=(-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16 -Os -std=c11
    -Wall -Wextra -Werror -ffunction-sections -fdata-sections -Iadapters/c/include
    -nostdlib -T "$src/bare.ld" -Wl,--gc-sections -Wl,-z,noexecstack)
link() { # name, connection memory, extra flags...
    local name=$1 mem=$2
    shift 2
    arm-none-eabi-gcc "${cflags[@]}" -DCONN_MEMORY="$mem" "$@" "$src/bare.c" \
        -o "$out/$name.elf" "$lib" -lgcc
}
# text data bss of an ELF.
sizes() { arm-none-eabi-size "$1" | awk 'NR == 2 { print $1, $2, $3 }'; }

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

# measure NAME SIZE_FN [flags]: link the program (with and without the
# library calls) and print what the library adds; sets flash and total_ram.
measure() {
    local name=$1 size_fn=$2
    shift 2
    # The connection memory this target needs: the size function returns
    # a constant; read it from the linked code.
    link "$name-probe" 65536 "$@"
    local conn
    conn=$(arm-none-eabi-objdump -d --disassemble="$size_fn" "$out/$name-probe.elf" |
        sed -n 's/.*movw\?\s\+r0, #\([0-9]\+\).*/\1/p' | head -n1)
    [ -n "$conn" ] || { echo "capi-bare-metal: could not read $size_fn()"; exit 1; }
    conn=$(( (conn + 7) / 8 * 8 ))
    link "$name" "$conn" "$@"
    link "$name-baseline" "$conn" -DBASELINE "$@"
    local t1 d1 b1 t0 d0 b0 ram
    read -r t1 d1 b1 < <(sizes "$out/$name.elf")
    read -r t0 d0 b0 < <(sizes "$out/$name-baseline.elf")
    flash=$(( (t1 + d1) - (t0 + d0) ))
    ram=$(( (d1 + b1) - (d0 + b0) ))
    total_ram=$(( ram + conn ))
    echo "capi-bare-metal ($target, profile capi-firmware, $name):"
    echo "  flash added (text+data):         $flash bytes ($(kib "$flash"))"
    echo "  static RAM added (data+bss):     $ram bytes ($(kib "$ram"))"
    echo "  connection memory (caller's):    $conn bytes ($(kib "$conn"))"
    echo "  RAM total (static + connection): $total_ram bytes ($(kib "$total_ram"))"
}

measure cfms naslink_cfms_size -DCFMS
echo "  (CFMS: for information)"
measure fnos naslink_fnos_size
[ "$flash" -le $((96 * 1024)) ] || { echo "capi-bare-metal: fnOS over 96 KiB flash"; exit 1; }
[ "$total_ram" -le $((24 * 1024)) ] || { echo "capi-bare-metal: fnOS over 24 KiB RAM"; exit 1; }
echo "capi-bare-metal: ok (fnOS within 96 KiB flash and 24 KiB RAM)"
