// The six synchronous server types as test parameters: each kind names its
// server alias, an echo handler that fits it, where to listen, and how a
// client talks to it. Used with TEMPLATE_TEST_CASE.
#pragma once

#include "client.hpp"
#include "temp_dir.hpp"

#include <sockserv.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace test_support {

// Echoes one line back (stream).
struct line_echo_handler : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};

// Fails by the line it reads: "std\n" throws a std::exception, "other\n"
// throws something else (an int), anything else is served ("served\n").
struct line_failing_handler : sockserv::stream_request_handler<> {
  void handle() {
    std::string_view line = rfile.readline();
    if (line == "std\n") throw std::runtime_error("handler failed");
    if (line == "other\n") throw 42;
    wfile.write("served\n");
  }
};

// Echoes the datagram back, line by line through rfile (datagram).
struct datagram_echo_handler : sockserv::datagram_request_handler<> {
  void handle() {
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline()) wfile.write(line);
  }
};

// One request served on the calling thread: the client sends first (the
// backlog or the socket buffer holds it), then handle_request(), then the
// client reads the reply.
template <class Server>
std::string serve_one_stream(Server& server, std::string_view message) {
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), message);
  sockserv::result served = server.handle_request();
  INFO(served.message());
  REQUIRE(served.ok());
  read_outcome reply = read_until_eof(client.fd());
  REQUIRE(reply.eof);
  return reply.data;
}

template <class Server>
std::string serve_one_datagram(Server& server, std::string_view message, const char* bind_path = nullptr) {
  sockserv::file_descriptor client = open_datagram_client(Server::address_family, bind_path);
  send_datagram(client.fd(), server.server_address, message);
  sockserv::result served = server.handle_request();
  INFO(served.message());
  REQUIRE(served.ok());
  std::optional<std::string> reply = receive_datagram(client.fd());
  REQUIRE(reply.has_value());
  return *reply;
}

struct stream_kind {
  static constexpr bool is_stream = true;
  using echo_handler = line_echo_handler;
  static std::string exchange(const sockserv::socket_address& server, std::string_view message, temp_dir&,
                              int) {
    return exchange_stream(server, message);
  }
  template <class Server>
  static std::string serve_one(Server& server, std::string_view message, temp_dir&, int) {
    return serve_one_stream(server, message);
  }
};

struct inet_datagram_kind {
  static constexpr bool is_stream = false;
  using echo_handler = datagram_echo_handler;
  static std::string exchange(const sockserv::socket_address& server, std::string_view message, temp_dir&,
                              int) {
    return exchange_datagram(server, message);
  }
  template <class Server>
  static std::string serve_one(Server& server, std::string_view message, temp_dir&, int) {
    return serve_one_datagram(server, message);
  }
};

struct tcp4_kind : stream_kind {
  template <class H, class D = void>
  using server = sockserv::tcp_server<H, D>;
  static sockserv::inet_endpoint endpoint(temp_dir&) { return {"127.0.0.1", 0}; }
};

struct tcp6_kind : stream_kind {
  template <class H, class D = void>
  using server = sockserv::tcp6_server<H, D>;
  static sockserv::inet_endpoint endpoint(temp_dir&) { return {"::1", 0}; }
};

struct udp4_kind : inet_datagram_kind {
  template <class H, class D = void>
  using server = sockserv::udp_server<H, D>;
  static sockserv::inet_endpoint endpoint(temp_dir&) { return {"127.0.0.1", 0}; }
};

struct udp6_kind : inet_datagram_kind {
  template <class H, class D = void>
  using server = sockserv::udp6_server<H, D>;
  static sockserv::inet_endpoint endpoint(temp_dir&) { return {"::1", 0}; }
};

struct unix_stream_kind : stream_kind {
  template <class H, class D = void>
  using server = sockserv::unix_stream_server<H, D>;
  static sockserv::unix_endpoint endpoint(temp_dir& dir) { return dir.file("server.sock"); }
};

struct unix_datagram_kind {
  static constexpr bool is_stream = false;
  using echo_handler = datagram_echo_handler;
  template <class H, class D = void>
  using server = sockserv::unix_datagram_server<H, D>;
  static sockserv::unix_endpoint endpoint(temp_dir& dir) { return dir.file("server.sock"); }
  // A unix datagram client must bind an address of its own to be answered.
  static std::string exchange(const sockserv::socket_address& server, std::string_view message, temp_dir& dir,
                              int client) {
    return exchange_datagram(server, message, dir.file("client-" + std::to_string(client) + ".sock"));
  }
  template <class Server>
  static std::string serve_one(Server& server, std::string_view message, temp_dir& dir, int client) {
    return serve_one_datagram(server, message, dir.file("client-" + std::to_string(client) + ".sock"));
  }
};

}  // namespace test_support
