// SPDX-License-Identifier: BSL-1.0
// sockserv/server_base.hpp — what every server has whatever its policies:
// the server socket, its address and options, and the shutdown handshake.
//
// It holds no template parameter, so this code exists once in a program
// however many server types it instantiates. Handlers see their server as a
// server_base* (handler.server) and may cast it with server_as<T>().
#pragma once

#include "address.hpp"
#include "admission.hpp"
#include "detail/serving_flag.hpp"
#include "detail/stop_ends_input.hpp"
#include "detail/syscall.hpp"
#include "detail/text.hpp"
#include "error.hpp"
#include "loop/loop.hpp"
#include "socket.hpp"
#include "wakeup.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <poll.h>
#include <string_view>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace sockserv {

class server_base {
 public:
  // Python's socket attribute: the listening (stream) or bound (datagram)
  // socket. fileno() is -1 once the server is closed.
  file_descriptor socket;
  // The requested address until server_bind(), the real one after it (port
  // 0 becomes the port the kernel chose).
  socket_address server_address;
  // handle_request() waits at most this many seconds; unset = forever.
  std::optional<double> timeout;
  // Read by server_bind() and server_activate(); to change them before
  // binding, construct with bind_and_activate = false.
  bool allow_reuse_address = false;
  bool allow_reuse_port = false;
  // The listen() backlog. SOMAXCONN (4096 on Linux 5.4+, else 128), not
  // Python's 5: with 5, a burst of connects makes clients retry SYNs for
  // seconds, and a pool held by idle clients soon refuses the rest.
  int request_queue_size = SOMAXCONN;
  // Unix socket files: the permissions to give the file (applied between
  // bind and listen, so nobody can connect before), and whether a file left
  // by a dead server may be removed first — only if nothing accepts on it.
  std::optional<mode_t> unix_socket_mode;
  bool remove_stale_unix_socket = false;
  // Admission. At most this many requests in flight per client IP address
  // (0: no limit); one more is shut down unanswered and counted. With
  // answer_when_busy, a client that arrives while there is no capacity (every
  // worker busy, the child table full) is accepted and given handle_busy()
  // (by default: busy_reply, sent without waiting) and closed, instead of
  // waiting in the backlog.
  std::size_t max_connections_per_address = 0;
  bool answer_when_busy = false;
  std::string_view busy_reply;

  server_base(const server_base&) = delete;
  server_base& operator=(const server_base&) = delete;

  int fileno() const noexcept { return socket.fd(); }

  // What happened to the requests so far (see server_stats). Readable from
  // any thread at any time; the counters are lock-free atomics, so a signal
  // handler may read them too.
  server_stats stats() const noexcept { return counters_.snapshot(); }

  // Counting, for the policies (and a Derived that refuses by itself).
  void count(server_event what) noexcept { counters_.add(what); }
  void note_in_flight(std::size_t now) noexcept { counters_.note_in_flight(now); }

  // For the synchronous policy: the stream request on `connection` runs
  // inside serve_forever(), and a stop ends its input (see
  // detail/stop_ends_input.hpp) — also one requested just before it
  // started, if serve_forever() runs it. A stop left pending while no loop
  // runs is serve_forever()'s (as in Python): handle_request() and
  // serve_connection() serve as usual.
  void begin_request_input(int connection) noexcept {
    if (stop_ends_input_.begin(connection) && shutdown_requested_.load() && serving_.held_by_caller())
      stop_ends_input_.cut();
  }
  void end_request_input() noexcept { stop_ends_input_.end(wakeup_.read_fd()); }

 protected:
  // Built as a synchronous stream server: the number a stop reaches the
  // request in flight through (see begin_request_input).
  void reserve_request_input() noexcept { (void)stop_ends_input_.reserve(wakeup_.read_fd()); }

 public:

  // Admits a request from `client` into a policy's address_limiter (which
  // the caller serialises), or counts it refused when its address already
  // has max_connections_per_address requests in flight. `slot` goes to
  // limiter.release() when the request ends.
  template <std::size_t Slots>
  bool admit(address_limiter<Slots>& limiter, const socket_address& client, int& slot) noexcept {
    if (limiter.admit(client, max_connections_per_address, slot)) return true;
    count(server_event::refused_per_address);
    return false;
  }

  // Why the constructor's bind or listen failed (ok() otherwise). Without
  // exceptions this is how a failed server is seen; serve_forever() and
  // handle_request() return it too.
  const result& error() const noexcept { return construction_error_; }
  explicit operator bool() const noexcept { return construction_error_.ok() && socket.is_open(); }

  // Asks serve_forever() to return, without waiting for it. Async-signal-
  // safe: this is what a SIGTERM handler calls.
  void request_shutdown() noexcept {
    if (loop* shared = shared_loop_.load()) return shared->request_shutdown();
    shutdown_requested_.store(true);
    wakeup_.notify();
    stop_ends_input_.cut();  // a synchronous request in flight (detail/stop_ends_input.hpp)
  }

  // Stops serve_forever() and waits until it has returned. The loop wakes at
  // once, not after poll_interval. Called from a handler on the serving
  // thread itself it only requests the stop (waiting would deadlock). If no
  // loop runs, the request stays pending: the next serve_forever() returns
  // at once, as in Python.
  void shutdown() noexcept {
    if (loop* shared = shared_loop_.load()) return shared->shutdown();  // the loop serving it, see loop.add()
    const unsigned run = serving_.snapshot();  // before the request: the run it stops
    request_shutdown();
    if (serving_.held_by_caller()) return;
    serving_.wait_until_released(run);
  }

  // What one wait of the serving loop saw: a new request to fetch, a
  // wake-up (shutdown), nothing before the timeout, a failed wait, or
  // nothing new yet but the wait ended early (the event loop advanced
  // connections, or an accept pause ended): look again.
  enum class wait_outcome { request, woken, timed_out, failed, served };

  // Waits until the server socket is readable, the wake-up pipe fires (if
  // watched), or timeout_ms passes (-1: forever). While accepting is paused
  // (see pause_accepting) the socket is not watched; when the pause ends
  // before the timeout, the outcome is `served`: look again.
  //
  // Without capacity (every worker busy, the child table full) the socket
  // is not watched either — clients wait in the backlog, and the one wait
  // still sees the wake-up at once. A policy that learns of freed capacity
  // by looking (forking reaps children) passes recheck_ms >= 0: the wait
  // then ends after that long with `served`; -1 means it is woken instead
  // (notify_capacity()).
  wait_outcome wait_for_request(int timeout_ms, bool watch_wakeup, bool capacity = true,
                                int recheck_ms = -1) noexcept {
    const int paused = capacity ? accept_pause_left_ms() : (recheck_ms < 0 ? -1 : recheck_ms);
    int wait_ms = timeout_ms;
    if (paused > 0 && (wait_ms < 0 || paused < wait_ms)) wait_ms = paused;
    const bool listening = capacity && paused <= 0;
    pollfd watched[2] = {{listening ? socket.fd() : -1, POLLIN, 0}, {wakeup_.read_fd(), POLLIN, 0}};
    watch_wakeup = watch_wakeup || !capacity;  // freed capacity arrives through the pipe
    int rc = detail::poll_until(watched, watch_wakeup ? 2 : 1, wait_ms);
    if (rc == -1) return wait_outcome::failed;
    if (rc == 0) return wait_ms == timeout_ms ? wait_outcome::timed_out : wait_outcome::served;
    if (watch_wakeup && (watched[1].revents & POLLIN)) {
      // Drained at once: a byte without a pending request (say, from a
      // forked child's signal handler, which shares the pipe) must not
      // leave the pipe readable and the loop spinning.
      drain_wakeup();
      return wait_outcome::woken;
    }
    if (watched[0].revents & (POLLERR | POLLNVAL)) return wait_outcome::failed;
    return wait_outcome::request;
  }

  // accept() failed for want of descriptors or memory (EMFILE, ENFILE,
  // ENOBUFS, ENOMEM): the listener stays readable, so waiting on it would
  // spin. Accepting pauses instead — 10 ms, doubling up to 1 s while it
  // keeps failing — and clients wait in the backlog. Returns true when this
  // starts a new episode (worth one report).
  bool pause_accepting() noexcept {
    const bool first = accept_backoff_ms_ == 0;
    accept_backoff_ms_ = first ? 10 : (accept_backoff_ms_ >= 500 ? 1000 : accept_backoff_ms_ * 2);
    accept_resume_ms_ = detail::monotonic_ms() + accept_backoff_ms_;
    return first;
  }
  void resume_accepting() noexcept { accept_backoff_ms_ = 0; accept_resume_ms_ = 0; }
  int accept_pause_left_ms() const noexcept {
    if (accept_resume_ms_ == 0) return 0;
    const std::int64_t left = accept_resume_ms_ - detail::monotonic_ms();
    return left > 0 ? static_cast<int>(left) : 0;
  }

  // Capacity came back (a worker freed a full pool): wakes the serving
  // loop's wait, which then watches the listener again. Not a shutdown.
  void notify_capacity() const noexcept { wakeup_.notify(); }

  // Empties the wake-up pipe (a policy with its own wait calls this when
  // the pipe fires).
  void drain_wakeup() const noexcept { wakeup_.drain(); }
  int wakeup_fd() const noexcept { return wakeup_.read_fd(); }
  // Its writing end, for a signal handler to wake the loop with (forking's
  // SIGCHLD: detail/child_exit_wakeup.hpp).
  int wakeup_write_fd() const noexcept { return wakeup_.write_fd(); }

  // Set by loop.add(server): while a shared loop serves this server, its
  // shutdown() and request_shutdown() stop that loop.
  void serve_through(loop* shared) noexcept { shared_loop_.store(shared); }


 protected:
  server_base() noexcept = default;
  ~server_base() = default;

  // Creates the socket (not yet bound) for the given family and type.
  result open_socket(int family, int type) noexcept {
    result woke = wakeup_.open();
    if (!woke) return woke;
    socket.reset(detail::open_socket(family, type));
    if (!socket.is_open()) return result::from_errno(errno, "socket");
    return {};
  }

  result bind_socket() noexcept {
    int fd = socket.fd();
    if (fd < 0) return result::failure("bind: server socket is closed");
    int one = 1;
    if (allow_reuse_address && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1)
      return failure_at("setsockopt SO_REUSEADDR");
#ifdef SO_REUSEPORT
    if (allow_reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == -1)
      return failure_at("setsockopt SO_REUSEPORT");
#endif
    const bool unix_path = is_unix_path(server_address);
    if (unix_path && remove_stale_unix_socket) remove_if_stale(server_address, socket_type_of(fd));
    if (::bind(fd, server_address.data(), server_address.size()) == -1) return failure_at("bind");
    bound_path_owner_ = unix_path ? ::getpid() : 0;
    if (unix_path && unix_socket_mode && ::chmod(server_address.as<sockaddr_un>().sun_path, *unix_socket_mode) == -1)
      return failure_at("chmod");
    socket_address actual;
    if (::getsockname(fd, actual.data(), &actual.length_for_update()) == 0 &&
        actual.family() != AF_UNIX)  // a unix socket's own name can come back cut short
      server_address = actual;
    return {};
  }

  // Takes over a socket someone else made (systemd, inetd): it must be of
  // this server's family and type and, for a stream server, listening. The
  // descriptor is the server's from here on, refused or not.
  result adopt_descriptor(int fd, int family, int type) noexcept {
    socket.reset(fd);
    bound_path_owner_ = 0;  // its file, if any, belongs to whoever bound it
    result woke = wakeup_.open();
    if (!woke) return woke;
    char what[result::message_capacity];
    detail::text_builder what_text(what, sizeof what);
    what_text.add("adopt descriptor ").add_signed(fd);
    int actual_type = 0;
    socklen_t length = sizeof actual_type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &actual_type, &length) == -1) {
      return result::from_errno(errno, what);
    }
    socket_address local;
    if (::getsockname(fd, local.data(), &local.length_for_update()) == -1) {
      what_text.add(": getsockname");
      return result::from_errno(errno, what);
    }
    int listening = 0;
    length = sizeof listening;
    if (type == SOCK_STREAM) ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length);
    const char* wrong = actual_type != type          ? "not of this server's socket type"
                        : local.family() != family   ? "not of this server's address family"
                        : type == SOCK_STREAM && !listening ? "not a listening socket"
                                                            : nullptr;
    if (wrong != nullptr) {
      what_text.add(": ").add(wrong);
      return result::failure(what);
    }
    detail::set_cloexec(fd);
    if (type == SOCK_STREAM) detail::set_nonblocking(fd, true);
    server_address = local;
    return {};
  }

  // For a server that only serves connections handed to it (inetd).
  result open_without_socket() noexcept { return wakeup_.open(); }

  result activate_socket(int (*activate)(int, int)) noexcept {
    if (activate(socket.fd(), request_queue_size) == -1) return failure_at("listen");
    return {};
  }

  // Closes the socket; a unix socket file goes away with the server that
  // bound it (not with a forked child that exits).
  void close_socket() noexcept {
    if (bound_path_owner_ != 0 && bound_path_owner_ == ::getpid())
      ::unlink(server_address.as<sockaddr_un>().sun_path);
    bound_path_owner_ = 0;
    socket.reset();
  }

  void record_construction_error(const result& failure) noexcept { construction_error_ = failure; }

 public:
  // In a forked request child: drops the parent's listener and wake-up
  // pipe (the socket file, if any, stays: it is the parent's). A shutdown
  // requested in the child after this wakes nothing.
  void close_inherited_descriptors() noexcept {
    close_socket();
    wakeup_.close();
  }

  // Whether shutdown() or request_shutdown() was called and the serving
  // loop has not seen it yet; a policy's own waits end on it too.
  bool shutdown_requested() const noexcept { return shutdown_requested_.load(); }

 protected:

  // The loop has seen the request and stops for it: consumed here, at the
  // moment it is seen, so that a request made while the loop is on its way
  // out stays pending for the next serve_forever() instead of being wiped.
  bool take_shutdown_request() noexcept { return shutdown_requested_.exchange(false); }

  // Marks the calling thread as the one serving. False if another
  // serve_forever() already runs on this server.
  bool begin_serving() noexcept { return serving_.claim(); }

  // The loop has stopped: release shutdown(). A request made after the
  // loop consumed its own stays set (the flag, not the pipe, is the truth).
  void end_serving() noexcept {
    wakeup_.drain();
    serving_.release();
  }

  result closed_error() const noexcept {
    return construction_error_.ok() ? result::failure("server socket is closed") : construction_error_;
  }

 private:
  // A socket file nobody accepts on (connect() is refused) is a leftover;
  // a live server's file, or anything that is not a socket, stays. The
  // probe does not block: a live server with a full backlog answers
  // EAGAIN at once (and stays).
  static void remove_if_stale(const socket_address& address, int type) noexcept {
    const char* path = address.as<sockaddr_un>().sun_path;
    struct stat info {};
    if (::lstat(path, &info) == -1 || !S_ISSOCK(info.st_mode)) return;
#ifdef SOCK_NONBLOCK
    int probe = detail::open_socket(AF_UNIX, type | SOCK_NONBLOCK);
#else
    int probe = detail::open_socket(AF_UNIX, type);
    if (probe != -1) detail::set_nonblocking(probe, true);
#endif
    if (probe == -1) return;
    int rc = detail::retry_on_eintr([&] { return ::connect(probe, address.data(), address.size()); });
    const bool refused = rc == -1 && errno == ECONNREFUSED;
    detail::close_descriptor(probe);
    if (refused) ::unlink(path);
  }

  static int socket_type_of(int fd) noexcept {
    int type = SOCK_STREAM;
    socklen_t length = sizeof type;
    ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length);
    return type;
  }

  static bool is_unix_path(const socket_address& address) noexcept {
    return address.family() == AF_UNIX && !address.is_unnamed() &&
           address.as<sockaddr_un>().sun_path[0] != '\0';
  }

  result failure_at(const char* call) const noexcept {
    int code = errno;
    char context[result::message_capacity];
    detail::text_builder(context, sizeof context).add(call, 30).add(" ").add(server_address.to_string().c_str(), 120);
    return result::from_errno(code, context);
  }

  detail::stats_counters counters_;
  wakeup_pipe wakeup_;
  detail::stop_ends_input stop_ends_input_;  // after wakeup_: the reserved number may refer to its pipe
  std::atomic<loop*> shared_loop_{nullptr};
  std::atomic<bool> shutdown_requested_{false};
  detail::serving_flag serving_;
  pid_t bound_path_owner_ = 0;
  int accept_backoff_ms_ = 0;          // 0: accepting normally
  std::int64_t accept_resume_ms_ = 0;  // monotonic ms when a pause ends
  result construction_error_;
};

}  // namespace sockserv
