// The loop's deferred work (loop/loop.hpp): what a callback writes to
// another connection is flushed by the end of that same turn, and the turn
// then leaves nothing pending, so the next wait may sleep (a leftover flag
// cost every such turn an extra zero-timeout poll).
#include "support/client.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

namespace {

// Each line goes to every other connection.
struct relay : sockserv::event_request_handler<> {
  void handle_message(std::string_view line);
};
using relay_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, relay,
                                            sockserv::event_loop<sockserv::default_poller, 4>>;

void relay::handle_message(std::string_view line) {
  const sockserv::connection_id me = id();
  (void)server_as<relay_server>().broadcast_if(line, [me](const relay& other) { return other.id() != me; });
}

}  // namespace

TEST_CASE("a turn that flushed a write to another connection leaves no work deferred", "[loop][event]") {
  sockserv::basic_loop<> loop;
  relay_server server({"127.0.0.1", 0});
  REQUIRE(server);
  REQUIRE(loop.add(server));
  sockserv::file_descriptor sender = test_support::connect_to(server.server_address);
  sockserv::file_descriptor receiver = test_support::connect_to(server.server_address);
  test_support::deadline until(test_support::io_timeout_ms);
  while (server.active_connections() < 2 && until.remaining_ms() > 0) REQUIRE(loop.run_once(until.remaining_ms()));
  REQUIRE(server.active_connections() == 2);

  test_support::send_all(sender.fd(), "hello\n");
  while (!test_support::wait_readable(receiver.fd(), 0) && until.remaining_ms() > 0)
    REQUIRE(loop.run_once(until.remaining_ms()));
  CHECK(test_support::read_line(receiver.fd()) == "hello\n");
  CHECK(loop.next_timeout() == -1);  // no timer armed, nothing deferred: the next wait may sleep
}
