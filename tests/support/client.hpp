// Loopback clients for the server tests. Every wait is bounded (poll with a
// deadline, SO_RCVTIMEO/SO_SNDTIMEO on every client socket), so a broken
// server fails a test instead of hanging it.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace test_support {

// The longest any client waits for the server.
inline constexpr int io_timeout_ms = 5000;

// Milliseconds left until a fixed point in time, for repeated polls.
class deadline {
 public:
  explicit deadline(int timeout_ms)
      : end_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)) {}
  int remaining_ms() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
  }

 private:
  std::chrono::steady_clock::time_point end_;
};

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline void set_io_timeouts(int fd, int timeout_ms) {
  timeval limit{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) == 0);
}

// A client socket whose blocking calls give up after io_timeout_ms.
inline sockserv::file_descriptor open_client_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  INFO("socket: " << std::strerror(errno));
  REQUIRE(fd >= 0);
  sockserv::file_descriptor owned(fd);
  set_io_timeouts(fd, io_timeout_ms);
  return owned;
}

// A connect() that a signal interrupts goes on in the background (under
// qemu-user that happens often): wait until the socket is writable — through
// further signals — and take its outcome from SO_ERROR.
inline int connect_retrying_eintr(int fd, const sockserv::socket_address& to) {
  int rc = ::connect(fd, to.data(), to.size());
  if (rc == 0 || errno != EINTR) return rc;
  deadline until(io_timeout_ms);
  for (;;) {
    pollfd ready{fd, POLLOUT, 0};
    rc = ::poll(&ready, 1, until.remaining_ms());
    if (rc == 1) break;
    if (rc == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (errno != EINTR) return -1;
  }
  int failure = 0;
  socklen_t length = sizeof failure;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == -1) return -1;
  errno = failure;
  return failure == 0 ? 0 : -1;
}

// A connected stream client. Succeeds as soon as the server listens: the
// backlog holds the connection until the server accepts it.
// connect_to() for a thread other than the test's own: no Catch2 assertion
// (Catch2 v2 is not thread-safe); an unopened descriptor if it failed, which
// the test's own checks of what the thread achieved then catch.
inline sockserv::file_descriptor connect_from_any_thread(const sockserv::socket_address& server) {
  sockserv::file_descriptor client(::socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client.is_open()) return client;
  timeval limit{io_timeout_ms / 1000, (io_timeout_ms % 1000) * 1000};
  (void)::setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  (void)::setsockopt(client.fd(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (connect_retrying_eintr(client.fd(), server) != 0) client.reset();
  return client;
}

inline sockserv::file_descriptor connect_to(const sockserv::socket_address& server) {
  sockserv::file_descriptor client = open_client_socket(server.family(), SOCK_STREAM);
  int rc = connect_retrying_eintr(client.fd(), server);
  const int failure = errno;  // before to_string(), which may change errno
  INFO("connect to " << server.to_string().c_str() << ": " << std::strerror(failure));
  REQUIRE(rc == 0);
  return client;
}

// errno of a connect() that is expected to fail (0 if it succeeded).
inline int connect_error(const sockserv::socket_address& server) {
  sockserv::file_descriptor client = open_client_socket(server.family(), SOCK_STREAM);
  return ::connect(client.fd(), server.data(), server.size()) == 0 ? 0 : errno;
}

inline void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n == -1 && errno == EINTR) continue;
    INFO("send: " << std::strerror(errno));
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

inline bool wait_readable(int fd, int timeout_ms) {
  deadline until(timeout_ms);
  for (;;) {
    pollfd ready{fd, POLLIN, 0};
    int rc = ::poll(&ready, 1, until.remaining_ms());
    if (rc == -1 && errno == EINTR) continue;
    return rc == 1;
  }
}

struct read_outcome {
  std::string data;
  bool eof = false;  // the peer closed (recv returned 0)
  int error = 0;     // errno of a failed recv, or ETIMEDOUT when the deadline passed
};

// Reads until the server closes the connection, at most timeout_ms in all.
inline read_outcome read_until_eof(int fd, int timeout_ms = io_timeout_ms) {
  read_outcome out;
  deadline until(timeout_ms);
  char buffer[65536];
  for (;;) {
    if (!wait_readable(fd, until.remaining_ms())) {
      out.error = ETIMEDOUT;
      return out;
    }
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      out.data.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      out.eof = true;
      return out;
    } else if (errno != EINTR) {
      out.error = errno;
      return out;
    }
  }
}

// Exactly `size` bytes (fewer only if the peer closes or the time is up).
inline std::string read_exactly(int fd, std::size_t size, int timeout_ms = io_timeout_ms) {
  std::string out;
  deadline until(timeout_ms);
  char buffer[65536];
  while (out.size() < size) {
    if (!wait_readable(fd, until.remaining_ms())) break;
    std::size_t want = size - out.size() < sizeof buffer ? size - out.size() : sizeof buffer;
    ssize_t n = ::recv(fd, buffer, want, 0);
    if (n == -1 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return out;
}

// One line including its '\n' (or what came before EOF / the deadline).
inline std::string read_line(int fd, int timeout_ms = io_timeout_ms) {
  std::string out;
  deadline until(timeout_ms);
  char c = 0;
  while (c != '\n') {
    if (!wait_readable(fd, until.remaining_ms())) break;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == -1 && errno == EINTR) continue;
    if (n <= 0) break;
    out.push_back(c);
  }
  return out;
}

// Connects, sends message, and returns everything the server sent back
// before closing; requires that it did close.
inline std::string exchange_stream(const sockserv::socket_address& server, std::string_view message) {
  sockserv::file_descriptor client = connect_to(server);
  send_all(client.fd(), message);
  read_outcome reply = read_until_eof(client.fd());
  INFO("reading the reply: " << std::strerror(reply.error));
  REQUIRE(reply.eof);
  return reply.data;
}

// A client connecting from `source` (any 127.0.0.0/8 address is loopback),
// for tests of what a server does per client address.
inline sockserv::file_descriptor connect_from(const char* source, const sockserv::socket_address& server) {
  sockserv::file_descriptor client = open_client_socket(AF_INET, SOCK_STREAM);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, source, &local.sin_addr) == 1);
  REQUIRE(::bind(client.fd(), reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  REQUIRE(connect_retrying_eintr(client.fd(), server) == 0);
  return client;
}

// ---- datagrams ------------------------------------------------------------

// A datagram client; unix clients that want a reply bind to bind_path.
inline sockserv::file_descriptor open_datagram_client(int family, const char* bind_path = nullptr) {
  sockserv::file_descriptor client = open_client_socket(family, SOCK_DGRAM);
  if (bind_path != nullptr) {
    sockaddr_un own{};
    own.sun_family = AF_UNIX;
    std::strncpy(own.sun_path, bind_path, sizeof own.sun_path - 1);
    int rc = ::bind(client.fd(), reinterpret_cast<sockaddr*>(&own), sizeof own);
    INFO("bind " << bind_path << ": " << std::strerror(errno));
    REQUIRE(rc == 0);
  }
  return client;
}

inline void send_datagram(int fd, const sockserv::socket_address& to, std::string_view data) {
  ssize_t n;
  do n = ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL, to.data(), to.size());
  while (n == -1 && errno == EINTR);
  INFO("sendto " << to.to_string().c_str() << ": " << std::strerror(errno));
  REQUIRE(n == static_cast<ssize_t>(data.size()));
}

// The next datagram, or nothing if none arrives within timeout_ms.
inline std::optional<std::string> receive_datagram(int fd, int timeout_ms = io_timeout_ms) {
  if (!wait_readable(fd, timeout_ms)) return std::nullopt;
  char buffer[65536];
  ssize_t n;
  do n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

inline std::string exchange_datagram(const sockserv::socket_address& server, std::string_view message,
                                     const char* bind_path = nullptr) {
  sockserv::file_descriptor client = open_datagram_client(server.family(), bind_path);
  send_datagram(client.fd(), server, message);
  std::optional<std::string> reply = receive_datagram(client.fd());
  INFO("no reply from " << server.to_string().c_str() << " within " << io_timeout_ms << " ms");
  REQUIRE(reply.has_value());
  return *reply;
}

// ---- addresses ------------------------------------------------------------

inline sockserv::socket_address local_address(int fd) {
  sockserv::socket_address address;
  REQUIRE(::getsockname(fd, address.data(), &address.length_for_update()) == 0);
  return address;
}

template <class Family>
sockserv::socket_address parse_address(const typename Family::endpoint& where) {
  sockserv::socket_address address;
  sockserv::result parsed = Family::parse(where, address);
  INFO(parsed.message());
  REQUIRE(parsed.ok());
  return address;
}

}  // namespace test_support
