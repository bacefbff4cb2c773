// libFuzzer entry point of the tls_record target: see fuzz/tls_record.hpp (make fuzz).
#include "tls_record.hpp"

SOCKSERV_FUZZ_TARGET(tls_record)
