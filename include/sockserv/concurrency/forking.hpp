// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/forking.hpp — ForkingMixIn: each request runs in a
// child process forked for it.
//
// The child runs serve_request() and exits 0, or 1 after a failure (which
// it reported through handle_error), plus 2 if its request_timeout passed. The parent closes its copy of the
// request and records the child in a fixed table of MaxChildren entries.
// Only the server's own children are ever waited for, one pid at a time, so
// a process the application forked itself keeps its exit status.
#pragma once

#include "../address.hpp"
#include "../admission.hpp"
#include "../detail/child_exit_wakeup.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../request_deadline.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <csignal>
#include <cstdio>
#include <poll.h>
#ifdef __linux__
#include <stdio_ext.h>  // __fpending
#endif
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sockserv {

template <std::size_t MaxChildren = 40>
struct forking {
  static_assert(MaxChildren > 0, "forking needs room for at least one child");
  static constexpr double default_timeout = 300;  // handle_timeout() reaps, as in Python

  template <class Server, class SocketType, class Handler>
  class mixin {
   public:
    using request_type = typename SocketType::request_type;
    static constexpr std::size_t child_capacity = MaxChildren;

    // At most this many children at once (clamped to MaxChildren): at the
    // limit the serving loop stops accepting until one exits.
    std::size_t max_children = MaxChildren;
    // false: server_close() does not wait for the children.
    bool block_on_close = true;

    std::size_t active_children() const noexcept { return count_; }

    // Reaps the children that have exited (waiting for all if blocking),
    // after waiting for one if the table is at max_children.
    void collect_children(bool blocking = false) {
      (void)wait_for_room();
      reap_exited(blocking);
    }

    // Whether a request fetched now can be forked at once. The serving
    // loop watches the listener only while it can. With the table full,
    // every SIGCHLD writes to the server's wake-up pipe (subscribed before
    // reaping, so no exit goes unseen), and the loop's one wait on that
    // pipe ends when a child exits or shutdown() is called — no polling.
    bool has_capacity() {
      if (count_ >= limit()) {
        (void)child_exited_.subscribe(static_cast<Server&>(*this).wakeup_write_fd());
        reap_exited(false);
      }
      const bool room = count_ < limit();
      if (room) child_exited_.unsubscribe();
      return room;
    }
    // Only if SIGCHLD could not be routed to the pipe (every routing slot
    // taken by other waiting servers) does the loop look again by itself.
    int capacity_recheck_ms() const noexcept { return child_exited_.subscribed() ? -1 : 10; }

    void process_request(request_type& request, const socket_address& client_address) {
      auto& server = static_cast<Server&>(*this).self();
      if (!wait_for_room()) {  // shutdown() while the table was full: the request is not served
        server.shutdown_request(request);
        return;
      }
      // A child that has exited but is not reaped yet is not in flight:
      // before a count that would be a new peak, reap.
      if (count_ + 1 > peak_in_flight_) reap_exited(false);
      int admitted = address_limiter<MaxChildren>::untracked;
      if (!server.admit(per_address_, client_address, admitted)) {  // over max_connections_per_address
        server.shutdown_request(request);
        return;
      }
      flush_stdout();  // or the child would print the parent's pending output again
      pid_t pid = ::fork();
      if (pid == -1) {
        const int code = errno;
        per_address_.release(admitted);
        server.refuse_request(request, client_address, server_event::failed,
                              result::from_errno(code, "fork").message());
        return;
      }
      if (pid == 0) {
        // The child serves this one request: the listener and the wake-up
        // pipe are the parent's (a child holding the listener would keep it
        // accepting during graceful_close, and block a restarted service's
        // bind). A datagram request answers through the server socket.
        if constexpr (SocketType::type == SOCK_STREAM) server.close_inherited_descriptors();
        run_child(server, request, client_address);
      }
      address_slots_[count_] = admitted;
      children_[count_++] = pid;
      if (count_ > peak_in_flight_) peak_in_flight_ = count_;
      server.note_in_flight(count_);
      server.close_request(request);  // the child's copy stays open
    }

    // graceful_close(): children get until the deadline to exit; those
    // still running then are killed (SIGKILL: a child inherits the
    // application's SIGTERM handler, which may not end it) and reaped.
    // Each exit wakes the wait (SIGCHLD, as with a full table).
    bool drain_requests(std::int64_t deadline_ms) {
      while (count_ > 0) {
        const std::int64_t left = deadline_ms - detail::monotonic_ms();
        if (left <= 0) break;
        wait_for_child_exit(left);
      }
      child_exited_.unsubscribe();
      if (count_ == 0) return true;
      for (std::size_t i = 0; i < count_; ++i) ::kill(children_[i], SIGKILL);
      reap_exited(true);
      return false;
    }

    // Never wait here: the serving loop runs these between waits, and a
    // full table must not keep it from seeing shutdown().
    void service_actions() { reap_exited(false); }
    void handle_timeout() { reap_exited(false); }
    void wait_for_requests_in_flight() { reap_exited(block_on_close); }
    void finish_all_requests() { reap_exited(false); }

   private:
    std::size_t limit() const noexcept {
      return max_children == 0 ? 1 : (max_children < MaxChildren ? max_children : MaxChildren);
    }

    template <class ServerType>
    [[noreturn]] static void run_child(ServerType& server, request_type& request,
                                       const socket_address& client_address) {
      // Exit status: bit 0 the request failed, bit 1 its deadline passed
      // (the parent counts them in its stats(); the child's are a copy).
      int status = 1;
      const unsigned long timed_out_before = server.stats().timed_out;
      {
        // request_timeout: this child's SIGALRM shuts the connection down.
        detail::request_scope scope{server, detail::connection_fd_of(request),
                                    detail::request_scope::enforcement::alarm_signal};
#if SOCKSERV_EXCEPTIONS
        try {
          status = server.serve_request(request, client_address) ? 0 : 1;
        } catch (...) {  // not a std::exception: request already shut down; exit 1
        }
#else
        status = server.serve_request(request, client_address) ? 0 : 1;
#endif
      }
      if (server.stats().timed_out != timed_out_before) status |= 2;
      flush_stdout();  // what the handler printed; _exit() flushes nothing
      ::_exit(status);  // no atexit handlers, no destructors of the parent's objects
    }

    // Only stdout is buffered by default, and flushing walks locks and
    // touches pages that a fork then copies: flush it only when it holds
    // something (__fpending: glibc and musl).
    static void flush_stdout() noexcept {
#ifdef __linux__
      if (__fpending(stdout) == 0) return;
#endif
      std::fflush(stdout);
    }

    // waitpid for one of ours; returns 0 if it is still running, else its
    // pid (or -1 if it is not ours to wait for any more: ECHILD).
    static pid_t reap(pid_t pid, int options, int& status) noexcept {
      pid_t rc;
      do rc = ::waitpid(pid, &status, options);
      while (rc == -1 && errno == EINTR);
      return rc;
    }

    void reap_exited(bool blocking) {
      for (std::size_t i = 0; i < count_;) {
        int status = 0;
        pid_t rc = reap(children_[i], blocking ? 0 : WNOHANG, status);
        if (rc == 0) {
          ++i;  // still running
          continue;
        }
        if (rc > 0) count_exit(status);
        forget(i);
      }
    }

    void count_exit(int status) noexcept {
      auto& server = static_cast<Server&>(*this).self();
      const bool exited = WIFEXITED(status);
      if (!exited || (WEXITSTATUS(status) & 1)) server.count(server_event::failed);  // or killed
      if (exited && (WEXITSTATUS(status) & 2)) server.count(server_event::timed_out);
    }

    // With the table at max_children, waits until any one of our children
    // has exited — whichever, and never one of the application's (waitid
    // on any child would see the application's zombies first and then wait
    // for our oldest). Reached by a process_request() the serving loop did
    // not gate on has_capacity() (serve_connection). False if shutdown()
    // came first: the wait ends with it, as every stop path must.
    [[nodiscard]] bool wait_for_room() {
      auto& server = static_cast<Server&>(*this);
      while (!has_capacity()) {
        if (server.shutdown_requested()) return false;
        wait_for_child_exit(-1);
      }
      return true;
    }

    // Reaps; if none of ours has exited, waits (at most timeout_ms, -1:
    // no limit) on the wake-up pipe for the next SIGCHLD — or anything
    // else that wakes the server — then reaps again.
    void wait_for_child_exit(std::int64_t timeout_ms) {
      auto& server = static_cast<Server&>(*this);
      const bool woken = child_exited_.subscribe(server.wakeup_write_fd());
      const std::size_t before = count_;
      reap_exited(false);
      if (count_ < before || count_ == 0) return;
      const int limit_ms = timeout_ms < 0 ? -1 : static_cast<int>(timeout_ms > 2147483000 ? 2147483000 : timeout_ms);
      const int wait_ms = woken ? limit_ms : (limit_ms < 0 || limit_ms > 10 ? 10 : limit_ms);
      pollfd pipe{server.wakeup_fd(), POLLIN, 0};
      if (detail::poll_until(&pipe, 1, wait_ms) > 0) server.drain_wakeup();
      reap_exited(false);
    }

    void forget(std::size_t index) noexcept {
      per_address_.release(address_slots_[index]);
      --count_;
      children_[index] = children_[count_];
      address_slots_[index] = address_slots_[count_];
    }

    pid_t children_[MaxChildren] = {};
    int address_slots_[MaxChildren] = {};  // each child's entry in per_address_
    address_limiter<MaxChildren> per_address_;
    std::size_t count_ = 0;
    std::size_t peak_in_flight_ = 0;  // the most children alive at once so far
    detail::child_exit_wakeup child_exited_;  // subscribed while waiting for a child to exit
  };
};

}  // namespace sockserv
