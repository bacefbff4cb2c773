// SPDX-License-Identifier: BSL-1.0
// sockserv/handler.hpp — the three request handler bases.
//
// The server builds a fresh handler for every request (on the stack of
// whichever thread or process runs it), calls begin_request() to hand it the
// request, then setup(), handle() and finish(). A handler hides these by
// declaring its own; setup/handle/finish may return void or a result (a
// failed result reaches the server's handle_error()).
#pragma once

#include "address.hpp"
#include "handler_connection.hpp"
#include "io.hpp"
#include "request_deadline.hpp"
#include "server_base.hpp"
#include "socket.hpp"

#include <cstddef>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>

namespace sockserv {

// Request is `connection` for stream servers, `datagram_request` for datagram
// servers; the server refuses at compile time a handler of the wrong kind.
// A stream handler's request is a handler_connection: its fd is the
// handler's own copy (handler_connection.hpp).
template <class Request>
class base_request_handler {
 public:
  using request_type = Request;

  typename detail::handler_request<Request>::type request{};
  socket_address client_address{};
  server_base* server = nullptr;

  void setup() {}
  void handle() {}
  void finish() {}

  // The server as its concrete type, for handlers that share server state.
  template <class Server>
  Server& server_as() const noexcept {
    return static_cast<Server&>(*server);
  }

  // Called by the server before setup().
  void begin_request(const Request& r, const socket_address& from, server_base& owner) noexcept {
    request = r;
    client_address = from;
    server = &owner;
  }
};

// rfile/wfile over the connection. RBufSize bounds the longest line
// readline() can return whole; WBufSize 0 (the default, as in Python) sends
// every wfile.write() at once, a larger value buffers until finish().
template <std::size_t RBufSize = 8192, std::size_t WBufSize = 0>
class stream_request_handler : public base_request_handler<connection> {
 public:
  static constexpr std::size_t rbufsize = RBufSize;
  static constexpr std::size_t wbufsize = WBufSize;

  buffered_reader<RBufSize> rfile;
  stream_writer<WBufSize> wfile;
  // Seconds a single receive or send may wait; unset = forever. A read that
  // times out ends with rfile.timed_out() true.
  std::optional<double> timeout;
  // Seconds the whole request may take from setup(), however slowly the
  // client trickles: rfile and wfile fail with ETIMEDOUT after that (reads
  // end with rfile.timed_out() true), and the connection is shut down both
  // ways, so that the handler's own recv()/send() on request.fd return too
  // (see request_deadline.hpp); the request then ends as usual.
  // Unset = no limit (Python's behaviour).
  std::optional<double> request_timeout;
  bool disable_nagle_algorithm = false;

  void begin_request(const connection& r, const socket_address& from, server_base& owner) noexcept {
    base_request_handler::begin_request(r, from, owner);
    rfile.attach(r.fd, r.transport);
    wfile.attach(r.fd, r.transport);
  }

  void setup() noexcept {
    if (request_timeout) {
      const int limit_ms = detail::to_poll_ms(*request_timeout);
      const std::int64_t deadline = limit_ms < 0 ? 0 : detail::monotonic_ms() + (limit_ms == 0 ? 1 : limit_ms);
      rfile.set_deadline(deadline);
      wfile.set_deadline(deadline);
      if (deadline != 0) detail::request_scope::arm_current(deadline);
    }
    if (timeout) {
      timeval limit = to_timeval(*timeout);
      ::setsockopt(connection_fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      ::setsockopt(connection_fd(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    }
    int family = client_address.family();
    if (disable_nagle_algorithm && (family == AF_INET || family == AF_INET6)) {
      int one = 1;
      ::setsockopt(connection_fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  }

  // Sends what wfile still buffers. As in Python, a client that has gone
  // away by now is not an error of the server's. A request cut off by
  // request_timeout is counted in the server's stats().
  void finish() noexcept {
    wfile.flush();
    if (server != nullptr && (rfile.error() == ETIMEDOUT || wfile.error() == ETIMEDOUT))
      detail::request_scope::note_timed_out(*server);
  }

 private:
  // The server's descriptor (request.fd would make the handler's copy).
  int connection_fd() const noexcept { return static_cast<const connection&>(request).fd; }

  static timeval to_timeval(double seconds) noexcept {
    if (seconds != seconds || seconds >= 1e9) return timeval{0, 0};  // NaN, infinity: no timeout
    if (seconds <= 0) return timeval{0, 1};  // 0 would mean "no timeout" to the kernel
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(seconds);
    tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
    return tv;
  }
};

// packet is the received datagram and rfile reads it; wfile collects the
// reply, which finish() sends to client_address — only if the handler wrote
// to wfile (an empty write sends an empty datagram), and never to a client
// that has no address (an unbound unix datagram socket).
template <std::size_t WBufSize = 8192>
class datagram_request_handler : public base_request_handler<datagram_request> {
 public:
  static constexpr std::size_t wbufsize = WBufSize;

  std::string_view packet;
  int socket = -1;
  packet_reader rfile;
  packet_writer<WBufSize> wfile;

  void begin_request(const datagram_request& r, const socket_address& from, server_base& owner) noexcept {
    base_request_handler::begin_request(r, from, owner);
    packet = r.data;
    socket = r.socket;
    rfile.attach(packet);
    wfile.clear();
  }

  // Returns -1 (errno set) when the reply could not be sent. A reply that
  // did not fit wfile (a write refused with EMSGSIZE) is not sent at all —
  // neither empty nor cut short — and finish() reports it to handle_error;
  // a vanished UDP client is not the server's failure and goes unreported.
  std::ptrdiff_t send_reply() noexcept {
    if (wfile.error() != 0) {
      errno = wfile.error();
      return -1;
    }
    if (!wfile.has_reply() || client_address.is_unnamed()) return 0;
    return request.sendto(wfile.contents(), client_address);
  }

  result finish() noexcept {
    if (send_reply() == -1 && wfile.error() != 0)
      return result::from_errno(wfile.error(), "datagram reply larger than wbufsize: not sent");
    return {};
  }
};

}  // namespace sockserv
