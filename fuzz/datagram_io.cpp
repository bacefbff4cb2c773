// libFuzzer entry point of the datagram_io target: see fuzz/datagram_io.hpp (make fuzz).
#include "datagram_io.hpp"

SOCKSERV_FUZZ_TARGET(datagram_io)
