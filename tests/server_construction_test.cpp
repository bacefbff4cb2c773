// Server construction (server.hpp, server_base.hpp): failures are reported
// clearly and leak nothing; bind_and_activate = false leaves binding and
// listening to the caller; the options server_bind/server_activate apply.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/server_kinds.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <vector>

using namespace test_support;
using Catch::Matchers::Contains;

namespace {

using tcp_echo = sockserv::tcp_server<line_echo_handler>;
using udp_echo = sockserv::udp_server<datagram_echo_handler>;
using unix_stream_echo = sockserv::unix_stream_server<line_echo_handler>;

int socket_option(int fd, int level, int name) {
  int value = -1;
  socklen_t size = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &size) == 0);
  return value;
}

// Constructs Server(where) expecting socket_error; returns its what().
template <class Server>
std::string construction_error(const typename Server::endpoint& where, int* code = nullptr) {
  try {
    Server server(where);
    FAIL("constructing a server on " << server.server_address.to_string().c_str() << " succeeded");
  } catch (const sockserv::socket_error& failure) {
    if (code) *code = failure.code();
    return failure.what();
  }
  return {};
}

}  // namespace

TEST_CASE("binding to a port in use throws socket_error naming the address and the errno text",
          "[server][construction]") {
  tcp_echo occupant({"127.0.0.1", 0});
  REQUIRE(occupant);
  const std::string where = "127.0.0.1:" + std::to_string(occupant.server_address.port());
  int code = 0;
  std::string what = construction_error<tcp_echo>({"127.0.0.1", occupant.server_address.port()}, &code);
  CHECK(code == EADDRINUSE);
  CHECK_THAT(what, Contains(where));
  CHECK_THAT(what, Contains("Address already in use"));
  CHECK_THAT(what, Contains("bind"));
  // The occupant is untouched.
  CHECK(serve_one_stream(occupant, "still here\n") == "still here\n");
}

TEST_CASE("a thousand failed constructions leak no descriptor", "[server][construction][leak]") {
  temp_dir dir;
  tcp_echo tcp_occupant({"127.0.0.1", 0});
  udp_echo udp_occupant({"127.0.0.1", 0});
  const char* path = dir.file("occupied.sock");
  unix_stream_echo unix_occupant(path);
  const std::uint16_t tcp_port = tcp_occupant.server_address.port();
  const std::uint16_t udp_port = udp_occupant.server_address.port();

  const std::size_t before = open_descriptor_count();
  int thrown = 0, in_use = 0;
  for (int i = 0; i < 1000; ++i) {
    int code = 0;
    try {
      switch (i % 3) {
        case 0: tcp_echo({"127.0.0.1", tcp_port}); break;
        case 1: udp_echo({"127.0.0.1", udp_port}); break;
        default: unix_stream_echo{sockserv::unix_endpoint(path)}; break;
      }
    } catch (const sockserv::socket_error& failure) {
      ++thrown;
      code = failure.code();
    }
    if (code == EADDRINUSE) ++in_use;
  }
  CHECK(thrown == 1000);
  CHECK(in_use == 1000);
  CHECK(open_descriptor_count() == before);

  // A failed unix bind must not remove the socket file of the server that
  // owns the path.
  struct stat info {};
  CHECK(::stat(path, &info) == 0);
  CHECK(serve_one_stream(unix_occupant, "mine\n") == "mine\n");
}

TEST_CASE("bad addresses are refused with a clear message and no descriptor", "[server][construction][address]") {
  const std::size_t before = open_descriptor_count();

  SECTION("not an IPv4 address") {
    std::string what = construction_error<tcp_echo>({"not-an-ip", 0});
    CHECK_THAT(what, Contains("not-an-ip"));
    CHECK_THAT(what, Contains("IPv4"));
  }
  SECTION("an IPv4 address given to an IPv6 server") {
    std::string what = construction_error<sockserv::tcp6_server<line_echo_handler>>({"127.0.0.1", 0});
    CHECK_THAT(what, Contains("127.0.0.1"));
    CHECK_THAT(what, Contains("IPv6"));
  }
  SECTION("a unix path longer than sun_path") {
    std::string long_path = "/tmp/" + std::string(300, 'x') + ".sock";
    std::string what = construction_error<unix_stream_echo>(long_path.c_str());
    CHECK_THAT(what, Contains("longer than sun_path"));
    CHECK_THAT(what, Contains("/tmp/xxxx"));
    CHECK(what.size() < sockserv::result::message_capacity);
  }
  SECTION("an empty unix path") {
    std::string what = construction_error<unix_stream_echo>("");
    CHECK_THAT(what, Contains("empty"));
  }
  SECTION("a unix path in a directory that does not exist") {
    int code = 0;
    std::string what = construction_error<unix_stream_echo>("/nonexistent-sockserv-dir/x.sock", &code);
    CHECK(code == ENOENT);
    CHECK_THAT(what, Contains("/nonexistent-sockserv-dir/x.sock"));
  }
  CHECK(open_descriptor_count() == before);
}

TEST_CASE("a parse failure is a non-errno failure, a bind failure carries errno", "[server][construction]") {
  int code = 0;
  (void)construction_error<tcp_echo>({"999.1.1.1", 0}, &code);
  CHECK(code == -1);
  // Binding an address this host does not have: EADDRNOTAVAIL.
  (void)construction_error<tcp_echo>({"192.0.2.1", 0}, &code);
  CHECK(code == EADDRNOTAVAIL);
}

// ---- bind_and_activate = false -------------------------------------------------

TEST_CASE("bind_and_activate = false: the caller sets options, then binds and activates", "[server][construction]") {
  tcp_echo server({"127.0.0.1", 0}, false);
  REQUIRE(server);
  REQUIRE(server.fileno() >= 0);
  // A socket, neither bound nor listening.
  CHECK(local_address(server.fileno()).port() == 0);
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 0);
  CHECK(server.server_address.port() == 0);
  CHECK((::fcntl(server.fileno(), F_GETFD) & FD_CLOEXEC) != 0);

  server.allow_reuse_address = true;
  sockserv::result bound = server.server_bind();
  INFO(bound.message());
  REQUIRE(bound.ok());
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_REUSEADDR) != 0);
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 0);
  const sockserv::socket_address actual = local_address(server.fileno());
  CHECK(server.server_address == actual);
  CHECK(server.server_address.port() != 0);

  sockserv::result activated = server.server_activate();
  INFO(activated.message());
  REQUIRE(activated.ok());
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
  CHECK(serve_one_stream(server, "late bind\n") == "late bind\n");
}

// README: constructed with bind_and_activate = false, the server binds only
// when server_bind() and server_activate() are called, and they return
// results and never throw — with exceptions enabled too (this file's mode).
TEST_CASE("with exceptions, bind_and_activate = false defers the failure to server_bind()'s result, unthrown",
          "[server][construction]") {
  static_assert(SOCKSERV_EXCEPTIONS == 1, "this file tests the exceptions mode");
  tcp_echo occupant({"127.0.0.1", 0});
  const std::uint16_t port = occupant.server_address.port();
  const std::size_t before = open_descriptor_count();
  {
    std::optional<tcp_echo> server;
    CHECK_NOTHROW(server.emplace(sockserv::inet_endpoint{"127.0.0.1", port}, false));  // a busy port: not bound yet
    REQUIRE(server.has_value());
    CHECK(*server);  // the socket is made; nothing has failed yet
    server->allow_reuse_address = true;
    sockserv::result bound;
    CHECK_NOTHROW(bound = server->server_bind());
    CHECK(bound.code() == EADDRINUSE);
    CHECK_THAT(bound.message(), Contains("bind 127.0.0.1:" + std::to_string(port)));
    server->server_close();
    sockserv::result activated;
    CHECK_NOTHROW(activated = server->server_activate());  // on a closed server: a failed result too
    CHECK_FALSE(activated);
  }
  CHECK(open_descriptor_count() == before);
  // What still throws with false: what the constructor itself does (parsing the address, socket()).
  CHECK_THROWS_AS(tcp_echo({"not-an-ip", 0}, false), sockserv::socket_error);
}

TEST_CASE("without allow_reuse_address the option stays off", "[server][construction]") {
  tcp_echo server({"127.0.0.1", 0});
  CHECK_FALSE(server.allow_reuse_address);
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_REUSEADDR) == 0);
}

TEST_CASE("allow_reuse_port lets two servers share a port; without it the second bind fails",
          "[server][construction]") {
  udp_echo first({"127.0.0.1", 0}, false);
  first.allow_reuse_port = true;
  REQUIRE(first.server_bind().ok());
  CHECK(socket_option(first.fileno(), SOL_SOCKET, SO_REUSEPORT) == 1);
  const std::uint16_t port = first.server_address.port();

  udp_echo without({"127.0.0.1", port}, false);
  sockserv::result refused = without.server_bind();
  CHECK(refused.code() == EADDRINUSE);

  udp_echo with({"127.0.0.1", port}, false);
  with.allow_reuse_port = true;
  sockserv::result shared = with.server_bind();
  INFO(shared.message());
  CHECK(shared.ok());
  CHECK(with.server_address.port() == port);
}

TEST_CASE("server_activate listens with request_queue_size", "[server][construction]") {
  // A unix stream listener enforces its backlog exactly: Linux queues
  // backlog + 1 connections, then a non-blocking connect fails with EAGAIN.
  temp_dir dir;
  auto queued_connections = [](const sockserv::socket_address& address) {
    std::vector<sockserv::file_descriptor> clients;
    for (int i = 0; i < 64; ++i) {
      sockserv::file_descriptor client(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      REQUIRE(client.is_open());
      if (::connect(client.fd(), address.data(), address.size()) != 0) {
        CHECK(errno == EAGAIN);
        break;
      }
      clients.push_back(std::move(client));
    }
    return static_cast<int>(clients.size());
  };

  unix_stream_echo by_default(dir.file("default.sock"));
  CHECK(by_default.request_queue_size == SOMAXCONN);  // not Python's 5 (see README)
  CHECK(queued_connections(by_default.server_address) == 64);  // all the 64 tried

  unix_stream_echo small(dir.file("small.sock"), false);
  small.request_queue_size = 2;
  REQUIRE(small.server_bind().ok());
  REQUIRE(small.server_activate().ok());
  CHECK(queued_connections(small.server_address) == 2 + 1);
}

TEST_CASE("a datagram server's activate does not listen", "[server][construction]") {
  udp_echo server({"127.0.0.1", 0});
  REQUIRE(server);
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
  CHECK(socket_option(server.fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 0);
}

TEMPLATE_TEST_CASE("every descriptor a server opens is close-on-exec", "[server][construction]", tcp4_kind,
                   udp4_kind, unix_stream_kind, unix_datagram_kind) {
  temp_dir dir;
  std::vector<bool> open_before;
  for (int fd = 0; fd < 1024; ++fd) open_before.push_back(is_open_descriptor(fd));
  typename TestType::template server<typename TestType::echo_handler> server(TestType::endpoint(dir));
  REQUIRE(server);
  CHECK((::fcntl(server.fileno(), F_GETFD) & FD_CLOEXEC) != 0);
  int opened = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    if (open_before[static_cast<std::size_t>(fd)] || !is_open_descriptor(fd)) continue;
    ++opened;  // the socket, and whatever the server keeps for its wake-up
    INFO("descriptor " << fd);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  }
  CHECK(opened >= 1);
}
