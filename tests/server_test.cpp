// basic_server (server.hpp, server_base.hpp): every server type serving
// through serve_forever, server_address, closing, and the socket lifecycle.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <string>
#include <sys/stat.h>
#include <sys/un.h>

using namespace test_support;

namespace {

bool path_exists(const char* path) {
  struct stat info {};
  return ::stat(path, &info) == 0;
}

}  // namespace

TEMPLATE_TEST_CASE("each server type echoes three clients through serve_forever, then shuts down and closes",
                   "[server][echo]", tcp4_kind, tcp6_kind, udp4_kind, udp6_kind, unix_stream_kind,
                   unix_datagram_kind) {
  temp_dir dir;
  using server_type = typename TestType::template server<typename TestType::echo_handler>;
  server_type server(TestType::endpoint(dir));
  REQUIRE(server);
  REQUIRE(server.fileno() >= 0);
  const sockserv::socket_address address = server.server_address;

  serving_thread<server_type> serving(server);
  for (int client = 0; client < 3; ++client) {
    std::string message = "hello from client " + std::to_string(client) + "\n";
    CHECK(TestType::exchange(address, message, dir, client) == message);
  }
  serving.stop();
  CHECK(serving.finished());
  CHECK(serving.outcome().ok());

  server.server_close();
  CHECK(server.fileno() == -1);
  if (address.family() == AF_UNIX)  // the socket file goes with the server
    CHECK_FALSE(path_exists(address.as<sockaddr_un>().sun_path));
  if (TestType::is_stream) CHECK(connect_error(address) != 0);
}

TEMPLATE_TEST_CASE("server_address is the address the socket is bound to", "[server][address]", tcp4_kind,
                   tcp6_kind, udp4_kind, udp6_kind) {
  temp_dir dir;
  typename TestType::template server<typename TestType::echo_handler> server(TestType::endpoint(dir));
  REQUIRE(server);
  sockserv::socket_address bound = local_address(server.fileno());
  CHECK(server.server_address == bound);
  CHECK(server.server_address.port() != 0);  // port 0 became the kernel's choice
  CHECK(server.server_address.port() == bound.port());
  CHECK(server.server_address.family() == TestType::template server<typename TestType::echo_handler>::address_family);
}

TEMPLATE_TEST_CASE("a unix server's server_address is its path", "[server][address][unix]", unix_stream_kind,
                   unix_datagram_kind) {
  temp_dir dir;
  const char* path = dir.file("named.sock");
  typename TestType::template server<typename TestType::echo_handler> server(path);
  REQUIRE(server);
  CHECK(std::string(server.server_address.to_string().c_str()) == path);
  sockserv::socket_address bound = local_address(server.fileno());
  CHECK(bound.family() == AF_UNIX);
  CHECK(std::string(bound.as<sockaddr_un>().sun_path) == path);
  CHECK(path_exists(path));
}

TEST_CASE("'localhost' binds the IPv4 loopback address", "[server][address]") {
  sockserv::tcp_server<line_echo_handler> server({"localhost", 0});
  REQUIRE(server);
  CHECK(std::string(server.server_address.host().c_str()) == "127.0.0.1");
  CHECK(serve_one_stream(server, "hi\n") == "hi\n");
}

TEST_CASE("a Linux abstract unix name works and leaves no file behind", "[server][address][unix]") {
  std::string name = "@sockserv-test-" + std::to_string(::getpid());
  sockserv::unix_stream_server<line_echo_handler> server(name.c_str());
  REQUIRE(server);
  CHECK(std::string(server.server_address.to_string().c_str()) == name);
  serving_thread<decltype(server)> serving(server);
  CHECK(exchange_stream(server.server_address, "abstract\n") == "abstract\n");
}

// ---- closing ----------------------------------------------------------------

TEST_CASE("server_close right after construction closes the socket; a second call is harmless",
          "[server][close]") {
  temp_dir dir;
  sockserv::tcp_server<line_echo_handler> server({"127.0.0.1", 0});
  REQUIRE(server);
  const int old_fd = server.fileno();
  const sockserv::socket_address address = server.server_address;

  server.server_close();
  CHECK(server.fileno() == -1);
  CHECK_FALSE(server);
  CHECK_FALSE(is_open_descriptor(old_fd));
  CHECK(connect_error(address) == ECONNREFUSED);

  // The number is free again; whoever gets it next must keep it.
  sockserv::file_descriptor reused(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(reused.is_open());
  server.server_close();
  CHECK(server.fileno() == -1);
  CHECK(is_open_descriptor(reused.fd()));
}

TEST_CASE("serving a closed server reports an error instead of blocking", "[server][close]") {
  sockserv::udp_server<datagram_echo_handler> server({"127.0.0.1", 0});
  server.server_close();
  sockserv::result served = server.handle_request();
  CHECK_FALSE(served.ok());
  CHECK(std::string(served.message()).find("closed") != std::string::npos);
  CHECK_FALSE(server.serve_forever(0.01).ok());
}

TEMPLATE_TEST_CASE("leaving scope closes every descriptor the server opened", "[server][close][raii]", tcp4_kind,
                   udp4_kind, unix_stream_kind, unix_datagram_kind) {
  temp_dir dir;
  const std::size_t before = open_descriptor_count();
  int server_fd = -1;
  {
    typename TestType::template server<typename TestType::echo_handler> server(TestType::endpoint(dir));
    REQUIRE(server);
    server_fd = server.fileno();
    const std::size_t constructed = open_descriptor_count();
    CHECK(constructed > before);
    // A served request closes what it opened (the accepted connection).
    CHECK(TestType::serve_one(server, "once\n", dir, 0) == "once\n");
    CHECK(open_descriptor_count() == constructed);
  }
  CHECK(open_descriptor_count() == before);
  CHECK_FALSE(is_open_descriptor(server_fd));
}

TEMPLATE_TEST_CASE("unix servers remove their socket file when closed or destroyed", "[server][close][unix]",
                   unix_stream_kind, unix_datagram_kind) {
  temp_dir dir;
  const char* path = dir.file("lifecycle.sock");
  SECTION("server_close") {
    typename TestType::template server<typename TestType::echo_handler> server(path);
    REQUIRE(path_exists(path));
    server.server_close();
    CHECK_FALSE(path_exists(path));
  }
  SECTION("destructor") {
    {
      typename TestType::template server<typename TestType::echo_handler> server(path);
      REQUIRE(path_exists(path));
    }
    CHECK_FALSE(path_exists(path));
  }
}
