// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/blocking.hpp — a TLS session driven with blocking I/O on its
// descriptor, for the handler policies that block (synchronous, threading,
// forking). It is the connection's byte_transport: rfile, wfile and
// connection::recv/sendall see plaintext through it.
//
// The handshake runs against a deadline (poll() before each step), so a
// client that stalls mid-handshake is cut off; afterwards reads and writes
// block like plain socket calls, honouring the handler's timeout
// (SO_RCVTIMEO/SO_SNDTIMEO). Failures after the handshake read as errno
// EPROTO; session().describe_failure() says what happened.
#pragma once

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../socket.hpp"
#include "../transport.hpp"
#include "session.hpp"

#include <cerrno>
#include <cstdint>
#include <poll.h>

namespace sockserv::tls {

class blocking_transport : public byte_transport {
 public:
  blocking_transport() noexcept : byte_transport{&receive_plaintext, &send_plaintext} {}
  blocking_transport(const blocking_transport&) = delete;
  blocking_transport& operator=(const blocking_transport&) = delete;

  void bind(session_core& session) noexcept { session_ = &session; }
  session_core& session() const noexcept { return *session_; }
  int fd() const noexcept { return fd_; }

  // The transport behind a connection if it is a TLS one, else null.
  static blocking_transport* of(const connection& request) noexcept {
    if (request.transport == nullptr || request.transport->receive != &receive_plaintext) return nullptr;
    return static_cast<blocking_transport*>(request.transport);
  }

  // Starts the session on fd and completes the handshake within the
  // context's deadline. On failure the fatal alert, if any, is still sent.
  result handshake(int fd, server_context_core& context) noexcept {
    fd_ = fd;
    established_ = false;
    result started = session_->start(context);
    if (!started) return started;
    const std::int64_t deadline = sockserv::detail::monotonic_ms() + context.handshake_timeout_ms;
    for (;;) {
      if (session_->handshake_done() && (session_->wants() & want_write) == 0) break;
      step_outcome step = pump(deadline);
      if (step == step_outcome::moved) continue;
      if (step == step_outcome::timed_out) return handshake_timeout(context.handshake_timeout_ms);
      if (step == step_outcome::io_error) return result::from_errno(errno, "TLS handshake failed: transport");
      send_alert_best_effort();
      return handshake_failure(*session_);
    }
    established_ = true;
    return {};
  }

  // A clean end: close_notify, sent within timeout_ms (best effort: the
  // peer may be gone). Nothing to do after a failure.
  void close_notify(int timeout_ms) noexcept {
    if (!established_ || session_->failed()) return;
    established_ = false;
    session_->close();
    const std::int64_t deadline = sockserv::detail::monotonic_ms() + timeout_ms;
    while ((session_->wants() & want_write) != 0)
      if (pump_output(deadline) != step_outcome::moved) break;
  }

 private:
  enum class step_outcome { moved, engine_done, timed_out, io_error };

  // One transfer in the direction the engine needs, output first (the
  // peer may be waiting for it). deadline < 0: block without a limit.
  step_outcome pump(std::int64_t deadline) noexcept {
    const unsigned wanted = session_->wants();
    if ((wanted & want_write) != 0) return pump_output(deadline);
    if ((wanted & want_read) != 0) return pump_input(deadline);
    return step_outcome::engine_done;  // closed, or nothing to move
  }

  // With a deadline the descriptor is tried first (MSG_DONTWAIT) and
  // poll()ed only when it would block: a send almost always has room, and
  // the client's next flight is often there already.
  step_outcome pump_output(std::int64_t deadline) noexcept {
    std::size_t size = 0;
    const unsigned char* data = session_->pending_output(size);
    if (data == nullptr) return step_outcome::moved;
    for (;;) {
      ssize_t n = sockserv::detail::retry_on_eintr(
          [&] { return ::send(fd_, data, size, (deadline >= 0 ? MSG_DONTWAIT : 0) | sockserv::detail::no_sigpipe); });
      if (n > 0) {
        session_->consume_output(static_cast<std::size_t>(n));
        return step_outcome::moved;
      }
      if (deadline < 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return step_outcome::io_error;
      if (!wait_for(POLLOUT, deadline)) return errno == ETIMEDOUT ? step_outcome::timed_out : step_outcome::io_error;
    }
  }

  step_outcome pump_input(std::int64_t deadline) noexcept {
    std::size_t room = 0;
    unsigned char* into = br_ssl_engine_recvrec_buf(&session_->engine(), &room);
    if (into == nullptr) return step_outcome::engine_done;
    for (;;) {
      ssize_t n = sockserv::detail::retry_on_eintr(
          [&] { return ::recv(fd_, into, room, deadline >= 0 ? MSG_DONTWAIT : 0); });
      if (n > 0) {
        br_ssl_engine_recvrec_ack(&session_->engine(), static_cast<std::size_t>(n));
        return step_outcome::moved;
      }
      if (n == 0) {
        session_->end_of_input();
        return step_outcome::engine_done;
      }
      if (deadline < 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return step_outcome::io_error;
      if (!wait_for(POLLIN, deadline)) return errno == ETIMEDOUT ? step_outcome::timed_out : step_outcome::io_error;
    }
  }

  // poll() until the deadline; false with errno ETIMEDOUT when it passed.
  bool wait_for(short events, std::int64_t deadline) const noexcept {
    const std::int64_t left = deadline - sockserv::detail::monotonic_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd watched{fd_, events, 0};
    int rc = sockserv::detail::poll_until(&watched, 1, static_cast<int>(left));
    if (rc == 0) errno = ETIMEDOUT;
    return rc > 0;
  }

  // The engine queued a fatal alert when it failed: let the client read why.
  void send_alert_best_effort() noexcept {
    const std::int64_t deadline = sockserv::detail::monotonic_ms() + 100;
    while ((session_->wants() & want_write) != 0)
      if (pump_output(deadline) != step_outcome::moved) break;
  }

  // ---- the byte_transport the handler's rfile/wfile use ------------------------
  static std::ptrdiff_t receive_plaintext(byte_transport& self, void* buffer, std::size_t size) noexcept {
    auto& t = static_cast<blocking_transport&>(self);
    session_core& s = *t.session_;
    for (;;) {
      std::size_t n = s.read(buffer, size);
      if (n > 0) return static_cast<std::ptrdiff_t>(n);
      if (s.truncated() || (s.closed() && s.error() != BR_ERR_OK)) {
        errno = EPROTO;
        return -1;
      }
      if (s.closed()) return 0;  // close_notify: a clean end of input
      step_outcome step = t.pump(-1);
      if (step == step_outcome::io_error) return -1;
      if (step == step_outcome::engine_done && !s.truncated() && !s.closed()) {
        errno = EPROTO;
        return -1;
      }
    }
  }

  static std::ptrdiff_t send_plaintext(byte_transport& self, const void* data, std::size_t size) noexcept {
    auto& t = static_cast<blocking_transport&>(self);
    session_core& s = *t.session_;
    const unsigned char* next = static_cast<const unsigned char*>(data);
    std::size_t left = size;
    for (;;) {
      if (s.closed() || s.truncated()) {
        errno = s.failed() ? EPROTO : EPIPE;
        return -1;
      }
      std::size_t n = s.write(next, left);
      next += n;
      left -= n;
      if (left == 0) {
        s.flush();
        if ((s.wants() & want_write) == 0) return static_cast<std::ptrdiff_t>(size);
      }
      if (n > 0 && left > 0) continue;
      // The record buffer is full (or sealed): send. In half-duplex mode
      // unread input can block output; that is an error, not a hang.
      if ((s.wants() & want_write) == 0) {
        if ((s.wants() & want_read) != 0 && t.pump(-1) != step_outcome::io_error) continue;
        errno = EDEADLK;
        return -1;
      }
      if (t.pump_output(-1) != step_outcome::moved) return -1;
    }
  }

  session_core* session_ = nullptr;
  int fd_ = -1;
  bool established_ = false;
};

}  // namespace sockserv::tls
