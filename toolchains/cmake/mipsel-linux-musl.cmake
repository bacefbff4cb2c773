# CMake toolchain file for mipsel-linux-musl (see sockserv-toolchain.cmake).
set(SOCKSERV_TOOLCHAIN mipsel-linux-musl)
include("${CMAKE_CURRENT_LIST_DIR}/sockserv-toolchain.cmake")
