// SPDX-License-Identifier: BSL-1.0
// sockserv/socket.hpp — descriptor ownership and the two socket types.
//
// A socket type (stream, datagram) is a policy of basic_server: it says what
// one request is (an accepted connection, or one received packet plus the
// server socket) and how a request is fetched, shut down and closed.
#pragma once

#include "address.hpp"
#include "detail/syscall.hpp"
#include "detail/text.hpp"
#include "error.hpp"
#include "transport.hpp"

#include <cstddef>
#include <cstring>
#include <string_view>
#include <sys/socket.h>
#include <sys/uio.h>

namespace sockserv {

// Tags for the server constructors that take over an existing socket, or
// run without one (see basic_server).
struct adopt_socket_t {
  explicit adopt_socket_t() = default;
};
inline constexpr adopt_socket_t adopt_socket{};
struct no_socket_t {
  explicit no_socket_t() = default;
};
inline constexpr no_socket_t no_socket{};

// Owns one descriptor; closing is idempotent and leaves fd() == -1.
class file_descriptor {
 public:
  file_descriptor() noexcept = default;
  explicit file_descriptor(int fd) noexcept : fd_(fd) {}
  file_descriptor(file_descriptor&& other) noexcept : fd_(other.release()) {}
  file_descriptor& operator=(file_descriptor&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  ~file_descriptor() { reset(); }

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    detail::close_descriptor(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// The request of a stream server: the accepted connection. The server owns
// it (shutdown_request closes it); a handler's request.fd is a duplicate of
// its own (handler_connection.hpp), which it may close. A socket type
// that is not plain (TLS) sets transport, through which its bytes move.
struct connection {
  int fd = -1;
  byte_transport* transport = nullptr;

  int fileno() const noexcept { return fd; }
  // One recv(): at most size bytes, 0 at end of stream, -1 with errno set.
  std::ptrdiff_t recv(void* buffer, std::size_t size) const noexcept {
    if (transport != nullptr) return transport->receive(*transport, buffer, size);
    return detail::retry_on_eintr([&] { return ::recv(fd, buffer, size, 0); });
  }
  // Everything or -1 (errno set); partial sends and signals are retried.
  std::ptrdiff_t sendall(const void* data, std::size_t size) const noexcept {
    if (transport != nullptr) return transport->send_all(*transport, data, size);
    return detail::send_all(fd, data, size);
  }
  std::ptrdiff_t sendall(std::string_view data) const noexcept {
    return sendall(data.data(), data.size());
  }
};

// The request of a datagram server: the packet and the server socket to
// answer from (Python's request[0] and request[1]).
struct datagram_request {
  std::string_view data;
  int socket = -1;

  std::ptrdiff_t sendto(const void* reply, std::size_t size, const socket_address& to) const noexcept {
    return detail::retry_on_eintr(
        [&] { return ::sendto(socket, reply, size, detail::no_sigpipe, to.data(), to.size()); });
  }
  std::ptrdiff_t sendto(std::string_view reply, const socket_address& to) const noexcept {
    return sendto(reply.data(), reply.size(), to);
  }
};

namespace detail {
// A request handed on (to a worker thread, to an event-loop slot): the
// accepting side's copy stops referring to the connection, so that nothing
// there — a process_request of the user's that throws after forwarding —
// can shut it down or close it under its new owner. A datagram request
// owns nothing.
inline void forget_handed_on(connection& request) noexcept { request.fd = -1; }
inline void forget_handed_on(datagram_request&) noexcept {}

// get_request() failures that only mean "no request after all": the client
// vanished between readiness and accept, or another process took it.
inline bool is_transient_fetch_error(int code) noexcept {
  return code == EAGAIN || code == EWOULDBLOCK || code == ECONNABORTED || code == EINTR ||
         code == EPROTO;
}
// accept() failures that mean "out of descriptors or memory": retrying at
// once would fail again, so the server pauses accepting.
inline bool is_resource_exhaustion(int code) noexcept {
  return code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM;
}
}  // namespace detail

struct stream {
  static constexpr int type = SOCK_STREAM;
  static constexpr std::size_t max_packet_size = 0;
  using request_type = connection;
  struct receive_buffer {};

  // The listener is non-blocking: readiness can go stale (a client resets
  // before accept), and get_request() must then return, not block.
  static int activate(int fd, int backlog) noexcept {
    if (::listen(fd, backlog) == -1) return -1;
    return detail::set_nonblocking(fd, true);
  }

  static result get_request(int listener, receive_buffer&, connection& request,
                            socket_address& client) noexcept {
    request.fd = detail::accept_connection(listener, client.data(), &client.length_for_update());
    if (request.fd == -1) return result::from_errno(errno, "accept");
    return {};
  }

  // Half-close only, so that the client sees EOF even if a forked child
  // still holds a copy of the descriptor; basic_server::shutdown_request
  // then calls close_request (the user's, if replaced).
  static void shutdown_request(connection& request) noexcept {
    if (request.fd >= 0) ::shutdown(request.fd, SHUT_WR);  // ENOTCONN: client already gone
  }
  static void close_request(connection& request) noexcept {
    detail::close_descriptor(request.fd);
    request.fd = -1;
  }

  // A request handed to another thread: the descriptor travels as it is.
  static void copy_request(const connection& from, connection& to, receive_buffer&) noexcept { to = from; }
};

template <std::size_t MaxPacketSize = 8192>
struct datagram {
  static_assert(MaxPacketSize > 0, "a datagram server needs room for a packet");
  static constexpr int type = SOCK_DGRAM;
  static constexpr std::size_t max_packet_size = MaxPacketSize;
  using request_type = datagram_request;
  struct receive_buffer {
    char bytes[MaxPacketSize];
  };

  static int activate(int, int) noexcept { return 0; }  // nothing to listen for

  // Receives one packet. A packet longer than max_packet_size is not handed
  // on as if it were whole: it fails with EMSGSIZE (its head stays in
  // request.data for handle_error to inspect).
  static result get_request(int fd, receive_buffer& buffer, datagram_request& request,
                            socket_address& client) noexcept {
    std::size_t length = 0;
    bool truncated = false;
#ifdef __linux__
    // Linux: recvfrom() with MSG_TRUNC returns the datagram's real length,
    // which tells truncation with one cheap call.
    socklen_t address_length = client.length_for_update();
    ssize_t n = detail::retry_on_eintr([&] {
      return ::recvfrom(fd, buffer.bytes, MaxPacketSize, MSG_DONTWAIT | MSG_TRUNC, client.data(), &address_length);
    });
    if (n == -1) return result::from_errno(errno, "recvfrom");
    client.set_size(address_length);
    truncated = static_cast<std::size_t>(n) > MaxPacketSize;
    length = truncated ? MaxPacketSize : static_cast<std::size_t>(n);
#else
    iovec part{buffer.bytes, MaxPacketSize};
    msghdr message{};
    message.msg_name = client.data();
    message.msg_namelen = client.length_for_update();
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    ssize_t n = detail::retry_on_eintr([&] { return ::recvmsg(fd, &message, MSG_DONTWAIT); });
    if (n == -1) return result::from_errno(errno, "recvmsg");
    client.set_size(message.msg_namelen);
    truncated = (message.msg_flags & MSG_TRUNC) != 0;
    length = static_cast<std::size_t>(n);
#endif
    request.data = std::string_view(buffer.bytes, length);
    request.socket = fd;
    if (truncated) {
      char text[96];
      detail::text_builder(text, sizeof text)
          .add("datagram truncated: longer than max_packet_size (")
          .add_unsigned(MaxPacketSize)
          .add(" bytes)");
      return result::from_errno(EMSGSIZE, text);
    }
    return {};
  }

  static void shutdown_request(datagram_request&) noexcept {}  // the socket is the server's
  static void close_request(datagram_request&) noexcept {}

  // A request handed to another thread: the packet moves into that
  // thread's own buffer, so the server can receive the next one at once.
  static void copy_request(const datagram_request& from, datagram_request& to,
                           receive_buffer& storage) noexcept {
    std::memcpy(storage.bytes, from.data.data(), from.data.size());
    to.data = std::string_view(storage.bytes, from.data.size());
    to.socket = from.socket;
  }
};

}  // namespace sockserv
