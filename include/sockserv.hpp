// sockserv.hpp — Python's socketserver for embedded POSIX, header-only C++17.
//
// The four synchronous servers, their threading and forking variants, and
// the IPv6 spellings, as aliases of basic_server. Each alias takes the
// handler and, optionally, your own server class (Derived) when you replace
// a hook such as verify_request.
#pragma once

#include "sockserv/address.hpp"
#include "sockserv/concurrency/synchronous.hpp"
#include "sockserv/error.hpp"
#include "sockserv/handler.hpp"
#include "sockserv/io.hpp"
#include "sockserv/server.hpp"
#include "sockserv/socket.hpp"

namespace sockserv {

template <class Handler, class Derived = void>
using tcp_server = basic_server<inet4, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using tcp6_server = basic_server<inet6, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using udp_server = basic_server<inet4, datagram<>, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using udp6_server = basic_server<inet6, datagram<>, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using unix_stream_server = basic_server<unix_socket, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using unix_datagram_server = basic_server<unix_socket, datagram<>, Handler, synchronous, Derived>;

}  // namespace sockserv
