// Admission control and its counters: stats() under every blocking policy,
// the per-address connection cap, and the "busy" answer given instead of a
// wait in the backlog.
#include "support/client.hpp"
#include "support/processes.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <string>
#include <type_traits>

using namespace test_support;

namespace {

// "fail\n" fails the request; anything else is echoed after "ready\n"
// (which tells a client that its request runs).
struct counted_handler : sockserv::stream_request_handler<> {
  sockserv::result handle() {
    wfile.write("ready\n");
    std::string_view line = rfile.readline();
    if (line == "fail\n") return sockserv::result::failure("asked to fail");
    wfile.write(line);
    return {};
  }
};

// verify_request refuses every second connection.
template <class Policy>
struct alternating_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, counted_handler, Policy, alternating_server<Policy>> {
  using alternating_server::basic_server::basic_server;
  int seen = 0;
  bool verify_request(sockserv::connection&, const sockserv::socket_address&) { return seen++ % 2 == 0; }
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {}
};

sockserv::file_descriptor occupy_from(const char* source, const sockserv::socket_address& server) {
  sockserv::file_descriptor client = connect_from(source, server);
  REQUIRE(read_line(client.fd()) == "ready\n");
  return client;
}

}  // namespace

TEMPLATE_TEST_CASE("stats() counts accepted, refused by verify_request, failed and the peak in flight", "[admission]",
                   sockserv::synchronous, sockserv::threading<4>, sockserv::forking<4>) {
  using server_type = alternating_server<TestType>;
  auto server = listening<server_type>();
  serving_thread<server_type> serving(*server, 0.02);
  // One request at a time: a client has its reply before the worker is
  // done, so under threading each exchange waits for the request to end.
  const auto one_at_a_time = [&] {
    if constexpr (std::is_same_v<TestType, sockserv::threading<4>>)
      return eventually([&] { return server->requests_in_flight() == 0; }, 5.0);
    else
      return true;
  };
  CHECK(exchange_stream(server->server_address, "one\n") == "ready\none\n");  // admitted
  CHECK(one_at_a_time());
  CHECK(exchange_stream(server->server_address, "two\n").empty());             // refused
  CHECK(one_at_a_time());
  CHECK(exchange_stream(server->server_address, "fail\n") == "ready\n");       // admitted, fails
  // A forked child's failure reaches the parent's counters when it is reaped.
  CHECK(eventually([&] { return server->stats().failed == 1; }, 3.0));
  const sockserv::server_stats counted = server->stats();
  CHECK(counted.accepted == 3);
  CHECK(counted.refused_verify == 1);
  CHECK(counted.failed == 1);
  // A child that has exited counts until it is reaped (service_actions).
  if (std::is_same_v<TestType, sockserv::forking<4>>)
    CHECK(counted.peak_in_flight >= 1);
  else
    CHECK(counted.peak_in_flight == 1);
  CHECK(counted.refused_per_address == 0);
  CHECK(counted.refused_busy == 0);
}

TEMPLATE_TEST_CASE("max_connections_per_address refuses one client address's extra connections, not others'",
                   "[admission]", sockserv::threading<4>, sockserv::forking<4>) {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, counted_handler, TestType>;
  auto server = listening<server_type>();
  server->max_connections_per_address = 2;
  serving_thread<server_type> serving(*server, 0.02);
  sockserv::file_descriptor first = occupy_from("127.0.0.1", server->server_address);
  sockserv::file_descriptor second = occupy_from("127.0.0.1", server->server_address);
  {
    sockserv::file_descriptor third = connect_from("127.0.0.1", server->server_address);
    read_outcome refused = read_until_eof(third.fd());
    CHECK(refused.eof);
    CHECK(refused.data.empty());  // shut down unanswered
  }
  sockserv::file_descriptor other = occupy_from("127.0.0.2", server->server_address);
  send_all(other.fd(), "other\n");
  CHECK(read_until_eof(other.fd()).data == "other\n");
  CHECK(server->stats().refused_per_address == 1);
  CHECK(server->stats().peak_in_flight == 3);
  // When one of the first two ends, that address may connect again.
  send_all(first.fd(), "bye\n");
  CHECK(read_until_eof(first.fd()).data == "bye\n");
  sockserv::file_descriptor again;
  CHECK(eventually(
      [&] {
        again = connect_from("127.0.0.1", server->server_address);
        return read_line(again.fd()) == "ready\n";
      },
      3.0));
  serving.stop();
  (void)server->graceful_close(0.0);
}

TEMPLATE_TEST_CASE("answer_when_busy: a client with no worker or child slot free gets busy_reply and is closed",
                   "[admission]", sockserv::threading<1>, sockserv::forking<1>) {
  using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, counted_handler, TestType>;
  auto server = listening<server_type>();
  server->answer_when_busy = true;
  server->busy_reply = "busy, try later\n";
  serving_thread<server_type> serving(*server, 0.02);
  sockserv::file_descriptor holder = occupy_from("127.0.0.1", server->server_address);
  {
    sockserv::file_descriptor turned_away = connect_to(server->server_address);
    read_outcome answer = read_until_eof(turned_away.fd());
    CHECK(answer.eof);
    CHECK(answer.data == "busy, try later\n");
  }
  CHECK(server->stats().refused_busy == 1);
  send_all(holder.fd(), "done\n");
  CHECK(read_until_eof(holder.fd()).data == "done\n");
  serving.stop();
  (void)server->graceful_close(1.0);
}
