// libFuzzer entry point of the line_reader target: see fuzz/line_reader.hpp (make fuzz).
#include "line_reader.hpp"

SOCKSERV_FUZZ_TARGET(line_reader)
