#!/usr/bin/env bash
# Rebuilds the native fixtures from src/ with real toolchains (see README.md).
# Needs (Debian 12): gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 clang lld.
# Offline and deterministic: no timestamps in the PE, lld's Mach-O UUID is a content hash.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$HERE/src"

# PE32+ DLL with a VERSIONINFO resource compiled by windres.
x86_64-w64-mingw32-windres hello.rc -O coff -o "$WORK/hello.res.o"
x86_64-w64-mingw32-gcc -shared -Os -s -Wl,--no-insert-timestamp \
    -o "$HERE/stella-hello.dll" hello.c "$WORK/hello.res.o" -luser32

# Mach-O dylib and executable for one architecture, linked by ld64.lld against a libSystem
# text stub: macho ARCH DYLIB EXECUTABLE.
macho() {
    clang -target "$1-apple-macos11" -Os -c greet.c -o "$WORK/greet-$1.o"
    clang -target "$1-apple-macos11" -Os -c main.c -o "$WORK/main-$1.o"
    ld64.lld-14 -arch "$1" -platform_version macos 11.0 11.0 -dylib \
        -install_name @rpath/libstella.1.dylib -current_version 1.4.2 -compatibility_version 1.0 \
        -o "$2" "$WORK/greet-$1.o" libSystem.tbd
    ld64.lld-14 -arch "$1" -platform_version macos 11.0 12.1 \
        -rpath @executable_path/../lib -rpath /opt/stella/lib \
        -o "$3" "$WORK/main-$1.o" "$2" libSystem.tbd
}
macho x86_64 "$HERE/libstella.1.dylib" "$HERE/stella-greet"
# The same executable for arm64, glued to the x86_64 one into a universal (fat) file.
macho arm64 "$WORK/libstella-arm64.dylib" "$WORK/stella-greet-arm64"
llvm-lipo-14 -create "$HERE/stella-greet" "$WORK/stella-greet-arm64" -output "$HERE/stella-greet-universal"

cd "$HERE" && sha256sum stella-hello.dll libstella.1.dylib stella-greet stella-greet-universal > SHA256SUMS
