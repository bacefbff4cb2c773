# sockserv — GNU make build. Everything goes to $(BUILD).
#   make            examples and test binaries
#   make demo       builds and runs the seed's examples, server and clients
#   make test       builds and runs the test suite; ends with "N passed, M failed"
#   make examples   build/examples/NAME
# CXX, CXXFLAGS and LDFLAGS from the command line are added to the project's
# own flags (warnings and the language standard stay).

CXX      ?= g++
STD      ?= c++17
BUILD    ?= build
OPTIMIZE ?= -O2 -g
WERROR   ?= -Werror
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion $(WERROR)
TEST_TIMEOUT ?= 600

ifdef TOOLCHAIN
include toolchains/$(TOOLCHAIN).mk
BUILD := build/$(TOOLCHAIN)
endif

PROJECT_CXXFLAGS = -std=$(STD) $(WARNINGS) $(OPTIMIZE) -Iinclude -pthread
ALL_CXXFLAGS = $(PROJECT_CXXFLAGS) $(TOOLCHAIN_CXXFLAGS) $(CXXFLAGS)
ALL_LDFLAGS  = -pthread $(TOOLCHAIN_LDFLAGS) $(LDFLAGS)
# How test binaries are run (a toolchain sets qemu here).
RUN ?= $(TOOLCHAIN_RUN)

HEADERS  := $(shell find include -name '*.hpp')
EXAMPLES := $(patsubst examples/%.cpp,$(BUILD)/examples/%,$(wildcard examples/*.cpp))

# Every tests/*_test.cpp joins one Catch2 binary, except the allocation test,
# which replaces malloc and operator new and so gets a binary of its own.
TEST_SOURCES  := $(filter-out tests/allocation_test.cpp,$(wildcard tests/*_test.cpp))
TEST_OBJECTS  := $(patsubst tests/%.cpp,$(BUILD)/tests/%.o,$(TEST_SOURCES))
TEST_SUPPORT  := $(wildcard tests/support/*.hpp)
TEST_BINARIES := $(BUILD)/tests/sockserv_tests $(BUILD)/tests/allocation_tests

.PHONY: all examples tests test demo clean asan ubsan tsan
all: examples tests

examples: $(EXAMPLES)
tests: $(TEST_BINARIES)

$(BUILD)/examples/%: examples/%.cpp $(HEADERS) | $(BUILD)/examples
	$(CXX) $(ALL_CXXFLAGS) $< -o $@ $(ALL_LDFLAGS)

$(BUILD)/tests/catch_main.o: tests/catch_main.cpp | $(BUILD)/tests
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.cpp $(HEADERS) $(TEST_SUPPORT) | $(BUILD)/tests
	$(CXX) $(ALL_CXXFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/sockserv_tests: $(BUILD)/tests/catch_main.o $(TEST_OBJECTS)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BUILD)/tests/allocation_tests: $(BUILD)/tests/catch_main.o $(BUILD)/tests/allocation_test.o
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BUILD)/examples $(BUILD)/tests:
	mkdir -p $@

test: $(TEST_BINARIES) $(EXAMPLES)
	BUILD=$(BUILD) RUN="$(RUN)" TEST_TIMEOUT=$(TEST_TIMEOUT) tests/run_all.sh $(TEST_BINARIES)

demo: $(EXAMPLES)
	BUILD=$(BUILD) examples/demo.sh

# The suite under each sanitizer, in its own build directory.
asan:
	$(MAKE) test BUILD=build/asan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=address -fno-omit-frame-pointer $(CXXFLAGS)' LDFLAGS='-fsanitize=address $(LDFLAGS)'
ubsan:
	$(MAKE) test BUILD=build/ubsan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=undefined -fno-sanitize-recover=all $(CXXFLAGS)' LDFLAGS='-fsanitize=undefined $(LDFLAGS)'
tsan:
	$(MAKE) test BUILD=build/tsan OPTIMIZE='-O1 -g' CXXFLAGS='-fsanitize=thread $(CXXFLAGS)' LDFLAGS='-fsanitize=thread $(LDFLAGS)'

clean:
	rm -rf build
