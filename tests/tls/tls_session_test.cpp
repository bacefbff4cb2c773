// The sans-I/O session driven the way an event loop would drive it: a
// non-blocking socket, poll() on what wants() asks for, receive_from /
// read / write / flush / send_to, against BearSSL's client on a thread.
#include "tls_support.hpp"

#include "support/serving_thread.hpp"

#include <catch2/catch.hpp>

#include <sockserv/tls.hpp>

#include <fcntl.h>
#include <poll.h>

using namespace tls_support;

namespace {
struct loop_config : sockserv::tls::default_config {};
}  // namespace

TEST_CASE("tls session: a readiness loop echoes through it and ends with close_notify", "[tls]") {
  certificates& certs = certificates::get();
  REQUIRE(certs.ok());
  static sockserv::tls::server_context<loop_config> context;
  REQUIRE(context.load_pem_files(certs.path("server.pem").c_str(), certs.path("server.key").c_str()));
  test_credentials anchors;
  load_anchors(anchors, certs.path("ca.pem"));

  sockserv::file_descriptor listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockserv::socket_address where;
  REQUIRE(sockserv::inet4::parse({"127.0.0.1", 0}, where));
  REQUIRE(::bind(listener.fd(), where.data(), where.size()) == 0);
  REQUIRE(::listen(listener.fd(), 4) == 0);
  const sockserv::socket_address server = test_support::local_address(listener.fd());

  std::string echoed;
  bool clean = false;
  test_support::joining_thread client_thread([&] {
    tls_client client(server, anchors);
    if (client.send("through the loop\n")) echoed = client.read_line();
    clean = client.close_cleanly();
  });

  sockserv::file_descriptor connection(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  REQUIRE(connection.is_open());
  static sockserv::tls::session<loop_config> session;
  REQUIRE(session.start(context));
  bool peer_ended = false;
  for (int turns = 0; turns < 1000 && !session.closed() && !peer_ended; ++turns) {
    pollfd watched{connection.fd(), static_cast<short>(POLLIN | ((session.wants() & sockserv::tls::want_write) ? POLLOUT : 0)), 0};
    REQUIRE(::poll(&watched, 1, 5000) == 1);
    if (watched.revents & POLLIN)
      for (;;) {
        std::ptrdiff_t n = session.receive_from(connection.fd());
        if (n == 0) peer_ended = true;
        if (n <= 0) break;
      }
    char plain[256];
    for (std::size_t n; (n = session.read(plain, sizeof plain)) > 0;) {
      REQUIRE(session.write(plain, n) == n);
      session.flush();
    }
    while ((session.wants() & sockserv::tls::want_write) && session.send_to(connection.fd()) > 0) {
    }
  }
  client_thread.join();
  CHECK(echoed == "through the loop\n");
  CHECK(clean);                          // the client got our close_notify
  CHECK(session.closed());               // after the client's
  CHECK(session.error() == BR_ERR_OK);   // a clean end, not a failure
  CHECK_FALSE(session.truncated());
  CHECK(std::string(session.server_name()) == "localhost");
}
