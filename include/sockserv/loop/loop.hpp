// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/loop.hpp — the daemon's event loop: one poller, one timer
// queue and one wake-up for every source a daemon has (servers, timers,
// signals, child processes, foreign descriptors, posts from threads).
//
// As in libubox's uloop, the caller owns every object the loop touches:
// watchers are linked in, never allocated. The loop itself is
// basic_loop<Poller, MaxDescriptors>: the poller (epoll, poll or select)
// and a fixed table of MaxDescriptors watched descriptors. Everything else
// takes the capacity-free base, `loop&`, so one copy of the code serves
// every size.
//
//   sockserv::basic_loop<> loop;                 // epoll on Linux, 1024 descriptors
//   loop.add(tcp_server); loop.add(udp_server);  // event_loop<> servers
//   sockserv::timer tick{loop, [&] { ... }};  tick.start_periodic(1000);
//   loop.serve_forever();                        // until loop.shutdown()
//
// A turn of the loop: wait for readiness or the earliest timer, run the
// ready descriptors' callbacks, run the due timers, then the turn hooks
// (servers flush what callbacks wrote to their connections). Callbacks run
// on the loop's thread; only request_shutdown(), ring() and post queues
// may be used from other threads (request_shutdown() and ring() from
// signal handlers too). An exception thrown by a callback leaves the loop
// consistent and propagates out of run_once()/serve_forever().
//
// Destroy watchers and servers before their loop (declare the loop first).
#pragma once

#include "../detail/serving_flag.hpp"
#include "../detail/syscall.hpp"
#include "../detail/text.hpp"
#include "../error.hpp"
#include "../poller/poll.hpp"
#include "../poller/readiness.hpp"
#include "../poller/select.hpp"
#include "../wakeup.hpp"
#include "callback.hpp"
#include "timer.hpp"
#ifdef __linux__
#include "../poller/epoll.hpp"
#endif

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <poll.h>
#include <type_traits>
#include <utility>

namespace sockserv {

#ifdef __linux__
template <std::size_t Capacity>
using default_poller = epoll_poller<Capacity>;
#else
template <std::size_t Capacity>
using default_poller = poll_poller<Capacity>;
#endif

class loop;
class signal_watcher;

namespace detail {
template <class Server, class = void>
struct has_join_loop : std::false_type {};
template <class Server>
struct has_join_loop<Server, std::void_t<decltype(std::declval<Server&>().join_loop(std::declval<loop&>()))>>
    : std::true_type {};
}  // namespace detail

// Watches one descriptor for reading and/or writing. Stop it (or destroy
// it) before closing the descriptor: poll and select would go on watching
// the number.
class io_watcher {
 public:
  using callback_type = callback<void(readiness)>;

  io_watcher() noexcept = default;
  io_watcher(const io_watcher&) = delete;
  io_watcher& operator=(const io_watcher&) = delete;
  ~io_watcher() { stop(); }

  // Fails when the loop's descriptor table is full, or the poller refuses
  // the descriptor (select: at or above FD_SETSIZE); the message says which.
  inline result start(loop& owner, int fd, bool read, bool write, callback_type on_ready) noexcept;
  inline result modify(bool read, bool write) noexcept;
  inline void stop() noexcept;

  bool active() const noexcept { return loop_ != nullptr; }
  int fd() const noexcept { return fd_; }
  bool reading() const noexcept { return read_; }
  bool writing() const noexcept { return write_; }

 private:
  friend class loop;
  loop* loop_ = nullptr;
  int fd_ = -1;
  poll_token token_ = 0;
  bool read_ = false;
  bool write_ = false;
  callback_type on_ready_;
};

// Runs at the end of every turn of its loop (after descriptors and timers):
// where servers send what callbacks queued for their connections.
class turn_hook {
 public:
  turn_hook() noexcept = default;
  turn_hook(const turn_hook&) = delete;
  turn_hook& operator=(const turn_hook&) = delete;
  ~turn_hook() { stop(); }
  inline void start(loop& owner, callback<void()> run) noexcept;
  inline void stop() noexcept;
  bool active() const noexcept { return loop_ != nullptr; }

 private:
  friend class loop;
  loop* loop_ = nullptr;
  turn_hook* next_ = nullptr;
  turn_hook* previous_ = nullptr;
  callback<void()> run_;
};

class loop {
 public:
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  timer_queue& timers() noexcept { return timers_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t watched_count() const noexcept { return capacity_ - free_count_ - retired_count_; }
  const char* poller_name() const noexcept { return poller_name_; }

  // Opens the poller (done by the first watcher too).
  result open() noexcept {
    if (opened_) return {};
    result made = backend_open();
    opened_ = made.ok();
    return made;
  }

  // Opens the wake-up descriptor that request_shutdown(), ring() and post
  // queues write to. serve_forever() and post queues open it; a server's
  // own loop never needs it (the server has its own), so it costs nothing
  // there.
  result open_wakeup() noexcept {
    if (doorbell_watcher_.active()) return {};
    result made = open();
    if (made) made = doorbell_.open();
    if (made)
      made = doorbell_watcher_.start(*this, doorbell_.read_fd(), true, false, [this](readiness) { doorbell_.drain(); });
    return made;
  }

  // ---- running -------------------------------------------------------------

  // One turn: waits at most timeout_ms (-1: until something happens; 0:
  // not at all) or until the earliest timer, then runs what is ready.
  result run_once(int timeout_ms = -1) {
    result opened = open();
    if (!opened) return opened;
    ++turn_depth_;
    struct depth_guard {
      int& depth;
      ~depth_guard() { --depth; }
    } depth{turn_depth_};
    run_turn_hooks();  // what was written outside a callback goes out before the wait
    const int wait_ms = work_pending_ ? 0 : timers_.wait_limit_ms(timeout_ms);
    work_pending_ = false;
    int ready;
    {
      dispatch_scope scope{*this};
      ready = backend_wait(wait_ms);
    }
    if (ready == -1) return result::from_errno(errno, poller_name_);
    timers_.run_due();
    // The hooks flush what this turn's callbacks queued: pending work is
    // what they leave (or queue) themselves, not what they are about to do.
    work_pending_ = false;
    run_turn_hooks();
    return {};
  }

  // Runs turns until shutdown() or request_shutdown(). A stop requested
  // while no loop runs makes the next serve_forever() return at once.
  result serve_forever() {
    if (!serving_.claim()) return result::failure("loop.serve_forever: already running on another thread");
    result ready = open_wakeup();
    if (!ready) {
      serving_.release();
      return ready;
    }
    struct release_guard {
      loop& owner;
      ~release_guard() { owner.serving_.release(); }
    } guard{*this};
    // The request is consumed where it is seen: one made while the loop is
    // on its way out stays for the next serve_forever() (a reload loop).
    while (!stop_requested_.exchange(false)) {
      result turned = run_once(-1);
      if (!turned) return turned;
    }
    doorbell_.drain();
    return {};
  }

  // Asks serve_forever() to return. Async-signal-safe, any thread.
  void request_shutdown() noexcept {
    if (stop_forward_) return stop_forward_(false);
    stop_requested_.store(true);
    doorbell_.notify();
  }
  // Stops serve_forever() and waits until it has returned; from the loop's
  // own thread (a callback) it only requests the stop.
  void shutdown() noexcept {
    if (stop_forward_) return stop_forward_(true);
    const unsigned run = serving_.snapshot();  // before the request: the run it stops
    request_shutdown();
    if (serving_.held_by_caller()) return;
    serving_.wait_until_released(run);
  }
  bool shutdown_requested() const noexcept { return stop_requested_.load(); }
  // True while run_once() runs (so in every callback): what would wait for
  // the loop must not, from inside it.
  bool in_turn() const noexcept { return turn_depth_ > 0; }

  // For a server's own loop: stopping the loop is stopping the server
  // (to(false): request, to(true): stop and wait), so that a watcher on
  // server.loop() — a SIGTERM watcher, say — stops server.serve_forever().
  void forward_stop(callback<void(bool)> to) noexcept { stop_forward_ = to; }

  // Wakes a waiting turn. Async-signal-safe, any thread.
  void ring() noexcept { doorbell_.notify(); }
  // From the loop's thread: the next turn must not sleep (a turn hook has
  // work). Used by servers when a write is queued outside a turn.
  void defer() noexcept { work_pending_ = true; }

  // ---- embedding in a host loop (uloop, GLib, libuv, libevent) ---------------
  // Watch fd() for reading in the host loop (with epoll it stands for every
  // descriptor of this loop; poll and select have none: -1, see below),
  // wake after next_timeout() ms (-1: no timer), and call run_once(0).
  int fd() const noexcept { return opened_ ? backend_fd() : -1; }
  int next_timeout() const noexcept { return work_pending_ ? 0 : timers_.wait_limit_ms(-1); }
  // For a poll or select loop: the descriptors to watch, as pollfd entries
  // (at most `room`); returns how many there are (may exceed room).
  std::size_t watched_descriptors(pollfd* out, std::size_t room) const noexcept {
    std::size_t count = 0;
    for (std::size_t token = 0; token < capacity_; ++token) {
      const io_watcher* w = slots_[token];
      if (w == nullptr) continue;
      if (count < room)
        out[count] = pollfd{w->fd_, static_cast<short>((w->read_ ? POLLIN : 0) | (w->write_ ? POLLOUT : 0)), 0};
      ++count;
    }
    return count;
  }

  // ---- servers -------------------------------------------------------------
  // Serves an event_loop<> server (stream or datagram) on this loop: its
  // listener, connections and timers join this loop's poller, and its
  // shutdown() stops this loop. Fails if the table has no room.
  template <class Server>
  result add(Server& server) {
    static_assert(detail::has_join_loop<Server>::value,
                  "loop.add() takes servers of the event_loop<> policy (stream or datagram): a threading or "
                  "forking server waits for its pool, and a synchronous stream handler would stall every other "
                  "source of the loop");
    return server.join_loop(*this);
  }
  // Takes the server back to its own loop (its connections are closed).
  template <class Server>
  void remove(Server& server) {
    server.leave_loop(*this);
  }

 protected:
  loop(io_watcher** slots, poll_token* free_tokens, poll_token* retired, std::size_t capacity,
       const char* poller_name) noexcept
      : slots_(slots), free_(free_tokens), retired_(retired), capacity_(capacity), poller_name_(poller_name) {
    for (std::size_t i = 0; i < capacity; ++i) {
      slots_[i] = nullptr;
      free_[i] = static_cast<poll_token>(capacity - 1 - i);
    }
    free_count_ = capacity;
  }
  ~loop() = default;

  // The poller, behind the sized class.
  virtual result backend_open() noexcept = 0;
  virtual result backend_add(int fd, poll_token token, bool read, bool write) noexcept = 0;
  virtual result backend_modify(int fd, poll_token token, bool read, bool write) noexcept = 0;
  virtual void backend_remove(int fd, poll_token token) noexcept = 0;
  virtual int backend_wait(int timeout_ms) = 0;  // calls dispatch() per ready descriptor
  virtual int backend_fd() const noexcept = 0;

  void dispatch(poll_token token, readiness r) {
    if (token >= capacity_) return;
    io_watcher* w = slots_[token];
    if (w == nullptr) return;  // a slot stopped earlier in this batch is null
    // Called from a copy: the callback may restart its watcher with another
    // callback, which replaces on_ready_ while it still runs.
    const io_watcher::callback_type ready = w->on_ready_;
    ready(r);
  }

  // The sized class closes its poller in its destructor; watchers still
  // registered then are the caller's bug, but must not touch freed memory.
  void detach_all() noexcept {
    doorbell_watcher_.stop();
    for (std::size_t i = 0; i < capacity_; ++i)
      if (slots_[i] != nullptr) slots_[i]->loop_ = nullptr;
    while (hooks_ != nullptr) hooks_->stop();
  }

 private:
  friend class io_watcher;
  friend class turn_hook;
  friend class signal_watcher;

  // Tokens freed while a batch is being reported are reused only after it,
  // so a late readiness report can never reach a new watcher.
  struct dispatch_scope {
    loop& owner;
    explicit dispatch_scope(loop& l) noexcept : owner(l) { owner.dispatching_ = true; }
    // The flag is cleared last: g++ 12 -O2 dropped the store when it came
    // first, on the path where a callback's exception unwinds through here,
    // so tokens released before the next turn were held back (retired) and
    // a full table refused watchers it had room for.
    ~dispatch_scope() {
      while (owner.retired_count_ > 0) owner.free_[owner.free_count_++] = owner.retired_[--owner.retired_count_];
      owner.dispatching_ = false;
    }
  };

  bool take_token(poll_token& token) noexcept {
    if (free_count_ == 0) return false;
    token = free_[--free_count_];
    return true;
  }
  void release_token(poll_token token) noexcept {
    slots_[token] = nullptr;
    if (dispatching_)
      retired_[retired_count_++] = token;
    else
      free_[free_count_++] = token;
  }

  void run_turn_hooks() {
    for (turn_hook* hook = hooks_; hook != nullptr;) {
      turn_hook* next = hook->next_;  // a hook may stop itself
      const callback<void()> run = hook->run_;  // a copy: the hook may be restarted from within
      run();
      hook = next;
    }
  }

  io_watcher** slots_;
  poll_token* free_;
  poll_token* retired_;
  std::size_t capacity_;
  std::size_t free_count_ = 0;
  std::size_t retired_count_ = 0;
  const char* poller_name_;
  bool opened_ = false;
  bool dispatching_ = false;
  int turn_depth_ = 0;
  bool work_pending_ = false;
  timer_queue timers_;
  turn_hook* hooks_ = nullptr;
  wakeup_pipe doorbell_;
  io_watcher doorbell_watcher_;
  std::atomic<bool> stop_requested_{false};
  detail::serving_flag serving_;
  callback<void(bool)> stop_forward_;
  // Signals (signal_watcher.hpp): the loop's self-pipe and its watchers.
  wakeup_pipe signal_pipe_;
  io_watcher signal_input_;
  signal_watcher* signal_watchers_ = nullptr;
};

// Poller: epoll_poller, poll_poller or select_poller. MaxDescriptors counts
// every descriptor watched at once: listeners, connections, foreign
// descriptors, and the loop's own two (wake-up and, once signals are
// watched, the signal pipe).
template <template <std::size_t> class Poller = default_poller, std::size_t MaxDescriptors = 1024>
class basic_loop final : public loop {
  static_assert(MaxDescriptors >= 2, "a loop watches at least its own wake-up and signal descriptors");

 public:
  using poller_type = Poller<MaxDescriptors>;
  static constexpr std::size_t max_descriptors = MaxDescriptors;

  basic_loop() noexcept : loop(slots_, free_, retired_, MaxDescriptors, poller_type::name) {}
  ~basic_loop() {
    detach_all();
    poller_.close();
  }

 private:
  result backend_open() noexcept override { return poller_.open(); }
  result backend_add(int fd, poll_token token, bool read, bool write) noexcept override {
    return poller_.add(fd, token, read, write);
  }
  result backend_modify(int fd, poll_token token, bool read, bool write) noexcept override {
    return poller_.modify(fd, token, read, write);
  }
  void backend_remove(int fd, poll_token token) noexcept override { poller_.remove(fd, token); }
  int backend_wait(int timeout_ms) override {
    return poller_.wait(timeout_ms, [this](poll_token token, readiness r) { dispatch(token, r); });
  }
  int backend_fd() const noexcept override { return descriptor_of(poller_, 0); }

  template <class P>
  static auto descriptor_of(const P& p, int) noexcept -> decltype(p.fd()) {
    return p.fd();
  }
  template <class P>
  static int descriptor_of(const P&, long) noexcept {
    return -1;
  }

  poller_type poller_;
  io_watcher* slots_[MaxDescriptors];
  poll_token free_[MaxDescriptors];
  poll_token retired_[MaxDescriptors];
};

// ---- io_watcher and turn_hook ----------------------------------------------

result io_watcher::start(loop& owner, int fd, bool read, bool write, callback_type on_ready) noexcept {
  stop();
  result opened = owner.open();
  if (!opened) return opened;
  poll_token token = 0;
  if (!owner.take_token(token)) {
    char message[result::message_capacity];
    detail::text_builder(message, sizeof message)
        .add("loop: descriptor table full (")
        .add_unsigned(owner.capacity_)
        .add(" watched); descriptor ")
        .add_signed(fd)
        .add(" refused");
    return result::from_errno(ENOSPC, message);
  }
  result added = owner.backend_add(fd, token, read, write);
  if (!added) {
    owner.release_token(token);
    return added;
  }
  owner.slots_[token] = this;
  loop_ = &owner;
  fd_ = fd;
  token_ = token;
  read_ = read;
  write_ = write;
  on_ready_ = on_ready;
  return {};
}

result io_watcher::modify(bool read, bool write) noexcept {
  if (loop_ == nullptr) return result::from_errno(EINVAL, "io_watcher: not started");
  if (read == read_ && write == write_) return {};
  result changed = loop_->backend_modify(fd_, token_, read, write);
  if (changed) {
    read_ = read;
    write_ = write;
  }
  return changed;
}

void io_watcher::stop() noexcept {
  if (loop_ == nullptr) return;
  loop_->backend_remove(fd_, token_);
  loop_->release_token(token_);
  loop_ = nullptr;
  fd_ = -1;
  read_ = write_ = false;
}

void turn_hook::start(loop& owner, callback<void()> run) noexcept {
  stop();
  run_ = run;
  loop_ = &owner;
  next_ = owner.hooks_;
  previous_ = nullptr;
  if (next_) next_->previous_ = this;
  owner.hooks_ = this;
}

void turn_hook::stop() noexcept {
  if (loop_ == nullptr) return;
  if (previous_)
    previous_->next_ = next_;
  else
    loop_->hooks_ = next_;
  if (next_) next_->previous_ = previous_;
  loop_ = nullptr;
  next_ = previous_ = nullptr;
}

}  // namespace sockserv
