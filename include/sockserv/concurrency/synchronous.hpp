// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/synchronous.hpp — the default policy: each request
// runs to completion on the serving thread before the next is fetched.
//
// A concurrency policy is a class with a `default_timeout` (seconds the
// server's handle_request() waits; negative = forever) and a nested
// `mixin<Server, SocketType, Handler>` that basic_server derives from
// (Python's ThreadingMixIn/ForkingMixIn). The mixin supplies
// process_request, service_actions, handle_timeout,
// wait_for_requests_in_flight (run by server_close after the socket is
// closed), finish_all_requests (run by the destructor) and
// drain_requests(deadline_ms) (graceful_close: let requests in flight end
// until the monotonic deadline; true if they all did), and runs each
// request with server.serve_request(). A mixin that must watch more than
// the server socket (the event loop) also supplies
// wait_for_activity(timeout_ms, watch_wakeup), used instead of
// server_base::wait_for_request.
#pragma once

#include "../address.hpp"
#include "../request_deadline.hpp"
#include "../detail/scope_exit.hpp"

#include <cstdint>

namespace sockserv {

struct synchronous {
  static constexpr double default_timeout = -1;

  template <class Server, class SocketType, class Handler>
  class mixin {
   public:
    using request_type = typename SocketType::request_type;

    // One request in flight at a time: a per-address cap of 1 or more
    // always admits it.
    void process_request(request_type& request, const socket_address& client_address) {
      auto& server = static_cast<Server&>(*this).self();
      server.note_in_flight(1);
      detail::request_scope scope{server, detail::connection_fd_of(request)};
      if constexpr (SocketType::type == SOCK_STREAM) {
        // A stop ends this request's input (detail/stop_ends_input.hpp), so
        // that serve_forever() returns even while a client sends nothing.
        server.begin_request_input(request.fd);
        detail::scope_exit ended{[&] { server.end_request_input(); }};
        server.serve_request(request, client_address);
      } else {
        server.serve_request(request, client_address);
      }
    }
    void service_actions() {}
    void handle_timeout() {}
    void wait_for_requests_in_flight() {}
    void finish_all_requests() {}
    // graceful_close(): between requests nothing is in flight.
    bool drain_requests(std::int64_t) { return true; }
  };
};

}  // namespace sockserv
