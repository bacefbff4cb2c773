// Fuzz target address: parsing and printing addresses (address.hpp).
// inet4::parse, inet6::parse and unix_socket::parse get arbitrary bytes made
// into a NUL-terminated string; socket_address prints arbitrary contents, as
// a kernel or a buggy caller might leave them.
//
// Input: [selector] [port high] [port low] [text...]
//   selector bits 0-1: inet4, inet6, unix, raw socket_address. For raw, the
//   port bytes are the length (modulo sizeof(sockaddr_storage) + 1) and the
//   family (0 AF_INET, 1 AF_INET6, 2 AF_UNIX, else the byte itself), and the
//   text fills the storage after the family.
//
// Invariants: a parse either succeeds with the family's sockaddr size (for
// unix: the path and its NUL, or an abstract name, within sun_path) and the
// given port, or fails with a non-errno result whose message fits and says
// "invalid address". A parsed address prints within address_string and
// parses back to itself. Any socket_address prints within address_string.
#pragma once

#include "common.hpp"

#include <sockserv/address.hpp>

#include <cstddef>
#include <cstring>
#include <string>

namespace sockserv_fuzz {

namespace address_detail {

inline bool terminated_within(const char* text, std::size_t capacity) noexcept {
  return ::strnlen(text, capacity) < capacity;
}

inline const char* check_printing(const sockserv::socket_address& a) {
  const sockserv::address_string whole = a.to_string();
  const sockserv::address_string host = a.host();
  if (!terminated_within(whole.text, sizeof whole.text)) return "to_string() ran past address_string";
  if (!terminated_within(host.text, sizeof host.text)) return "host() ran past address_string";
  (void)a.port();
  (void)a.is_unnamed();
  if (!(a == a) || a != a) return "an address does not equal itself";
  return nullptr;
}

inline const char* check_refusal(const sockserv::result& r) {
  if (r.ok()) return "a refusal that is ok";
  if (r.code() != -1) return "a parse failure carries an errno";
  if (!terminated_within(r.message(), sockserv::result::message_capacity)) return "the message ran past the result";
  if (std::strstr(r.message(), "invalid address") == nullptr) return "the message does not say 'invalid address'";
  return nullptr;
}

template <class Family>
const char* round_trip(const sockserv::socket_address& parsed, const typename Family::endpoint& again) {
  sockserv::socket_address reparsed;
  if (!Family::parse(again, reparsed).ok()) return "a printed address does not parse";
  if (reparsed != parsed) return "a printed address parses to another address";
  return nullptr;
}

inline const char* inet(bool six, const std::string& text, std::uint16_t port) {
  sockserv::socket_address a;
  const sockserv::result r =
      six ? sockserv::inet6::parse({text.c_str(), port}, a) : sockserv::inet4::parse({text.c_str(), port}, a);
  if (!r.ok()) return check_refusal(r);
  if (a.family() != (six ? AF_INET6 : AF_INET)) return "a parsed address has another family";
  if (a.size() != (six ? sizeof(sockaddr_in6) : sizeof(sockaddr_in))) return "a parsed address has the wrong size";
  if (a.port() != port) return "a parsed address lost its port";
  if (const char* broken = check_printing(a)) return broken;
  if (six && a.as<sockaddr_in6>().sin6_scope_id != 0) {
    if (std::strchr(text.c_str(), '%') == nullptr) return "a scope id from nowhere";
    return nullptr;  // host() does not print the scope: no round trip
  }
  const sockserv::address_string host = a.host();
  return six ? round_trip<sockserv::inet6>(a, {host.text, port}) : round_trip<sockserv::inet4>(a, {host.text, port});
}

inline const char* unix_path(const std::string& text) {
  sockserv::socket_address a;
  const sockserv::result r = sockserv::unix_socket::parse(text.c_str(), a);
  const std::size_t length = std::strlen(text.c_str());
  const bool abstract = length > 0 && text[0] == '@';
  const std::size_t needed = length + (abstract ? 0 : 1);
  if (!r.ok()) {
    if (length > 0 && needed <= sizeof(sockaddr_un::sun_path)) return "a unix path that fits was refused";
    return check_refusal(r);
  }
  if (length == 0 || needed > sizeof(sockaddr_un::sun_path)) return "a unix path that does not fit was taken";
  if (a.family() != AF_UNIX) return "a parsed unix address has another family";
  if (a.size() != offsetof(sockaddr_un, sun_path) + needed) return "a parsed unix address has the wrong size";
  if (a.is_unnamed()) return "a parsed unix address is unnamed";
  if (const char* broken = check_printing(a)) return broken;
  const sockserv::address_string printed = a.to_string();
  if (std::strcmp(printed.text, text.c_str()) != 0) return "a unix address does not print as it was given";
  return round_trip<sockserv::unix_socket>(a, printed.text);
}

inline const char* raw(unsigned length_byte, unsigned family_byte, std::string_view bytes) {
  sockserv::socket_address a;
  auto& storage = a.as<sockaddr_storage>();
  const int family = family_byte == 0 ? AF_INET : family_byte == 1 ? AF_INET6 : family_byte == 2 ? AF_UNIX
                                                                                        : static_cast<int>(family_byte);
  storage.ss_family = static_cast<sa_family_t>(family);
  const std::size_t room = sizeof storage - offsetof(sockaddr_storage, ss_family) - sizeof storage.ss_family;
  if (!bytes.empty())
    std::memcpy(reinterpret_cast<char*>(&storage) + sizeof storage.ss_family, bytes.data(),
                bytes.size() < room ? bytes.size() : room);
  a.set_size(static_cast<socklen_t>(length_byte % (sizeof storage + 1)));
  return check_printing(a);
}

}  // namespace address_detail

inline const char* address(const std::uint8_t* data, std::size_t size) {
  using namespace address_detail;
  input in(data, size);
  const unsigned selector = in.byte();
  const unsigned high = in.byte(), low = in.byte();
  const std::string text(in.rest());  // c_str() ends at the first NUL, as a C caller's string would
  switch (selector & 3u) {
    case 0: return inet(false, text, static_cast<std::uint16_t>(high << 8 | low));
    case 1: return inet(true, text, static_cast<std::uint16_t>(high << 8 | low));
    case 2: return unix_path(text);
    default: return raw(high, low, in.rest());
  }
}

}  // namespace sockserv_fuzz
