// SPDX-License-Identifier: BSL-1.0
// precompiled.hpp — what nearly every test object includes, compiled once
// per build directory (BUILD/pch/) and forced into each test object with
// -include. Parsing catch.hpp and sockserv.hpp took about 1.7 s of CPU per
// test object, half the suite's compile on 2 cores; the precompiled copy
// loads in a fraction of that. It only speeds the build: every test still
// includes what it uses, and a compiler that cannot use the precompiled
// file reads this header as text instead.
#include <catch2/catch.hpp>
#include <sockserv.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>
