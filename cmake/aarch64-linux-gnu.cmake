# Cross-compiling weave for aarch64 on a Debian x86-64 host, with the suites
# run under qemu-user (CTest prefixes every test with the emulator):
#
#   apt-get install gcc-aarch64-linux-gnu qemu-user-static
#   dpkg --add-architecture arm64 && apt-get update && apt-get install check:arm64
#   cmake --preset aarch64-asm && cmake --build --preset aarch64-asm && ctest --preset aarch64-asm
#
# liburing is not installed for arm64 (tools/deps.sh installs the host's):
# the cross build's regular-file I/O goes to the offload pool, as it would
# under qemu-user anyway, which has no io_uring.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Check comes from Debian's arm64 package, found through its pkg-config file.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
