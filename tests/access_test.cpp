// access.hpp: CIDR allow-lists for verify_request, and unix peer credentials.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <unistd.h>

namespace {
sockserv::socket_address ip(const char* host) {
  return std::strchr(host, ':') != nullptr ? test_support::parse_address<sockserv::inet6>({host, 0})
                                           : test_support::parse_address<sockserv::inet4>({host, 0});
}
}  // namespace

TEST_CASE("network::parse reads IPv4 and IPv6 networks and refuses nonsense clearly", "[access]") {
  sockserv::network n;
  REQUIRE(sockserv::network::parse("192.168.1.0/24", n));
  CHECK(n.family() == AF_INET);
  CHECK(n.prefix_length() == 24);
  REQUIRE(sockserv::network::parse("fd00::/8", n));
  CHECK(n.family() == AF_INET6);
  REQUIRE(sockserv::network::parse("10.0.0.1", n));
  CHECK(n.prefix_length() == 32);
  for (const char* bad : {"", "/24", "192.168.1.0/33", "fd00::/129", "192.168.1.0/", "192.168.1.0/2x", "host.lan/24",
                          "1.2.3.4/-1", "::1/ 8"}) {
    sockserv::result refused = sockserv::network::parse(bad, n);
    INFO(bad);
    CHECK_FALSE(refused.ok());
    CHECK(std::string(refused.message()).find("invalid network") != std::string::npos);
  }
}

TEST_CASE("network::contains matches by prefix, IPv4-mapped IPv6 included", "[access]") {
  sockserv::network lan, v6, host, everything;
  REQUIRE(sockserv::network::parse("192.168.1.0/24", lan));
  REQUIRE(sockserv::network::parse("fe80::/10", v6));
  REQUIRE(sockserv::network::parse("10.1.2.3", host));
  REQUIRE(sockserv::network::parse("0.0.0.0/0", everything));
  CHECK(lan.contains(ip("192.168.1.77")));
  CHECK_FALSE(lan.contains(ip("192.168.2.1")));
  CHECK(lan.contains(ip("::ffff:192.168.1.5")));  // a dual-stack socket's view of an IPv4 client
  CHECK_FALSE(lan.contains(ip("::1")));
  CHECK(v6.contains(ip("fe80::1")));
  CHECK(v6.contains(ip("febf::1")));
  CHECK_FALSE(v6.contains(ip("fec0::1")));
  CHECK_FALSE(v6.contains(ip("192.168.1.1")));
  CHECK(host.contains(ip("10.1.2.3")));
  CHECK_FALSE(host.contains(ip("10.1.2.4")));
  CHECK(everything.contains(ip("8.8.8.8")));
  sockserv::socket_address unix_client;
  CHECK_FALSE(everything.contains(unix_client));
}

namespace {
struct reply_ok : sockserv::stream_request_handler<> {
  void handle() {
    rfile.readline();  // read the request first: closing on unread input would reset the connection
    wfile.write("ok\n");
  }
};

struct guarded_server : sockserv::tcp_server<reply_ok, guarded_server> {
  using base = sockserv::tcp_server<reply_ok, guarded_server>;
  using base::base;
  sockserv::allow_list<4> allowed;
  bool verify_request(sockserv::connection&, const sockserv::socket_address& client) { return allowed.allows(client); }
};
}  // namespace

TEST_CASE("allow_list in verify_request admits listed networks only", "[access]") {
  guarded_server server({"127.0.0.1", 0});
  SECTION("loopback listed") {
    REQUIRE(server.allowed.add("10.0.0.0/8"));
    REQUIRE(server.allowed.add("127.0.0.0/8"));
    test_support::serving_thread<guarded_server> loop(server);
    CHECK(test_support::exchange_stream(server.server_address, "x\n") == "ok\n");
  }
  SECTION("loopback not listed") {
    REQUIRE(server.allowed.add("192.168.0.0/16"));
    test_support::serving_thread<guarded_server> loop(server);
    sockserv::file_descriptor c = test_support::connect_to(server.server_address);
    test_support::send_all(c.fd(), "x\n");
    test_support::read_outcome reply = test_support::read_until_eof(c.fd());
    CHECK(reply.data.empty());  // closed unanswered (a reset, since "x" was never read)
    CHECK((reply.eof || reply.error == ECONNRESET));
  }
  SECTION("a full list refuses more") {
    for (int i = 0; i < 4; ++i) REQUIRE(server.allowed.add("10.0.0.0/8"));
    CHECK(server.allowed.add("10.0.0.0/8").code() == ENOSPC);
  }
}

namespace {
std::atomic<long> seen_uid{-2}, seen_pid{-2};
struct credential_handler : sockserv::stream_request_handler<> {
  void handle() {
    rfile.readline();
    sockserv::peer_credentials peer;
    if (sockserv::get_peer_credentials(request.fd, peer)) {
      seen_uid = static_cast<long>(peer.uid);
      seen_pid = static_cast<long>(peer.pid);
    }
    wfile.write("ok\n");
  }
};
}  // namespace

TEST_CASE("get_peer_credentials tells who connected to a unix socket", "[access]") {
  test_support::temp_dir dir;
  sockserv::unix_stream_server<credential_handler> server(dir.file("creds.sock"));
  test_support::serving_thread<sockserv::unix_stream_server<credential_handler>> loop(server);
  CHECK(test_support::exchange_stream(server.server_address, "x\n") == "ok\n");
  CHECK(seen_uid == static_cast<long>(::getuid()));
  CHECK(seen_pid == static_cast<long>(::getpid()));
}
