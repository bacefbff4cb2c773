// Many chat clients in a child process, driven over a control socket, for
// tests that need more connections than one process may hold descriptors
// for (the clients' and the server's together). Raw system calls only, one
// thread, epoll (Linux).
//
// The child opens `clients` connections to the server (client 0 speaks,
// the others listen), writes 'C' on the control socket once all are
// connected, waits for 'G', then has client 0 send `batches` batches of
// `lines_per_batch` lines ("m ...\n", 32 bytes), each batch only once every
// listener has every earlier line. Lines starting with 't' are counted as
// ticks; any other line is an error. Then it writes its report on the
// control socket and exits once the parent closes it. Every wait is bounded
// by the deadline.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <cstdlib>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace test_support {

struct chat_client_report {
  long connected = 0;
  long lines_sent = 0;
  long lines_received = 0;  // by the listeners, all together
  long ticks_received = 0;
  long errors = 0;          // a failed system call, a stranger line, or the deadline
};

// Raises the soft descriptor limit to `wanted` (or the hard limit);
// returns the limit now in force.
inline long raise_descriptor_limit(long wanted) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) return 0;
  if (files.rlim_cur < static_cast<rlim_t>(wanted)) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, static_cast<rlim_t>(wanted));
    ::setrlimit(RLIMIT_NOFILE, &files);
    ::getrlimit(RLIMIT_NOFILE, &files);
  }
  return static_cast<long>(files.rlim_cur);
}

namespace detail {

inline long monotonic_ms_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

inline bool write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1 && errno == EAGAIN) {  // the speaker's socket is full: wait for room
      pollfd room{fd, POLLOUT, 0};
      if (::poll(&room, 1, 1000) == -1 && errno != EINTR) return false;
      continue;
    }
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Waits until fd is readable (or at end of stream), at most until the
// deadline: a parent that failed and went away never leaves the child behind.
inline bool readable_before(int fd, long deadline) {
  for (;;) {
    const long left = deadline - monotonic_ms_now();
    if (left <= 0) return false;
    pollfd ready{fd, POLLIN, 0};
    const int rc = ::poll(&ready, 1, static_cast<int>(left));
    if (rc == 1) return true;
    if (rc == 0 || errno != EINTR) return false;
  }
}

struct chat_client {
  int fd = -1;
  bool connected = false;
  bool at_line_start = true;
  char kind = 0;
  long lines = 0;
};

}  // namespace detail

// A third of the per-test watchdog's budget (SOCKSERV_TEST_WATCHDOG, set
// by make: 60 s natively, 300 s under an emulator, where 10 000 clients
// take several times longer): 20 s natively.
inline int chat_deadline_ms() {
  const char* text = std::getenv("SOCKSERV_TEST_WATCHDOG");
  const long seconds = text != nullptr ? std::strtol(text, nullptr, 10) : 0;
  return static_cast<int>((seconds > 0 ? seconds : 60) * 1000 / 3);
}

// The child's whole life; returns its exit status.
inline int run_chat_clients(const sockaddr* server, socklen_t server_length, int control, int clients,
                            int batches, int lines_per_batch, int deadline_ms = chat_deadline_ms()) {
  using detail::chat_client;
  ::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit(clients + 64);
  chat_client_report report;
  std::vector<chat_client> all(static_cast<std::size_t>(clients));
  const int poller = ::epoll_create1(EPOLL_CLOEXEC);
  const long deadline = detail::monotonic_ms_now() + deadline_ms;
  auto fail = [&] {
    ++report.errors;
    (void)detail::write_all(control, "F", 1);
    (void)detail::write_all(control, &report, sizeof report);
    return 1;
  };
  if (poller == -1) return fail();

  // Connect, at most 256 handshakes in flight (a flood past the listen
  // backlog would wait for SYN retransmission).
  int opened = 0, in_flight = 0;
  epoll_event events[512];
  while (report.connected < clients) {
    while (opened < clients && in_flight < 256) {
      chat_client& c = all[static_cast<std::size_t>(opened)];
      c.fd = ::socket(server->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd == -1) return fail();
      if (::connect(c.fd, server, server_length) == -1 && errno != EINPROGRESS) return fail();
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u32 = static_cast<std::uint32_t>(opened);
      if (::epoll_ctl(poller, EPOLL_CTL_ADD, c.fd, &ev) == -1) return fail();
      ++opened;
      ++in_flight;
    }
    int n = ::epoll_wait(poller, events, 512, 100);
    for (int i = 0; i < n; ++i) {
      chat_client& c = all[events[i].data.u32];
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) == -1 || error != 0) return fail();
      c.connected = true;
      --in_flight;
      ++report.connected;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = events[i].data.u32;
      if (::epoll_ctl(poller, EPOLL_CTL_MOD, c.fd, &ev) == -1) return fail();
    }
    if (detail::monotonic_ms_now() > deadline) return fail();
  }
  if (!detail::write_all(control, "C", 1)) return 1;
  char go = 0;
  if (!detail::readable_before(control, deadline) || ::read(control, &go, 1) != 1 || go != 'G') return fail();

  const long listeners = clients - 1;
  char buffer[16384];
  for (int batch = 0; batch < batches; ++batch) {
    char lines[32 * 64 + 1];
    const int count = std::min(lines_per_batch, 64);
    for (int k = 0; k < count; ++k) {
      std::snprintf(lines + 32 * k, 33, "m %08ld ....................", report.lines_sent + k);
      lines[32 * k + 31] = '\n';
    }
    if (!detail::write_all(all[0].fd, lines, static_cast<std::size_t>(32 * count))) return fail();
    report.lines_sent += count;
    while (report.lines_received < listeners * report.lines_sent) {
      int n = ::epoll_wait(poller, events, 512, 100);
      if (n == -1 && errno != EINTR) return fail();
      for (int i = 0; i < n; ++i) {
        chat_client& c = all[events[i].data.u32];
        for (;;) {
          ssize_t got = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
          if (got == -1 && errno == EINTR) continue;
          if (got == -1 && errno == EAGAIN) break;
          if (got <= 0) return fail();  // the server closed a client: it must not
          for (ssize_t j = 0; j < got; ++j) {
            if (c.at_line_start) {
              c.kind = buffer[j];
              c.at_line_start = false;
            }
            if (buffer[j] != '\n') continue;
            c.at_line_start = true;
            if (c.kind == 'm' && &c != &all[0]) {
              ++c.lines;
              ++report.lines_received;
            } else if (c.kind == 't') {
              ++report.ticks_received;
            } else {
              ++report.errors;
            }
          }
          if (got < static_cast<ssize_t>(sizeof buffer)) break;
        }
      }
      if (detail::monotonic_ms_now() > deadline) return fail();
    }
  }
  (void)detail::write_all(control, "D", 1);
  (void)detail::write_all(control, &report, sizeof report);
  while (detail::readable_before(control, deadline) && ::read(control, &go, 1) > 0) {  // until the parent closes it
  }
  return report.errors == 0 ? 0 : 1;
}

}  // namespace test_support
