# toolchains/flags.mk — how a TOOLCHAIN builds, for your own program.
#
#   make -s -f SOCKSERV/toolchains/flags.mk TOOLCHAIN=mipsel-linux-musl print-flags
#
# prints four shell assignments (no quoting needed inside the values):
#   CXX='mipsel-linux-gnu-g++'
#   CXXFLAGS='-std=c++17 -Os -ISOCKSERV/include -pthread ...'   compile flags
#   STARTFILES='...'      objects that go before yours on the link line
#   LDFLAGS='...'         link flags and libraries that go after yours
#   RUN='qemu-mipsel'     the emulator that runs the result here (may be empty)
# so a program builds exactly as make TOOLCHAIN=... builds the examples:
#   eval "$(make -s -f SOCKSERV/toolchains/flags.mk TOOLCHAIN=mipsel-linux-musl print-flags)"
#   $CXX $CXXFLAGS $STARTFILES app.cpp -o app $LDFLAGS
# print-cmake prints the same as CMake set() commands (used by
# toolchains/cmake/sockserv-toolchain.cmake). Without TOOLCHAIN: the host.
toolchains_dir := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
sockserv_include := $(abspath $(toolchains_dir)/../include)

CXX      := g++
OPTIMIZE := -O2
STD      ?= c++17
ifdef TOOLCHAIN
ifeq ($(wildcard $(toolchains_dir)/$(TOOLCHAIN).mk),)
$(error no toolchain '$(TOOLCHAIN)': known are $(basename $(notdir $(wildcard $(toolchains_dir)/*.mk))))
endif
include $(toolchains_dir)/$(TOOLCHAIN).mk
endif

flags_cxx        = $(CXX)
flags_cxxflags   = $(strip -std=$(STD) $(OPTIMIZE) -I$(sockserv_include) -pthread $(TOOLCHAIN_CXXFLAGS))
flags_startfiles = $(strip $(TOOLCHAIN_STARTFILES))
flags_ldflags    = $(strip -pthread $(TOOLCHAIN_LDFLAGS))
flags_run        = $(strip $(TOOLCHAIN_RUN))
flags_processor  = $(firstword $(subst -, ,$(or $(TOOLCHAIN),$(shell $(CXX) -dumpmachine))))

.PHONY: print-flags print-cmake
print-flags:
	@echo "CXX='$(flags_cxx)'"
	@echo "CXXFLAGS='$(flags_cxxflags)'"
	@echo "STARTFILES='$(flags_startfiles)'"
	@echo "LDFLAGS='$(flags_ldflags)'"
	@echo "RUN='$(flags_run)'"

print-cmake:
	@echo 'set(SOCKSERV_CXX "$(flags_cxx)")'
	@echo 'set(SOCKSERV_CXXFLAGS "$(flags_cxxflags)")'
	@echo 'set(SOCKSERV_STARTFILES "$(flags_startfiles)")'
	@echo 'set(SOCKSERV_LDFLAGS "$(flags_ldflags)")'
	@echo 'set(SOCKSERV_RUN "$(flags_run)")'
	@echo 'set(SOCKSERV_PROCESSOR "$(flags_processor)")'
