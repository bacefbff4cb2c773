# sockserv-toolchain.cmake — a CMake toolchain file for any sockserv
# TOOLCHAIN (toolchains/NAME.mk), taking its flags from the same recipe the
# Makefile uses (toolchains/flags.mk print-cmake), so the two never differ.
# The per-target files (mipsel-linux-musl.cmake, ...) set SOCKSERV_TOOLCHAIN
# and include this one:
#   cmake -S . -B build-mipsel -DCMAKE_TOOLCHAIN_FILE=SOCKSERV/toolchains/cmake/mipsel-linux-musl.cmake
# Needs GNU make at configure time.
if(NOT SOCKSERV_TOOLCHAIN)
  message(FATAL_ERROR "sockserv-toolchain.cmake: set SOCKSERV_TOOLCHAIN (a toolchains/*.mk name) or use a per-target file")
endif()
set(_sockserv_flags_file "${CMAKE_BINARY_DIR}/sockserv-toolchain-${SOCKSERV_TOOLCHAIN}.cmake")
if(NOT EXISTS "${_sockserv_flags_file}")
  execute_process(
    COMMAND make -s --no-print-directory -f "${CMAKE_CURRENT_LIST_DIR}/../flags.mk"
            "TOOLCHAIN=${SOCKSERV_TOOLCHAIN}" print-cmake
    OUTPUT_FILE "${_sockserv_flags_file}" RESULT_VARIABLE _sockserv_status)
  if(NOT _sockserv_status EQUAL 0)
    file(REMOVE "${_sockserv_flags_file}")
    message(FATAL_ERROR "sockserv-toolchain.cmake: make -f toolchains/flags.mk TOOLCHAIN=${SOCKSERV_TOOLCHAIN} failed")
  endif()
endif()
include("${_sockserv_flags_file}")

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR "${SOCKSERV_PROCESSOR}")
set(CMAKE_CXX_COMPILER "${SOCKSERV_CXX}")
# -std comes from CMake (sockserv::sockserv asks for cxx_std_17); the rest,
# -Os included, from the recipe (a build type's flags come after it).
string(REGEX REPLACE "(^| )-std=[^ ]+" "" _sockserv_cxxflags "${SOCKSERV_CXXFLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${_sockserv_cxxflags}")
# Start files before the program's objects, libc and the end files after.
set(CMAKE_EXE_LINKER_FLAGS_INIT "${SOCKSERV_STARTFILES}")
set(CMAKE_CXX_STANDARD_LIBRARIES "${SOCKSERV_LDFLAGS}")
if(SOCKSERV_RUN)
  separate_arguments(CMAKE_CROSSCOMPILING_EMULATOR UNIX_COMMAND "${SOCKSERV_RUN}")
endif()
# try_compile projects re-read this file: pass the target name on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SOCKSERV_TOOLCHAIN)
