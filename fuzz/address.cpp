// libFuzzer entry point of the address target: see fuzz/address.hpp (make fuzz).
#include "address.hpp"

SOCKSERV_FUZZ_TARGET(address)
