// Address families and socket_address (address.hpp): parsing without a
// resolver, printing, comparison, and clear errors that never overflow.
#include <sockserv/address.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstddef>
#include <cstring>
#include <net/if.h>
#include <string>
#include <sys/un.h>

using Catch::Matchers::Contains;
using sockserv::inet4;
using sockserv::inet6;
using sockserv::socket_address;
using sockserv::unix_socket;

namespace {

template <class Family>
socket_address parsed(const typename Family::endpoint& where) {
  socket_address address;
  sockserv::result outcome = Family::parse(where, address);
  INFO(outcome.message());
  REQUIRE(outcome.ok());
  return address;
}

template <class Family>
sockserv::result parse_error(const typename Family::endpoint& where) {
  socket_address address;
  return Family::parse(where, address);
}

std::string text(const sockserv::address_string& s) { return s.c_str(); }

}  // namespace

// ---- IPv4 -------------------------------------------------------------------

TEST_CASE("inet4 parses numeric addresses and prints host:port", "[address][inet4]") {
  socket_address a = parsed<inet4>({"127.0.0.1", 8080});
  CHECK(a.family() == AF_INET);
  CHECK(a.size() == sizeof(sockaddr_in));
  CHECK(a.port() == 8080);
  CHECK(ntohs(a.as<sockaddr_in>().sin_port) == 8080);
  CHECK(text(a.host()) == "127.0.0.1");
  CHECK(text(a.to_string()) == "127.0.0.1:8080");
  CHECK(text(parsed<inet4>({"10.1.2.3", 0}).to_string()) == "10.1.2.3:0");
  CHECK(text(parsed<inet4>({"255.255.255.255", 65535}).to_string()) == "255.255.255.255:65535");
}

TEST_CASE("inet4 knows 'localhost' and '' (any) without a resolver", "[address][inet4]") {
  CHECK(text(parsed<inet4>({"localhost", 1}).to_string()) == "127.0.0.1:1");
  socket_address any = parsed<inet4>({"", 2});
  CHECK(any.as<sockaddr_in>().sin_addr.s_addr == htonl(INADDR_ANY));
  CHECK(text(any.to_string()) == "0.0.0.0:2");
}

TEST_CASE("inet4 refuses what is not a numeric IPv4 address, naming it", "[address][inet4]") {
  for (const char* bad : {"not-an-ip", "256.1.1.1", "1.2.3", "::1", "[127.0.0.1]", "example.com", " 127.0.0.1"}) {
    sockserv::result r = parse_error<inet4>({bad, 80});
    INFO(bad);
    CHECK_FALSE(r.ok());
    CHECK(r.code() == -1);
    CHECK_THAT(r.message(), Contains(std::string("'") + bad + "'"));
  }
  sockserv::result null_host = parse_error<inet4>({nullptr, 80});
  CHECK_FALSE(null_host.ok());
  CHECK_THAT(null_host.message(), Contains("no host"));
}

// ---- IPv6 -------------------------------------------------------------------

TEST_CASE("inet6 parses numeric addresses, with or without brackets, and prints [host]:port",
          "[address][inet6]") {
  socket_address a = parsed<inet6>({"::1", 9});
  CHECK(a.family() == AF_INET6);
  CHECK(a.size() == sizeof(sockaddr_in6));
  CHECK(a.port() == 9);
  CHECK(text(a.host()) == "::1");
  CHECK(text(a.to_string()) == "[::1]:9");
  CHECK(parsed<inet6>({"[::1]", 9}) == a);
  CHECK(text(parsed<inet6>({"2001:db8::42", 443}).to_string()) == "[2001:db8::42]:443");
  CHECK(text(parsed<inet6>({"::ffff:10.0.0.1", 1}).host()) == "::ffff:10.0.0.1");
}

TEST_CASE("inet6 knows 'localhost' and '' (any)", "[address][inet6]") {
  CHECK(parsed<inet6>({"localhost", 5}) == parsed<inet6>({"::1", 5}));
  CHECK(text(parsed<inet6>({"", 5}).to_string()) == "[::]:5");
  CHECK(text(parsed<inet6>({"[]", 5}).to_string()) == "[::]:5");
}

TEST_CASE("inet6 takes a scope by interface name", "[address][inet6]") {
  socket_address a = parsed<inet6>({"fe80::1%lo", 7});
  CHECK(a.as<sockaddr_in6>().sin6_scope_id == ::if_nametoindex("lo"));
  CHECK(a.as<sockaddr_in6>().sin6_scope_id != 0);
  sockserv::result unknown = parse_error<inet6>({"fe80::1%no-such-if0", 7});
  CHECK_FALSE(unknown.ok());
  CHECK_THAT(unknown.message(), Contains("interface"));
}

TEST_CASE("inet6 refuses what is not a numeric IPv6 address, without overflow", "[address][inet6]") {
  for (const char* bad : {"127.0.0.1", "not-an-ip", ":::", "[::1", "::1]", "12345::"}) {
    INFO(bad);
    sockserv::result r = parse_error<inet6>({bad, 1});
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.message(), Contains(bad));
  }
  std::string huge(5000, 'f');
  sockserv::result too_long = parse_error<inet6>({huge.c_str(), 1});
  CHECK_FALSE(too_long.ok());
  CHECK_THAT(too_long.message(), Contains("too long"));
  CHECK(std::strlen(too_long.message()) < sockserv::result::message_capacity);
}

// ---- unix -------------------------------------------------------------------

TEST_CASE("unix_socket takes a filesystem path", "[address][unix]") {
  socket_address a = parsed<unix_socket>("/tmp/app.sock");
  CHECK(a.family() == AF_UNIX);
  CHECK(a.size() == offsetof(sockaddr_un, sun_path) + std::strlen("/tmp/app.sock") + 1);
  CHECK(std::string(a.as<sockaddr_un>().sun_path) == "/tmp/app.sock");
  CHECK(text(a.to_string()) == "/tmp/app.sock");
  CHECK(text(a.host()) == "/tmp/app.sock");
  CHECK(a.port() == 0);
  CHECK_FALSE(a.is_unnamed());
  CHECK(text(parsed<unix_socket>("relative.sock").to_string()) == "relative.sock");
}

TEST_CASE("unix_socket takes a Linux abstract name written with '@'", "[address][unix]") {
  socket_address a = parsed<unix_socket>("@my-service");
  CHECK(a.as<sockaddr_un>().sun_path[0] == '\0');
  CHECK(std::memcmp(a.as<sockaddr_un>().sun_path + 1, "my-service", 10) == 0);
  CHECK(a.size() == offsetof(sockaddr_un, sun_path) + 11);  // no terminating NUL
  CHECK(text(a.to_string()) == "@my-service");
  CHECK_FALSE(a.is_unnamed());
}

TEST_CASE("unix_socket paths up to sun_path's size fit; longer ones are refused", "[address][unix]") {
  constexpr std::size_t room = sizeof(sockaddr_un::sun_path);  // 108 on Linux
  std::string longest_path = "/" + std::string(room - 2, 'p');  // + NUL = room
  socket_address a = parsed<unix_socket>(longest_path.c_str());
  CHECK(text(a.to_string()) == longest_path);

  std::string too_long_path = longest_path + "p";
  sockserv::result refused = parse_error<unix_socket>(too_long_path.c_str());
  CHECK_FALSE(refused.ok());
  CHECK_THAT(refused.message(), Contains("longer than sun_path"));

  std::string longest_abstract = "@" + std::string(room - 1, 'a');  // no NUL needed
  CHECK(text(parsed<unix_socket>(longest_abstract.c_str()).to_string()) == longest_abstract);
  CHECK_FALSE(parse_error<unix_socket>((longest_abstract + "a").c_str()).ok());

  std::string huge = "/" + std::string(10000, 'h');
  sockserv::result huge_refused = parse_error<unix_socket>(huge.c_str());
  CHECK_FALSE(huge_refused.ok());
  CHECK(std::strlen(huge_refused.message()) < sockserv::result::message_capacity);
}

TEST_CASE("unix_socket refuses an empty or missing path", "[address][unix]") {
  CHECK_THAT(parse_error<unix_socket>("").message(), Contains("empty"));
  CHECK_FALSE(parse_error<unix_socket>(sockserv::unix_endpoint(nullptr)).ok());
}

// ---- socket_address ----------------------------------------------------------------

TEST_CASE("a default socket_address is unnamed", "[address]") {
  socket_address nobody;
  CHECK(nobody.family() == AF_UNSPEC);
  CHECK(nobody.is_unnamed());
  CHECK(nobody.port() == 0);
  CHECK(text(nobody.to_string()) == "(unnamed)");
}

TEST_CASE("a unix address with no path (an unbound client) is unnamed", "[address][unix]") {
  socket_address unbound;
  unbound.as<sockaddr_un>().sun_family = AF_UNIX;
  unbound.set_size(sizeof(sa_family_t));
  CHECK(unbound.family() == AF_UNIX);
  CHECK(unbound.is_unnamed());
  CHECK(text(unbound.to_string()) == "(unnamed)");
}

TEST_CASE("socket_address compares family, address and port", "[address]") {
  CHECK(parsed<inet4>({"127.0.0.1", 1}) == parsed<inet4>({"127.0.0.1", 1}));
  CHECK(parsed<inet4>({"127.0.0.1", 1}) != parsed<inet4>({"127.0.0.1", 2}));
  CHECK(parsed<inet4>({"127.0.0.1", 1}) != parsed<inet4>({"127.0.0.2", 1}));
  CHECK(parsed<inet6>({"::1", 1}) != parsed<inet4>({"127.0.0.1", 1}));
  CHECK(parsed<unix_socket>("/a") == parsed<unix_socket>("/a"));
  CHECK(parsed<unix_socket>("/a") != parsed<unix_socket>("/b"));
  CHECK(parsed<unix_socket>("@a") != parsed<unix_socket>("a"));
}

TEST_CASE("reparsing into a used socket_address leaves nothing of the old one", "[address]") {
  socket_address a = parsed<inet6>({"2001:db8::1", 99});
  REQUIRE(inet4::parse({"127.0.0.1", 5}, a).ok());
  CHECK(a == parsed<inet4>({"127.0.0.1", 5}));
  CHECK(text(a.to_string()) == "127.0.0.1:5");
}
