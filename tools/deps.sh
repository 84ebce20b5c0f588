#!/bin/sh
# deps.sh - install what building and testing weave needs, where it is
# missing (Debian and its derivatives): the toolchain, Check, valgrind,
# clang-format, clang-tidy, gdb, python3 (the layers test, and a TLS peer),
# libuv (a test runs weave inside its loop), OpenSSL 3 (libssl-dev: TLS;
# the openssl command and curl: the TLS suite's certificates and peers),
# liburing (liburing-dev: regular-file I/O through io_uring),
# and the aarch64
# cross toolchain with qemu-user and Check's arm64 package (the aarch64
# run). Does nothing when everything is there; else runs apt-get, as root
# or through sudo. The README's test command and .ci/run start with it.
set -eu

pkgs="build-essential cmake pkg-config check valgrind clang-format clang-tidy gdb python3 libuv1-dev
      libssl-dev openssl curl liburing-dev
      gcc-aarch64-linux-gnu qemu-user-static check:arm64"

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q " installed$" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

as_root=""
[ "$(id -u)" -eq 0 ] || as_root=sudo
echo "deps.sh: installing$missing"
case "$missing" in
*:arm64*)
    dpkg --print-foreign-architectures | grep -qx arm64 || $as_root dpkg --add-architecture arm64
    ;;
esac
$as_root apt-get update
# shellcheck disable=SC2086 # one word per package
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
