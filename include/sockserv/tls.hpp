// SPDX-License-Identifier: BSL-1.0
// sockserv/tls.hpp — TLS 1.2 over BearSSL for stream servers (link with
// -lbearssl). Not part of sockserv.hpp: only programs that include this
// header need the library.
//
//   tls/credentials.hpp  chain, key and client CAs from PEM, no allocation
//   tls/context.hpp      what a server's sessions share (cache, limits, ALPN)
//   tls/session.hpp      one connection, sans-I/O (for an event loop)
//   tls/blocking.hpp     a session driven with blocking I/O
//   tls/stream.hpp       tls_stream<Config>, the socket type for basic_server
#pragma once

#include "../sockserv.hpp"
#include "tls/stream.hpp"
