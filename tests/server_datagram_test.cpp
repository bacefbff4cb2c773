// Datagram servers (socket.hpp datagram<N>, handler.hpp
// datagram_request_handler): the packet and its reply, max_packet_size,
// and unix clients that have no address.
#include "support/client.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

using namespace test_support;
using Catch::Matchers::Contains;

namespace {

// Replies according to the packet: "silent" gets no reply, "empty" an
// empty one, anything else "<packet>|<lines read through rfile>" (a packet
// over 100 bytes is replied to as "<size> bytes").
struct scripted_datagram_handler : sockserv::datagram_request_handler<> {
  static inline std::atomic<int> runs{0};
  static inline std::atomic<int> unnamed_clients{0};
  static inline std::atomic<int> reply_results{0};

  void handle() {
    ++runs;
    if (client_address.is_unnamed()) ++unnamed_clients;
    if (packet == "silent") return;
    if (packet == "empty") {
      wfile.write("");
      return;
    }
    int lines = 0;
    while (!rfile.readline().empty()) ++lines;
    if (packet.size() <= 100)
      wfile.write(packet);
    else
      wfile.write(std::to_string(packet.size()) + " bytes");
    wfile.write("|" + std::to_string(lines));
  }
  void finish() {
    // send_reply() is what finish() does; it returns 0 when there is no
    // one to answer (count those that did send something).
    if (send_reply() > 0) ++reply_results;
  }
};

// A small server: datagrams over 64 bytes do not fit.
struct small_packet_server
    : sockserv::basic_server<sockserv::inet4, sockserv::datagram<64>, scripted_datagram_handler,
                             sockserv::synchronous, small_packet_server> {
  using basic_server::basic_server;
  std::vector<std::string> errors;
  void handle_error(sockserv::datagram_request&, const sockserv::socket_address&, const char* what) {
    errors.emplace_back(what);
  }
};

struct datagram_fixture {
  datagram_fixture() {
    scripted_datagram_handler::runs = 0;
    scripted_datagram_handler::unnamed_clients = 0;
    scripted_datagram_handler::reply_results = 0;
  }
};

// The next datagram, or "<no reply>" (printable in a failed CHECK).
std::string next_reply(int fd) { return receive_datagram(fd).value_or("<no reply>"); }

template <class Server>
void handle_one(Server& server) {
  sockserv::result handled = server.handle_request();
  INFO(handled.message());
  REQUIRE(handled.ok());
}

}  // namespace

TEST_CASE_METHOD(datagram_fixture, "a datagram handler gets the packet, reads it through rfile, and its reply goes back",
                 "[datagram][handler]") {
  sockserv::udp_server<scripted_datagram_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  send_datagram(client.fd(), server.server_address, "one\ntwo\nthree");
  handle_one(server);
  CHECK(next_reply(client.fd()) == "one\ntwo\nthree|3");
  CHECK(scripted_datagram_handler::runs == 1);
}

TEST_CASE_METHOD(datagram_fixture, "no reply is sent unless the handler wrote one; an empty write sends an empty datagram",
                 "[datagram][handler]") {
  sockserv::udp_server<scripted_datagram_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  for (std::string_view packet : {"silent", "empty", "last"}) {
    send_datagram(client.fd(), server.server_address, packet);
    handle_one(server);
  }
  // Loopback keeps order: had "silent" been answered, its reply came first.
  CHECK(next_reply(client.fd()) == "");
  CHECK(next_reply(client.fd()) == "last|1");
  CHECK(scripted_datagram_handler::runs == 3);
}

TEST_CASE_METHOD(datagram_fixture, "a datagram longer than max_packet_size is not handled; handle_error says EMSGSIZE",
                 "[datagram][max_packet_size]") {
  small_packet_server server({"127.0.0.1", 0});
  STATIC_REQUIRE(small_packet_server::max_packet_size == 64);
  sockserv::file_descriptor client = open_datagram_client(AF_INET);

  send_datagram(client.fd(), server.server_address, std::string(65, 'x'));
  handle_one(server);
  CHECK(scripted_datagram_handler::runs == 0);
  REQUIRE(server.errors.size() == 1);
  CHECK_THAT(server.errors[0], Contains("Message too long"));  // strerror(EMSGSIZE)
  CHECK_THAT(server.errors[0], Contains("64"));

  // Exactly max_packet_size fits and is served whole.
  const std::string full(64, 'y');
  send_datagram(client.fd(), server.server_address, full);
  handle_one(server);
  CHECK(scripted_datagram_handler::runs == 1);
  CHECK(server.errors.size() == 1);
  CHECK(next_reply(client.fd()) == full + "|1");

  send_datagram(client.fd(), server.server_address, "normal");
  handle_one(server);
  CHECK(next_reply(client.fd()) == "normal|1");
}

TEST_CASE_METHOD(datagram_fixture, "the default max_packet_size is 8192", "[datagram][max_packet_size]") {
  STATIC_REQUIRE(sockserv::udp_server<scripted_datagram_handler>::max_packet_size == 8192);
  sockserv::udp_server<scripted_datagram_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  const std::string biggest(8192, 'z');
  send_datagram(client.fd(), server.server_address, biggest);
  handle_one(server);
  CHECK(next_reply(client.fd()) == "8192 bytes|1");
}

TEST_CASE_METHOD(datagram_fixture, "a unix datagram client without an address is served but not answered, "
                 "and the server goes on", "[datagram][unix]") {
  temp_dir dir;
  sockserv::unix_datagram_server<scripted_datagram_handler> server(dir.file("server.sock"));
  serving_thread<decltype(server)> serving(server, 5.0);

  sockserv::file_descriptor unnamed = open_datagram_client(AF_UNIX);  // never bound
  send_datagram(unnamed.fd(), server.server_address, "who am I");

  // A bound client sent afterwards gets its reply: the server survived,
  // and the unnamed client's request was handled before it (one thread).
  CHECK(exchange_datagram(server.server_address, "named", dir.file("named.sock")) == "named|1");
  CHECK_FALSE(serving.finished());
  CHECK(serving.stop() < 0.5);
  CHECK(serving.outcome().ok());
  // Read after the join: the handler's finish() may still run when the reply arrives.
  CHECK(scripted_datagram_handler::runs == 2);
  CHECK(scripted_datagram_handler::unnamed_clients == 1);
  CHECK(scripted_datagram_handler::reply_results == 1);  // only the named client was answered
  CHECK_FALSE(wait_readable(unnamed.fd(), 0));
}

TEST_CASE_METHOD(datagram_fixture, "a datagram handler sees the client's own address", "[datagram][handler]") {
  struct address_echo : sockserv::datagram_request_handler<> {
    void handle() { wfile.write(client_address.to_string().c_str()); }
  };
  temp_dir dir;
  SECTION("udp") {
    sockserv::udp_server<address_echo> server({"127.0.0.1", 0});
    sockserv::file_descriptor client = open_datagram_client(AF_INET);
    send_datagram(client.fd(), server.server_address, "?");
    handle_one(server);
    // An auto-bound UDP socket reports 0.0.0.0 as its own address.
    CHECK(next_reply(client.fd()) == "127.0.0.1:" + std::to_string(local_address(client.fd()).port()));
  }
  SECTION("unix") {
    sockserv::unix_datagram_server<address_echo> server(dir.file("server.sock"));
    const char* own = dir.file("client.sock");
    sockserv::file_descriptor client = open_datagram_client(AF_UNIX, own);
    send_datagram(client.fd(), server.server_address, "?");
    handle_one(server);
    CHECK(next_reply(client.fd()) == own);
  }
}

TEST_CASE_METHOD(datagram_fixture, "datagram servers keep serving through serve_forever after an oversized packet",
                 "[datagram][max_packet_size]") {
  small_packet_server server({"127.0.0.1", 0});
  sockserv::file_descriptor client = open_datagram_client(AF_INET);
  send_datagram(client.fd(), server.server_address, std::string(1000, 'x'));
  serving_thread<small_packet_server> serving(server, 5.0);
  send_datagram(client.fd(), server.server_address, "fits");
  CHECK(next_reply(client.fd()) == "fits|1");
  serving.stop();
  CHECK(server.errors.size() == 1);
  CHECK(scripted_datagram_handler::runs == 1);
}
