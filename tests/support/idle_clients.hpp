// Clients that hold a worker or a child slot until the test lets them go:
// for tests of what a server does with no capacity left.
#pragma once

#include "client.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

namespace test_support {

// Says "ready\n" as soon as it runs, then waits for a line that an idle
// client never sends (returns at end of input or when cancelled), and
// echoes it.
struct idle_handler : sockserv::stream_request_handler<> {
  void handle() {
    wfile.write("ready\n");
    wfile.write(rfile.readline());
  }
};

// Occupies one worker or child: connects and waits until its request runs.
inline sockserv::file_descriptor occupy(const sockserv::socket_address& server) {
  sockserv::file_descriptor client = connect_to(server);
  REQUIRE(read_line(client.fd()) == "ready\n");
  return client;
}

}  // namespace test_support
