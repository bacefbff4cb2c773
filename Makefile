# sockserv — GNU make build. Everything goes to $(BUILD).
#   make            examples and test binaries
#   make demo       builds and runs the seed's examples, server and clients
#   make test       builds and runs the test suite; ends with "N passed, M failed"
#   make examples   build/examples/NAME
#   make TOOLCHAIN=NAME test|examples   cross build (toolchains/NAME.mk) in
#                   build/NAME; tests run under the toolchain's emulator
#   make size       static musl example sizes, a table per target; fails over budget
#   make size-doc   the same tables and where tcp_uppercase's bytes go -> README.md
#   make single-header    build/single/sockserv.hpp, the one file to vendor
#   make install PREFIX=/usr/local    headers, pkg-config and CMake package
#   make consumer-test    single header and installed copy, used as a user would
#   make matrix     the suite with g++ and clang++, C++17 and C++20
#   make bench      sockserv vs CPython, Asio and C -> bench/RESULTS.md (~20 min)
#   make bench-quick      the target cells only, briefly (< 2 min) -> build/bench/quick/
#   make bench-loop the event loop: fan-out, timers, posts -> bench/LOOP.md (~6 min)
# CXX, CXXFLAGS and LDFLAGS from the command line are added to the project's
# own flags (warnings and the language standard stay). Builds run in
# parallel, one job per CPU, unless -j is given.

# (Only in the top-level make: a sub-make shares its parent's job slots.)
# Two jobs more than CPUs: make test runs each test binary as soon as it is
# linked, and a running suite, which mostly waits on sockets, holds a job
# slot while the rest still compiles.
ifeq ($(MAKELEVEL)$(filter -j%,$(MAKEFLAGS)),0)
MAKEFLAGS += -j$(shell echo $$(($$(nproc 2>/dev/null || echo 2) + 2)))
endif

# clang++ when it is installed (it compiles the suite in about half g++'s
# time), else g++; CXX=g++ chooses. Both are held to the same warnings.
ifeq ($(origin CXX),default)
CXX := $(if $(shell command -v clang++ 2>/dev/null),clang++,g++)
endif
STD      ?= c++17
BUILD    ?= build
# -O0 -g: the quickest to compile (make test from a clean clone is
# compile-bound: -O0 takes about 40 % less CPU than -Og on the heaviest test
# objects, and the suite waits on sockets, not on the CPU). CI builds the
# suite at -O2 too (.ci/run), where the optimiser's warnings come in; a
# toolchain may set its own (the musl ones: -Os).
OPTIMIZE ?= -O0 -g
WERROR   ?= -Werror
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion $(WERROR)
TEST_TIMEOUT ?= $(if $(TOOLCHAIN_RUN),1800,600)
# Seconds one test case may take before the suite's watchdog ends it
# (tests/catch_main.cpp). Under emulation everything is 10-20 times slower,
# and a thousand forks under qemu-user take minutes, not seconds.
TEST_WATCHDOG ?= $(if $(TOOLCHAIN_RUN),300,60)

# A toolchain is one file, toolchains/NAME.mk. It may set CXX, OPTIMIZE,
# TOOLCHAIN_CXXFLAGS, TOOLCHAIN_LDFLAGS, TOOLCHAIN_STARTFILES (objects that
# go before the program's on the link line), TOOLCHAIN_RUN (the emulator
# prefix for test binaries), TOOLCHAIN_TESTS (no: examples only) and
# TOOLCHAIN_PACKAGES (the Debian packages it needs; make packages prints them).
ifdef TOOLCHAIN
ifeq ($(wildcard toolchains/$(TOOLCHAIN).mk),)
$(error no toolchain '$(TOOLCHAIN)': known are $(basename $(notdir $(wildcard toolchains/*.mk))))
endif
include toolchains/$(TOOLCHAIN).mk
BUILD := build/$(TOOLCHAIN)
endif

PROJECT_CXXFLAGS = -std=$(STD) $(WARNINGS) $(OPTIMIZE) -Iinclude -pthread
ALL_CXXFLAGS = $(PROJECT_CXXFLAGS) $(TOOLCHAIN_CXXFLAGS) $(CXXFLAGS)
ALL_LDFLAGS  = -pthread $(TOOLCHAIN_LDFLAGS) $(LDFLAGS)
# A library's flags from pkg-config, its -I as -isystem (its headers are not
# held to our warnings).
pkg_cflags = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(1)))
pkg_libs = $(shell pkg-config --libs $(1))
# How test binaries are run (a toolchain sets qemu here).
RUN ?= $(TOOLCHAIN_RUN)
# Catch2 v2's catch.hpp (Debian: catch2). Tests see it through a directory
# holding only catch2/, so a cross compiler never sees the host's /usr/include.
CATCH2_DIR ?= /usr/include/catch2
CATCH2_INCLUDE := $(BUILD)/include-catch2
# Catch2's own runner (catch_main.o) is compiled without optimisation: it is
# the largest object and the slowest to build, and nothing of sockserv is in it.
CATCH_MAIN_FLAGS ?= -O0 -g0

# Test objects start from tests/support/precompiled.hpp compiled once
# (catch.hpp and sockserv.hpp: most of what a test object parses). g++ and
# clang++ each find their own kind of file (.gch, .pch) beside the copy
# that -include names, and read the copy as text when they cannot use it.
TEST_PCH := $(BUILD)/pch/precompiled.hpp
TEST_PCH_FILE := $(TEST_PCH).$(if $(findstring clang,$(shell $(CXX) --version 2>/dev/null)),pch,gch)
TEST_PCH_INCLUDE = -include $(TEST_PCH)
TEST_CXXFLAGS = $(ALL_CXXFLAGS) -isystem $(CATCH2_INCLUDE) -Itests $(TEST_PCH_INCLUDE)

# The flags a build directory was made with: when they change (another CXX,
# CXXFLAGS='-fno-exceptions -fno-rtti', ...) everything in it is rebuilt,
# instead of a variant silently reusing another variant's objects.
FLAGS_STAMP := $(BUILD)/flags.stamp
build_flags = $(CXX) | $(ALL_CXXFLAGS) | $(TOOLCHAIN_STARTFILES) | $(ALL_LDFLAGS) | $(CATCH_MAIN_FLAGS)
ifeq ($(filter clean packages install,$(MAKECMDGOALS)),)
ifneq ($(build_flags),$(file <$(FLAGS_STAMP)))
$(shell mkdir -p $(BUILD))
$(file >$(FLAGS_STAMP),$(build_flags))
endif
endif

HEADERS  := $(shell find include -name '*.hpp')
EXAMPLES := $(patsubst examples/%.cpp,$(BUILD)/examples/%,$(filter-out examples/embed_%.cpp,$(wildcard examples/*.cpp)))
# examples/embed_*.cpp serve sockserv inside another library's main loop:
# each is built only when pkg-config finds its library (native builds;
# `make size` builds none).
EMBED_PACKAGE_embed_libuv := libuv
EMBED_PACKAGE_embed_glib  := glib-2.0
EMBED_EXAMPLES ?= $(if $(TOOLCHAIN),,$(foreach e,embed_libuv embed_glib,$(shell pkg-config --exists $(EMBED_PACKAGE_$(e)) 2>/dev/null && echo $(e))))
EXAMPLES += $(EMBED_EXAMPLES:%=$(BUILD)/examples/%)

# TLS (include/sockserv/tls.hpp, BearSSL): only the programs that include it
# link -lbearssl. Built natively when Debian's libbearssl-dev is there; cross
# toolchains skip it (TLS=no) unless they set TOOLCHAIN_TLS=yes (the musl
# ones link the architecture's libbearssl.a statically: static-musl.inc).
TLS_EXAMPLES := $(BUILD)/examples/tls_echo
ifdef TOOLCHAIN
TLS ?= $(or $(TOOLCHAIN_TLS),no)
else
TLS ?= $(if $(wildcard /usr/include/bearssl.h),yes,no)
endif
ifneq ($(TLS),yes)
EXAMPLES := $(filter-out $(TLS_EXAMPLES),$(EXAMPLES))
endif
$(TLS_EXAMPLES): EXAMPLE_LIBS = $(or $(TOOLCHAIN_TLS_LIBS),-lbearssl)
$(TLS_EXAMPLES): ALL_CXXFLAGS += $(TOOLCHAIN_TLS_CXXFLAGS)
$(TLS_EXAMPLES): $(filter %.o,$(TOOLCHAIN_TLS_LIBS))
$(BUILD)/glibc_fortify_shim.o: toolchains/glibc_fortify_shim.cpp $(FLAGS_STAMP)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

# Every tests/*_test.cpp joins one Catch2 binary, except the allocation test,
# which replaces malloc and operator new and so gets a binary of its own, and
# the soak test, which takes minutes (make soak).
TEST_SOURCES  := $(filter-out tests/allocation_test.cpp tests/soak_test.cpp tests/embedding_test.cpp,$(wildcard tests/*_test.cpp))
# They are linked into three binaries rather than one, so that make test runs
# the first while the others still compile: process_tests (forks, signals,
# children: the longest to run, built first), loop_tests (the event loop and
# its watchers) and sockserv_tests (the rest, and any new test file).
PROCESS_TESTS := $(patsubst %,tests/%_test.cpp,forking forking_full_table daemon child_watcher signal_watcher io_signal concurrency_matrix stop_under_load)
LOOP_TESTS_1  := $(patsubst %,tests/%_test.cpp,event_loop event_loop_edges event_deadlines event_admission loop loop_deferred_work)
LOOP_TESTS_2  := $(patsubst %,tests/%_test.cpp,shared_loop connections timer post_queue poller slow_client)
# server_noexcept_test configures sockserv (SOCKSERV_NO_EXCEPTIONS) before
# including it: it is compiled alone, without the precompiled header.
NOEXCEPT_TEST := tests/server_noexcept_test.cpp
CORE_TESTS    := $(filter-out $(PROCESS_TESTS) $(LOOP_TESTS_1) $(LOOP_TESTS_2) $(NOEXCEPT_TEST),$(TEST_SOURCES))
CORE_HALF     := $(shell expr \( $(words $(CORE_TESTS)) + 1 \) / 2)
CORE_TESTS_1  := $(wordlist 1,$(CORE_HALF),$(CORE_TESTS))
CORE_TESTS_2  := $(wordlist $(shell expr $(CORE_HALF) + 1),999,$(CORE_TESTS))
TLS_TESTS_1   := $(patsubst %,tests/tls/tls_%_test.cpp,allocation event fuzz_seed)
TLS_TESTS_2   := $(filter-out $(TLS_TESTS_1),$(wildcard tests/tls/*_test.cpp))

# Unity builds: most of a test object's compile time goes to instantiating
# the same templates again (basic_server over each policy, family and
# handler, Catch2's matchers), so the test files are compiled a few to an
# object: BUILD/unity/NAME.cpp #includes them. Compiled alone, the same
# files cost twice the CPU (the core files: 23 s against 11 s on this
# machine). The price: names at file scope, anonymous namespaces included,
# must differ between the files of one object, and the compiler says where
# they clash. UNITY=no compiles each file alone (quicker to rebuild one file
# while working on it).
UNITY ?= yes
hash := \#
define newline


endef
unity_text = $(foreach source,$(1),$(hash)include "$(patsubst tests/%,%,$(source))"$(newline))
# $(call unity_objects,NAME,SOURCES): the objects SOURCES compile to.
unity_objects = $(if $(filter yes,$(UNITY)),$(BUILD)/unity/$(1).o,$(patsubst tests/%.cpp,$(BUILD)/tests/%.o,$(2)))
# $(eval $(call unity_object,NAME,SOURCES)): BUILD/unity/NAME.cpp, written
# as make reads this file and only when its list of files changed (so that
# its time says when the list last changed), and what its object depends on.
define unity_object
ifeq ($(UNITY)$(filter clean,$(MAKECMDGOALS)),yes)
ifneq ($$(strip $$(file <$(BUILD)/unity/$(1).cpp)),$$(strip $$(call unity_text,$(2))))
$$(shell mkdir -p $(BUILD)/unity)
$$(file >$(BUILD)/unity/$(1).cpp,$$(call unity_text,$(2)))
endif
$(BUILD)/unity/$(1).o: $(2)
endif
endef
$(eval $(call unity_object,process,$(PROCESS_TESTS)))
$(eval $(call unity_object,loop-1,$(LOOP_TESTS_1)))
$(eval $(call unity_object,loop-2,$(LOOP_TESTS_2)))
$(eval $(call unity_object,core-1,$(CORE_TESTS_1)))
$(eval $(call unity_object,core-2,$(CORE_TESTS_2)))
$(eval $(call unity_object,tls-1,$(TLS_TESTS_1)))
$(eval $(call unity_object,tls-2,$(TLS_TESTS_2)))
PROCESS_TEST_OBJECTS := $(call unity_objects,process,$(PROCESS_TESTS))
LOOP_TEST_OBJECTS := $(call unity_objects,loop-1,$(LOOP_TESTS_1)) $(call unity_objects,loop-2,$(LOOP_TESTS_2))
CORE_TEST_OBJECTS := $(call unity_objects,core-1,$(CORE_TESTS_1)) $(call unity_objects,core-2,$(CORE_TESTS_2)) \
                     $(BUILD)/tests/server_noexcept_test.o
TLS_TEST_OBJECTS := $(call unity_objects,tls-1,$(TLS_TESTS_1)) $(call unity_objects,tls-2,$(TLS_TESTS_2))
TEST_SUPPORT  := $(wildcard tests/support/*.hpp)
TEST_BINARIES := $(if $(wildcard tests/allocation_test.cpp),$(BUILD)/tests/allocation_tests) $(BUILD)/tests/process_tests $(BUILD)/tests/loop_tests $(BUILD)/tests/sockserv_tests
# The embedding test serves sockserv inside libuv's and GLib's main loops, so
# it links them (Debian: libuv1-dev, libglib2.0-dev; .ci/run installs them)
# in a binary of its own. Native builds only: cross toolchains lack them.
HOST_LOOP_LIBS := libuv glib-2.0
ifndef TOOLCHAIN
TEST_BINARIES += $(BUILD)/tests/embedding_tests
endif
# The TLS tests (tests/tls/*_test.cpp, TLS_TEST_OBJECTS) are a binary of
# their own: it links -lbearssl.
ifeq ($(TLS),yes)
TEST_BINARIES += $(BUILD)/tests/tls_tests
endif
ifeq ($(TOOLCHAIN_TESTS),no)
# This toolchain builds the examples only (see its file): make tests builds
# nothing, and make test says so rather than passing on zero tests.
TEST_BINARIES :=
TEST_REFUSAL = $(error TOOLCHAIN=$(TOOLCHAIN) builds the examples only; run the suite with make test, or with a cross TOOLCHAIN)
endif

.PHONY: all examples tests test demo clean asan ubsan tsan
.PHONY: matrix packages size size-doc single-header single-header-test install install-test consumer-test FORCE
all: examples tests

examples: $(EXAMPLES)
tests: $(TEST_BINARIES)

$(BUILD)/examples/%: examples/%.cpp $(HEADERS) $(wildcard examples/common/*.hpp) $(FLAGS_STAMP) | $(BUILD)/examples
	$(CXX) $(ALL_CXXFLAGS) $(TOOLCHAIN_STARTFILES) $< $(EXAMPLE_LIBS) -o $@ $(ALL_LDFLAGS)

$(EMBED_EXAMPLES:%=$(BUILD)/examples/%): $(BUILD)/examples/%: examples/%.cpp $(HEADERS) $(wildcard examples/common/*.hpp) | $(BUILD)/examples
	$(CXX) $(ALL_CXXFLAGS) $(call pkg_cflags,$(EMBED_PACKAGE_$*)) $< -o $@ $(ALL_LDFLAGS) $(call pkg_libs,$(EMBED_PACKAGE_$*))

$(BUILD)/tests/catch_main.o: tests/catch_main.cpp $(FLAGS_STAMP) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	$(CXX) $(ALL_CXXFLAGS) $(CATCH_MAIN_FLAGS) -isystem $(CATCH2_INCLUDE) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.cpp $(HEADERS) $(TEST_SUPPORT) $(TEST_PCH_FILE) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	$(CXX) $(TEST_CXXFLAGS) -c $< -o $@

$(BUILD)/unity/%.o: $(BUILD)/unity/%.cpp $(HEADERS) $(TEST_SUPPORT) $(wildcard tests/tls/*.hpp fuzz/*.hpp) $(TEST_PCH_FILE) | $(CATCH2_INCLUDE)/catch2
	$(CXX) $(TEST_CXXFLAGS) -c $< -o $@

$(TEST_PCH_FILE): tests/support/precompiled.hpp $(HEADERS) $(FLAGS_STAMP) | $(CATCH2_INCLUDE)/catch2
	@mkdir -p $(@D)
	cp $< $(TEST_PCH)
	$(CXX) $(ALL_CXXFLAGS) -isystem $(CATCH2_INCLUDE) -Itests -x c++-header $(TEST_PCH) -o $@

$(BUILD)/tests/server_noexcept_test.o: TEST_PCH_INCLUDE =

# Replays fuzz/regressions and the seeds through the fuzz targets' checks.
$(BUILD)/tests/fuzz_regression_test.o: $(wildcard fuzz/*.hpp)

$(CATCH2_INCLUDE)/catch2:
	@test -f $(CATCH2_DIR)/catch.hpp || { echo "no $(CATCH2_DIR)/catch.hpp: install Catch2 v2 (Debian: catch2) or set CATCH2_DIR"; exit 1; }
	mkdir -p $(CATCH2_INCLUDE) && ln -sfn $(abspath $(CATCH2_DIR)) $@

$(BUILD)/tests/process_tests: $(PROCESS_TEST_OBJECTS)
$(BUILD)/tests/loop_tests: $(LOOP_TEST_OBJECTS)
$(BUILD)/tests/sockserv_tests: $(CORE_TEST_OBJECTS)
$(BUILD)/tests/allocation_tests: $(BUILD)/tests/allocation_test.o
$(BUILD)/tests/process_tests $(BUILD)/tests/loop_tests $(BUILD)/tests/sockserv_tests $(BUILD)/tests/allocation_tests: $(BUILD)/tests/catch_main.o
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BUILD)/tests/embedding_test.o: tests/embedding_test.cpp $(HEADERS) $(TEST_SUPPORT) $(TEST_PCH_FILE) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	@pkg-config --exists $(HOST_LOOP_LIBS) || { echo "embedding test: pkg-config finds no $(HOST_LOOP_LIBS): install libuv1-dev libglib2.0-dev"; exit 1; }
	$(CXX) $(TEST_CXXFLAGS) $(call pkg_cflags,$(HOST_LOOP_LIBS)) -c $< -o $@
$(BUILD)/tests/embedding_tests: $(BUILD)/tests/catch_main.o $(BUILD)/tests/embedding_test.o
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS) $(call pkg_libs,$(HOST_LOOP_LIBS))

$(BUILD)/tests/tls/%.o: tests/tls/%.cpp $(HEADERS) $(TEST_SUPPORT) $(wildcard tests/tls/*.hpp) $(TEST_PCH_FILE) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -c $< -o $@

$(BUILD)/tests/tls_tests: $(BUILD)/tests/catch_main.o $(TLS_TEST_OBJECTS)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS) -lbearssl

$(BUILD)/examples $(BUILD)/tests $(BUILD)/checks:
	mkdir -p $@

# Process-level tests of the example programs (tests/*_cli_test.py: signals,
# systemd, inetd, chat_server, routerd): native builds only, since they exec
# build/examples/*.
# tests/compile_fail: what must not compile (with the message it must give).
# tests/tls_echo_cli_test.py needs the TLS build (TLS=yes).
CLI_TESTS := $(if $(TOOLCHAIN),,$(filter-out $(if $(filter yes,$(TLS)),,tests/tls_echo_cli_test.py),$(wildcard tests/*_cli_test.py)) tests/compile_fail/run.sh)

# Checks make test runs while the suite compiles (native builds only): the
# release checks (tests/check_release.sh: the SPDX line in every header, one
# version everywhere) and the ways a user's build takes sockserv
# (tests/consumer/build_systems_test.sh). Each writes BUILD/checks/NAME.log
# ending in a Catch2-style summary, which tests/run_all.sh counts.
CONSUMER_SCENARIOS := cmake-subdirectory cmake-fetchcontent cmake-toolchain meson flags-mk flag-stamp install
CHECK_LOGS := $(if $(TOOLCHAIN),,$(patsubst %,$(BUILD)/checks/%.log,release $(CONSUMER_SCENARIOS)))
$(BUILD)/checks/release.log: FORCE | $(BUILD)/checks
	@tests/check_release.sh >$@ 2>&1 || true
$(BUILD)/checks/%.log: FORCE | $(BUILD)/checks
	@MAKEFLAGS= CXX='$(CXX)' timeout -k 10 300 tests/consumer/build_systems_test.sh $* >$@ 2>&1 || true

# Each test program runs (tests/run_one.sh) as soon as it is built, into
# BUILD/runs/NAME.log; when all have run, tests/run_all.sh prints the logs in
# order and the counts.
BINARY_RUNS := $(TEST_BINARIES:$(BUILD)/tests/%=$(BUILD)/runs/%.log)
SCRIPT_RUNS := $(CLI_TESTS:tests/%=$(BUILD)/runs/%.log)
RUN_ENV = BUILD=$(BUILD) CXX="$(CXX)" RUN="$(RUN)" TEST_TIMEOUT=$(TEST_TIMEOUT) SOCKSERV_TEST_WATCHDOG=$(TEST_WATCHDOG)
$(BINARY_RUNS): $(BUILD)/runs/%.log: $(BUILD)/tests/% FORCE
	@mkdir -p $(@D) && $(RUN_ENV) tests/run_one.sh $< >$@ 2>&1 || true
$(SCRIPT_RUNS): $(BUILD)/runs/%.log: tests/% FORCE
	@mkdir -p $(@D) && $(RUN_ENV) tests/run_one.sh $< >$@ 2>&1 || true
$(filter %.py.log,$(SCRIPT_RUNS)): $(EXAMPLES)

# make test builds in four waves, so that the longest runs overlap the
# compiles: (1) the binaries that run longest (allocation_tests,
# process_tests), (2) loop_tests and tls_tests, (3) the rest of the test
# binaries, (4) the examples and the consumer checks. Left to itself, make
# starts every compile before the first link (and, once it has moved on to
# the examples, links a finished binary only after them). Only for make
# test: make examples stays examples only.
ifneq ($(filter test,$(MAKECMDGOALS)),)
TEST_WAVE_1 := $(filter %/allocation_tests %/process_tests,$(TEST_BINARIES))
TEST_WAVE_2 := $(filter %/loop_tests %/tls_tests,$(TEST_BINARIES))
TEST_WAVE_3 := $(filter-out $(TEST_WAVE_1) $(TEST_WAVE_2),$(TEST_BINARIES))
$(LOOP_TEST_OBJECTS) $(TLS_TEST_OBJECTS): | $(TEST_WAVE_1)
$(CORE_TEST_OBJECTS) $(BUILD)/tests/embedding_test.o: | $(TEST_WAVE_1) $(TEST_WAVE_2)
$(EXAMPLES) $(CHECK_LOGS): | $(TEST_WAVE_1) $(TEST_WAVE_2) $(TEST_WAVE_3)
endif

test: $(BINARY_RUNS) $(SCRIPT_RUNS) $(CHECK_LOGS) $(EXAMPLES)
	$(TEST_REFUSAL)tests/run_all.sh $(BINARY_RUNS) $(SCRIPT_RUNS) $(CHECK_LOGS)

demo: $(EXAMPLES)
	BUILD=$(BUILD) examples/demo.sh

# The suite under each sanitizer, in its own build directory.
# g++ 12 with -fsanitize=address reports false -Wmaybe-uninitialized (even in
# libstdc++'s <regex>, through catch.hpp); clang has no such option.
ASAN_NO_FALSE_WARNINGS = $(if $(findstring clang,$(shell $(CXX) --version 2>/dev/null)),,-Wno-maybe-uninitialized)
asan:
	$(MAKE) test BUILD=build/asan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=address -fno-omit-frame-pointer $(ASAN_NO_FALSE_WARNINGS) $(CXXFLAGS)' LDFLAGS='-fsanitize=address $(LDFLAGS)'
ubsan:
	$(MAKE) test BUILD=build/ubsan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=undefined -fno-sanitize-recover=all $(CXXFLAGS)' LDFLAGS='-fsanitize=undefined $(LDFLAGS)'
# make tsan: tests/tsan.supp says which report is expected and why;
# SOCKSERV_TEST_SANITIZER lets a CLI test say which checks TSan cannot run.
tsan:
	TSAN_OPTIONS='suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)' SOCKSERV_TEST_SANITIZER=thread \
	  $(MAKE) test BUILD=build/tsan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=thread $(CXXFLAGS)' LDFLAGS='-fsanitize=thread $(LDFLAGS)'

# The suite with g++ and clang++, each as C++17 and C++20 (build/matrix-*),
# and the examples with -fno-exceptions -fno-rtti.
MATRIX_COMPILERS ?= g++ clang++
MATRIX_STANDARDS ?= c++17 c++20
matrix:
	@for cxx in $(MATRIX_COMPILERS); do for std in $(MATRIX_STANDARDS); do \
	  echo "== $$cxx -std=$$std"; \
	  $(MAKE) --no-print-directory test TOOLCHAIN= CXX=$$cxx STD=$$std BUILD=build/matrix-$$cxx-$$std || exit 1; \
	done; done
	$(MAKE) --no-print-directory examples TOOLCHAIN= BUILD=build/matrix-noexcept CXXFLAGS='-fno-exceptions -fno-rtti $(CXXFLAGS)'

# ---- Embedded targets: sizes, one vendorable header, install -------------

# The Debian packages the chosen toolchain needs (.ci/run installs them).
packages:
	@echo $(TOOLCHAIN_PACKAGES)

# make size: each example static and stripped for every musl target (with
# TOOLCHAIN=a musl target: that one), a table per target; fails when
# SIZE_CHECKED is over the target's SIZE_BUDGET (set in its toolchain file).
# make size-doc writes the tables, and where SIZE_CHECKED's bytes go (from
# its linker map, on SIZE_MAP_TARGETS), into README.md between its markers.
SIZE_CHECKED ?= tcp_uppercase
MUSL_TARGETS := x86_64-linux-musl mipsel-linux-musl arm-linux-musleabihf aarch64-linux-musl
SIZE_TARGETS ?= $(or $(filter $(MUSL_TARGETS),$(TOOLCHAIN)),$(MUSL_TARGETS))
SIZE_MAP_TARGETS ?= x86_64-linux-musl mipsel-linux-musl
size:
	@for target in $(SIZE_TARGETS); do \
	  $(MAKE) -s --no-print-directory examples TOOLCHAIN=$$target BUILD=build/$$target || exit 1; done
	@status=0; for target in $(SIZE_TARGETS); do \
	  tools/size_table.sh $$target build/$$target/examples $(SIZE_CHECKED) \
	    "$$(sed -n 's/^SIZE_BUDGET *:= *//p' toolchains/$$target.mk)" || status=1; done; exit $$status

size-doc: size
	@for target in $(SIZE_MAP_TARGETS); do \
	  $(MAKE) --no-print-directory TOOLCHAIN=$$target BUILD=build/size-map/$$target \
	    LDFLAGS='-Wl,-Map,build/size-map/'$$target'/$(SIZE_CHECKED).map' build/size-map/$$target/examples/$(SIZE_CHECKED) || exit 1; done
	python3 tools/size_doc.py --readme README.md --checked $(SIZE_CHECKED) \
	  $(foreach t,$(MUSL_TARGETS),--examples $(t)=build/$(t)/examples) \
	  $(foreach t,$(SIZE_MAP_TARGETS),--map $(t)=build/size-map/$(t)/$(SIZE_CHECKED).map)

# The single header: every project header inlined once, in dependency order.
SINGLE_HEADER := build/single/sockserv.hpp
single-header: $(SINGLE_HEADER)
$(SINGLE_HEADER): $(HEADERS) tools/single_header.py LICENSE
	python3 tools/single_header.py --root include $@

# Builds hello and every example against the single header alone, runs them.
single-header-test: $(SINGLE_HEADER)
	CXX='$(CXX)' STD=$(STD) tests/consumer/single_header_test.sh $(SINGLE_HEADER)

# make install PREFIX=/usr/local [DESTDIR=...]: the headers, a pkg-config file
# (PREFIX/share/pkgconfig/sockserv.pc) and a CMake package
# (PREFIX/share/cmake/sockserv: find_package(sockserv) -> sockserv::sockserv).
VERSION := $(shell sed -n 's/^\#define SOCKSERV_VERSION_STRING "\(.*\)"/\1/p' include/sockserv/version.hpp)
PREFIX  ?= /usr/local
DESTDIR ?=
install:
	@test -n "$(PREFIX)" || { echo "install: PREFIX is empty"; exit 1; }
	for header in $(HEADERS:include/%=%); do \
	  mkdir -p "$(DESTDIR)$(PREFIX)/include/$$(dirname $$header)" && \
	  install -m 644 include/$$header "$(DESTDIR)$(PREFIX)/include/$$header" || exit 1; \
	done
	mkdir -p '$(DESTDIR)$(PREFIX)/share/pkgconfig' '$(DESTDIR)$(PREFIX)/share/cmake/sockserv'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' packaging/sockserv.pc.in \
	  > '$(DESTDIR)$(PREFIX)/share/pkgconfig/sockserv.pc'
	sed -e 's|@VERSION@|$(VERSION)|g' packaging/sockservConfig.cmake.in \
	  > '$(DESTDIR)$(PREFIX)/share/cmake/sockserv/sockservConfig.cmake'
	sed -e 's|@VERSION@|$(VERSION)|g' packaging/sockservConfigVersion.cmake.in \
	  > '$(DESTDIR)$(PREFIX)/share/cmake/sockserv/sockservConfigVersion.cmake'

# Installs into build/install-test/prefix and builds a consumer against it
# with pkg-config and with CMake.
install-test:
	rm -rf build/install-test
	$(MAKE) --no-print-directory install TOOLCHAIN= PREFIX=$(abspath build/install-test/prefix) DESTDIR=
	CXX='$(CXX)' tests/consumer/install_test.sh build/install-test/prefix

consumer-test: single-header-test install-test

# ---- Benchmarks (bench/run.py; the method is in bench/RESULTS.md) ---------
# bench/setup.sh first installs the missing dev-only Debian packages (Asio,
# musl-tools, ...); bench/run.py then builds what it measures, with g++ -O2.
.PHONY: bench bench-quick
bench bench-quick:
	bench/setup.sh
	python3 bench/run.py $(if $(filter bench-quick,$@),--quick)

# The event loop holding 10 000 idle connections: memory per connection
# against its configured buffers -> bench/IDLE.md (needs make bench's tools).
.PHONY: bench-idle
bench-idle:
	python3 bench/idle_event.py

# The daemon loop (issue 10): broadcast fan-out against C epoll, libuv and
# Asio's chat pattern; 10 000 armed timers and the echo; posts from threads
# against libuv's async -> bench/LOOP.md (~6 min; bench-loop-quick: < 1 min).
.PHONY: bench-loop bench-loop-quick
bench-loop bench-loop-quick:
	bench/setup.sh
	python3 bench/loop/run_loop.py $(if $(filter bench-loop-quick,$@),--quick)

# ---- Soak and fuzzing: long runs, not part of make test ------------------
# make soak: 100 000 requests under each policy (forking: 20 000) and every
# datagram size, counting descriptors, threads and children before, during
# and after (tests/soak_test.cpp). A few minutes.
.PHONY: soak fuzz fuzz-build
soak: $(BUILD)/tests/soak_tests
	$(TEST_REFUSAL)BUILD=$(BUILD) CXX="$(CXX)" RUN="$(RUN)" TEST_TIMEOUT=1800 SOCKSERV_TEST_WATCHDOG=900 tests/run_all.sh $<

$(BUILD)/tests/soak_tests: $(BUILD)/tests/catch_main.o $(BUILD)/tests/soak_test.o
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

# make fuzz: each libFuzzer target fuzz/NAME.cpp, built with clang++ and
# -fsanitize=fuzzer,address,undefined into build/fuzz, runs FUZZ_SECONDS
# (default 30) from its seed corpus fuzz/corpus/NAME; FUZZ_TARGETS picks
# some. A failing input is left in build/fuzz/crash-NAME-*: fix the bug and
# keep the input in fuzz/regressions/NAME/, which make test replays.
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard fuzz/*.cpp)))
FUZZ_FLAGS    = -std=$(STD) $(WARNINGS) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude
fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/%)
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh build/fuzz $(FUZZ_TARGETS)

build/fuzz/%: fuzz/%.cpp fuzz/%.hpp fuzz/common.hpp $(HEADERS)
	@mkdir -p build/fuzz
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< -o $@ $(FUZZ_LIBS)
build/fuzz/tls_record: FUZZ_LIBS = -lbearssl

clean:
	rm -rf build
