// The CPython socketserver matrix for the two concurrent policies: every
// family and socket type under threading and under forking, three clients
// each, through serve_forever + shutdown + server_close.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>

namespace {

struct upper_stream_handler : sockserv::stream_request_handler<> {
  void handle() {
    std::string_view line = rfile.readline();
    std::string reply(line);
    for (char& c : reply) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    wfile.write(reply);
  }
};

struct upper_datagram_handler : sockserv::datagram_request_handler<> {
  void handle() {
    std::string reply(packet);
    for (char& c : reply) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    wfile.write(reply);
  }
};

// Where each family listens and how its clients connect.
template <class Family>
struct endpoint_for;
template <>
struct endpoint_for<sockserv::inet4> {
  sockserv::inet_endpoint server() { return {"127.0.0.1", 0}; }
  const char* client_path(int) { return nullptr; }
};
template <>
struct endpoint_for<sockserv::unix_socket> {
  test_support::temp_dir dir;
  sockserv::unix_endpoint server() { return dir.file("server.sock"); }
  const char* client_path(int n) { return dir.file("client" + std::to_string(n) + ".sock"); }
};

template <class Family, class SocketType, class Policy>
struct case_of {
  using handler = std::conditional_t<SocketType::type == SOCK_STREAM, upper_stream_handler, upper_datagram_handler>;
  using server = sockserv::basic_server<Family, SocketType, handler, Policy>;
  using family = Family;
  static constexpr bool is_stream = SocketType::type == SOCK_STREAM;
};

// Requests still running after server_close(): live children under forking,
// busy workers under threading.
template <class Server>
auto still_running(Server& server, int) -> decltype(server.active_children()) {
  return server.active_children();
}
template <class Server>
std::size_t still_running(Server& server, long) {
  return server.requests_in_flight();
}

}  // namespace

TEMPLATE_TEST_CASE("each family and socket type serves three clients under threading and forking",
                   "[concurrency][matrix]",
                   (case_of<sockserv::inet4, sockserv::stream, sockserv::threading<>>),
                   (case_of<sockserv::inet4, sockserv::datagram<>, sockserv::threading<>>),
                   (case_of<sockserv::unix_socket, sockserv::stream, sockserv::threading<>>),
                   (case_of<sockserv::unix_socket, sockserv::datagram<>, sockserv::threading<>>),
                   (case_of<sockserv::inet4, sockserv::stream, sockserv::forking<>>),
                   (case_of<sockserv::inet4, sockserv::datagram<>, sockserv::forking<>>),
                   (case_of<sockserv::unix_socket, sockserv::stream, sockserv::forking<>>),
                   (case_of<sockserv::unix_socket, sockserv::datagram<>, sockserv::forking<>>)) {
  endpoint_for<typename TestType::family> where;
  typename TestType::server server(where.server());
  REQUIRE(server);
  {
    test_support::serving_thread<typename TestType::server> loop(server);
    for (int n = 1; n <= 3; ++n) {
      std::string message = "hello world " + std::to_string(n) + "\n";
      std::string expected = "HELLO WORLD " + std::to_string(n) + "\n";
      if (TestType::is_stream)
        CHECK(test_support::exchange_stream(server.server_address, message) == expected);
      else
        CHECK(test_support::exchange_datagram(server.server_address, message, where.client_path(n)) == expected);
    }
    loop.stop();
    CHECK(loop.outcome().ok());
  }
  server.server_close();
  CHECK(server.fileno() == -1);
  CHECK(still_running(server, 0) == 0);
  CHECK(test_support::zombie_children() == 0);
}

TEST_CASE("the eight predefined aliases name the policy and socket type", "[concurrency][aliases]") {
  using sockserv::basic_server;
  // Each alias is its basic_server's pipeline with itself as Derived, made
  // final (see sockserv.hpp).
  using threaded_tcp = sockserv::threading_tcp_server<upper_stream_handler>;
  using forked_udp = sockserv::forking_udp_server<upper_datagram_handler>;
  STATIC_REQUIRE(std::is_base_of_v<
                 basic_server<sockserv::inet4, sockserv::stream, upper_stream_handler, sockserv::threading<>, threaded_tcp>,
                 threaded_tcp>);
  STATIC_REQUIRE(std::is_base_of_v<
                 basic_server<sockserv::inet4, sockserv::datagram<>, upper_datagram_handler, sockserv::forking<>, forked_udp>,
                 forked_udp>);
  STATIC_REQUIRE(std::is_final_v<basic_server<sockserv::inet4, sockserv::stream, upper_stream_handler>>);
  STATIC_REQUIRE(std::is_final_v<sockserv::forking_udp_server<upper_datagram_handler>>);
  STATIC_REQUIRE(sockserv::threading_unix_stream_server<upper_stream_handler>::socket_type == SOCK_STREAM);
  STATIC_REQUIRE(sockserv::threading_unix_datagram_server<upper_datagram_handler>::address_family == AF_UNIX);
  STATIC_REQUIRE(sockserv::forking_unix_stream_server<upper_stream_handler>::address_family == AF_UNIX);
  STATIC_REQUIRE(sockserv::forking_unix_datagram_server<upper_datagram_handler>::socket_type == SOCK_DGRAM);
  STATIC_REQUIRE(sockserv::threading_udp_server<upper_datagram_handler>::socket_type == SOCK_DGRAM);
  STATIC_REQUIRE(sockserv::forking_tcp_server<upper_stream_handler>::address_family == AF_INET);
  // Python's ForkingMixIn.timeout is 300 s; the others wait forever.
  sockserv::forking_tcp_server<upper_stream_handler> forked({"127.0.0.1", 0});
  sockserv::threading_tcp_server<upper_stream_handler> threaded({"127.0.0.1", 0});
  REQUIRE(forked.timeout.has_value());
  CHECK(*forked.timeout == 300.0);
  CHECK_FALSE(threaded.timeout.has_value());
}
