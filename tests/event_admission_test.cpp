// Admission and counters under the event loop (event_loop.hpp with
// admission.hpp): stats(), the per-address cap, the busy answer, eviction of
// the idlest connection, and a graceful drain that does not spin.
#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <sys/resource.h>

namespace {

// "ready\n" on connect; "fail\n" fails the handler; lines are echoed.
struct counted_event : sockserv::event_request_handler<> {
  void setup() {
    if (!write("ready\n")) abort();
  }
  sockserv::result handle_message(std::string_view line) {
    if (line == "fail\n") return sockserv::result::failure("asked to fail");
    if (!write(line)) abort();
    return {};
  }
};

template <std::size_t Capacity>
struct quiet_event_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, counted_event,
                             sockserv::event_loop<sockserv::default_poller, Capacity>, quiet_event_server<Capacity>> {
  using quiet_event_server::basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {}
};

sockserv::file_descriptor occupy(const char* source, const sockserv::socket_address& at) {
  sockserv::file_descriptor c = test_support::connect_from(source, at);
  REQUIRE(test_support::read_line(c.fd()) == "ready\n");
  return c;
}

}  // namespace

TEST_CASE("event admission: stats() counts accepted, failed, timed out and the peak in flight",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<8>;
  auto server = test_support::listening<server_type>();
  test_support::serving_thread<server_type> serving(*server);
  {
    sockserv::file_descriptor a = occupy("127.0.0.1", server->server_address);
    sockserv::file_descriptor b = occupy("127.0.0.1", server->server_address);
    sockserv::file_descriptor c = occupy("127.0.0.1", server->server_address);
    test_support::send_all(a.fd(), "fail\n");
    CHECK(test_support::read_until_eof(a.fd()).eof);  // the failure closes it
  }
  serving.stop();
  const sockserv::server_stats s = server->stats();
  CHECK(s.accepted == 3);
  CHECK(s.failed == 1);
  CHECK(s.peak_in_flight == 3);
}

TEST_CASE("event admission: a client address past max_connections_per_address is shut down unanswered",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<8>;
  auto server = test_support::listening<server_type>();
  server->max_connections_per_address = 2;
  test_support::serving_thread<server_type> serving(*server);
  sockserv::file_descriptor first = occupy("127.0.0.1", server->server_address);
  sockserv::file_descriptor second = occupy("127.0.0.1", server->server_address);
  {
    sockserv::file_descriptor third = test_support::connect_from("127.0.0.1", server->server_address);
    test_support::read_outcome refused = test_support::read_until_eof(third.fd());
    CHECK(refused.eof);
    CHECK(refused.data.empty());
  }
  sockserv::file_descriptor other = occupy("127.0.0.2", server->server_address);  // another address gets in
  first.reset();  // a slot of 127.0.0.1 frees once the server sees it close
  sockserv::file_descriptor again;
  for (int attempt = 0; attempt < 50 && !again.is_open(); ++attempt) {
    sockserv::file_descriptor c = test_support::connect_from("127.0.0.1", server->server_address);
    if (test_support::read_line(c.fd(), 2000) == "ready\n") again = std::move(c);
  }
  CHECK(again.is_open());
  serving.stop();
  CHECK(server->stats().refused_per_address >= 1);
}

TEST_CASE("event admission: with answer_when_busy a client finding the table full gets the busy reply",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<2>;
  auto server = test_support::listening<server_type>();
  server->answer_when_busy = true;
  server->busy_reply = "busy\n";
  test_support::serving_thread<server_type> serving(*server);
  sockserv::file_descriptor a = occupy("127.0.0.1", server->server_address);
  sockserv::file_descriptor b = occupy("127.0.0.1", server->server_address);
  sockserv::file_descriptor c = test_support::connect_to(server->server_address);
  test_support::read_outcome answer = test_support::read_until_eof(c.fd());
  CHECK(answer.data == "busy\n");
  CHECK(answer.eof);
  test_support::send_all(a.fd(), "still\n");  // the others are unharmed
  CHECK(test_support::read_line(a.fd()) == "still\n");
  serving.stop();
  CHECK(server->stats().refused_busy == 1);
}

TEST_CASE("event admission: with evict_idlest_when_full the longest-idle connection makes room",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<2>;
  auto server = test_support::listening<server_type>();
  server->evict_idlest_when_full = true;
  test_support::serving_thread<server_type> serving(*server);
  sockserv::file_descriptor idle = occupy("127.0.0.1", server->server_address);
  sockserv::file_descriptor busy = occupy("127.0.0.1", server->server_address);
  test_support::send_all(busy.fd(), "active\n");  // busy is the more recently active one
  CHECK(test_support::read_line(busy.fd()) == "active\n");
  sockserv::file_descriptor newcomer = occupy("127.0.0.1", server->server_address);
  CHECK(test_support::read_until_eof(idle.fd()).eof);  // evicted
  test_support::send_all(busy.fd(), "kept\n");
  CHECK(test_support::read_line(busy.fd()) == "kept\n");
  serving.stop();
  CHECK(server->stats().evicted == 1);
}

TEST_CASE("event admission: eviction and the per-address cap together: a newcomer over its cap evicts nobody, "
          "one from a new address evicts and is served",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<2>;
  auto server = test_support::listening<server_type>();
  server->evict_idlest_when_full = true;
  server->max_connections_per_address = 1;
  test_support::serving_thread<server_type> serving(*server);
  sockserv::file_descriptor b = occupy("127.0.0.2", server->server_address);
  sockserv::file_descriptor a = occupy("127.0.0.1", server->server_address);  // the table is full
  {
    sockserv::file_descriptor over_cap = test_support::connect_from("127.0.0.1", server->server_address);
    test_support::read_outcome refused = test_support::read_until_eof(over_cap.fd());
    CHECK(refused.eof);
    CHECK(refused.data.empty());  // shut down unanswered
  }
  for (sockserv::file_descriptor* kept : {&a, &b}) {  // neither was evicted for it
    test_support::send_all(kept->fd(), "kept\n");
    CHECK(test_support::read_line(kept->fd()) == "kept\n");
  }
  CHECK(server->stats().evicted == 0);
  CHECK(server->stats().refused_per_address == 1);
  // Two addresses in a full table, a third arrives: it is admitted (its
  // entry exists before the evicted one's is freed) and takes a slot.
  sockserv::file_descriptor third = occupy("127.0.0.3", server->server_address);
  test_support::send_all(third.fd(), "in\n");
  CHECK(test_support::read_line(third.fd()) == "in\n");
  serving.stop();
  CHECK(server->stats().evicted == 1);
  CHECK(server->stats().refused_per_address == 1);
}

namespace {
double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}
}  // namespace

TEST_CASE("event admission: a graceful drain of an adopted listener waits without spinning",
          "[event_loop][admission]") {
  using server_type = quiet_event_server<4>;
  // A listener made elsewhere (as systemd would), adopted by the server;
  // systemd keeps its own copy open.
  auto made = test_support::listening<server_type>();
  const int adopted_fd = ::dup(made->fileno());
  sockserv::file_descriptor systemds_copy(::dup(made->fileno()));
  const sockserv::socket_address at = made->server_address;
  made.reset();
  server_type server(sockserv::adopt_socket, adopted_fd);
  REQUIRE(server);
  sockserv::file_descriptor idle;
  {
    test_support::serving_thread<server_type> serving(server);
    idle = occupy("127.0.0.1", at);
  }
  // A client that arrives during the drain waits in the backlog of the copy
  // still open: the listening socket stays readable. A poller still
  // watching it after the server closed its number would report it on
  // every turn (epoll watches the socket, not the number).
  sockserv::file_descriptor late = test_support::connect_to(at);
  const double cpu_before = process_cpu_seconds();
  CHECK_FALSE(server.graceful_close(0.5));  // the idle client holds it to the deadline
  CHECK(process_cpu_seconds() - cpu_before < 0.25);  // asleep, not spinning, for those 0.5 s
}

#if SOCKSERV_EXCEPTIONS
namespace {
std::atomic<int> constructor_throws{0};  // how many handler constructions throw next

struct throwing_event : counted_event {
  throwing_event() {
    if (constructor_throws.fetch_sub(1) > 0) throw std::runtime_error("handler constructor threw");
  }
};

struct throwing_event_server
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, throwing_event,
                             sockserv::event_loop<sockserv::default_poller, 4>, throwing_event_server> {
  using throwing_event_server::basic_server::basic_server;
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char*) {}
  std::atomic<int> shutdowns{0};  // the user's hook runs once a request
  void shutdown_request(sockserv::connection& request) {
    shutdowns.fetch_add(1);
    basic_server::shutdown_request(request);
  }
};
}  // namespace

TEST_CASE("event admission: a handler constructor that throws gives its address's count back, "
          "and the request fails once",
          "[event_loop][admission][ownership]") {
  auto server = test_support::listening<throwing_event_server>();
  server->max_connections_per_address = 1;
  constructor_throws = 1;
  test_support::serving_thread<throwing_event_server> serving(*server);
  {
    sockserv::file_descriptor refused = test_support::connect_from("127.0.0.1", server->server_address);
    CHECK(test_support::read_until_eof(refused.fd()).eof);  // no handler: closed unanswered
  }
  // The same address again, with the cap of 1: admitted, since nothing of
  // the first connection is left in flight.
  sockserv::file_descriptor next = occupy("127.0.0.1", server->server_address);
  test_support::send_all(next.fd(), "again\n");
  CHECK(test_support::read_line(next.fd()) == "again\n");
  CHECK(server->stats().refused_per_address == 0);
  CHECK(server->active_connections() == 1);
  CHECK(server->shutdowns.load() == 1);  // the refused one, shut down once; `next` is still open
  CHECK(server->stats().failed == 1);
  constructor_throws = 0;
}
#endif
