// SPDX-License-Identifier: BSL-1.0
// sockserv/address.hpp — socket addresses and the three address families.
//
// One socket_address type (a sockaddr_storage) holds any family's address, so
// a handler written for TCP also works unchanged for unix sockets, as in
// Python. Parsing is numeric plus "localhost" and "" (any): no resolver, no
// heap. The families are compile-time policies of basic_server.
#pragma once

#include "detail/text.hpp"
#include "error.hpp"

#include <arpa/inet.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace sockserv {

namespace detail {
// inet_ntop's text, without inet_ntop (0.8 KiB of a static musl binary that
// needs no more than this): dotted quad, and RFC 5952 for IPv6 (lower-case
// hex, no leading zeros, the first longest run of two or more zero groups
// as "::", IPv4-mapped addresses as ::ffff:a.b.c.d).
inline void add_ipv4(text_builder& out, const unsigned char* bytes) noexcept {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out.add_char('.');
    out.add_unsigned(bytes[i]);
  }
}

inline void add_ipv6(text_builder& out, const unsigned char* bytes) noexcept {
  static constexpr unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes, mapped_prefix, sizeof mapped_prefix) == 0) {
    out.add("::ffff:");
    add_ipv4(out, bytes + 12);
    return;
  }
  unsigned groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = static_cast<unsigned>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  int best_start = -1, best_length = 1;  // a single zero group is not shortened
  for (int i = 0; i < 8;) {
    int run = 0;
    while (i + run < 8 && groups[i + run] == 0) ++run;
    if (run > best_length) {
      best_start = i;
      best_length = run;
    }
    i += run > 0 ? run : 1;
  }
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out.add("::");
      i += best_length - 1;
      continue;
    }
    if (i > 0 && i != best_start + best_length) out.add_char(':');
    out.add_hex(groups[i]);
  }
}
}  // namespace detail

// Printable form of an address; big enough for "[v6%scope]:port" and any
// unix path.
struct address_string {
  static constexpr std::size_t capacity = sizeof(sockaddr_un::sun_path) + 16;
  char text[capacity] = {};
  const char* c_str() const noexcept { return text; }
};

class socket_address {
 public:
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return length_; }
  // For calls that fill the address in: pass &length_for_update() as in/out.
  socklen_t& length_for_update() noexcept {
    length_ = sizeof storage_;
    return length_;
  }
  void set_size(socklen_t length) noexcept { length_ = length; }
  int family() const noexcept { return length_ == 0 ? AF_UNSPEC : storage_.ss_family; }

  // A unix datagram client that never bound has no address to reply to.
  bool is_unnamed() const noexcept {
    return family() == AF_UNSPEC ||
           (family() == AF_UNIX && length_ <= offsetof(sockaddr_un, sun_path));
  }

  std::uint16_t port() const noexcept {
    if (family() == AF_INET) return ntohs(as<sockaddr_in>().sin_port);
    if (family() == AF_INET6) return ntohs(as<sockaddr_in6>().sin6_port);
    return 0;
  }

  // Host part only: "127.0.0.1", "::1", or the unix path ("@name" if abstract).
  address_string host() const noexcept {
    address_string out;
    detail::text_builder text(out.text, sizeof out.text);
    switch (family()) {
      case AF_INET:
        detail::add_ipv4(text, reinterpret_cast<const unsigned char*>(&as<sockaddr_in>().sin_addr));
        break;
      case AF_INET6:
        detail::add_ipv6(text, as<sockaddr_in6>().sin6_addr.s6_addr);
        if (const std::uint32_t scope = as<sockaddr_in6>().sin6_scope_id)  // link-local: "fe80::1%2"
          text.add_char('%').add_unsigned(scope);
        break;
      case AF_UNIX:
        write_unix_path(text);
        break;
      default:
        text.add("(unnamed)");
    }
    return out;
  }

  // "127.0.0.1:9999", "[::1]:9999", "/run/app.sock".
  address_string to_string() const noexcept {
    if (family() != AF_INET && family() != AF_INET6) return host();
    address_string out;
    detail::text_builder text(out.text, sizeof out.text);
    if (family() == AF_INET6) text.add_char('[');
    text.add(host().text);
    if (family() == AF_INET6) text.add_char(']');
    text.add_char(':').add_unsigned(port());
    return out;
  }

  friend bool operator==(const socket_address& a, const socket_address& b) noexcept {
    return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
  }
  friend bool operator!=(const socket_address& a, const socket_address& b) noexcept {
    return !(a == b);
  }

  template <class Sockaddr>
  Sockaddr& as() noexcept {
    return *reinterpret_cast<Sockaddr*>(&storage_);
  }
  template <class Sockaddr>
  const Sockaddr& as() const noexcept {
    return *reinterpret_cast<const Sockaddr*>(&storage_);
  }

 private:
  void write_unix_path(detail::text_builder& out) const noexcept {
    if (is_unnamed()) {
      out.add("(unnamed)");
      return;
    }
    std::size_t length = length_ - offsetof(sockaddr_un, sun_path);
    const char* path = as<sockaddr_un>().sun_path;
    if (path[0] == '\0') {  // Linux abstract name: shown with a leading '@'
      out.add_char('@');
      ++path;
      --length;
    }
    out.add(path, length);  // up to the length, or a NUL before it
  }

  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// Where an IP server listens: host text ("127.0.0.1", "::1", "localhost",
// "" for any) and port (0: the kernel picks one).
struct inet_endpoint {
  const char* host = "";
  std::uint16_t port = 0;
};

// Where a unix-domain server listens: a filesystem path, or on Linux an
// abstract name written with a leading '@'.
struct unix_endpoint {
  const char* path = "";
  unix_endpoint() = default;
  unix_endpoint(const char* socket_path) noexcept : path(socket_path) {}  // NOLINT: implicit by design
};

namespace detail {
inline result bad_address(const char* what, const char* text) noexcept {
  char message[result::message_capacity];
  text_builder(message, sizeof message).add("invalid address '").add(text, 80).add("': ").add(what, 55);
  return result::failure(message);
}
inline bool is_localhost(const char* host) noexcept { return std::strcmp(host, "localhost") == 0; }
}  // namespace detail

struct inet4 {
  static constexpr int family = AF_INET;
  using endpoint = inet_endpoint;

  static result parse(const endpoint& where, socket_address& out) noexcept {
    if (where.host == nullptr) return detail::bad_address("no host", where.host);
    auto& in = out.as<sockaddr_in>();
    in = sockaddr_in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(where.port);
    if (where.host[0] == '\0')
      in.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (detail::is_localhost(where.host))
      in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (::inet_pton(AF_INET, where.host, &in.sin_addr) != 1)
      return detail::bad_address("not a numeric IPv4 address (no name resolution)", where.host);
    out.set_size(sizeof in);
    return {};
  }
};

struct inet6 {
  static constexpr int family = AF_INET6;
  using endpoint = inet_endpoint;

  // Accepts "::1", "[::1]", "fe80::1%eth0", "localhost" and "" (any).
  static result parse(const endpoint& where, socket_address& out) noexcept {
    if (where.host == nullptr) return detail::bad_address("no host", where.host);
    auto& in6 = out.as<sockaddr_in6>();
    in6 = sockaddr_in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(where.port);
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
    std::size_t length = std::strlen(where.host);
    const char* host = where.host;
    if (length >= 2 && host[0] == '[' && host[length - 1] == ']') {
      ++host;
      length -= 2;
    }
    if (length >= sizeof text) return detail::bad_address("too long for an IPv6 address", where.host);
    std::memcpy(text, host, length);
    text[length] = '\0';
    if (char* scope = std::strchr(text, '%')) {
      *scope++ = '\0';
      // A number ("%2", as printed) or an interface name ("%eth0").
      char* end = nullptr;
      const unsigned long number = std::strtoul(scope, &end, 10);
      const bool numeric = *scope >= '0' && *scope <= '9' && *end == '\0';
      in6.sin6_scope_id = numeric ? static_cast<std::uint32_t>(number) : ::if_nametoindex(scope);
      if (in6.sin6_scope_id == 0) return detail::bad_address("unknown interface in scope", where.host);
    }
    if (text[0] == '\0')
      in6.sin6_addr = in6addr_any;
    else if (detail::is_localhost(text))
      in6.sin6_addr = in6addr_loopback;
    else if (::inet_pton(AF_INET6, text, &in6.sin6_addr) != 1)
      return detail::bad_address("not a numeric IPv6 address (no name resolution)", where.host);
    out.set_size(sizeof in6);
    return {};
  }
};

struct unix_socket {
  static constexpr int family = AF_UNIX;
  using endpoint = unix_endpoint;

  static result parse(const endpoint& where, socket_address& out) noexcept {
    const char* path = where.path;
    if (path == nullptr || path[0] == '\0') return detail::bad_address("empty unix socket path", path);
    auto& un = out.as<sockaddr_un>();
    un = sockaddr_un{};
    un.sun_family = AF_UNIX;
    std::size_t length = std::strlen(path);
    // A regular path needs room for its terminating NUL; an abstract name
    // ('@' becomes a leading NUL) does not.
    bool abstract = path[0] == '@';
    if (length + (abstract ? 0 : 1) > sizeof un.sun_path)
      return detail::bad_address("unix socket path longer than sun_path (107 bytes)", path);
    std::memcpy(un.sun_path, path, length);
    if (abstract) un.sun_path[0] = '\0';
    out.set_size(static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + (abstract ? 0 : 1)));
    return {};
  }
};

}  // namespace sockserv
