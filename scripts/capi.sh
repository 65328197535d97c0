#!/usr/bin/env bash
# The C ABI from C: build libnaslink_capi.a, compile adapters/c/examples/panel.c
# with gcc -Wall -Wextra -Werror, and run it against the fnOS and the CFMS
# emulators (CFMS at protocol 3, where the negotiation closes the first
# connection and the program reconnects speaking text, and at 13) twice:
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

lib=target/capi/libnaslink_capi.a
out=target/capi-c
mkdir -p "$out"

# The header on its own: C99 to C23 and C++, pedantic, no warnings.
printf '#include "naslink.h"\nint main(void) { return naslink_fnos_size() == 0; }\n' \
    >"$out/header.c"
cp "$out/header.c" "$out/header.cpp"
for std in c99 c11 c2x; do
    gcc -std=$std -pedantic -Wall -Wextra -Werror -Iadapters/c/include -c "$out/header.c" \
        -o "$out/header.o"
done
g++ -std=c++11 -pedantic -Wall -Wextra -Werror -Iadapters/c/include -c "$out/header.cpp" \
    -o "$out/header.o"
echo "capi: naslink.h compiles as C99, C11, C2x and C++11"
# A panic in the library aborts the C program (SIGABRT) instead of
# unwinding into it: the same build plus a function that panics.
cargo rustc --locked -q -p naslink-capi --profile capi --features panic-handler,panic-probe \
    --crate-type staticlib
cp "$lib" "$out/libnaslink_probe.a"
printf 'void naslink_panic_probe(void);\nint main(void) { naslink_panic_probe(); return 0; }\n' \
    >"$out/panic_probe.c"
gcc -std=c11 -Wall -Wextra -Werror "$out/panic_probe.c" "$out/libnaslink_probe.a" -o "$out/panic_probe"
status=0
"$out/panic_probe" 2>/dev/null || status=$?
[ "$status" -eq 134 ] || { echo "capi: a panic should end in SIGABRT (134), got $status"; exit 1; }
echo "capi: a panic in the library aborts the C program (SIGABRT)"

# The host staticlib: no std, panic = abort, the panic handler calls abort().
cargo rustc --locked -q -p naslink-capi --profile capi --features panic-handler \
    --crate-type staticlib
cargo build --locked -q -p naslink-sim

cflags=(-std=c11 -Wall -Wextra -Werror -g -Iadapters/c/include)
gcc "${cflags[@]}" -O1 adapters/c/examples/panel.c "$lib" -o "$out/panel"
gcc "${cflags[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=all adapters/c/examples/panel.c "$lib" -o "$out/panel-asan"

# The emulators on free ports: fnOS pushing storageChanged every half
# second, CFMS over plain ws://.
target/debug/naslink-sim fnos --listen 127.0.0.1:0 --fixed-key --push-every 0.5 \
    >"$out/fnos.log" 2>&1 &
fnos_sim=$!
target/debug/naslink-sim cfms --listen 127.0.0.1:0 --plain >"$out/cfms.log" 2>&1 &
cfms_sim=$!
target/debug/naslink-sim cfms --listen 127.0.0.1:0 --plain --protocol 13 >"$out/cfms13.log" 2>&1 &
cfms13_sim=$!
trap 'kill "$fnos_sim" "$cfms_sim" "$cfms13_sim" 2>/dev/null || true' EXIT
# The URL an emulator printed (sed expression), waiting up to 10 s.
url_in() {
    local log=$1 expr=$2 url=""
    for _ in $(seq 100); do
        url=$(sed -n "$expr" "$log" | head -n1)
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { echo "capi: emulator did not start" >&2; cat "$log" >&2; return 1; }
    echo "$url"
}
url=$(url_in "$out/fnos.log" 's/^listening //p')
cfms_url=$(url_in "$out/cfms.log" 's/.* at \(ws:[^,]*\),.*/\1/p')
cfms13_url=$(url_in "$out/cfms13.log" 's/.* at \(ws:[^,]*\),.*/\1/p')
# A CFMS run's output: the protocol spoken, and whether the program was
# told to reconnect speaking text (protocol 3) or kept its first
# connection (13).
cfms_spoke() { # output file, protocol, reconnected (yes/no)
    grep -q "speaking protocol $2 " "$1" || { echo "capi: not protocol $2:"; cat "$1"; exit 1; }
    if [ "$3" = yes ]; then
        grep -q "reconnect with protocol_version 3" "$1" || { echo "capi: no reconnect"; exit 1; }
    elif grep -q "reconnect with protocol_version" "$1"; then
        echo "capi: protocol $2 should keep its first connection"; exit 1
    fi
}

echo "capi: panel (fnOS, CFMS 3 and 13) under valgrind"
memcheck=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite)
"${memcheck[@]}" "$out/panel" "$url" admin admin
"${memcheck[@]}" "$out/panel" --cfms "$cfms_url" admin admin | tee "$out/cfms3.out"
cfms_spoke "$out/cfms3.out" 3 yes
"${memcheck[@]}" "$out/panel" --cfms "$cfms13_url" admin admin | tee "$out/cfms13.out"
cfms_spoke "$out/cfms13.out" 13 no
echo "capi: panel (fnOS, CFMS 3 and 13) with AddressSanitizer + UBSan"
"$out/panel-asan" "$url" admin admin
"$out/panel-asan" --cfms "$cfms_url" admin admin | tee "$out/cfms3.out"
cfms_spoke "$out/cfms3.out" 3 yes
"$out/panel-asan" --cfms "$cfms13_url" admin admin | tee "$out/cfms13.out"
cfms_spoke "$out/cfms13.out" 13 no
echo "capi: a wrong password fails cleanly (exit 1)"
status=0
"$out/panel" "$url" admin wrong >/dev/null 2>&1 || status=$?
[ "$status" -eq 1 ] || { echo "capi: expected exit 1, got $status"; exit 1; }
echo "capi: ok"
