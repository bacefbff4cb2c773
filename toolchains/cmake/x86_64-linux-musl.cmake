# CMake toolchain file for x86_64-linux-musl (see sockserv-toolchain.cmake).
set(SOCKSERV_TOOLCHAIN x86_64-linux-musl)
include("${CMAKE_CURRENT_LIST_DIR}/sockserv-toolchain.cmake")
