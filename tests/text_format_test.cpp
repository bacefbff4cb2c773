// detail/text.hpp's text_builder and the addresses printed without
// inet_ntop (address.hpp): the same text as the C library, bounded, never
// past the caller's array.
#include <sockserv/address.hpp>
#include <sockserv/detail/text.hpp>
#include <sockserv/error.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

using sockserv::detail::text_builder;

namespace {

std::string host_of_ipv6(const unsigned char (&bytes)[16]) {
  sockserv::socket_address address;
  auto& in6 = address.as<sockaddr_in6>();
  in6 = sockaddr_in6{};
  in6.sin6_family = AF_INET6;
  std::memcpy(in6.sin6_addr.s6_addr, bytes, 16);
  address.set_size(sizeof in6);
  return address.host().c_str();
}

std::string libc_ipv6(const unsigned char (&bytes)[16]) {
  char text[INET6_ADDRSTRLEN];
  REQUIRE(::inet_ntop(AF_INET6, bytes, text, sizeof text) != nullptr);
  return text;
}

}  // namespace

TEST_CASE("text_builder appends strings and numbers, truncating at its array", "[text]") {
  char buffer[32];
  text_builder text(buffer, sizeof buffer);
  text.add("fd ").add_signed(-17).add_char(' ').add_unsigned(4294967295ul).add(" 0x").add_hex(0xbeefu);
  CHECK(std::string(buffer) == "fd -17 4294967295 0xbeef");
  CHECK(text.size() == std::strlen(buffer));

  text_builder limits(buffer, sizeof buffer);
  limits.add_signed(LONG_MIN).add_char('/').add_unsigned(0).add_char('/').add_hex(0);
  CHECK(std::string(buffer) == std::to_string(LONG_MIN) + "/0/0");

  text_builder cut(buffer, 8);
  cut.add("abc", 2).add(nullptr).add_unsigned(123456789);
  CHECK(std::string(buffer) == "ab(null");  // 7 characters and the NUL: no byte past 8
  CHECK(cut.size() == 7);
}

TEST_CASE("an error message keeps its shape: '<context>: <reason>', each part bounded", "[text][error]") {
  std::string context(300, 'c');
  sockserv::result r = sockserv::result::from_errno(ECONNREFUSED, context.c_str());
  std::string message = r.message();
  CHECK(message == std::string(110, 'c') + ": " + std::string(std::strerror(ECONNREFUSED)).substr(0, 47));
  std::string long_failure(500, 'x');
  CHECK(std::string(sockserv::result::failure(long_failure.c_str()).message()) ==
        std::string(sockserv::result::message_capacity - 1, 'x'));
}

TEST_CASE("IPv4 hosts print as the C library prints them", "[text][address]") {
  std::uint32_t value = 0x01020304;
  for (int i = 0; i < 2000; ++i) {
    value = value * 1664525u + 1013904223u;  // a fixed LCG: the same addresses every run
    sockserv::socket_address address;
    auto& in = address.as<sockaddr_in>();
    in = sockaddr_in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = value;
    address.set_size(sizeof in);
    char expected[INET_ADDRSTRLEN];
    REQUIRE(::inet_ntop(AF_INET, &in.sin_addr, expected, sizeof expected) != nullptr);
    INFO(expected);
    CHECK(std::string(address.host().c_str()) == expected);
  }
}

TEST_CASE("IPv6 hosts print in RFC 5952 form", "[text][address]") {
  struct sample {
    unsigned char bytes[16];
    const char* text;
  };
  const sample samples[] = {
      {{}, "::"},
      {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "::1"},
      {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42}, "2001:db8::42"},
      {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:db8:0:1::1"},   // one zero group stays
      {{0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:0:0:1::1"},           // the longer run wins
      {{0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1}, "2001::1:0:0:1:1"},         // equal runs: the first
      {{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "fe80::"},
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, "::ffff:10.0.0.1"},
  };
  for (const sample& s : samples) CHECK(host_of_ipv6(s.bytes) == s.text);
}

TEST_CASE("IPv6 hosts print as the C library prints them", "[text][address]") {
  // Groups drawn mostly from 0 and small values, so zero runs of every
  // length and position occur. Addresses whose first 96 bits are zero are
  // left out: glibc prints those deprecated IPv4-compatible forms as
  // ::a.b.c.d, musl and RFC 5952 in hex.
  std::uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  int compared = 0;
  for (int i = 0; i < 5000; ++i) {
    unsigned char bytes[16];
    for (int g = 0; g < 8; ++g) {
      std::uint32_t r = next() >> 8;
      unsigned group = r % 3 != 0 ? 0u : (r >> 4) % 5 == 0 ? (r >> 8) & 0xffffu : (r >> 8) % 16u;
      bytes[2 * g] = static_cast<unsigned char>(group >> 8);
      bytes[2 * g + 1] = static_cast<unsigned char>(group);
    }
    static constexpr unsigned char zeros[12] = {};
    if (std::memcmp(bytes, zeros, sizeof zeros) == 0) continue;
    INFO(libc_ipv6(bytes));
    CHECK(host_of_ipv6(bytes) == libc_ipv6(bytes));
    ++compared;
  }
  CHECK(compared > 4000);
}
