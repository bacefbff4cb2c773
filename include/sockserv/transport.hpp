// SPDX-License-Identifier: BSL-1.0
// sockserv/transport.hpp — how a connection's bytes move when they do not go
// straight through recv()/send() on its descriptor (TLS: tls/stream.hpp).
//
// A connection either has no transport (plain sockets: rfile, wfile and
// connection::recv/sendall call the kernel directly, paying one null test
// per system call) or points at one of these, which the socket type set up.
#pragma once

#include <cstddef>

namespace sockserv {

struct byte_transport {
  // One read: 1..size bytes, 0 at a clean end of input, -1 with errno set.
  std::ptrdiff_t (*receive)(byte_transport& self, void* buffer, std::size_t size) noexcept;
  // All size bytes, or -1 with errno set.
  std::ptrdiff_t (*send_all)(byte_transport& self, const void* data, std::size_t size) noexcept;
};

}  // namespace sockserv
