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

// What an alias names when no Derived is given: the server, final (as
// basic_server without a Derived is, see server.hpp), under a name that
// says the fix when a class derives from it: the pipeline calls hooks
// through Derived, so a class that derived from it to replace a hook would
// silently keep the library's hook (an access check that refuses nobody).
template <class Family, class Type, class Handler, class Policy>
class pass_your_class_as_Derived_to_derive_from final
    : public basic_server<Family, Type, Handler, Policy, pass_your_class_as_Derived_to_derive_from<Family, Type, Handler, Policy>> {
  using pipeline =
      basic_server<Family, Type, Handler, Policy, pass_your_class_as_Derived_to_derive_from<Family, Type, Handler, Policy>>;

 public:
  using pipeline::pipeline;
};

namespace detail {
template <class Family, class Type, class Handler, class Policy, class Derived>
using server_alias = std::conditional_t<std::is_void_v<Derived>,
                                        pass_your_class_as_Derived_to_derive_from<Family, Type, Handler, Policy>,
                                        basic_server<Family, Type, Handler, Policy, Derived>>;
}  // namespace detail

template <class Handler, class Derived = void>
using tcp_server = detail::server_alias<inet4, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using tcp6_server = detail::server_alias<inet6, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using udp_server = detail::server_alias<inet4, datagram<>, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using udp6_server = detail::server_alias<inet6, datagram<>, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using unix_stream_server = detail::server_alias<unix_socket, stream, Handler, synchronous, Derived>;
template <class Handler, class Derived = void>
using unix_datagram_server = detail::server_alias<unix_socket, datagram<>, Handler, synchronous, Derived>;

// ThreadingMixIn and ForkingMixIn variants (Python's eight predefined
// classes). Any server takes either policy: basic_server<F, T, H, threading<>>.
template <class Handler, class Derived = void>
using threading_tcp_server = detail::server_alias<inet4, stream, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_udp_server = detail::server_alias<inet4, datagram<>, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_unix_stream_server = detail::server_alias<unix_socket, stream, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using threading_unix_datagram_server = detail::server_alias<unix_socket, datagram<>, Handler, threading<>, Derived>;
template <class Handler, class Derived = void>
using forking_tcp_server = detail::server_alias<inet4, stream, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_udp_server = detail::server_alias<inet4, datagram<>, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_unix_stream_server = detail::server_alias<unix_socket, stream, Handler, forking<>, Derived>;
template <class Handler, class Derived = void>
using forking_unix_datagram_server = detail::server_alias<unix_socket, datagram<>, Handler, forking<>, Derived>;

}  // namespace sockserv
