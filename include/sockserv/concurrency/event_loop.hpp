// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/event_loop.hpp — the seed's third way: one thread, no
// fork, an explicit table of partly served connections, and a readiness
// poller that decides which to advance next.
//
// event_loop<Poller, Capacity>: Poller is select_poller, poll_poller or
// epoll_poller; Capacity is the number of connections served at once. Every
// connection's handler (with its buffers) lives in the table inside the
// server object, so nothing is allocated; with the table full the loop stops
// accepting and new clients wait in the listen backlog until a slot frees.
// A table of many connections is large: give such a server static storage.
//
// Stream handlers derive from event_request_handler. Datagram servers run
// under the same loop with their ordinary datagram handlers: a datagram is
// already a whole message and its reply never waits.
#pragma once

#include "../address.hpp"
#include "../detail/hook.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../event_handler.hpp"
#include "../poller/poll.hpp"
#include "../poller/select.hpp"
#include "../server_base.hpp"
#include "synchronous.hpp"
#ifdef __linux__
#include "../poller/epoll.hpp"
#endif

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace sockserv {

#ifdef __linux__
template <std::size_t Capacity>
using default_poller = epoll_poller<Capacity>;
#else
template <std::size_t Capacity>
using default_poller = poll_poller<Capacity>;
#endif

template <template <std::size_t> class Poller = default_poller, std::size_t Capacity = 256>
struct event_loop {
  static_assert(Capacity > 0, "the connection table needs at least one slot");
  static constexpr double default_timeout = -1;

  // Tokens: connection slots are 0..Capacity-1, then the two descriptors of
  // the server itself.
  static constexpr poll_token listener_token = Capacity;
  static constexpr poll_token wakeup_token = Capacity + 1;
  using poller_type = Poller<Capacity + 2>;

  template <class Server, class SocketType, class Handler>
  class stream_mixin;
  template <class Server, class SocketType, class Handler>
  class datagram_mixin;

  template <class Server, class SocketType, class Handler>
  using mixin = std::conditional_t<SocketType::type == SOCK_STREAM, stream_mixin<Server, SocketType, Handler>,
                                   datagram_mixin<Server, SocketType, Handler>>;
};

// Datagrams: the synchronous pipeline, woken by the same kind of poller.
template <template <std::size_t> class Poller, std::size_t Capacity>
template <class Server, class SocketType, class Handler>
class event_loop<Poller, Capacity>::datagram_mixin : public synchronous::mixin<Server, SocketType, Handler> {
 public:
  static constexpr const char* poller_name = poller_type::name;
};

template <template <std::size_t> class Poller, std::size_t Capacity>
template <class Server, class SocketType, class Handler>
class event_loop<Poller, Capacity>::stream_mixin {
  static_assert(std::is_base_of_v<event_connection, Handler>,
                "event_loop serves stream connections with handlers derived from event_request_handler: a "
                "blocking handle() would stall every other connection");

 public:
  using request_type = typename SocketType::request_type;
  using wait_outcome = server_base::wait_outcome;
  static constexpr std::size_t connection_capacity = Capacity;
  static constexpr const char* poller_name = poller_type::name;

  stream_mixin() noexcept {
    for (std::size_t i = 0; i < Capacity; ++i) {
      fd_[i] = -1;
      free_[i] = static_cast<poll_token>(Capacity - 1 - i);  // slot 0 first
    }
  }
  stream_mixin(const stream_mixin&) = delete;
  stream_mixin& operator=(const stream_mixin&) = delete;

  std::size_t active_connections() const noexcept { return Capacity - free_count_; }

  // Takes the accepted connection into the table; its handler's setup()
  // runs now, handle_message() as messages arrive.
  void process_request(request_type& request, const socket_address& client_address) {
    auto& server = this->server();
    if (free_count_ == 0) {  // not reached while the listener is unwatched at capacity
      refuse(request, client_address, result::from_errno(ENOSPC, "event_loop: connection table full"));
      return;
    }
    detail::set_nonblocking(request.fd, true);
    const poll_token slot = free_[--free_count_];
    Handler& handler = *::new (static_cast<void*>(storage_[slot])) Handler;
    fd_[slot] = request.fd;
    handler.begin_request(request, client_address, server);
    result watched = poller_.add(request.fd, slot, true, false);
    interest_[slot] = 1;  // input
    if (!watched) {  // e.g. select and a descriptor at or above FD_SETSIZE
      server.handle_error(handler.request, client_address, watched.message());
      release(slot, false);
      return;
    }
    if (!guarded(slot, [&] { return handler.setup(); })) {  // finish() does not run after a failed setup
      release(slot, false);
      return;
    }
    touch(slot);
    watch_listener();
    advance(slot);
  }

  void service_actions() {}
  void handle_timeout() {}

  // server_close(): the listener is closed; every connection sends what it
  // has queued (as far as the socket takes it now) and is closed.
  void wait_for_requests_in_flight() {
    for (poll_token slot = 0; slot < Capacity; ++slot)
      if (fd_[slot] >= 0) {
        handler(slot).send_pending(fd_[slot]);
        close_connection(slot);
      }
    poller_.close();
    poller_ready_ = false;
  }
  void finish_all_requests() { wait_for_requests_in_flight(); }

  // graceful_close(): the listener is closed; open connections are served
  // until they end or the deadline comes (then server_close ends them).
  bool drain_requests(std::int64_t deadline_ms) {
    if (poller_ready_ && listener_fd_ >= 0) {
      poller_.remove(listener_fd_, listener_token);
      listener_fd_ = -1;
      listener_watched_ = false;
    }
    while (poller_ready_ && active_connections() > 0) {
      const std::int64_t left = deadline_ms - detail::monotonic_ms();
      if (left <= 0) break;
      if (wait_for_activity(static_cast<int>(left), false) == wait_outcome::failed) break;
    }
    return active_connections() == 0;
  }

  // One turn of the loop: serves whatever connections are ready, expires
  // idle ones, and says whether a new connection waits to be accepted.
  wait_outcome wait_for_activity(int timeout_ms, bool watch_wakeup) {
    auto& server = this->server();
    if (!poller_ready_) {
      result opened = open_poller(server);
      if (!opened) {
        errno = opened.code() > 0 ? opened.code() : EINVAL;
        return wait_outcome::failed;
      }
    }
    bool new_request = false, woken = false;
    watch_listener();
    int wait_ms = until_next_expiry(timeout_ms);
    const int paused = server.accept_pause_left_ms();
    if (paused > 0 && (wait_ms < 0 || paused < wait_ms)) wait_ms = paused;
    int ready = poller_.wait(wait_ms, [&](poll_token token, readiness r) {
      if (token == listener_token) {
        new_request = true;
      } else if (token == wakeup_token) {
        server.drain_wakeup();
        woken = watch_wakeup;
      } else if (token < Capacity && fd_[token] >= 0) {
        serve_ready(token, r);
      }
    });
    if (ready == -1) return wait_outcome::failed;
    expire_idle();
    if (woken) return wait_outcome::woken;
    if (new_request) return wait_outcome::request;
    return (ready > 0 || wait_ms != timeout_ms) ? wait_outcome::served : wait_outcome::timed_out;
  }

 private:
  // The user's server type, so that its hooks (handle_error, ...) run.
  auto& server() noexcept { return static_cast<Server&>(*this).self(); }
  Handler& handler(poll_token slot) noexcept { return *std::launder(reinterpret_cast<Handler*>(storage_[slot])); }

  template <class ServerType>
  result open_poller(ServerType& server) {
    result opened = poller_.open();
    listener_fd_ = server.fileno();
    listener_watched_ = false;
    if (opened) opened = poller_.add(listener_fd_, listener_token, false, false);
    if (opened) opened = poller_.add(server.wakeup_fd(), wakeup_token, true, false);
    poller_ready_ = opened.ok();
    return opened;
  }

  // New connections are accepted while the table has a free slot and
  // accepting is not paused (out of descriptors): otherwise they wait in
  // the backlog, and the readable listener must not wake the loop.
  void watch_listener() {
    if (!poller_ready_ || listener_fd_ < 0) return;
    const bool wanted = free_count_ > 0 && this->server().accept_pause_left_ms() == 0;
    if (wanted == listener_watched_) return;
    (void)poller_.modify(listener_fd_, listener_token, wanted, false);
    listener_watched_ = wanted;
  }

  void serve_ready(poll_token slot, readiness r) {
    Handler& h = handler(slot);
    if (r.writable && !h.send_pending(fd_[slot])) return close_connection(slot);
    if (r.readable || r.failed) {
      auto status = h.receive(fd_[slot]);
      if (status == event_connection::receive_status::failed) return close_connection(slot);  // reset: gone
      if (status != event_connection::receive_status::would_block) touch(slot);
    }
    advance(slot);
  }

  // Hands over what can be handed over, sends what it can, closes a
  // finished connection, and sets what to wait for: input while the client
  // may send and the output has room for a reply; output while some is
  // queued. Messages held back by a full output go on once it drains.
  void advance(poll_token slot) {
    Handler& h = handler(slot);
    for (;;) {
      if (h.output_pending() > 0 && !h.send_pending(fd_[slot])) return close_connection(slot);
      if (h.closing() || h.eof_delivered()) {
        if (h.output_pending() == 0) return close_connection(slot);
        break;
      }
      const std::size_t input_before = h.input_buffered();
      const bool eof_before = h.eof_delivered();
      deliver(slot);
      if (fd_[slot] < 0) return;
      if (h.input_buffered() == input_before && h.eof_delivered() == eof_before) break;
    }
    const bool want_input = !h.closing() && !h.peer_finished() && h.output_room() >= Handler::reply_reserve;
    watch_connection(slot, want_input, h.output_pending() > 0);
  }

  // Every complete message while the output has room; once the client has
  // finished sending, the unterminated rest and then handle_eof().
  void deliver(poll_token slot) {
    Handler& h = handler(slot);
    while (!h.closing() && h.output_room() >= Handler::reply_reserve) {
      frame next = Handler::framing::extract(h.buffered_input(), Handler::input_capacity);
      if (next.malformed) {
        result bad = result::failure("event_loop: malformed message (longer than the input buffer)");
        this->server().handle_error(h.request, h.client_address, bad.message());
        return close_connection(slot);
      }
      if (next.consumed == 0) break;
      h.consume_input(next.consumed);
      if (!guarded(slot, [&] { return h.handle_message(next.message); })) return;
    }
    if (h.closing() || !h.peer_finished() || h.eof_delivered() || h.output_room() < Handler::reply_reserve)
      return;
    frame last = Handler::framing::extract_at_eof(h.buffered_input());
    h.consume_input(h.input_buffered());
    h.mark_eof_delivered();
    if (last.consumed > 0 && (!guarded(slot, [&] { return h.handle_message(last.message); }) || h.closing()))
      return;
    guarded(slot, [&] { return h.handle_eof(); });
  }

  // Changes what the poller watches only when it changes: for epoll each
  // change is a system call, and most turns change nothing.
  void watch_connection(poll_token slot, bool input, bool output) {
    const unsigned char wanted = static_cast<unsigned char>((input ? 1 : 0) | (output ? 2 : 0));
    if (interest_[slot] == wanted) return;
    (void)poller_.modify(fd_[slot], slot, input, output);
    interest_[slot] = wanted;
  }

  // Runs a handler hook; a failure reaches handle_error and closes the
  // connection (after its queued output). A non-std exception closes it and
  // propagates. Returns false if the hook failed.
  template <class Hook>
  bool guarded(poll_token slot, Hook hook) {
    Handler& h = handler(slot);
    result outcome;
#if SOCKSERV_EXCEPTIONS
    try {
      outcome = detail::call_hook(hook);
    } catch (const std::exception& failure) {
      outcome = result::failure(failure.what());
    } catch (...) {
      close_connection(slot);
      throw;
    }
#else
    outcome = detail::call_hook(hook);
#endif
    if (!outcome) {
      this->server().handle_error(h.request, h.client_address, outcome.message());
      h.close();
      return false;
    }
    return true;
  }

  void close_connection(poll_token slot) { release(slot, true); }

  // Stops watching the connection, runs finish() (unless setup failed),
  // shuts it down through the server's hooks and frees the slot.
  void release(poll_token slot, bool run_finish) {
    auto& server = this->server();
    Handler& h = handler(slot);
    poller_.remove(fd_[slot], slot);
    fd_[slot] = -1;
    if (run_finish) (void)detail::call_hook([&] { return h.finish(); });
    server.shutdown_request(h.request);
    h.~Handler();
    free_[free_count_++] = slot;
    if (server.fileno() >= 0) watch_listener();
  }

  void refuse(request_type& request, const socket_address& client_address, const result& why) {
    this->server().handle_error(request, client_address, why.message());
    this->server().shutdown_request(request);
  }

  // ---- idle timeouts ------------------------------------------------------
  void touch(poll_token slot) noexcept {
    const auto& limit = handler(slot).timeout;
    if (!limit) {
      expiry_[slot] = -1;
      return;
    }
    expiry_[slot] = detail::monotonic_ms() + detail::to_poll_ms(*limit);
    if (next_expiry_ < 0 || expiry_[slot] < next_expiry_) next_expiry_ = expiry_[slot];
  }

  int until_next_expiry(int timeout_ms) const noexcept {
    if (next_expiry_ < 0) return timeout_ms;
    std::int64_t left = next_expiry_ - detail::monotonic_ms();
    if (left < 0) left = 0;
    return (timeout_ms < 0 || left < timeout_ms) ? static_cast<int>(left) : timeout_ms;
  }

  // next_expiry_ is a lower bound (activity only pushes deadlines later):
  // the table is scanned only once it has passed.
  void expire_idle() {
    if (next_expiry_ < 0) return;
    const std::int64_t now = detail::monotonic_ms();
    if (now < next_expiry_) return;
    next_expiry_ = -1;
    for (poll_token slot = 0; slot < Capacity; ++slot) {
      if (fd_[slot] < 0 || expiry_[slot] < 0) continue;
      if (expiry_[slot] <= now)
        close_connection(slot);
      else if (next_expiry_ < 0 || expiry_[slot] < next_expiry_)
        next_expiry_ = expiry_[slot];
    }
  }

  poller_type poller_;
  bool poller_ready_ = false;
  int listener_fd_ = -1;
  bool listener_watched_ = false;
  int fd_[Capacity];                   // -1: slot free
  unsigned char interest_[Capacity] = {};  // what the poller watches: 1 input, 2 output
  std::int64_t expiry_[Capacity] = {};  // monotonic ms, -1: no idle timeout
  std::int64_t next_expiry_ = -1;
  poll_token free_[Capacity];
  std::size_t free_count_ = Capacity;
  // Handlers are built in place on accept; left uninitialised so that an
  // unused slot costs no resident memory.
  alignas(Handler) unsigned char storage_[Capacity][sizeof(Handler)];
};

}  // namespace sockserv
