# bench/size.mk — builds bench/size/NAME.cpp with the project's own build
# variables, so a TOOLCHAIN (x86_64-linux-musl) applies exactly as it does to
# the examples. Used by bench/run.py for the binary-size table:
#   make -f Makefile -f bench/size.mk [TOOLCHAIN=...|BUILD=... LDFLAGS=...] BUILD/bench-size/NAME
$(BUILD)/bench-size/%: bench/size/%.cpp $(HEADERS)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $(TOOLCHAIN_STARTFILES) $< -o $@ $(ALL_LDFLAGS)
