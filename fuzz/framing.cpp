// libFuzzer entry point of the framing target: see fuzz/framing.hpp (make fuzz).
#include "framing.hpp"

SOCKSERV_FUZZ_TARGET(framing)
