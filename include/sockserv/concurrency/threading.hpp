// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/threading.hpp — ThreadingMixIn: each request runs on
// a worker thread while the serving thread goes back to listening.
//
// Instead of a thread per request, a fixed pool of up to Workers pthreads
// (each with a StackSize stack) is started on demand and then reused, so the
// steady state creates no threads and allocates nothing. When every worker
// is busy the serving thread stops watching the listener until one is free
// (back-pressure: further clients wait in the listen backlog; nobody is
// dropped); a worker that frees a full pool wakes it through the server's
// wake-up pipe, the same wait that shutdown() wakes.
#pragma once

#include "../address.hpp"
#include "../admission.hpp"
#include "../detail/pthread.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../request_deadline.hpp"

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

namespace sockserv {

namespace detail {
inline unsigned& worker_number_slot() noexcept {
  static thread_local unsigned number = 0;
  return number;
}
}  // namespace detail

// 1-based number of the pool worker running the caller; 0 on any other thread.
inline unsigned this_worker_number() noexcept { return detail::worker_number_slot(); }

template <std::size_t Workers = 16, std::size_t StackSize = 256 * 1024>
struct threading {
  static_assert(Workers > 0, "threading needs at least one worker");
  static constexpr double default_timeout = -1;  // handle_request waits forever
  // What a worker's stack really gets (PTHREAD_STACK_MIN is 16 KiB on Linux).
  static constexpr std::size_t effective_stack = StackSize < 16384 ? 16384 : StackSize;

  template <class Server, class SocketType, class Handler>
  class mixin {
    // The handler lives on its worker's stack, beside the frames of the
    // pipeline and of the C library (8 KiB is a conservative allowance).
    static_assert(sizeof(Handler) + 8192 <= effective_stack,
                  "threading<Workers, StackSize>: the handler (with its rbufsize/wbufsize buffers) does not "
                  "fit a worker's stack; raise StackSize or shrink the handler's buffers");

   public:
    using request_type = typename SocketType::request_type;
    static constexpr std::size_t worker_capacity = Workers;
    static constexpr std::size_t worker_stack_size = StackSize;

    // false (default): server_close() waits for requests in flight.
    // true: it does not; the destructor still waits, since the requests use
    // the server object.
    bool daemon_threads = false;
    // false: server_close() never waits, whatever daemon_threads says.
    bool block_on_close = true;

    mixin() noexcept = default;
    mixin(const mixin&) = delete;
    mixin& operator=(const mixin&) = delete;

    std::size_t requests_in_flight() noexcept {
      detail::lock_guard hold(lock_);
      return in_flight_;
    }
    std::size_t started_workers() noexcept {
      detail::lock_guard hold(lock_);
      return started_;
    }

    // Hands the request to an idle worker, starting one if the pool is not
    // full yet, or waiting for one to finish. If no thread can be started,
    // the request goes to handle_error and is shut down.
    void process_request(request_type& request, const socket_address& client_address) {
      auto& server = static_cast<Server&>(*this).self();
      int admitted = address_limiter<Workers>::untracked;
      if (!admit_address(server, client_address, admitted)) {  // over max_connections_per_address
        server.shutdown_request(request);
        return;
      }
      int failure = 0;
      worker* chosen = claim_worker(failure);
      if (chosen == nullptr) {
        release_address(admitted);
        server.refuse_request(request, client_address, server_event::failed,
                              result::from_errno(failure, "threading: cannot start a worker").message());
        return;
      }
      SocketType::copy_request(request, chosen->request, chosen->packet);
      chosen->client_address = client_address;
      chosen->cancel_handle = cancel_handle_of(request);
      detail::forget_handed_on(request);  // the worker's now
      detail::lock_guard hold(lock_);
      chosen->daemon = daemon_threads;
      chosen->address_slot = admitted;
      chosen->has_work = true;
      ++in_flight_;
      server.note_in_flight(in_flight_);
      if (!chosen->daemon) ++waited_in_flight_;
      chosen->wake.notify_one();
    }

    void service_actions() {}
    void handle_timeout() {}

    // Whether a request fetched now has a worker: an idle one, or room to
    // start one. The serving loop watches the listener only while it does.
    bool has_capacity() noexcept {
      detail::lock_guard hold(lock_);
      return idle_count_ > 0 || started_ < Workers;
    }
    // (A full pool is left by a worker's wake-up — notify_capacity() — not
    // by polling again.)

    // Run by server_close() once the socket is closed.
    void wait_for_requests_in_flight() {
      detail::lock_guard hold(lock_);
      if (block_on_close)
        while (waited_in_flight_ > 0) worker_freed_.wait(lock_);
      stopping_ = true;
      for (std::size_t i = 0; i < started_; ++i) workers_[i].wake.notify_one();
      if (in_flight_ == 0) join_workers_locked();
    }

    // graceful_close(): waits for every request in flight, daemon or not,
    // until the (monotonic) deadline; then cancels those still running and
    // gives them cancel_grace_ms to return.
    bool drain_requests(std::int64_t deadline_ms) {
      detail::lock_guard hold(lock_);
      while (in_flight_ > 0)
        if (!worker_freed_.wait_until_ms(lock_, deadline_ms)) break;
      if (in_flight_ == 0) return true;
      cancel_in_flight_locked();
      const std::int64_t grace = detail::monotonic_ms() + cancel_grace_ms;
      while (in_flight_ > 0)
        if (!worker_freed_.wait_until_ms(lock_, grace)) break;
      return false;
    }

    // Shuts down the connection of every request in flight (both ways), so
    // that a handler blocked in a receive or a send returns at once: end of
    // input, or EPIPE. A handler blocked on anything else is not reached.
    void cancel_requests_in_flight() noexcept {
      detail::lock_guard hold(lock_);
      cancel_in_flight_locked();
    }

    // Run by the server's destructor: every request, daemon or not, must be
    // over before the memory it uses goes away. Those still running (daemon
    // threads, or block_on_close = false) get destroy_grace_ms to end, then
    // are cancelled, so the wait is bounded as graceful_close's is.
    void finish_all_requests() {
      detail::lock_guard hold(lock_);
      const std::int64_t grace = detail::monotonic_ms() + destroy_grace_ms;
      while (in_flight_ > 0)
        if (!worker_freed_.wait_until_ms(lock_, grace)) break;
      cancel_in_flight_locked();
      stopping_ = true;
      for (std::size_t i = 0; i < started_; ++i) workers_[i].wake.notify_one();
      join_workers_locked();
    }

   private:
    struct worker {
      mixin* pool = nullptr;
      pthread_t thread{};
      unsigned number = 0;
      bool has_work = false;
      bool daemon = false;
      int cancel_handle = -1;  // a duplicate of the connection, closed with the request
      int address_slot = -1;   // in per_address_
      detail::condition wake;
      request_type request{};
      socket_address client_address;
      typename SocketType::receive_buffer packet;
    };

    worker* claim_worker(int& failure) noexcept {
      detail::lock_guard hold(lock_);
      for (;;) {
        if (stopping_) {
          failure = ESHUTDOWN;
          return nullptr;
        }
        if (idle_count_ > 0) return &workers_[idle_[--idle_count_]];
        if (started_ < Workers) {
          worker& fresh = workers_[started_];
          fresh.pool = this;
          fresh.number = static_cast<unsigned>(started_ + 1);
          failure = start_thread(fresh);
          if (failure != 0) return nullptr;
          ++started_;
          return &fresh;
        }
        worker_freed_.wait(lock_);
      }
    }

    static int start_thread(worker& w) noexcept {
      return detail::start_library_thread(w.thread, &worker_main, &w, StackSize);
    }

    static void* worker_main(void* argument) {
      auto& w = *static_cast<worker*>(argument);
      w.pool->work(w);
      return nullptr;
    }

    void work(worker& w) {
      detail::worker_number_slot() = w.number;
      auto& server = static_cast<Server&>(*this).self();
      lock_.lock();
      for (;;) {
        while (!w.has_work && !stopping_) w.wake.wait(lock_);
        if (!w.has_work) break;
        lock_.unlock();
        {
          detail::request_scope scope{server, detail::connection_fd_of(w.request)};  // its request_timeout
          run_request(server, w);
        }
        lock_.lock();
        detail::close_descriptor(w.cancel_handle);  // under the lock: a cancel never meets a reused number
        w.cancel_handle = -1;
        per_address_.release(w.address_slot);
        w.has_work = false;
        --in_flight_;
        if (!w.daemon) --waited_in_flight_;
        const bool pool_was_full = idle_count_ == 0 && started_ == Workers;
        idle_[idle_count_++] = static_cast<unsigned>(w.number - 1);
        worker_freed_.notify_all();
        if (pool_was_full) server.notify_capacity();  // the serving loop may wait for this
      }
      lock_.unlock();
    }

    template <class ServerType>
    static void run_request(ServerType& server, worker& w) {
#if SOCKSERV_EXCEPTIONS
      // serve_request() has given std::exceptions to handle_error and shut
      // the request down; anything else ends just this request, as
      // SystemExit ends a Python request thread. The worker lives on.
      try {
        server.serve_request(w.request, w.client_address);
      } catch (...) {
      }
#else
      server.serve_request(w.request, w.client_address);
#endif
    }

    // A descriptor of the request's own for cancelling it, so that a
    // cancel never shuts down a number the handler closed and something
    // else reused. Datagram requests have nothing to cancel.
    static int cancel_handle_of(const request_type& request) noexcept {
      if constexpr (SocketType::type == SOCK_STREAM)
        return request.fd < 0 ? -1 : ::fcntl(request.fd, F_DUPFD_CLOEXEC, 0);
      else
        return -1;
    }

    void cancel_in_flight_locked() noexcept {
      for (std::size_t i = 0; i < started_; ++i)
        if (workers_[i].has_work && workers_[i].cancel_handle >= 0) ::shutdown(workers_[i].cancel_handle, SHUT_RDWR);
    }

    static constexpr int cancel_grace_ms = 50;
    static constexpr int destroy_grace_ms = 100;

    template <class ServerType>
    bool admit_address(ServerType& server, const socket_address& client, int& slot) noexcept {
      detail::lock_guard hold(lock_);
      return server.admit(per_address_, client, slot);
    }
    void release_address(int slot) noexcept {
      detail::lock_guard hold(lock_);
      per_address_.release(slot);
    }

    // Caller holds lock_; releases it while joining (workers need it to exit).
    void join_workers_locked() {
      std::size_t count = started_;
      started_ = 0;
      idle_count_ = 0;
      lock_.unlock();
      for (std::size_t i = 0; i < count; ++i) pthread_join(workers_[i].thread, nullptr);
      lock_.lock();
    }

    detail::mutex lock_;
    address_limiter<Workers> per_address_;  // under lock_
    detail::condition worker_freed_;
    worker workers_[Workers];
    unsigned idle_[Workers] = {};
    std::size_t idle_count_ = 0;
    std::size_t started_ = 0;
    std::size_t in_flight_ = 0;
    std::size_t waited_in_flight_ = 0;  // in flight and not daemon
    bool stopping_ = false;
  };
};

}  // namespace sockserv
