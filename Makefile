# sockserv — GNU make build. Everything goes to $(BUILD).
#   make            examples and test binaries
#   make demo       builds and runs the seed's examples, server and clients
#   make test       builds and runs the test suite; ends with "N passed, M failed"
#   make examples   build/examples/NAME
#   make TOOLCHAIN=NAME test|examples   cross build (toolchains/NAME.mk) in
#                   build/NAME; tests run under the toolchain's emulator
#   make size       static example sizes, glibc vs musl; fails over budget
#   make single-header    build/single/sockserv.hpp, the one file to vendor
#   make install PREFIX=/usr/local    headers, pkg-config and CMake package
#   make consumer-test    single header and installed copy, used as a user would
#   make matrix     the suite with g++ and clang++, C++17 and C++20
#   make bench      sockserv vs CPython, Asio and C -> bench/RESULTS.md (~20 min)
#   make bench-quick      the target cells only, briefly (< 2 min) -> build/bench/quick/
# CXX, CXXFLAGS and LDFLAGS from the command line are added to the project's
# own flags (warnings and the language standard stay).

CXX      ?= g++
STD      ?= c++17
BUILD    ?= build
OPTIMIZE ?= -O2 -g
WERROR   ?= -Werror
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion $(WERROR)
TEST_TIMEOUT ?= 600

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
# How test binaries are run (a toolchain sets qemu here).
RUN ?= $(TOOLCHAIN_RUN)
# Catch2 v2's catch.hpp (Debian: catch2). Tests see it through a directory
# holding only catch2/, so a cross compiler never sees the host's /usr/include.
CATCH2_DIR ?= /usr/include/catch2
CATCH2_INCLUDE := $(BUILD)/include-catch2

HEADERS  := $(shell find include -name '*.hpp')
EXAMPLES := $(patsubst examples/%.cpp,$(BUILD)/examples/%,$(wildcard examples/*.cpp))

# TLS (include/sockserv/tls.hpp, BearSSL): only the programs that include it
# link -lbearssl. Built natively when Debian's libbearssl-dev is there; cross
# toolchains skip it (TLS=no) unless they set TLS=yes themselves.
TLS_EXAMPLES := $(BUILD)/examples/tls_echo
ifdef TOOLCHAIN
TLS ?= no
else
TLS ?= $(if $(wildcard /usr/include/bearssl.h),yes,no)
endif
ifneq ($(TLS),yes)
EXAMPLES := $(filter-out $(TLS_EXAMPLES),$(EXAMPLES))
endif
$(TLS_EXAMPLES): EXAMPLE_LIBS = -lbearssl

# Every tests/*_test.cpp joins one Catch2 binary, except the allocation test,
# which replaces malloc and operator new and so gets a binary of its own, and
# the soak test, which takes minutes (make soak).
TEST_SOURCES  := $(filter-out tests/allocation_test.cpp tests/soak_test.cpp,$(wildcard tests/*_test.cpp))
TEST_OBJECTS  := $(patsubst tests/%.cpp,$(BUILD)/tests/%.o,$(TEST_SOURCES))
TEST_SUPPORT  := $(wildcard tests/support/*.hpp)
TEST_BINARIES := $(BUILD)/tests/sockserv_tests $(if $(wildcard tests/allocation_test.cpp),$(BUILD)/tests/allocation_tests)
# The TLS tests (tests/tls/*_test.cpp) are a binary of their own: it links -lbearssl.
TLS_TEST_OBJECTS := $(patsubst tests/tls/%.cpp,$(BUILD)/tests/tls/%.o,$(wildcard tests/tls/*_test.cpp))
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
.PHONY: matrix packages size single-header single-header-test install install-test consumer-test
all: examples tests

examples: $(EXAMPLES)
tests: $(TEST_BINARIES)

$(BUILD)/examples/%: examples/%.cpp $(HEADERS) $(wildcard examples/common/*.hpp) | $(BUILD)/examples
	$(CXX) $(ALL_CXXFLAGS) $(TOOLCHAIN_STARTFILES) $< -o $@ $(ALL_LDFLAGS) $(EXAMPLE_LIBS)

$(BUILD)/tests/catch_main.o: tests/catch_main.cpp | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	$(CXX) $(ALL_CXXFLAGS) -isystem $(CATCH2_INCLUDE) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.cpp $(HEADERS) $(TEST_SUPPORT) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	$(CXX) $(ALL_CXXFLAGS) -isystem $(CATCH2_INCLUDE) -Itests -c $< -o $@

# Replays fuzz/regressions and the seeds through the fuzz targets' checks.
$(BUILD)/tests/fuzz_regression_test.o: $(wildcard fuzz/*.hpp)

$(CATCH2_INCLUDE)/catch2:
	@test -f $(CATCH2_DIR)/catch.hpp || { echo "no $(CATCH2_DIR)/catch.hpp: install Catch2 v2 (Debian: catch2) or set CATCH2_DIR"; exit 1; }
	mkdir -p $(CATCH2_INCLUDE) && ln -sfn $(abspath $(CATCH2_DIR)) $@

$(BUILD)/tests/sockserv_tests: $(BUILD)/tests/catch_main.o $(TEST_OBJECTS)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BUILD)/tests/allocation_tests: $(BUILD)/tests/catch_main.o $(BUILD)/tests/allocation_test.o
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BUILD)/tests/tls/%.o: tests/tls/%.cpp $(HEADERS) $(TEST_SUPPORT) $(wildcard tests/tls/*.hpp) | $(BUILD)/tests $(CATCH2_INCLUDE)/catch2
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -isystem $(CATCH2_INCLUDE) -Itests -c $< -o $@

$(BUILD)/tests/tls_tests: $(BUILD)/tests/catch_main.o $(TLS_TEST_OBJECTS)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS) -lbearssl

$(BUILD)/examples $(BUILD)/tests:
	mkdir -p $@

# Process-level tests of the example programs (signals, systemd, inetd):
# native builds only, since they exec build/examples/echo_server.
CLI_TESTS := $(if $(TOOLCHAIN),,tests/echo_server_cli_test.py $(if $(filter yes,$(TLS)),tests/tls_echo_cli_test.py))

test: $(TEST_BINARIES) $(EXAMPLES)
	$(TEST_REFUSAL)BUILD=$(BUILD) RUN="$(RUN)" TEST_TIMEOUT=$(TEST_TIMEOUT) tests/run_all.sh $(TEST_BINARIES) $(CLI_TESTS)

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
tsan:
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

# Each example static and stripped, against glibc and against musl, as a
# table; fails when SIZE_CHECKED (under musl) is over SIZE_BUDGET bytes.
SIZE_CHECKED ?= tcp_uppercase
SIZE_BUDGET  ?= 32768
STATIC_GLIBC := build/static-glibc
size:
	@$(MAKE) --no-print-directory examples TOOLCHAIN= BUILD=$(STATIC_GLIBC) OPTIMIZE=-Os \
	  CXXFLAGS='-ffunction-sections -fdata-sections $(CXXFLAGS)' LDFLAGS='-static -Wl,--gc-sections -s $(LDFLAGS)'
	@$(MAKE) --no-print-directory examples TOOLCHAIN=x86_64-linux-musl
	@tools/size_table.sh $(STATIC_GLIBC)/examples build/x86_64-linux-musl/examples $(SIZE_CHECKED) $(SIZE_BUDGET)

# The single header: every project header inlined once, in dependency order.
SINGLE_HEADER := build/single/sockserv.hpp
single-header: $(SINGLE_HEADER)
$(SINGLE_HEADER): $(HEADERS) tools/single_header.py
	python3 tools/single_header.py --root include $@

# Builds hello and every example against the single header alone, runs them.
single-header-test: $(SINGLE_HEADER)
	CXX='$(CXX)' STD=$(STD) tests/consumer/single_header_test.sh $(SINGLE_HEADER)

# make install PREFIX=/usr/local [DESTDIR=...]: the headers, a pkg-config file
# (PREFIX/share/pkgconfig/sockserv.pc) and a CMake package
# (PREFIX/share/cmake/sockserv: find_package(sockserv) -> sockserv::sockserv).
VERSION ?= 0.1.0
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
# musl-tools, ...), so the examples are built by a recursive make after it.
.PHONY: bench bench-quick
bench bench-quick:
	bench/setup.sh
	$(MAKE) --no-print-directory examples TOOLCHAIN=
	python3 bench/run.py $(if $(filter bench-quick,$@),--quick)

# The event loop holding 10 000 idle connections: memory per connection
# against its configured buffers -> bench/IDLE.md (needs make bench's tools).
.PHONY: bench-idle
bench-idle:
	python3 bench/idle_event.py

# ---- Soak and fuzzing: long runs, not part of make test ------------------
# make soak: 100 000 requests under each policy (forking: 20 000) and every
# datagram size, counting descriptors, threads and children before, during
# and after (tests/soak_test.cpp). A few minutes.
.PHONY: soak fuzz fuzz-build
soak: $(BUILD)/tests/soak_tests
	$(TEST_REFUSAL)BUILD=$(BUILD) RUN="$(RUN)" TEST_TIMEOUT=1800 SOCKSERV_TEST_WATCHDOG=900 tests/run_all.sh $<

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
