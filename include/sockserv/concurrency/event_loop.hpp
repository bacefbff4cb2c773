// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/event_loop.hpp — the seed's third way: one thread, no
// fork, an explicit table of partly served connections, and a readiness
// poller that decides which to advance next.
//
// event_loop<Poller, Capacity>: Poller is select_poller, poll_poller or
// epoll_poller; Capacity is the number of connections served at once. Every
// connection's handler (with its buffers) lives in the table inside the
// server object, so nothing is allocated; with the table full the server
// stops accepting and new clients wait in the listen backlog until a slot
// frees. A table of many connections is large: give such a server static
// storage.
//
// A server of this policy is served by a loop (loop/loop.hpp). Alone, it
// owns one (sized for its table) and serve_forever() runs it, as before.
// Several servers share one with loop.add(server) and loop.serve_forever():
// then the shared loop's poller watches all their listeners and
// connections, and a server's shutdown() stops that loop.
//
// Stream handlers derive from event_request_handler. A connection has a
// stable handle (connection_id); any code on the loop's thread may find,
// write to, close or broadcast to connections of the server, and what it
// writes goes out at the end of the current turn, as promptly as a reply.
// Outbound connections (connect()) are served by the same machinery.
// Datagram servers run under the same loop with their ordinary datagram
// handlers: a datagram is already a whole message and its reply never waits.
// A socket type with an event transport (tls_stream) puts its state in
// each slot: the TLS handshake runs by readiness before setup(), and the
// handler's bytes pass through the engine (tls/event.hpp); a plain stream
// compiles to the direct recv()/send() path.
#pragma once

#include "../address.hpp"
#include "../detail/hook.hpp"
#include "../detail/scope_exit.hpp"
#include "../detail/syscall.hpp"
#include "../detail/text.hpp"
#include "../error.hpp"
#include "../event_handler.hpp"
#include "../loop/loop.hpp"
#include "../loop/timer.hpp"
#include "../server_base.hpp"
#include "event_transport.hpp"
#include "synchronous.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>
#include <sys/socket.h>
#include <type_traits>

namespace sockserv {

// What broadcast() did, target by target.
struct broadcast_result {
  std::size_t written = 0;
  std::size_t refused = 0;  // refused, or too large
  std::size_t dropped = 0;
  std::size_t closed = 0;  // closing already, or closed now for being too slow
  void count(write_status status) noexcept {
    switch (status) {
      case write_status::written: ++written; break;
      case write_status::dropped: ++dropped; break;
      case write_status::closed: ++closed; break;
      default: ++refused; break;
    }
  }
};

// What connect() started: the new connection's handle, or why it failed at
// once. A connection that fails later (refused, timed out) reaches
// handle_error() and is freed.
struct [[nodiscard]] connect_result {
  connection_id id;
  result error;
  explicit operator bool() const noexcept { return error.ok(); }
};

template <template <std::size_t> class Poller = default_poller, std::size_t Capacity = 256>
struct event_loop {
  static_assert(Capacity > 0, "the connection table needs at least one slot");
  static constexpr double default_timeout = -1;

  // A lone server's own loop: its connections; the connections accepted
  // and closed within one batch of readiness (their tokens are reused only
  // after it: up to 16 accepts a batch); its listener and wake-up; the
  // loop's wake-up and signal pipe; and a few descriptors of your own
  // (io_watchers on server.loop()). More sources: a shared basic_loop.
  using private_loop_type = basic_loop<Poller, Capacity + 32>;

  template <class Server, class SocketType, class Handler>
  class stream_mixin;
  template <class Server, class SocketType, class Handler>
  class datagram_mixin;

  template <class Server, class SocketType, class Handler>
  using mixin = std::conditional_t<SocketType::type == SOCK_STREAM, stream_mixin<Server, SocketType, Handler>,
                                   datagram_mixin<Server, SocketType, Handler>>;
};

namespace detail {
// What both event-loop mixins share: which loop serves the server (a
// stream server's own, or a shared one it joined) and its listener
// watched there.
template <class Derived>
class loop_membership {
 public:
  // The loop that serves this server.
  sockserv::loop& loop() noexcept { return *serving_loop_; }
  bool served_by_shared_loop() const noexcept { return shared_; }
  // Before the server closes its listener: the poller lets go of it first.
  // epoll watches the socket, not the number, so a listener with another
  // copy open (one adopted from systemd or inetd) would stay registered
  // after the close and be reported readable on every turn of a drain.
  void before_listener_closes() noexcept { listener_.stop(); }

 protected:
  explicit loop_membership(sockserv::loop* own) noexcept : serving_loop_(own), own_loop_(own) {}

  // Watches the listener on the serving loop while `wanted`; readable, it
  // runs Derived's on_listener_ready().
  void watch_listener(int fd, bool wanted) {
    if (fd < 0 || !wanted) {
      if (listener_.active()) (void)listener_.modify(false, false);
      return;
    }
    if (!listener_.active() || listener_.fd() != fd) {
      // A loop that cannot watch the listener (table full) still serves the
      // connections it has; the next change of state tries again.
      (void)listener_.start(*serving_loop_, fd, true, false,
                            [this](readiness) { static_cast<Derived*>(this)->on_listener_ready(); });
      return;
    }
    (void)listener_.modify(true, false);
  }
  void stop_listener() noexcept { listener_.stop(); }
  bool listening() const noexcept { return listener_.active(); }

  void switch_loop(sockserv::loop* to) noexcept {
    listener_.stop();
    shared_ = to != nullptr && to != own_loop_;
    serving_loop_ = shared_ ? to : own_loop_;
  }

 private:
  sockserv::loop* serving_loop_;
  sockserv::loop* own_loop_;
  bool shared_ = false;
  io_watcher listener_;
};
}  // namespace detail

// Datagrams: the synchronous pipeline, woken by the same kind of poller
// alone, or by the shared loop's.
template <template <std::size_t> class Poller, std::size_t Capacity>
template <class Server, class SocketType, class Handler>
class event_loop<Poller, Capacity>::datagram_mixin
    : public synchronous::mixin<Server, SocketType, Handler>,
      public detail::loop_membership<datagram_mixin<Server, SocketType, Handler>> {
 public:
  static constexpr const char* poller_name = private_loop_type::poller_type::name;

  // Alone, a datagram server waits on its socket itself (server_base).
  datagram_mixin() noexcept : detail::loop_membership<datagram_mixin>(nullptr) {}

  result join_loop(sockserv::loop& shared) {
    auto& server = static_cast<Server&>(*this).self();
    if (!server.socket.is_open()) return result::failure("loop.add: the server socket is closed");
    this->switch_loop(&shared);
    server.serve_through(&shared);
    this->watch_listener(server.fileno(), true);
    if (!this->listening()) {
      leave_loop(shared);
      return result::from_errno(ENOSPC, "loop.add: the loop's descriptor table has no room for the socket");
    }
    return {};
  }
  void leave_loop(sockserv::loop&) {
    static_cast<Server&>(*this).serve_through(nullptr);
    this->switch_loop(nullptr);
  }
  void wait_for_requests_in_flight() { this->stop_listener(); }
  void before_listener_closes() noexcept { this->stop_listener(); }  // see loop_membership

  // The shared loop found the socket readable: the queued datagrams (up to
  // a batch, so other sources get their turn).
  void on_listener_ready() {
    auto& server = static_cast<Server&>(*this).self();
    for (int batch = 64; batch > 0 && server.accept_ready_request(); --batch) {
    }
  }
};

template <template <std::size_t> class Poller, std::size_t Capacity>
template <class Server, class SocketType, class Handler>
class event_loop<Poller, Capacity>::stream_mixin
    : public detail::loop_membership<stream_mixin<Server, SocketType, Handler>>,
      public detail::event_connection_table,
      private detail::slot_transports<typename detail::event_transport_of<SocketType>::type, Capacity> {
  static_assert(std::is_base_of_v<event_connection, Handler>,
                "event_loop serves stream connections with handlers derived from event_request_handler: a "
                "blocking handle() would stall every other connection");
  using membership = detail::loop_membership<stream_mixin>;
  friend membership;
  using transport_type = typename detail::event_transport_of<SocketType>::type;
  using transports = detail::slot_transports<transport_type, Capacity>;
  // One entry more than the table: a newcomer is admitted before an
  // eviction (evict_idlest_when_full) frees the entry of the one it replaces.
  using limiter_type = address_limiter<Capacity + 1>;
  static constexpr bool secured = !std::is_void_v<transport_type>;

 public:
  using request_type = typename SocketType::request_type;
  using wait_outcome = server_base::wait_outcome;
  // What the server accepts into (server.hpp): each slot holds its own
  // transport state, so the server needs none for connections.
  using accept_buffer = typename detail::event_accept_buffer_of<SocketType>::type;
  static constexpr std::size_t connection_capacity = Capacity;
  static constexpr const char* poller_name = private_loop_type::poller_type::name;

  // What a write that does not fit does, for connections opened from now
  // on (each connection may change its own `overflow`).
  overflow_policy overflow = overflow_policy::refuse;
  // With the table full, a new client closes the connection that has been
  // idle longest (counted as evicted) instead of waiting in the backlog.
  bool evict_idlest_when_full = false;

  stream_mixin() noexcept : membership(&own_loop_), detail::event_connection_table(changed_list_, listed_, &own_loop_) {
    for (std::size_t i = 0; i < Capacity; ++i) free_[i] = static_cast<std::uint32_t>(Capacity - 1 - i);  // slot 0 first
    own_loop_.forward_stop([this](bool wait) {
      if (wait)
        this->server().shutdown();
      else
        this->server().request_shutdown();
    });
  }
  stream_mixin(const stream_mixin&) = delete;
  stream_mixin& operator=(const stream_mixin&) = delete;

  // Readable from any thread (a snapshot, as stats() is).
  std::size_t active_connections() const noexcept { return Capacity - free_count_; }
  // Whether a new client can be taken now (server.hpp's answer_when_busy
  // asks): a free slot, or one to evict.
  bool has_capacity() const noexcept { return free_count_ > 0 || (evict_idlest_when_full && free_count_ < Capacity); }

  // ---- connections, by handle ---------------------------------------------

  // The open connection with this handle, or null (closed, or its slot
  // reused since).
  Handler* find(connection_id id) noexcept {
    if (id.slot >= Capacity || !open(id.slot) || slots_[id.slot].serial != id.serial) return nullptr;
    return &handler(id.slot);
  }

  // Calls f(handler) for every open connection (including the one whose
  // callback is running). f may write to or close any of them.
  template <class F>
  void for_each_connection(F&& f) {
    for (std::uint32_t slot = 0; slot < Capacity; ++slot)
      if (open(slot) && !slots_[slot].connecting && !handshaking(slot)) f(handler(slot));
  }

  write_result write_to(connection_id id, std::string_view data) noexcept {
    Handler* target = find(id);
    return target ? target->write(data) : write_result{write_status::stale};
  }
  write_result write_to(connection_id id, std::string_view data, overflow_policy when_full) noexcept {
    Handler* target = find(id);
    return target ? target->write(data, when_full) : write_result{write_status::stale};
  }
  // Closes it once its queued output is sent. False for a stale handle.
  bool close_connection(connection_id id) noexcept {
    Handler* target = find(id);
    if (target) target->close();
    return target != nullptr;
  }

  // Writes data to every open connection (or those for which
  // keep(handler) is true), each under its own overflow policy or the one
  // given. Connections already closing are not written to (counted as closed).
  broadcast_result broadcast(std::string_view data) noexcept {
    return broadcast_if(data, [](const Handler&) { return true; });
  }
  broadcast_result broadcast(std::string_view data, overflow_policy when_full) noexcept {
    return broadcast_if(data, [](const Handler&) { return true; }, when_full);
  }
  template <class Keep>
  broadcast_result broadcast_if(std::string_view data, Keep&& keep) noexcept {
    broadcast_result outcome;
    for_each_connection([&](Handler& h) {
      if (keep(static_cast<const Handler&>(h))) outcome.count(h.write(data).status);
    });
    return outcome;
  }
  template <class Keep>
  broadcast_result broadcast_if(std::string_view data, Keep&& keep, overflow_policy when_full) noexcept {
    broadcast_result outcome;
    for_each_connection([&](Handler& h) {
      if (keep(static_cast<const Handler&>(h))) outcome.count(h.write(data, when_full).status);
    });
    return outcome;
  }

  // Opens an outbound connection to `where`, served like an accepted one:
  // the handler's setup() runs once it is connected. Failing at once (bad
  // address, table full) is the result; failing later (refused, no answer
  // within timeout_seconds) goes to handle_error() and frees the slot.
  template <class Endpoint>
  connect_result connect(const Endpoint& where, double timeout_seconds) {
    if constexpr (secured) return {{}, result::failure("connect: a TLS server makes no outbound connections")};
    socket_address address;
    result made = Server::address_family_type::parse(where, address);
    if (!made) return {{}, made};
    if (free_count_ == 0) return {{}, result::from_errno(ENOSPC, "connect: connection table full")};
    int fd = detail::open_socket(Server::address_family, SOCK_STREAM);
    if (fd == -1) return {{}, result::from_errno(errno, "connect: socket")};
    detail::set_nonblocking(fd, true);
    int rc = detail::retry_on_eintr([&] { return ::connect(fd, address.data(), address.size()); });
    if (rc == -1 && errno != EINPROGRESS) {
      result failed = connect_failure(errno, address);
      detail::close_descriptor(fd);
      return {{}, failed};
    }
    request_type request{fd};
    const std::uint32_t slot = open_slot(request, address);
    if (slot == none) return {{}, result::failure("connect: the connection could not be set up (see handle_error)")};
    slots_[slot].connecting = rc == -1;
    if (slots_[slot].connecting) {
      (void)slots_[slot].watcher.modify(false, true);
      slots_[slot].interest = 2;
      const int wait_ms = detail::to_poll_ms(timeout_seconds);  // -1: negative or NaN, no limit
      slots_[slot].deadline.start(wait_ms < 0 ? std::int64_t{2147483000} : std::int64_t{wait_ms});
    } else {
      start_connection(slot);
    }
    return {{slot, slots_[slot].serial}, {}};
  }

  // ---- the policy contract (see synchronous.hpp) ----------------------------

  // Takes the accepted connection into the table; its handler's setup()
  // runs now, handle_message() as messages arrive.
  void process_request(request_type& request, const socket_address& client_address) {
    auto& server = this->server();
    // The per-address cap first: a newcomer it refuses must not cost an
    // idle connection its slot (evict_idlest_when_full).
    int admitted = limiter_type::untracked;
    if (!server.admit(per_address_, client_address, admitted)) {  // counted as refused_per_address
      server.shutdown_request(request);
      return;
    }
    // The address's count goes back unless the slot takes it, whether the
    // slot could not be opened or the handler's constructor threw.
    detail::scope_exit hold{[&] { per_address_.release(admitted); }};
    if (free_count_ == 0 && evict_idlest_when_full) {
      typename Server::request_owner newcomer{server, request};  // if the evicted one's finish() throws
      evict_idlest();
      newcomer.owned = false;
    }
    if (free_count_ == 0)  // not reached while the listener is unwatched at capacity
      return server.refuse_request(request, client_address, server_event::refused_table_full,
                                   result::from_errno(ENOSPC, "event_loop: connection table full").message());
    const std::uint32_t slot = open_slot(request, client_address);
    if (slot == none) return;
    slots_[slot].admitted = admitted;
    hold.dismiss();
    server.note_in_flight(active_connections());
    start_connection(slot);
  }

  void service_actions() {}
  void handle_timeout() {}

  // server_close(): the listener is closed; every connection sends what it
  // has queued (as far as the socket takes it now) and is closed.
  //
  // Called from a callback of the loop serving it, it cannot free handlers
  // that may be running below it on the stack: the connections are closed
  // once their queued output is sent, at the end of this turn.
  void wait_for_requests_in_flight() {
    if (this->loop().in_turn()) {
      close_all_after_output();
      this->stop_listener();
      return;
    }
    release_all();
  }
  // The destructor: every connection ends now (a server is not destroyed
  // from one of its own callbacks).
  void finish_all_requests() { release_all(); }

 private:
  void release_all() {
    for (std::uint32_t slot = 0; slot < Capacity; ++slot)
      if (open(slot)) {
        if (!slots_[slot].connecting) send_before_close(slot);
        release(slot, !slots_[slot].connecting && !handshaking(slot));
      }
    changed_count_ = 0;
    for (bool& listed : listed_) listed = false;
    this->stop_listener();
    server_wakeup_.stop();
  }

 public:

  // graceful_close(): the listener is closed; open connections are served
  // until they end or the deadline comes (then server_close ends them).
  // Inside a callback of a running loop nothing can be waited for: the
  // connections are asked to close once their output is sent, and the
  // answer is whether none was left.
  bool drain_requests(std::int64_t deadline_ms) {
    this->stop_listener();
    if (turning_ > 0 || this->loop().in_turn()) {
      close_all_after_output();
      return active_connections() == 0;
    }
    while (active_connections() > 0) {
      const std::int64_t left = deadline_ms - detail::monotonic_ms();
      if (left <= 0) break;
      if (!turn(static_cast<int>(left))) break;
    }
    return active_connections() == 0;
  }

  // One turn of the server's own loop (serve_forever, handle_request):
  // serves whatever connections are ready, and says whether a connection
  // was accepted or the wake-up fired.
  wait_outcome wait_for_activity(int timeout_ms, bool watch_wakeup) {
    if (this->served_by_shared_loop()) {
      errno = EBUSY;
      return wait_outcome::failed;
    }
    auto& server = this->server();
    if (!server_wakeup_.active()) {
      result watched = server_wakeup_.start(this->loop(), server.wakeup_fd(), true, false, [this](readiness) {
        this->server().drain_wakeup();
        woken_ = true;
      });
      if (!watched) {
        errno = watched.code() > 0 ? watched.code() : EINVAL;
        return wait_outcome::failed;
      }
    }
    update_listener();
    woken_ = false;
    accepted_ = 0;
    const std::int64_t started = detail::monotonic_ms();
    if (!turn(timeout_ms)) return wait_outcome::failed;
    if (woken_ && watch_wakeup) return wait_outcome::woken;
    if (accepted_ > 0) return wait_outcome::request;
    // Nothing new by the end of the wait: handle_request()'s timeout.
    if (timeout_ms >= 0 && detail::monotonic_ms() - started >= timeout_ms) return wait_outcome::timed_out;
    return wait_outcome::served;
  }

  // ---- joining a shared loop (loop.add) -------------------------------------
  result join_loop(sockserv::loop& shared) {
    if (&shared == &this->loop()) return {};
    if (active_connections() > 0)
      return result::failure("loop.add: the server already has connections on another loop");
    server_wakeup_.stop();
    rebind(&shared);
    this->server().serve_through(&shared);
    update_listener();
    if (this->server().fileno() >= 0 && !this->listening()) {
      leave_loop(shared);
      return result::from_errno(ENOSPC, "loop.add: the loop's descriptor table has no room for the listener");
    }
    return {};
  }
  // Back to its own loop; its connections are closed.
  void leave_loop(sockserv::loop& shared) {
    if (&shared != &this->loop()) return;
    wait_for_requests_in_flight();
    this->server().serve_through(nullptr);
    rebind(&own_loop_);
  }

 private:
  static constexpr std::uint32_t none = detail::event_connection_table::none;

  struct slot_state {
    io_watcher watcher;
    timer deadline;  // connect timeout, then idle timeout
    std::uint64_t serial = 0;
    int admitted = limiter_type::untracked;  // its entry in the per-address count
    std::int64_t opened_ms = 0;
    std::int64_t last_activity_ms = 0;
    int fd = -1;  // -1: slot free
    unsigned char interest = 0;  // what the poller watches: 1 input, 2 output
    bool connecting = false;
    bool got_message = false;  // a complete message has been handed over
  };

  // The user's server type, so that its hooks (handle_error, ...) run.
  auto& server() noexcept { return static_cast<Server&>(*this).self(); }
  Handler& handler(std::uint32_t slot) noexcept { return *std::launder(reinterpret_cast<Handler*>(storage_[slot])); }
  bool open(std::uint32_t slot) const noexcept { return slots_[slot].fd >= 0; }

  // One turn of the serving loop, counted so that a graceful drain inside
  // a callback does not turn the loop again from within.
  bool turn(int timeout_ms) {
    if (!flush_hook_.active()) flush_hook_.start(this->loop(), [this] { flush_changed(); });
    ++turning_;
    struct done {
      int& depth;
      ~done() { --depth; }
    } guard{turning_};
    result turned = this->loop().run_once(timeout_ms);
    if (!turned) errno = turned.code() > 0 ? turned.code() : EIO;
    return turned.ok();
  }

  void rebind(sockserv::loop* to) {
    flush_hook_.stop();
    resume_.cancel();
    this->switch_loop(to);
    loop_ = &this->loop();
    flush_hook_.start(this->loop(), [this] { flush_changed(); });
  }

  // The listener is watched while the table has a free slot and accepting
  // is not paused (out of descriptors); otherwise new clients wait in the
  // backlog and the readable listener must not wake the loop.
  void update_listener() {
    auto& server = this->server();
    const int paused = server.accept_pause_left_ms();
    // At capacity the listener is still watched to answer "busy"
    // (answer_when_busy) or to evict.
    this->watch_listener(server.fileno(), (has_capacity() || server.answer_when_busy) && paused == 0);
    if (paused > 0 && !resume_.armed()) {
      resume_.bind(this->loop(), [this] { update_listener(); });
      resume_.start(paused);
    }
  }

  // The listener is readable: accept while there is room (a batch, so
  // other sources get their turn).
  void on_listener_ready() {
    auto& server = this->server();
    for (int batch = 16; batch > 0 && (has_capacity() || server.answer_when_busy); --batch) {
      const std::uint64_t before = serial_counter_;
      if (!server.accept_ready_request()) break;
      if (serial_counter_ != before) ++accepted_;
    }
    update_listener();
  }

  // Builds the handler in a free slot and watches the connection. Returns
  // the slot, or none (the request was refused and shut down).
  std::uint32_t open_slot(request_type& request, const socket_address& peer) {
    auto& server = this->server();
    detail::set_nonblocking(request.fd, true);
    const std::uint32_t slot = free_[--free_count_];
    slot_state& s = slots_[slot];
#if SOCKSERV_EXCEPTIONS
    // A constructor's std::exception fails the request, as under the
    // blocking policies (server.hpp, serve_request): reported, counted,
    // shut down once, and the server goes on. Any other exception is not
    // ours to catch: the request is shut down before it goes on.
    try {
      ::new (static_cast<void*>(storage_[slot])) Handler;
    } catch (const std::exception& failure) {
      free_[free_count_++] = slot;
      server.refuse_request(request, peer, server_event::failed, failure.what());
      return none;
    } catch (...) {
      free_[free_count_++] = slot;
      server.shutdown_request(request);
      throw;
    }
#else
    ::new (static_cast<void*>(storage_[slot])) Handler;
#endif
    Handler& h = handler(slot);
    s.fd = request.fd;
    s.serial = ++serial_counter_;
    s.interest = 1;
    s.connecting = false;
    s.got_message = false;
    s.admitted = limiter_type::untracked;
    h.attach(*this, this->loop(), connection_id{slot, s.serial});
    h.overflow = overflow;
    h.begin_request(request, peer, server);
    detail::forget_handed_on(request);  // the slot's handler's now
    s.deadline.bind(this->loop(), [this, slot] { on_deadline(slot); });
    result watched = s.watcher.start(this->loop(), s.fd, true, false,
                                     [this, slot](readiness r) { on_ready(slot, r); });
    if (!watched) {  // e.g. select and a descriptor at or above FD_SETSIZE
      fail_unstarted(slot, watched.message());
      return none;
    }
    update_listener();
    return slot;
  }

  // Connected (accepted, or an outbound connect that completed): setup(),
  // then whatever is already there.
  void start_connection(std::uint32_t slot) {
    slots_[slot].connecting = false;
    slots_[slot].opened_ms = detail::monotonic_ms();
    if constexpr (secured)
      begin_handshake(slot);  // setup() once it is done
    else
      set_up(slot);
  }

  // finish() does not run after a failed setup(), also when handle_error()
  // throws on hearing of it.
  void set_up(std::uint32_t slot) {
    detail::scope_exit unless_set_up{[&] {
      if (open(slot)) release(slot, false);
    }};
    if (!guarded(slot, [&] { return handler(slot).setup(); }, false)) return;
    unless_set_up.dismiss();
    touch(slot);
    advance(slot);
  }

  void on_ready(std::uint32_t slot, readiness r) {
    if (!open(slot)) return;
    if (slots_[slot].connecting) return finish_connect(slot);
    if constexpr (secured) return on_secured_ready(slot, r);
    Handler& h = handler(slot);
    const int fd = slots_[slot].fd;
    if (r.writable && !h.send_pending(fd)) return close_connection_now(slot);
    if (r.readable || r.failed) {
      auto status = h.receive(fd);
      if (status == event_connection::receive_status::failed) return close_connection_now(slot);  // reset: gone
      if (status != event_connection::receive_status::would_block) touch(slot);
    }
    advance(slot);
  }

  void finish_connect(std::uint32_t slot) {
    int failure = 0;
    socklen_t length = sizeof failure;
    if (::getsockopt(slots_[slot].fd, SOL_SOCKET, SO_ERROR, &failure, &length) == -1) failure = errno;
    if (failure == 0) {
      slots_[slot].deadline.cancel();
      start_connection(slot);
      return;
    }
    fail_connect(slot, failure);
  }

  void fail_connect(std::uint32_t slot, int code) {
    fail_unstarted(slot, connect_failure(code, handler(slot).client_address).message());
  }

  // A connection whose setup() never ran (not watched, not connected, no
  // handshake): counted, reported to handle_error() and its slot freed
  // without finish() — also when handle_error() throws (that goes on).
  void fail_unstarted(std::uint32_t slot, const char* what, server_event counted = server_event::failed) {
    detail::scope_exit freed_after_report{[&] { release(slot, false); }};
    Handler& h = handler(slot);
    this->server().count(counted);
    this->server().handle_error(h.request, h.client_address, what);
  }

  static result connect_failure(int code, const socket_address& address) {
    char context[result::message_capacity];
    detail::text_builder(context, sizeof context).add("connect ").add(address.to_string().c_str(), 120);
    return result::from_errno(code, context);
  }

  // Hands over what can be handed over, sends what it can, closes a
  // finished connection, and sets what to wait for: input while the client
  // may send and the output has room for a reply; output while some is
  // queued. Messages held back by a full output go on once it drains.
  void advance(std::uint32_t slot) {
    Handler& h = handler(slot);
    const std::uint32_t outer = advancing_;
    advancing_ = slot;
    struct restore {
      std::uint32_t& advancing;
      std::uint32_t previous;
      ~restore() { advancing = previous; }
    } guard{advancing_, outer};
    if constexpr (secured)
      if (handshaking(slot)) return continue_handshake(slot);
    for (;;) {
      if (h.aborted()) return close_connection_now(slot);
      if (!send_queued(slot)) return close_connection_now(slot);
      if (h.closing() || h.eof_delivered()) {
        if (output_waiting(slot)) break;
        if (queue_farewell(slot)) continue;  // TLS: close_notify goes out first
        return close_connection_now(slot);
      }
      const std::size_t input_before = h.input_buffered();
      const bool eof_before = h.eof_delivered();
      const bool pulled = pull_plaintext(slot);
      deliver(slot);
      if (!open(slot)) return;
      if (!pulled && h.input_buffered() == input_before && h.eof_delivered() == eof_before) {
        if (h.closing()) continue;  // closed meanwhile: the top of the loop ends it
        break;
      }
    }
    const bool want_input = !h.closing() && !h.peer_finished() && h.output_room() >= Handler::reply_reserve;
    watch_connection(slot, want_input, output_interest(slot));
  }

  // What advance() does to a connection's bytes, for a plain stream
  // straight on the descriptor, for TLS through the engine in its slot.
  // Sends what is queued: false if the connection broke.
  bool send_queued(std::uint32_t slot) {
    Handler& h = handler(slot);
    if constexpr (secured) {
      auto& t = transport(slot);
      const int fd = slots_[slot].fd;
      return t.send_records(fd) &&
             h.send_pending_to([&](const char* data, std::size_t size) { return t.write_plaintext(fd, data, size); }) &&
             t.send_records(fd);
    } else {
      return h.output_pending() == 0 || h.send_pending(slots_[slot].fd);
    }
  }
  // Output not yet taken by the socket.
  bool output_waiting(std::uint32_t slot) {
    if constexpr (secured)
      return handler(slot).output_pending() > 0 || transport(slot).records_pending();
    else
      return handler(slot).output_pending() > 0;
  }
  // Whether to watch for writability: records the socket had no room for
  // (TLS output that the engine does not take now waits for input instead).
  bool output_interest(std::uint32_t slot) {
    if constexpr (secured)
      return transport(slot).records_pending();
    else
      return handler(slot).output_pending() > 0;
  }
  // A clean close's last word: close_notify, queued once (TLS only).
  bool queue_farewell(std::uint32_t slot) {
    if constexpr (secured)
      return transport(slot).queue_close_notify();
    else
      return (void)slot, false;
  }
  // Decrypted bytes the engine already holds (no system call); true if
  // any (or the session's end) reached the handler's input.
  bool pull_plaintext(std::uint32_t slot) {
    if constexpr (secured) {
      Handler& h = handler(slot);
      auto& t = transport(slot);
      if (h.peer_finished() || !t.input_news()) return false;
      auto status = h.receive_from([&](char* into, std::size_t room) { return t.read_plaintext(-1, into, room, false); });
      return status == event_connection::receive_status::data || status == event_connection::receive_status::end;
    } else {
      return (void)slot, false;
    }
  }
  // Before server_close() frees a connection: what the socket takes now
  // of its output (and, for TLS, close_notify).
  void send_before_close(std::uint32_t slot) {
    if constexpr (secured) {
      if (handshaking(slot)) return;
      if (send_queued(slot) && queue_farewell(slot)) (void)transport(slot).send_records(slots_[slot].fd);
    } else {
      handler(slot).send_pending(slots_[slot].fd);
    }
  }
  // Every connection closes once its output is sent; one still in its TLS
  // handshake closes at once (its handler never started).
  void close_all_after_output() {
    for_each_connection([](Handler& h) { h.close(); });
    if constexpr (secured)
      for (std::uint32_t slot = 0; slot < Capacity; ++slot)
        if (open(slot) && handshaking(slot)) handler(slot).close();
  }

  // ---- TLS: the handshake, by readiness, before setup() -------------------
  auto& transport(std::uint32_t slot) noexcept { return transports::transport(slot); }
  bool handshaking(std::uint32_t slot) noexcept {
    if constexpr (secured)
      return transport(slot).handshaking();
    else
      return (void)slot, false;
  }

  // Under the cap on handshakes (else refused), then as far as the socket
  // allows now; the handshake's deadline is armed with the others.
  void begin_handshake(std::uint32_t slot) {
    Handler& h = handler(slot);
    result begun = transport(slot).begin(SocketType::context(), h.request);
    if (!begun) return fail_handshake(slot, begun);
    touch(slot);
    continue_handshake(slot);
  }

  void continue_handshake(std::uint32_t slot) {
    using progress = typename transport_type::progress;
    Handler& h = handler(slot);
    auto& t = transport(slot);
    if (h.closing()) return release(slot, false);  // closed (server_close, close_connection) before it started
    switch (t.handshake(slots_[slot].fd)) {
      case progress::failed: return fail_handshake(slot, t.failure());
      case progress::waiting: return watch_connection(slot, t.wants_input(), t.records_pending());
      case progress::done: break;
    }
    slots_[slot].deadline.cancel();  // re-armed without the handshake's deadline
    set_up(slot);
  }

  // A refused, failed or stalled handshake: reported, counted, slot freed
  // (no setup() ran, so no finish()).
  void fail_handshake(std::uint32_t slot, const result& why, server_event counted = server_event::failed) {
    transport(slot).end();  // its place under the cap is free when handle_error() hears of it
    fail_unstarted(slot, why.message(), counted);
  }

  void on_secured_ready(std::uint32_t slot, readiness r) {
    if (handshaking(slot)) return continue_handshake(slot);
    Handler& h = handler(slot);
    auto& t = transport(slot);
    const int fd = slots_[slot].fd;
    if (r.writable && !send_queued(slot)) return close_connection_now(slot);
    if (r.readable || r.failed) {
      auto status = h.receive_from([&](char* into, std::size_t room) { return t.read_plaintext(fd, into, room, true); });
      if (status == event_connection::receive_status::failed) {
        // A truncation or a fatal alert is the handler's to know (not a
        // clean end: handle_eof() does not run); a reset is not news.
        if (t.failed()) {
          this->server().count(server_event::failed);
          this->server().handle_error(h.request, h.client_address, t.session_failure().message());
        }
        return close_connection_now(slot);
      }
      if (status != event_connection::receive_status::would_block) touch(slot);
    }
    advance(slot);
  }

  // Every complete message while the output has room; once the client has
  // finished sending, the unterminated rest and then handle_eof().
  void deliver(std::uint32_t slot) {
    Handler& h = handler(slot);
    while (!h.closing() && h.output_room() >= Handler::reply_reserve) {
      frame next = Handler::framing::extract(h.buffered_input(), Handler::input_capacity);
      if (next.malformed) {  // the replies already queued still go out, then it closes
        result bad = result::failure("event_loop: malformed message (longer than the input buffer)");
        this->server().handle_error(h.request, h.client_address, bad.message());
        h.close();
        return;
      }
      if (next.consumed == 0) break;
      h.consume_input(next.consumed);
      slots_[slot].got_message = true;
      if (!guarded(slot, [&] { return h.handle_message(next.message); })) return;
    }
    if (h.closing() || !h.peer_finished() || h.eof_delivered() || h.output_room() < Handler::reply_reserve)
      return;
    frame last = Handler::framing::extract_at_eof(h.buffered_input());
    h.consume_input(h.input_buffered());
    h.mark_eof_delivered();
    if (last.consumed > 0) slots_[slot].got_message = true;
    if (last.consumed > 0 && (!guarded(slot, [&] { return h.handle_message(last.message); }) || h.closing()))
      return;
    guarded(slot, [&] { return h.handle_eof(); });
  }

  // Changes what the poller watches only when it changes: for epoll each
  // change is a system call, and most turns change nothing.
  void watch_connection(std::uint32_t slot, bool input, bool output) {
    slot_state& s = slots_[slot];
    const unsigned char wanted = static_cast<unsigned char>((input ? 1 : 0) | (output ? 2 : 0));
    if (s.interest == wanted) return;
    (void)s.watcher.modify(input, output);
    s.interest = wanted;
  }

  // At the end of each turn: the connections that callbacks wrote to or
  // closed (other than the one each callback served) are advanced: their
  // output is sent now and its interest armed, closes take effect.
  void flush_changed() {
    for (std::size_t budget = 4 * Capacity; changed_count_ > 0 && budget > 0; --budget) {
      const std::uint32_t slot = changed_[--changed_count_];
      listed_[slot] = false;
      if (open(slot) && !slots_[slot].connecting) advance(slot);
    }
    if (changed_count_ > 0) this->loop().defer();  // a ping-pong of writes: go on next turn
  }

  // Runs a handler hook; a failure reaches handle_error and closes the
  // connection (after its queued output; asked before handle_error runs, so
  // that one throwing leaves it closing, not served). A non-std exception
  // closes it at once (finish() only if setup() had run: `set_up`) and
  // propagates. Returns false if the hook failed.
  template <class Hook>
  bool guarded(std::uint32_t slot, Hook hook, bool set_up = true) {
    Handler& h = handler(slot);
    result outcome;
#if SOCKSERV_EXCEPTIONS
    try {
      outcome = detail::call_hook(hook);
    } catch (const std::exception& failure) {
      outcome = result::failure(failure.what());
    } catch (...) {
      if (open(slot)) release(slot, set_up && !handshaking(slot));
      throw;
    }
#else
    outcome = detail::call_hook(hook);
    (void)set_up;
#endif
    if (!outcome) {
      this->server().count(server_event::failed);
      h.close();
      this->server().handle_error(h.request, h.client_address, outcome.message());
      return false;
    }
    return true;
  }

  void close_connection_now(std::uint32_t slot) {
    if (open(slot)) release(slot, !handshaking(slot));  // a handler still in its handshake never started
  }

  // Stops watching the connection, runs finish() (unless setup failed),
  // shuts it down through the server's hooks and frees the slot. The slot
  // counts as closed from the start, so what finish() does (a broadcast, a
  // look-up) no longer sees it.
  void release(std::uint32_t slot, bool run_finish) {
    auto& server = this->server();
    slot_state& s = slots_[slot];
    Handler& h = handler(slot);
    s.watcher.stop();
    s.deadline.cancel();
    if constexpr (secured) transport(slot).end();
    s.fd = -1;
    per_address_.release(s.admitted);
    s.admitted = limiter_type::untracked;
    detail::scope_exit freeing{[this, slot] {  // runs even if finish() throws something not a std::exception
      Handler& gone = handler(slot);
      gone.request.fd.orphan();  // the handler's destructor must not copy a number closed next
      this->server().shutdown_request(gone.request);
      gone.~Handler();
      free_[free_count_++] = slot;
      if (this->server().fileno() >= 0) update_listener();
    }};
    if (!run_finish) return;
    result finished;
#if SOCKSERV_EXCEPTIONS
    try {
      finished = detail::call_hook([&] { return h.finish(); });
    } catch (const std::exception& failure) {
      finished = result::failure(failure.what());
    }
#else
    finished = detail::call_hook([&] { return h.finish(); });
#endif
    if (!finished) {  // reported like any hook's failure; the slot is freed all the same
      server.count(server_event::failed);
      server.handle_error(h.request, h.client_address, finished.message());
    }
  }

  // ---- deadlines: connect timeout; idle, first-message and lifetime ------
  // One timer per slot stands for all of them. It is not restarted on every
  // read (a heap operation per message): it fires at the earliest deadline
  // known when it was set and, if activity moved that deadline, sleeps
  // again for the rest.
  void touch(std::uint32_t slot) noexcept {
    slot_state& s = slots_[slot];
    s.last_activity_ms = detail::monotonic_ms();
    if (!s.deadline.armed()) arm_deadline(slot, s.last_activity_ms);
  }

  // Milliseconds from `now` until the earliest deadline (0: passed), or -1
  // if the connection has none.
  std::int64_t until_deadline(std::uint32_t slot, std::int64_t now) noexcept {
    const slot_state& s = slots_[slot];
    const Handler& h = handler(slot);
    std::int64_t earliest = -1;
    auto consider_at = [&](std::int64_t at) {
      if (earliest < 0 || at < earliest) earliest = at;
    };
    auto consider = [&](const std::optional<double>& seconds, std::int64_t from) {
      if (seconds && !std::isnan(*seconds)) consider_at(from + detail::to_poll_ms(*seconds));  // NaN: never
    };
    if constexpr (secured)
      if (handshaking(slot)) consider_at(s.opened_ms + transport(slot).handshake_timeout_ms());
    consider(h.timeout, s.last_activity_ms);
    if (!s.got_message) consider(h.first_message_timeout, s.opened_ms);
    consider(h.lifetime, s.opened_ms);
    if (earliest < 0) return -1;
    return earliest > now ? earliest - now : 0;
  }

  void arm_deadline(std::uint32_t slot, std::int64_t now) noexcept {
    const std::int64_t left = until_deadline(slot, now);
    if (left < 0)
      slots_[slot].deadline.cancel();
    else
      slots_[slot].deadline.start(left);
  }

  void on_deadline(std::uint32_t slot) {
    if (!open(slot)) return;
    if (slots_[slot].connecting) return fail_connect(slot, ETIMEDOUT);
    const std::int64_t now = detail::monotonic_ms();
    const std::int64_t left = until_deadline(slot, now);
    if (left < 0) return;
    if (left > 0) return slots_[slot].deadline.start(left);
    if constexpr (secured)
      if (handshaking(slot)) return fail_handshake(slot, transport(slot).timed_out(), server_event::timed_out);
    this->server().count(server_event::timed_out);
    close_connection_now(slot);
  }

  // The open connection idle longest (nothing received for the longest
  // time) makes room; its finish() runs as for any close.
  void evict_idlest() {
    std::uint32_t idlest = none;
    for (std::uint32_t slot = 0; slot < Capacity; ++slot)
      if (open(slot) && !slots_[slot].connecting &&
          (idlest == none || slots_[slot].last_activity_ms < slots_[idlest].last_activity_ms))
        idlest = slot;
    if (idlest == none) return;
    this->server().count(server_event::evicted);
    close_connection_now(idlest);
  }

  // Declared first, so destroyed last: the table's watchers and timers go
  // before the loop they are linked into.
  private_loop_type own_loop_;
  slot_state slots_[Capacity];
  std::uint32_t free_[Capacity];
  std::atomic<std::size_t> free_count_{Capacity};  // atomic: active_connections() from other threads
  std::uint32_t changed_list_[Capacity];
  bool listed_[Capacity] = {};
  limiter_type per_address_;
  std::uint64_t serial_counter_ = 0;
  io_watcher server_wakeup_;  // the server's own wake-up, on its own loop
  timer resume_;              // the end of an accept pause
  turn_hook flush_hook_;
  bool woken_ = false;
  std::size_t accepted_ = 0;
  int turning_ = 0;
  // Handlers are built in place on accept; left uninitialised so that an
  // unused slot costs no resident memory.
  alignas(Handler) unsigned char storage_[Capacity][sizeof(Handler)];
};

}  // namespace sockserv
