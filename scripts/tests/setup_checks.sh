#!/usr/bin/env bash
# Tests of scripts/lib/checks.sh against fake directory trees and fake PATHs: each case
# builds the machine it describes and asks the check, so a loose check cannot come back.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/checks.sh
. "$here/../lib/checks.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# A PATH with only the basic tools the checks use, so the machine's own nats-server,
# node or llvm-config never leak into a case.
base="$work/base-bin"
mkdir -p "$base"
for tool in sed grep tr cat head; do
    ln -s "$(command -v "$tool")" "$base/$tool"
done

check() { # check NAME EXPECTED(pass|fail) COMMAND...
    local name="$1" expected="$2"
    shift 2
    local got=fail
    if "$@" >/dev/null 2>&1; then got=pass; fi
    if [ "$got" = "$expected" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (expected $expected, got $got)"
    fi
}

expect_output() { # expect_output NAME EXPECTED COMMAND...
    local name="$1" expected="$2"
    shift 2
    local got
    got="$("$@" 2>/dev/null | tr '\n' ' ')"
    got="${got% }"
    if [ "$got" = "$expected" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (expected '$expected', got '$got')"
    fi
}

# A fresh fake machine: a root for system directories and an empty bin directory.
machine() {
    local name="$1"
    root="$work/$name/root"
    bin="$work/$name/bin"
    mkdir -p "$root/usr/lib" "$bin"
}

touch_lib() { mkdir -p "$(dirname "$root/$1")"; : >"$root/$1"; }

fake_tool() { # fake_tool NAME OUTPUT [EXIT]
    printf '#!/bin/sh\necho "%s"\nexit %s\n' "$2" "${3:-0}" >"$bin/$1"
    chmod +x "$bin/$1"
}

in_machine() { # run a check with this machine's root and PATH only
    env -u LIBCLANG_PATH -u LD_LIBRARY_PATH SETUP_ROOT="$root" PATH="$bin:$base" \
        "$BASH" -c '. "$0"; "$@"' "$here/../lib/checks.sh" "$@"
}

# --- libclang, searched as bindgen's loader searches ----------------------------------

machine cpp-only # the issue's machine: libclang-cpp14 installed, libclang1-14 not
touch_lib usr/lib/llvm-14/lib/libclang-cpp.so.14
touch_lib usr/lib/x86_64-linux-gnu/libclang-cpp.so.14
touch_lib usr/lib/llvm-14/lib/libLLVM-14.so.1
check "libclang-cpp only: not found" fail in_machine libclang_path
expect_output "libclang-cpp only: setup installs libclang-dev" "libclang-dev" \
    in_machine packages_needed demo

machine versioned-suffix
touch_lib usr/lib/llvm-14/lib/libclang-14.so.1
check "libclang-14.so.1: found" pass in_machine libclang_path
expect_output "libclang-14.so.1: nothing to install for the demo" "" in_machine packages_needed demo

machine plain
touch_lib usr/lib/x86_64-linux-gnu/libclang.so.1
check "libclang.so.1 in the multiarch dir: found" pass in_machine libclang_path

machine dev-symlink
touch_lib usr/lib/llvm-16/lib/libclang.so
check "libclang.so: found" pass in_machine libclang_path

machine static-only
touch_lib usr/lib/llvm-14/lib/libclangBasic.a
touch_lib usr/lib/llvm-14/lib/libclang.a
check "static archives only: not found" fail in_machine libclang_path

machine local
touch_lib usr/local/lib/libclang-17.so
check "libclang-17.so under /usr/local/lib: found" pass in_machine libclang_path

machine empty
check "nothing: not found" fail in_machine libclang_path

machine env-dir
mkdir -p "$work/custom"
: >"$work/custom/libclang.so.18"
check "LIBCLANG_PATH directory with libclang.so.18: found" pass \
    env SETUP_ROOT="$root" PATH="$bin:$base" LIBCLANG_PATH="$work/custom" \
    "$BASH" -c '. "$0"; libclang_path' "$here/../lib/checks.sh"
check "LIBCLANG_PATH file: found" pass \
    env SETUP_ROOT="$root" PATH="$bin:$base" LIBCLANG_PATH="$work/custom/libclang.so.18" \
    "$BASH" -c '. "$0"; libclang_path' "$here/../lib/checks.sh"

machine env-wrong # LIBCLANG_PATH set is the only place searched, as bindgen does
touch_lib usr/lib/llvm-14/lib/libclang.so.1
mkdir -p "$work/empty-dir"
check "LIBCLANG_PATH elsewhere hides the system libclang: not found" fail \
    env SETUP_ROOT="$root" PATH="$bin:$base" LIBCLANG_PATH="$work/empty-dir" \
    "$BASH" -c '. "$0"; libclang_path' "$here/../lib/checks.sh"

machine ld-path
mkdir -p "$work/ld"
: >"$work/ld/libclang-15.so"
check "LD_LIBRARY_PATH with libclang-15.so: found" pass \
    env SETUP_ROOT="$root" PATH="$bin:$base" LD_LIBRARY_PATH="/nonexistent:$work/ld" \
    "$BASH" -c '. "$0"; libclang_path' "$here/../lib/checks.sh"

machine llvm-config
mkdir -p "$work/llvm-prefix/lib"
: >"$work/llvm-prefix/lib/libclang.so"
fake_tool llvm-config "$work/llvm-prefix"
check "llvm-config --prefix lib: found" pass in_machine libclang_path

# --- nats-server: the version it prints --------------------------------------------------

for case in "2.9.25:fail" "2.10.22:fail" "2.11.0:pass" "2.15.1:pass" "3.0.0:pass" "1.99.0:fail"; do
    version="${case%%:*}" expected="${case##*:}"
    machine "nats-$version"
    fake_tool nats-server "nats-server: v$version"
    check "nats-server v$version" "$expected" in_machine nats_server_ok
done
machine nats-garbage
fake_tool nats-server "something else entirely"
check "nats-server printing no version" fail in_machine nats_server_ok
machine nats-missing
check "no nats-server" fail in_machine nats_server_ok

# --- tools that must run, not merely exist -----------------------------------------------

machine tools-ok
touch_lib usr/lib/llvm-14/lib/libclang-14.so.1
fake_tool promtool "promtool, version 2.42.0"
fake_tool chromium "Chromium 156.0"
fake_tool node "v20.20.2"
fake_tool npm "11.19.1"
fake_tool openssl "OpenSSL 3.0.13"
expect_output "everything present: nothing to install" "" in_machine packages_needed test

machine tools-broken
touch_lib usr/lib/llvm-14/lib/libclang-14.so.1
fake_tool promtool "" 127
fake_tool chromium "" 1
fake_tool node "v16.20.0"
fake_tool npm "8.0.0"
fake_tool openssl "" 1
expect_output "broken promtool, chromium and openssl, node 16" "prometheus chromium nodejs npm openssl" \
    in_machine packages_needed test

machine tools-none
expect_output "bare machine, test mode" "libclang-dev prometheus chromium nodejs npm openssl" \
    in_machine packages_needed test
expect_output "bare machine, demo mode" "libclang-dev" in_machine packages_needed demo

machine node-no-npm
touch_lib usr/lib/llvm-14/lib/libclang-14.so.1
fake_tool promtool "promtool"
fake_tool chromium "Chromium"
fake_tool node "v20.1.0"
fake_tool openssl "OpenSSL 3.0.13"
expect_output "node without npm" "nodejs npm" in_machine packages_needed test

echo "setup checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
