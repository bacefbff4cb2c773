// The request path owns its descriptor: when verify_request(), handle_error()
// or handle_busy() throws, the connection is still shut down and closed —
// nothing leaks, and the exception is not swallowed.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace test_support;

#if SOCKSERV_EXCEPTIONS
namespace {
struct failing : sockserv::stream_request_handler<> {
  sockserv::result handle() { return sockserv::result::failure("handler failed"); }
};
struct throwing_hooks_server : sockserv::tcp_server<failing, throwing_hooks_server> {
  using basic_server::basic_server;
  bool throw_in_verify = false;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) {
    if (throw_in_verify) throw std::runtime_error("verify_request threw");
    return true;
  }
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {
    throw std::logic_error("handle_error threw");
  }
};
}  // namespace

TEST_CASE("a throwing verify_request() or handle_error() leaks no descriptor and the client sees the end") {
  auto server = listening<throwing_hooks_server>();
  const bool verify = GENERATE(true, false);
  server->throw_in_verify = verify;
  const std::size_t before = open_descriptor_count();
  {
    sockserv::file_descriptor client = connect_to(server->server_address);
    REQUIRE(wait_readable(server->fileno(), io_timeout_ms));
    if (verify)
      CHECK_THROWS_WITH(server->handle_request(), "verify_request threw");
    else
      CHECK_THROWS_WITH(server->handle_request(), "handle_error threw");
    CHECK(read_until_eof(client.fd()).eof);
  }
  CHECK(open_descriptor_count() == before);
}
#endif
