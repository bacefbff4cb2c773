// SPDX-License-Identifier: BSL-1.0
// sockserv.hpp — Python's socketserver for embedded POSIX, header-only C++17.
//
// The four synchronous servers, their threading and forking variants, and
// the IPv6 spellings, as aliases of basic_server. Each alias takes the
// handler and, optionally, your own server class (Derived) when you replace
// a hook such as verify_request.
#pragma once

#include "sockserv/access.hpp"
#include "sockserv/activation.hpp"
#include "sockserv/address.hpp"
#include "sockserv/concurrency/event_loop.hpp"
#include "sockserv/concurrency/forking.hpp"
#include "sockserv/concurrency/synchronous.hpp"
#include "sockserv/concurrency/threading.hpp"
#include "sockserv/error.hpp"
#include "sockserv/event_handler.hpp"
#include "sockserv/framing.hpp"
#include "sockserv/handler.hpp"
#include "sockserv/io.hpp"
#include "sockserv/loop.hpp"
#include "sockserv/server.hpp"
#include "sockserv/socket.hpp"
#include "sockserv/version.hpp"

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

// ThreadingMixIn and ForkingMixIn variants (Python's eight predefined
// classes). Any server takes either policy: basic_server<F, T, H, threading<>>.
template <class Handler, class Derived = void>
using threading_tcp_server = basic_server<inet4, stream, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_udp_server = basic_server<inet4, datagram<>, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_unix_stream_server = basic_server<unix_socket, stream, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_unix_datagram_server = basic_server<unix_socket, datagram<>, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using forking_tcp_server = basic_server<inet4, stream, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_udp_server = basic_server<inet4, datagram<>, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_unix_stream_server = basic_server<unix_socket, stream, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_unix_datagram_server = basic_server<unix_socket, datagram<>, Handler, forking<>, Derived>;

}  // namespace sockserv
