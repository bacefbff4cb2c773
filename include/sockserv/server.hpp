// SPDX-License-Identifier: BSL-1.0
// sockserv/server.hpp — basic_server: the request pipeline.
//
//   serve_forever / handle_request
//     -> get_request -> verify_request -> process_request      (policy)
//          -> serve_request -> finish_request -> handler.setup/handle/finish
//          -> shutdown_request -> close_request
//
// Every step is a public member a user's server may replace, the way a
// Python subclass overrides a method: derive from the server type, pass your
// class as the last template argument (Derived) and declare the member.
// The pipeline calls every hook through self(), so your version runs.
// The concurrency policy is a base class (Python's mixin) that supplies
// process_request, service_actions, handle_timeout and what server_close
// waits for; it runs requests through serve_request() and never touches the
// rest of the pipeline (see concurrency/synchronous.hpp for the contract).
#pragma once

#include "address.hpp"
#include "concurrency/synchronous.hpp"
#include "detail/error_report.hpp"
#include "detail/hook.hpp"
#include "error.hpp"
#include "handler.hpp"
#include "server_base.hpp"
#include "socket.hpp"

#include <cstdio>
#include <type_traits>
#include <utility>

namespace sockserv {

namespace detail {
// Whether a shared loop serves the server (loop.add): only event_loop
// servers can join one.
template <class Mixin, class = void>
struct can_join_loop : std::false_type {};
template <class Mixin>
struct can_join_loop<Mixin, std::void_t<decltype(std::declval<const Mixin&>().served_by_shared_loop())>>
    : std::true_type {};

// Whether a policy mixin waits for readiness itself (the event loop).
template <class Mixin, class = void>
struct has_own_wait : std::false_type {};
template <class Mixin>
struct has_own_wait<Mixin, std::void_t<decltype(std::declval<Mixin&>().wait_for_activity(0, false))>>
    : std::true_type {};

// Whether a policy can take a request now (threading: a free worker;
// forking: a free child slot); one without has_capacity() always can.
template <class Mixin>
auto policy_has_capacity(Mixin& policy, int) -> decltype(policy.has_capacity()) {
  return policy.has_capacity();
}
template <class Mixin>
bool policy_has_capacity(Mixin&, long) {
  return true;
}
// How soon such a policy looks again while it has none (-1, or no
// capacity_recheck_ms(): it wakes the loop itself when capacity comes back,
// see server_base::wait_for_request).
template <class Mixin>
auto capacity_recheck_ms(const Mixin& policy, int) -> decltype(int{policy.capacity_recheck_ms()}) {
  return policy.capacity_recheck_ms();
}
template <class Mixin>
int capacity_recheck_ms(const Mixin&, long) {
  return -1;
}
// A socket type may prepare a request on the thread (or process) that
// serves it, before the handler exists: tls_stream runs the TLS handshake
// there. Plain sockets have nothing to do.
template <class SocketType, class Request>
auto start_request(Request& request, int) -> decltype(SocketType::start_request(request)) {
  return SocketType::start_request(request);
}
template <class SocketType, class Request>
result start_request(Request&, long) {
  return {};
}
// The state the server's get_request() accepts into: the socket type's
// receive_buffer, unless the policy names its own (`accept_buffer`: the
// event loop, whose slots hold the per-connection state).
template <class Policy, class SocketType, class = void>
struct accept_buffer_of {
  using type = typename SocketType::receive_buffer;
};
template <class Policy, class SocketType>
struct accept_buffer_of<Policy, SocketType, std::void_t<typename Policy::accept_buffer>> {
  using type = typename Policy::accept_buffer;
};
}  // namespace detail

template <class AddressFamily, class SocketType, class Handler, class Concurrency = synchronous,
          class Derived = void>
class basic_server : public server_base,
                     public Concurrency::template mixin<
                         basic_server<AddressFamily, SocketType, Handler, Concurrency, Derived>, SocketType,
                         Handler> {
 public:
  using address_family_type = AddressFamily;
  using socket_type_policy = SocketType;
  using handler_type = Handler;
  using request_type = typename SocketType::request_type;
  using endpoint = typename AddressFamily::endpoint;
  using self_type = std::conditional_t<std::is_void_v<Derived>, basic_server, Derived>;

  static constexpr int address_family = AddressFamily::family;
  static constexpr int socket_type = SocketType::type;
  static constexpr std::size_t max_packet_size = SocketType::max_packet_size;

  static_assert(std::is_same_v<typename Handler::request_type, request_type>,
                "handler does not fit this socket type: stream servers take stream_request_handler or "
                "base_request_handler<connection>; datagram servers take datagram_request_handler or "
                "base_request_handler<datagram_request>");
  static_assert(std::is_default_constructible_v<Handler>,
                "the server builds a handler per request: it needs a default constructor");

  // Parses the address, creates the socket and, if bind_and_activate, binds
  // and listens. On failure the socket is closed, error() says what failed
  // and where ("bind 127.0.0.1:9999: Address already in use"), and — when
  // exceptions are enabled — socket_error is thrown.
  // The constructor runs basic_server's own server_bind/server_activate: a
  // Derived that replaces them passes false and calls them itself.
  explicit basic_server(const endpoint& where, bool bind_and_activate = true) {
    apply_default_timeout();
    result made = AddressFamily::parse(where, server_address);
    if (made) made = open_socket(AddressFamily::family, SocketType::type);
    if (made && bind_and_activate) made = server_bind();
    if (made && bind_and_activate) made = server_activate();
    finish_construction(made);
  }

  // Takes over a socket that is already bound (and, for a stream server,
  // listening): one handed over by systemd (see activation.hpp) or inetd
  // ("wait" mode, on stdin). Its family and type must be this server's.
  basic_server(adopt_socket_t, int fd) {
    apply_default_timeout();
    finish_construction(adopt_descriptor(fd, AddressFamily::family, SocketType::type));
  }

  // A server with no socket of its own, serving connections that arrive
  // already accepted through serve_connection() (inetd "nowait" mode).
  explicit basic_server(no_socket_t) {
    apply_default_timeout();
    finish_construction(open_without_socket());
  }

  // RAII: leaving scope is server_close() (basic_server's own: by now a
  // Derived part is gone, so a Derived's server_close must run from its
  // own destructor). Requests still in flight on threads — daemon ones too —
  // are cancelled if blocked on their connection and waited for, since they
  // use this object.
  ~basic_server() { end_all_requests(); }

  // Stops listening and ends every request in flight, daemon threads too:
  // those blocked on their connection are cancelled (see graceful_close),
  // then all are waited for. The destructor does this, but only once a
  // Derived's members are gone — while requests on other threads may still
  // call its hooks. So a Derived whose hooks use its own members calls this
  // first thing in its own destructor.
  void end_all_requests() {
    basic_server::server_close();
    this->finish_all_requests();
  }

  self_type& self() noexcept { return static_cast<self_type&>(*this); }

  // ---- serving ----------------------------------------------------------

  // Handles requests until shutdown(). poll_interval only paces
  // service_actions(): shutdown() wakes the loop at once. timeout is ignored.
  result serve_forever(double poll_interval = 0.5) {
    if (!socket.is_open()) return closed_error();
    if (served_by_shared_loop())
      return result::failure("serve_forever: this server was added to a shared loop; run that loop's serve_forever()");
    if (!begin_serving()) return result::failure("serve_forever: already running on another thread");
    struct stop_guard {  // releases shutdown() even if a handler's exception escapes
      basic_server& server;
      ~stop_guard() { server.end_serving(); }
    } guard{*this};
    const int interval_ms = detail::to_poll_ms(poll_interval);
    while (!take_shutdown_request()) {
      wait_outcome ready = wait_step(interval_ms, true, 0);
      if (take_shutdown_request()) break;
      if (ready == wait_outcome::failed) return result::from_errno(errno, "serve_forever: poll");
      if (ready == wait_outcome::request && !detail::has_own_wait<policy_mixin>::value) {
        // Take what is queued, not one request per wake-up: a poll() per
        // datagram or connection would cost as much as the request. A policy
        // with its own wait (the event loop) takes one per turn, so that a
        // full connection table is seen before the next accept.
        // Threading and forking take one only while they have room for it.
        int batch = detail::has_own_wait<policy_mixin>::value ? 1 : 64;
        policy_mixin& policy = *this;
        while (handle_request_noblock() && --batch > 0 && !shutdown_requested() &&
               (answer_when_busy || detail::policy_has_capacity(policy, 0))) {
        }
      }
      self().service_actions();
    }
    return {};
  }

  bool served_by_shared_loop() const noexcept {
    if constexpr (detail::can_join_loop<policy_mixin>::value)
      return static_cast<const policy_mixin*>(this)->served_by_shared_loop();
    else
      return false;
  }

  // Handles one request, waiting at most timeout seconds for it; if none
  // comes, calls handle_timeout() and returns.
  result handle_request() {
    if (!socket.is_open()) return closed_error();
    const std::int64_t deadline = timeout ? detail::monotonic_ms() + detail::to_poll_ms(*timeout) : -1;
    for (;;) {
      const std::int64_t left = deadline < 0 ? -1 : deadline - detail::monotonic_ms();
      switch (wait_step(left < 0 && deadline >= 0 ? 0 : static_cast<int>(left), false, 0)) {
        case wait_outcome::request:
          // A policy with its own wait (the event loop) has taken it already.
          if constexpr (!detail::has_own_wait<policy_mixin>::value) handle_request_noblock();
          return {};
        case wait_outcome::timed_out:
          // A wait cut short (a signal, the event loop's idle expiry) is
          // not the timeout: wait for the rest, as Python does.
          if (deadline < 0 || detail::monotonic_ms() < deadline) continue;
          self().handle_timeout();
          return {};
        case wait_outcome::served:  // the event loop advanced connections: keep waiting
        case wait_outcome::woken:
          continue;
        default:
          return result::from_errno(errno, "handle_request: poll");
      }
    }
  }

  // inetd "nowait" mode: a connection someone else accepted (usually
  // descriptor 0) goes through verify_request and process_request as if
  // get_request had returned it.
  result serve_connection(int fd) {
    static_assert(SocketType::type == SOCK_STREAM, "serve_connection takes a connected stream socket");
    request_type request{fd};
    socket_address client_address;
    if (::getpeername(fd, client_address.data(), &client_address.length_for_update()) == -1)
      return result::from_errno(errno, "serve_connection: getpeername");
    dispatch(request, client_address);
    return {};
  }

  // A graceful stop (say, after SIGTERM ended serve_forever): stop
  // accepting now, give the requests in flight up to `seconds` to finish,
  // then server_close(). True if they all finished in time; otherwise
  // forked children are killed, event-loop connections are closed, and
  // threads are still waited for by the destructor.
  bool graceful_close(double seconds) {
    const std::int64_t deadline = detail::monotonic_ms() + detail::to_poll_ms(seconds);
    close_listener();
    const bool finished = this->drain_requests(deadline);
    server_close();
    return finished;
  }

  // Stops listening, then lets the policy finish what is in flight (threads,
  // children). Idempotent; afterwards fileno() == -1.
  void server_close() {
    close_listener();
    this->wait_for_requests_in_flight();
  }

  // The listener's close: whatever watches it lets go first.
  void close_listener() noexcept {
    let_go_of_listener(0);
    close_socket();
  }

  // A loop serving this server found its socket readable: fetches and
  // dispatches one request. False when nothing more is queued (or
  // accepting has paused).
  bool accept_ready_request() { return handle_request_noblock(); }

  // ---- construction hooks -----------------------------------------------

  // Applies allow_reuse_address / allow_reuse_port, binds to
  // server_address, then stores the real bound address there.
  result server_bind() { return bind_socket(); }

  // listen(request_queue_size) for stream sockets; nothing for datagram.
  result server_activate() { return activate_socket(&SocketType::activate); }

  // ---- per-request hooks ------------------------------------------------

  // Fetches one request: accepts a connection or receives one datagram.
  result get_request(request_type& request, socket_address& client_address) {
    return SocketType::get_request(socket.fd(), receive_buffer_, request, client_address);
  }

  // Access control: false refuses the request (it is shut down unhandled).
  bool verify_request(request_type&, const socket_address&) { return true; }

  // Builds the handler and runs setup, handle and finish. finish runs even
  // when handle fails, not when setup fails. Returns the first failure.
  // A socket type's start_request (the TLS handshake) comes first.
  result finish_request(request_type& request, const socket_address& client_address) {
    result started = detail::start_request<SocketType>(request, 0);
    if (!started) return started;
    // The handler's request.fd is its own copy, made if it asks for it
    // (handler_connection.hpp); the server keeps this request's number.
    Handler handler;
    handler.begin_request(request, client_address, *this);
    result outcome = detail::call_hook([&] { return handler.setup(); });
    if (!outcome) return outcome;
#if SOCKSERV_EXCEPTIONS
    try {
      outcome = detail::call_hook([&] { return handler.handle(); });
    } catch (...) {
      (void)detail::call_hook([&] { return handler.finish(); });
      throw;
    }
#else
    outcome = detail::call_hook([&] { return handler.handle(); });
#endif
    result finished = detail::call_hook([&] { return handler.finish(); });
    return outcome ? finished : outcome;
  }

  // No capacity for this request (answer_when_busy): sends busy_reply
  // without waiting (a stream client only); the request is then shut down.
  void handle_busy(request_type& request, const socket_address&) {
    if constexpr (SocketType::type == SOCK_STREAM)
      if (!busy_reply.empty())
        (void)::send(request.fd, busy_reply.data(), busy_reply.size(), detail::no_sigpipe | MSG_DONTWAIT);
  }

  // Ends the request: for a connection, half-close then close_request().
  void shutdown_request(request_type& request) {
    SocketType::shutdown_request(request);
    self().close_request(request);
  }
  void close_request(request_type& request) { SocketType::close_request(request); }

  // A request failed (a std::exception from the handler, a failed result,
  // or a datagram that did not fit). Reports to stderr; serving goes on.
  void handle_error(request_type&, const socket_address& client_address, const char* what) {
    detail::report_request_error(client_address, what);
  }

  // finish_request + handle_error on failure + shutdown_request: what every
  // policy runs for one request, wherever it runs it. A failure derived
  // from std::exception (or a failed result) reaches handle_error exactly
  // once; any other exception (also one thrown by handle_error) is not
  // swallowed, but the request is still shut down first. Returns false if
  // the request failed.
  bool serve_request(request_type& request, const socket_address& client_address) {
    request_owner owner{*this, request};
    result outcome;
#if SOCKSERV_EXCEPTIONS
    try {
      outcome = self().finish_request(request, client_address);
    } catch (const std::exception& failure) {
      outcome = result::failure(failure.what());
    }
#else
    outcome = self().finish_request(request, client_address);
#endif
    if (!outcome) {
      count(server_event::failed);
      self().handle_error(request, client_address, outcome.message());
    }
    return outcome.ok();
  }

  // The request path owns its request: whichever way a scope is left —
  // returning, or a hook (verify_request, a handler's constructor, finish,
  // handle_error) throwing — the request is shut down and its descriptor
  // closed, once, unless handed on (released). Public for the policies
  // (the event loop's handler construction).
  struct request_owner {
    basic_server& server;
    request_type& request;
    bool owned = true;
    request_owner(basic_server& owner, request_type& owned_request) noexcept : server(owner), request(owned_request) {}
    request_owner(const request_owner&) = delete;
    request_owner& operator=(const request_owner&) = delete;
    ~request_owner() {
      if (owned) server.self().shutdown_request(request);
    }
  };

  // A request the policy cannot serve (no worker, no child, no slot, no
  // handler): counted as `why`, reported to handle_error(), shut down —
  // also when handle_error() throws (the exception goes on).
  void refuse_request(request_type& request, const socket_address& client_address, server_event why,
                      const char* what) {
    request_owner owner{*this, request};
    count(why);
    self().handle_error(request, client_address, what);
  }

 private:
  // One request whose arrival poll() announced; returns quietly if it is
  // gone by now (client reset before accept, another process took it).
  // Returns false when nothing more is queued (or accepting has paused).
  bool handle_request_noblock() {
    request_type request{};
    socket_address client_address;
    result fetched = self().get_request(request, client_address);
    if (!fetched) {
      if (detail::is_transient_fetch_error(fetched.code())) return false;
      // Out of descriptors: pause accepting and report once per episode.
      const bool exhausted = detail::is_resource_exhaustion(fetched.code());
      if (!exhausted || pause_accepting()) self().handle_error(request, client_address, fetched.message());
      return !exhausted;  // e.g. an oversized datagram: the next may be fine
    }
    resume_accepting();
    count(server_event::accepted);
    policy_mixin& policy = *this;
    if (answer_when_busy && !detail::policy_has_capacity(policy, 0)) {
      count(server_event::refused_busy);
      request_owner owner{*this, request};
      self().handle_busy(request, client_address);
      return true;
    }
    dispatch(request, client_address);
    return true;
  }

  // verify_request, then process_request, which owns the request from
  // then on: the policies' own shut it down, or hand it on and forget it
  // (detail::forget_handed_on), whichever way they go. A handler's
  // std::exception reaches handle_error there, once; what escapes them (a
  // hook's exception, handle_error's own) goes on unreported — reporting
  // it here as well ran handle_error twice. A process_request of the
  // user's may throw before it forwards: a stream request still open (its
  // descriptor not yet -1) is then shut down before the exception goes on.
  void dispatch(request_type& request, const socket_address& client_address) {
    {
      request_owner owner{*this, request};
      if (!self().verify_request(request, client_address)) {
        count(server_event::refused_verify);
        return;
      }
      owner.owned = false;  // process_request owns it from here
    }
#if SOCKSERV_EXCEPTIONS
    if constexpr (SocketType::type == SOCK_STREAM) {
      try {
        self().process_request(request, client_address);
      } catch (...) {
        if (request.fd >= 0) self().shutdown_request(request);
        throw;
      }
      return;
    }
#endif
    self().process_request(request, client_address);
  }

  void apply_default_timeout() noexcept {
    if (Concurrency::default_timeout >= 0) timeout = Concurrency::default_timeout;
  }

  void finish_construction(const result& made) {
    if (made) {
      if constexpr (std::is_same_v<Concurrency, synchronous> && SocketType::type == SOCK_STREAM)
        this->reserve_request_input();  // a stop ends the input of the request in flight
      return;
    }
    close_socket();
    record_construction_error(made);
#if SOCKSERV_EXCEPTIONS
    throw socket_error(made);
#endif
  }

  using policy_mixin = typename Concurrency::template mixin<basic_server, SocketType, Handler>;

  // A policy whose loop watches the listener (the event loop) lets go of it
  // before the close; the others have nothing to do (nor need to say so).
  template <class Policy = policy_mixin>
  auto let_go_of_listener(int) noexcept -> decltype(static_cast<Policy*>(this)->before_listener_closes()) {
    return static_cast<Policy*>(this)->before_listener_closes();
  }
  void let_go_of_listener(long) noexcept {}

  // The policy's own wait if it has one (the event loop serves connections
  // while it waits), else the plain wait on the server socket.
  template <class Policy = policy_mixin>
  auto wait_step(int timeout_ms, bool watch_wakeup, int)
      -> decltype(static_cast<Policy*>(this)->wait_for_activity(timeout_ms, watch_wakeup)) {
    return static_cast<Policy*>(this)->wait_for_activity(timeout_ms, watch_wakeup);
  }
  wait_outcome wait_step(int timeout_ms, bool watch_wakeup, long) {
    policy_mixin& policy = *this;
    // answer_when_busy: keep accepting, to answer those there is no room for.
    return wait_for_request(timeout_ms, watch_wakeup, answer_when_busy || detail::policy_has_capacity(policy, 0),
                            detail::capacity_recheck_ms(policy, 0));
  }

  typename detail::accept_buffer_of<policy_mixin, SocketType>::type receive_buffer_;
};

// basic_server without a Derived is final. The pipeline calls the hooks
// through Derived, so a class that derived from basic_server<F, T, H, C> to
// replace a hook would silently keep the library's own (an access check
// that refuses nobody would serve everybody): it does not compile instead.
// To replace hooks, pass your class as Derived (the CRTP pattern above).
// This one is its own Derived.
template <class AddressFamily, class SocketType, class Handler, class Concurrency>
class basic_server<AddressFamily, SocketType, Handler, Concurrency, void> final
    : public basic_server<AddressFamily, SocketType, Handler, Concurrency,
                          basic_server<AddressFamily, SocketType, Handler, Concurrency, void>> {
  using pipeline = basic_server<AddressFamily, SocketType, Handler, Concurrency,
                                basic_server<AddressFamily, SocketType, Handler, Concurrency, void>>;

 public:
  using pipeline::pipeline;
};

}  // namespace sockserv
