# CMake toolchain file for aarch64-linux-musl (see sockserv-toolchain.cmake).
set(SOCKSERV_TOOLCHAIN aarch64-linux-musl)
include("${CMAKE_CURRENT_LIST_DIR}/sockserv-toolchain.cmake")
