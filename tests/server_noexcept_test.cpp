// Construction failures without exceptions (server.hpp, error.hpp): built
// with SOCKSERV_NO_EXCEPTIONS, a failed server does not throw; it is falsy,
// error() says what failed and where, and serving it returns that error.
//
// This file opts out of exceptions for sockserv only (Catch2 still uses
// them). Its handlers live in an anonymous namespace, so every basic_server
// instantiated here is distinct from those of the other test files.
#define SOCKSERV_NO_EXCEPTIONS 1

#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace test_support;
using Catch::Matchers::Contains;

static_assert(SOCKSERV_EXCEPTIONS == 0, "this file tests the no-exceptions mode");

namespace {

struct echo_line : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
struct echo_packet : sockserv::datagram_request_handler<> {
  void handle() { wfile.write(packet); }
};

}  // namespace

TEST_CASE("without exceptions a failed bind leaves a falsy server whose error() names the failure",
          "[server][construction][noexcept]") {
  sockserv::tcp_server<echo_line> occupant({"127.0.0.1", 0});
  REQUIRE(occupant);
  REQUIRE(occupant.error().ok());
  const std::uint16_t port = occupant.server_address.port();

  sockserv::tcp_server<echo_line> failed({"127.0.0.1", port});
  CHECK_FALSE(failed);
  CHECK(failed.fileno() == -1);
  CHECK(failed.error().code() == EADDRINUSE);
  CHECK_THAT(failed.error().message(), Contains("127.0.0.1:" + std::to_string(port)));
  CHECK_THAT(failed.error().message(), Contains("Address already in use"));

  // Serving a failed server returns the construction error, at once.
  sockserv::result served = failed.handle_request();
  CHECK(served.code() == EADDRINUSE);
  sockserv::result forever = failed.serve_forever(5.0);
  CHECK(forever.code() == EADDRINUSE);
}

TEST_CASE("without exceptions a thousand failed constructions leak no descriptor", "[server][construction][noexcept][leak]") {
  sockserv::udp_server<echo_packet> occupant({"127.0.0.1", 0});
  REQUIRE(occupant);
  const std::uint16_t port = occupant.server_address.port();
  const std::size_t before = open_descriptor_count();
  int failed = 0;
  for (int i = 0; i < 1000; ++i) {
    sockserv::udp_server<echo_packet> server({"127.0.0.1", port});
    if (!server && server.error().code() == EADDRINUSE) ++failed;
  }
  CHECK(failed == 1000);
  CHECK(open_descriptor_count() == before);
}

TEST_CASE("without exceptions a bad address is reported by error()", "[server][construction][noexcept]") {
  const std::size_t before = open_descriptor_count();
  {
    sockserv::tcp_server<echo_line> server({"not-an-ip", 0});
    CHECK_FALSE(server);
    CHECK(server.fileno() == -1);
    CHECK(server.error().code() == -1);
    CHECK_THAT(server.error().message(), Contains("not-an-ip"));

    std::string long_path = "/tmp/" + std::string(200, 'y');
    sockserv::unix_stream_server<echo_line> unix_server(long_path.c_str());
    CHECK_FALSE(unix_server);
    CHECK_THAT(unix_server.error().message(), Contains("longer than sun_path"));
  }
  CHECK(open_descriptor_count() == before);
}

TEST_CASE("without exceptions a good server works and its error() is ok", "[server][noexcept]") {
  sockserv::tcp_server<echo_line> server({"127.0.0.1", 0});
  REQUIRE(server);
  CHECK(server.error().ok());
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), "plain\n");
  REQUIRE(server.handle_request().ok());
  CHECK(read_until_eof(client.fd()).data == "plain\n");
}

TEST_CASE("without exceptions, bind_and_activate = false defers the failure to server_bind()'s result",
          "[server][construction][noexcept]") {
  sockserv::tcp_server<echo_line> occupant({"127.0.0.1", 0});
  REQUIRE(occupant);
  const std::uint16_t port = occupant.server_address.port();
  const std::size_t before = open_descriptor_count();
  {
    sockserv::tcp_server<echo_line> server({"127.0.0.1", port}, false);
    CHECK(server);  // the socket is made; nothing has failed yet
    server.allow_reuse_address = true;
    sockserv::result bound = server.server_bind();
    CHECK(bound.code() == EADDRINUSE);
    CHECK_THAT(bound.message(), Contains("bind 127.0.0.1:" + std::to_string(port)));
    server.server_close();
    CHECK_FALSE(server.server_activate());
  }
  CHECK(open_descriptor_count() == before);
  sockserv::tcp_server<echo_line> unparsed({"not-an-ip", 0}, false);  // no exception: error() tells
  CHECK_FALSE(unparsed);
  CHECK_THAT(unparsed.error().message(), Contains("not-an-ip"));
}

namespace {
// Fails in the step that `failing_step` names, through results (no
// exceptions here); 0: verify_request() refuses.
int failing_step = 0;
struct step_failing : sockserv::stream_request_handler<> {
  sockserv::result setup() {
    stream_request_handler::setup();
    return failing_step == 1 ? sockserv::result::failure("setup failed") : sockserv::result{};
  }
  sockserv::result handle() {
    wfile.write(rfile.readline());
    return failing_step == 2 ? sockserv::result::failure("handle failed") : sockserv::result{};
  }
  sockserv::result finish() {
    stream_request_handler::finish();
    return failing_step == 3 ? sockserv::result::failure("finish failed") : sockserv::result{};
  }
};
struct refusing_or_failing_server : sockserv::tcp_server<step_failing, refusing_or_failing_server> {
  using basic_server::basic_server;
  int errors = 0;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) { return failing_step != 0; }
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) { ++errors; }
};
}  // namespace

TEST_CASE("without exceptions a refused request and failing setup(), handle() or finish() leak no descriptor",
          "[server][noexcept][ownership]") {
  failing_step = GENERATE(0, 1, 2, 3);
  refusing_or_failing_server server({"127.0.0.1", 0});
  REQUIRE(server);
  const std::size_t before = open_descriptor_count();
  {
    sockserv::file_descriptor client = connect_to(server.server_address);
    send_all(client.fd(), "line\n");
    (void)server.handle_request();
    CHECK(read_until_eof(client.fd()).eof);  // ended, whatever step failed
  }
  CHECK(open_descriptor_count() == before);
  CHECK(server.errors == (failing_step == 0 ? 0 : 1));
  CHECK(server.stats().failed == (failing_step == 0 ? 0u : 1u));
  CHECK(server.stats().refused_verify == (failing_step == 0 ? 1u : 0u));
}
