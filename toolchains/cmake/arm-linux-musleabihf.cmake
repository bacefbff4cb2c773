# CMake toolchain file for arm-linux-musleabihf (see sockserv-toolchain.cmake).
set(SOCKSERV_TOOLCHAIN arm-linux-musleabihf)
include("${CMAKE_CURRENT_LIST_DIR}/sockserv-toolchain.cmake")
