#!/usr/bin/env bash
# The C ABI from C: build libnaslink_capi.a, compile adapters/c/examples/panel.c
# with gcc -Wall -Wextra -Werror, and run it against the fnOS emulator twice:
# under valgrind (memcheck, any error fails) and built with
# -fsanitize=address,undefined.
#   bash scripts/capi.sh
# Installs valgrind with apt-get when it is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v valgrind >/dev/null; then
    echo "capi: installing valgrind"
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq valgrind >/dev/null
fi

# The host staticlib: no std, panic = abort, the panic handler calls abort().
cargo rustc --locked -q -p naslink-capi --profile capi --features panic-handler \
    --crate-type staticlib
cargo build --locked -q -p naslink-sim
lib=target/capi/libnaslink_capi.a
out=target/capi-c
mkdir -p "$out"

cflags=(-std=c11 -Wall -Wextra -Werror -g -Iadapters/c/include)
gcc "${cflags[@]}" -O1 adapters/c/examples/panel.c "$lib" -o "$out/panel"
gcc "${cflags[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=all adapters/c/examples/panel.c "$lib" -o "$out/panel-asan"

# The emulator on a free port, pushing storageChanged every half second.
log="$out/sim.log"
target/debug/naslink-sim fnos --listen 127.0.0.1:0 --fixed-key --push-every 0.5 >"$log" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
    url=$(sed -n 's/^listening //p' "$log" | head -n1)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "capi: emulator did not start"; cat "$log"; exit 1; }

echo "capi: panel under valgrind"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    "$out/panel" "$url" admin admin
echo "capi: panel with AddressSanitizer + UBSan"
"$out/panel-asan" "$url" admin admin
echo "capi: a wrong password fails cleanly (exit 1)"
status=0
"$out/panel" "$url" admin wrong >/dev/null 2>&1 || status=$?
[ "$status" -eq 1 ] || { echo "capi: expected exit 1, got $status"; exit 1; }
echo "capi: ok"
