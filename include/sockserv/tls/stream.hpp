// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/stream.hpp — tls_stream<Config>: the stream socket type whose
// requests are TLS sessions, for basic_server under synchronous, threading,
// forking and event_loop:
//
//   using tls = sockserv::tls_stream<>;
//   tls::context().load_pem_files("chain.pem", "key.pem");
//   sockserv::basic_server<sockserv::inet4, tls, my_handler, sockserv::threading<>> server({"0.0.0.0", 443});
//
// Handlers are unchanged: their rfile/wfile (and request.recv/sendall) read
// and write plaintext. Where the session lives: in the socket type's
// receive_buffer, which the server holds once and threading<> holds per
// worker (a forked child uses its copy of the server's), so sizeof the
// server is the whole footprint. The handshake runs in start_request, on
// the thread or process that serves the request, so a slow client never
// stalls accepting; verify_request therefore sees the TCP address only,
// and the handler sees who the client is through tls::session_of(request).
#pragma once

#include "../error.hpp"
#include "../socket.hpp"
#include "blocking.hpp"
#include "context.hpp"
#include "event.hpp"
#include "session.hpp"

#include <cerrno>

namespace sockserv {

template <class Config = tls::default_config>
struct tls_stream {
  static constexpr int type = SOCK_STREAM;
  static constexpr std::size_t max_packet_size = 0;
  using request_type = connection;
  using config = Config;
  using context_type = tls::server_context<Config>;

  // Under event_loop<> each connection slot holds one of these instead
  // (the loop drives it by readiness; see tls/event.hpp).
  using event_transport = tls::event_transport<Config>;
  // ...so the server accepts there without a session of its own.
  using event_accept_buffer = stream::receive_buffer;

  // One session and the transport that drives it.
  struct receive_buffer {
    tls::session<Config> session;
    tls::blocking_transport transport;
  };

  // The context every server of this Config shares: load the credentials
  // into it before serving.
  static context_type& context() noexcept { return context_; }

  // How long close_notify may take to go out at the end of a request.
  static constexpr int close_notify_timeout_ms = 1000;

  // A server without a certificate and key would fail every handshake:
  // it fails to start instead ("listen ...: Required key not available").
  static int activate(int fd, int backlog) noexcept {
    if (!context_.credentials().has_server_identity()) {
      errno = ENOKEY;
      return -1;
    }
    return stream::activate(fd, backlog);
  }

  static result get_request(int listener, receive_buffer& storage, connection& request,
                            socket_address& client) noexcept {
    stream::receive_buffer plain;
    result accepted = stream::get_request(listener, plain, request, client);
    if (accepted) request.transport = attach(storage);
    return accepted;
  }
  // Under event_loop<>: a plain accept; the slot's event_transport takes
  // the connection over (event_transport_core::begin).
  static result get_request(int listener, event_accept_buffer& plain, connection& request,
                            socket_address& client) noexcept {
    request.transport = nullptr;
    return stream::get_request(listener, plain, request, client);
  }

  // A request handed to a worker thread: it uses that worker's session.
  static void copy_request(const connection& from, connection& to, receive_buffer& storage) noexcept {
    to = from;
    to.transport = attach(storage);
  }

  // The handshake, under the cap and the deadline; a failure reaches
  // handle_error with BearSSL's reason in words.
  static result start_request(connection& request) noexcept {
    tls::blocking_transport* transport = tls::blocking_transport::of(request);
    if (transport == nullptr) return result::failure("TLS: the connection has no TLS session (not from tls_stream)");
    if (!context_.try_begin_handshake()) return context_.cap_refusal();
    result shaken = transport->handshake(request.fd, context_);
    context_.end_handshake();
    return shaken;
  }

  // close_notify first (a clean end), then the half-close plain streams do.
  static void shutdown_request(connection& request) noexcept {
    if (tls::blocking_transport* transport = tls::blocking_transport::of(request))
      transport->close_notify(close_notify_timeout_ms);
    stream::shutdown_request(request);
  }
  static void close_request(connection& request) noexcept {
    stream::close_request(request);
    request.transport = nullptr;
  }

 private:
  static byte_transport* attach(receive_buffer& storage) noexcept {
    storage.transport.bind(storage.session);
    return &storage.transport;
  }

  inline static context_type context_{};
};

namespace tls {
// The TLS session of a request served by tls_stream (who the client is:
// peer_subject(), server_name(), alpn(), resumed()), or null for a plain one.
inline session_core* session_of(const connection& request) noexcept {
  if (blocking_transport* transport = blocking_transport::of(request)) return &transport->session();
  if (event_transport_core* transport = event_transport_core::of(request)) return &transport->session();
  return nullptr;
}
}  // namespace tls

}  // namespace sockserv
