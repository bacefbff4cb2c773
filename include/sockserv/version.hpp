// SPDX-License-Identifier: BSL-1.0
// sockserv/version.hpp — the one place the version is written.
//
// The Makefile (make install: pkg-config and CMake packages), CMakeLists.txt,
// meson.build and the single header all read it from here.
#pragma once

#define SOCKSERV_VERSION_MAJOR 0
#define SOCKSERV_VERSION_MINOR 1
#define SOCKSERV_VERSION_PATCH 0
#define SOCKSERV_VERSION_STRING "0.1.0"
// One number to compare: MAJOR * 10000 + MINOR * 100 + PATCH.
#define SOCKSERV_VERSION (SOCKSERV_VERSION_MAJOR * 10000 + SOCKSERV_VERSION_MINOR * 100 + SOCKSERV_VERSION_PATCH)

namespace sockserv {
inline constexpr const char* version_string = SOCKSERV_VERSION_STRING;
}  // namespace sockserv
