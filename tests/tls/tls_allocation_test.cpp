// Zero heap on the TLS event path: once the server runs (its thread
// started, a first handshake done), full handshakes, resumed ones and echo
// requests on kept TLS connections allocate nothing, in the server or in
// the BearSSL client beside it.
//
// This file puts the counting allocator (support/counting_allocator.hpp)
// into the TLS test binary; it counts only inside a counting_window, where
// there are no Catch2 assertions (Catch may allocate) and the client works
// on raw buffers. Client sockets are connected before the window opens
// (the connect helper reports through Catch); their handshakes run inside.
#include "tls_support.hpp"

#include "support/counting_allocator.hpp"
#include "support/serving_thread.hpp"

#include <catch2/catch.hpp>

#include <sockserv/tls.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

using namespace tls_support;

namespace {

struct counted_config : sockserv::tls::default_config {};
using counted_tls = sockserv::tls_stream<counted_config>;

struct echo : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) abort();
  }
};
using counted_server = sockserv::basic_server<sockserv::inet4, counted_tls, echo, sockserv::event_loop<sockserv::epoll_poller, 8>>;

// One request: a line out, the same line back.
bool echoed(tls_client& client, int i) {
  char line[32];
  char reply[32];
  const int n = std::snprintf(line, sizeof line, "request %04d\n", i);
  const std::size_t size = static_cast<std::size_t>(n);
  return client.write_bytes(line, size) && client.read_bytes(reply, size) && std::memcmp(line, reply, size) == 0;
}

}  // namespace

TEST_CASE("tls event: handshakes and requests allocate nothing in the steady state", "[tls][event_loop][allocation]") {
  certificates& certs = certificates::get();
  REQUIRE(certs.ok());
  REQUIRE(counted_tls::context().load_pem_files(certs.path("server.pem").c_str(), certs.path("server.key").c_str()));
  test_credentials anchors;
  load_anchors(anchors, certs.path("ca.pem"));
  auto server = std::make_unique<counted_server>(counted_server::endpoint{"127.0.0.1", 0});
  test_support::serving_thread<counted_server> serving(*server);

  constexpr int kept_requests = 200;
  constexpr int new_sessions = 8;
  br_ssl_session_parameters saved{};
  client_options resuming;
  resuming.resume = &saved;
  auto kept = std::make_unique<tls_client>(server->server_address, anchors);
  std::vector<std::unique_ptr<tls_client>> fresh, resumed;
  {
    tls_client first(server->server_address, anchors, resuming);  // warm-up: a handshake, its session saved
    REQUIRE(echoed(first, 0));
    REQUIRE(first.close_cleanly());
  }
  for (int i = 0; i < new_sessions; ++i) {
    fresh.push_back(std::make_unique<tls_client>(server->server_address, anchors));
    resumed.push_back(std::make_unique<tls_client>(server->server_address, anchors, resuming));
  }
  REQUIRE(echoed(*kept, 0));

  int ok = 0;
  window_counts counts;
  {
    counting_window window;
    for (int i = 0; i < kept_requests; ++i) ok += echoed(*kept, i) ? 1 : 0;
    for (int i = 0; i < new_sessions; ++i) {
      ok += echoed(*fresh[static_cast<std::size_t>(i)], i) && fresh[static_cast<std::size_t>(i)]->close_cleanly() ? 1 : 0;
      ok += echoed(*resumed[static_cast<std::size_t>(i)], i) && resumed[static_cast<std::size_t>(i)]->close_cleanly() ? 1 : 0;
    }
    counts = window.stop();
  }
  INFO("allocations: " << counts.allocations << ", releases: " << counts.releases);
  CHECK(ok == kept_requests + 2 * new_sessions);
  CHECK(counts.allocations == 0);
  CHECK(counts.releases == 0);
  CHECK(kept->close_cleanly());
  serving.stop();
  CHECK(server->stats().failed == 0);
}

TEST_CASE("tls: the counting allocator counts in this binary (or the test above proves nothing)", "[tls][allocation]") {
  void* (*volatile allocate_bytes)(std::size_t) = &std::malloc;
  void (*volatile release_bytes)(void*) = &std::free;
  window_counts counts;
  {
    counting_window window;
    release_bytes(allocate_bytes(64));
    counts = window.stop();
  }
  CHECK(counts.allocations >= 1);
  CHECK(counts.releases >= 1);
}
