// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/event.hpp — a TLS session driven by the event loop's
// readiness: tls_stream's per-connection state under event_loop<>.
//
// The event loop (concurrency/event_loop.hpp) keeps one of these in each
// connection slot and calls it at the points where a plain connection
// calls recv()/send(): the handshake runs step by step as the socket
// becomes readable or writable (BearSSL's engine says which: SENDREC,
// RECVREC), then the handler's output goes into the engine as plaintext
// and leaves as records, and decrypted input fills the handler's input
// buffer. Nothing blocks, nothing is allocated.
//
// The handler's `request.transport` points here, so tls::session_of(request)
// works as for blocking handlers. Its recv()/sendall() are refused
// (EOPNOTSUPP): an event handler reads through handle_message() and writes
// with write().
#pragma once

#include "../error.hpp"
#include "../socket.hpp"
#include "../transport.hpp"
#include "context.hpp"
#include "session.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <sys/types.h>

namespace sockserv::tls {

class event_transport_core : public byte_transport {
 public:
  event_transport_core(const event_transport_core&) = delete;
  event_transport_core& operator=(const event_transport_core&) = delete;

  // The event transport behind a connection, or null.
  static event_transport_core* of(const connection& request) noexcept {
    if (request.transport == nullptr || request.transport->receive != &refuse_receive) return nullptr;
    return static_cast<event_transport_core*>(request.transport);
  }
  session_core& session() const noexcept { return *session_; }

  // ---- the handshake ---------------------------------------------------------
  // A new connection: takes a place under the context's cap on handshakes
  // and starts the session; `request` (the handler's) then leads here.
  result begin(server_context_core& context, connection& request) noexcept {
    request.transport = this;
    established_ = false;
    close_queued_ = false;
    if (!context.try_begin_handshake()) return context.cap_refusal();
    context_ = &context;
    result started = session_->start(context);
    if (!started) end();
    return started;
  }
  // Still counted under the cap (the handshake has not ended).
  bool handshaking() const noexcept { return context_ != nullptr; }
  // What the handshake waits for: the client's records (else only the
  // socket's room for ours).
  bool wants_input() const noexcept { return (session_->wants() & want_read) != 0; }

  enum class progress { waiting, done, failed };
  // Moves handshake records both ways as far as the socket allows now.
  // failed: failure() says why (the engine's fatal alert, if any, is sent
  // best effort); done: application data can flow.
  progress handshake(int fd) noexcept {
    io_error_ = 0;
    for (;;) {
      bool moved = false;
      const unsigned wanted = session_->wants();
      if ((wanted & want_write) != 0 && !step(session_->send_to(fd), moved)) return progress::failed;
      if ((wanted & want_read) != 0 && !step(session_->receive_from(fd), moved)) return progress::failed;
      if (session_->failed()) {
        (void)send_records(fd);  // the alert, if the socket takes it now
        return progress::failed;
      }
      if (session_->handshake_done()) {
        end();
        established_ = true;
        return progress::done;
      }
      if (!moved) return progress::waiting;
    }
  }
  // Why the handshake failed, in the words the blocking path uses.
  result failure() const noexcept {
    return io_error_ != 0 ? result::from_errno(io_error_, "TLS handshake failed: transport")
                          : handshake_failure(*session_);
  }
  result timed_out() const noexcept { return handshake_timeout(context_ ? context_->handshake_timeout_ms : 0); }
  int handshake_timeout_ms() const noexcept { return context_ ? context_->handshake_timeout_ms : -1; }

  // ---- after the handshake -----------------------------------------------------
  // What event_connection::receive_from() reads: decrypted bytes, 0 at a
  // clean end (close_notify), -1 with EAGAIN (nothing yet) or EPROTO (the
  // session failed, or the TCP stream ended without close_notify: a
  // truncation). With from_socket false only what the engine holds
  // already is taken (no system call).
  ssize_t read_plaintext(int fd, char* into, std::size_t room, bool from_socket) noexcept {
    for (;;) {
      if (std::size_t n = session_->read(into, room)) return static_cast<ssize_t>(n);
      if (session_->failed()) return fail(EPROTO);
      if (session_->closed()) return 0;
      const unsigned wanted = session_->wants();
      ssize_t moved = -1;
      errno = EAGAIN;
      if (!from_socket) return -1;
      if ((wanted & want_read) != 0)
        moved = session_->receive_from(fd);  // 0: the stream ended; failed() or closed() tells how
      else if ((wanted & want_write) != 0)
        moved = session_->send_to(fd);  // the engine must answer first (close_notify, an alert)
      if (moved < 0 || (moved == 0 && (wanted & want_read) == 0)) return -1;
    }
  }
  // What event_connection::send_pending_to() writes: plaintext taken into
  // the engine (sealed into a record once all of it is in), or -1 with
  // EAGAIN (the socket is full) or another errno (the connection broke).
  ssize_t write_plaintext(int fd, const char* data, std::size_t size) noexcept {
    for (;;) {
      if (session_->failed()) return fail(EPROTO);
      if (session_->closed()) return fail(EPIPE);
      if (std::size_t n = session_->write(data, size)) {
        if (n == size) session_->flush();
        return static_cast<ssize_t>(n);
      }
      session_->flush();  // the record buffer is full: send what it holds
      ssize_t sent = session_->send_to(fd);
      if (sent > 0) continue;
      return sent < 0 ? -1 : fail(EAGAIN);  // 0: the engine reads before it writes
    }
  }
  // Sends sealed records: false if the connection broke (EAGAIN is not).
  bool send_records(int fd) noexcept {
    while (records_pending()) {
      if (session_->send_to(fd) > 0) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    return true;
  }
  bool records_pending() noexcept {
    std::size_t size = 0;
    return session_->pending_output(size) != nullptr;
  }
  // The engine takes plaintext now (otherwise output waits, unwatched).
  bool takes_plaintext() noexcept {
    std::size_t room = 0;
    return br_ssl_engine_sendapp_buf(&session_->engine(), &room) != nullptr;
  }
  // The engine holds decrypted bytes not yet read.
  bool holds_plaintext() noexcept {
    std::size_t available = 0;
    return br_ssl_engine_recvapp_buf(&session_->engine(), &available) != nullptr;
  }
  // Why the session failed after the handshake ("... truncated").
  result session_failure() const noexcept {
    char reason[120];
    char text[160];
    std::snprintf(text, sizeof text, "TLS: %s", session_->describe_failure(reason, sizeof reason));
    return result::failure(text);
  }
  bool failed() const noexcept { return session_->failed(); }
  // Something for the handler's input without a system call: decrypted
  // bytes, or the end of the session.
  bool input_news() noexcept { return holds_plaintext() || session_->closed(); }

  // ---- closing -------------------------------------------------------------------
  // A clean close: queues close_notify, once, on an established session
  // that has not failed or closed. Then send_records() until none remain.
  bool queue_close_notify() noexcept {
    if (!established_ || close_queued_ || session_->failed() || session_->closed()) return false;
    close_queued_ = true;
    session_->close();
    return true;
  }
  // The connection is gone: gives back its place under the cap if the
  // handshake never ended.
  void end() noexcept {
    if (context_ != nullptr) context_->end_handshake();
    context_ = nullptr;
  }

 protected:
  explicit event_transport_core(session_core& session) noexcept
      : byte_transport{&refuse_receive, &refuse_send}, session_(&session) {}
  ~event_transport_core() = default;

 private:
  // One transfer's outcome: true to go on (moved or would block).
  bool step(ssize_t n, bool& moved) noexcept {
    if (n > 0) moved = true;
    if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK) return true;
    io_error_ = errno;
    return false;
  }
  static ssize_t fail(int code) noexcept {
    errno = code;
    return -1;
  }
  static std::ptrdiff_t refuse_receive(byte_transport&, void*, std::size_t) noexcept { return fail(EOPNOTSUPP); }
  static std::ptrdiff_t refuse_send(byte_transport&, const void*, std::size_t) noexcept { return fail(EOPNOTSUPP); }

  session_core* session_;
  server_context_core* context_ = nullptr;  // set while the handshake holds a place under the cap
  int io_error_ = 0;
  bool established_ = false;
  bool close_queued_ = false;
};

// A connection slot's TLS state: sizeof is what TLS adds to each slot.
template <class Config = default_config>
class event_transport : public event_transport_core {
 public:
  event_transport() noexcept : event_transport_core(storage_) {}

 private:
  tls::session<Config> storage_;
};

}  // namespace sockserv::tls
