// SPDX-License-Identifier: BSL-1.0
// sockserv/access.hpp — building blocks for verify_request(): which
// networks may connect, and who is at the other end of a unix socket.
//
//   struct lan_only : tcp_server<H, lan_only> {
//     allow_list<4> allowed;  // allowed.add("192.168.1.0/24") at start-up
//     bool verify_request(connection&, const socket_address& client) {
//       return allowed.allows(client);
//     }
//   };
#pragma once

#include "address.hpp"
#include "detail/text.hpp"
#include "error.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

namespace sockserv {

// An IPv4 or IPv6 network: "192.168.1.0/24", "fd00::/8", or one host
// ("10.0.0.1", "::1"). An IPv4-mapped IPv6 client (::ffff:a.b.c.d, what a
// dual-stack socket reports) matches IPv4 networks.
class network {
 public:
  static result parse(const char* text, network& out) noexcept {
    if (text == nullptr) return result::failure("invalid network: null");
    char address[INET6_ADDRSTRLEN + 1];
    const char* slash = std::strchr(text, '/');
    std::size_t length = slash ? static_cast<std::size_t>(slash - text) : std::strlen(text);
    if (length == 0 || length >= sizeof address) return invalid(text, "no address before the prefix");
    std::memcpy(address, text, length);
    address[length] = '\0';
    network parsed;
    if (::inet_pton(AF_INET, address, parsed.bytes_) == 1)
      parsed.family_ = AF_INET;
    else if (::inet_pton(AF_INET6, address, parsed.bytes_) == 1)
      parsed.family_ = AF_INET6;
    else
      return invalid(text, "not a numeric IPv4 or IPv6 address");
    const unsigned bits = parsed.family_ == AF_INET ? 32 : 128;
    parsed.prefix_ = bits;
    if (slash != nullptr) {
      char* end = nullptr;
      unsigned long prefix = std::strtoul(slash + 1, &end, 10);
      if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || prefix > bits)
        return invalid(text, "prefix length out of range");
      parsed.prefix_ = static_cast<unsigned>(prefix);
    }
    out = parsed;
    return {};
  }

  bool contains(const socket_address& client) const noexcept {
    const unsigned char* bytes = nullptr;
    if (client.family() == AF_INET && family_ == AF_INET) {
      bytes = reinterpret_cast<const unsigned char*>(&client.as<sockaddr_in>().sin_addr);
    } else if (client.family() == AF_INET6) {
      const auto* v6 = reinterpret_cast<const unsigned char*>(&client.as<sockaddr_in6>().sin6_addr);
      static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (family_ == AF_INET6)
        bytes = v6;
      else if (std::memcmp(v6, mapped, sizeof mapped) == 0)
        bytes = v6 + 12;
    }
    return bytes != nullptr && prefix_matches(bytes);
  }

  int family() const noexcept { return family_; }
  unsigned prefix_length() const noexcept { return prefix_; }

 private:
  static result invalid(const char* text, const char* why) noexcept {
    char message[result::message_capacity];
    detail::text_builder(message, sizeof message).add("invalid network '").add(text, 64).add("': ").add(why, 60);
    return result::failure(message);
  }
  bool prefix_matches(const unsigned char* bytes) const noexcept {
    unsigned whole = prefix_ / 8, rest = prefix_ % 8;
    if (std::memcmp(bytes, bytes_, whole) != 0) return false;
    if (rest == 0) return true;
    const unsigned mask = (0xffu << (8 - rest)) & 0xffu;
    return (bytes[whole] & mask) == (bytes_[whole] & mask);
  }

  int family_ = AF_UNSPEC;
  unsigned char bytes_[16] = {};
  unsigned prefix_ = 0;
};

// Up to Capacity networks; a client is allowed if any contains it. Unix
// socket clients are never in a network: check their peer_credentials.
template <std::size_t Capacity = 16>
class allow_list {
 public:
  result add(const char* cidr) noexcept {
    if (count_ == Capacity) return result::from_errno(ENOSPC, "allow_list: full");
    network parsed;
    result ok = network::parse(cidr, parsed);
    if (ok) networks_[count_++] = parsed;
    return ok;
  }
  bool allows(const socket_address& client) const noexcept {
    for (std::size_t i = 0; i < count_; ++i)
      if (networks_[i].contains(client)) return true;
    return false;
  }
  std::size_t size() const noexcept { return count_; }

 private:
  network networks_[Capacity];
  std::size_t count_ = 0;
};

// Who is at the other end of a connected unix socket, as the kernel saw it
// at connect() time (SO_PEERCRED on Linux, getpeereid elsewhere — which
// gives no pid: it stays -1).
struct peer_credentials {
  pid_t pid = -1;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

inline result get_peer_credentials(int fd, peer_credentials& out) noexcept {
#if defined(SO_PEERCRED) && defined(__linux__)
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == -1)
    return result::from_errno(errno, "getsockopt SO_PEERCRED");
  out.pid = credentials.pid;
  out.uid = credentials.uid;
  out.gid = credentials.gid;
#else
  if (::getpeereid(fd, &out.uid, &out.gid) == -1) return result::from_errno(errno, "getpeereid");
#endif
  return {};
}

}  // namespace sockserv
