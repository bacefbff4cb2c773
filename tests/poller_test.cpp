// The three pollers behind one interface: readiness is reported with the
// token a descriptor was registered with; select refuses what fd_set cannot
// hold.
#include <sockserv/poller/epoll.hpp>
#include <sockserv/poller/poll.hpp>
#include <sockserv/poller/select.hpp>

#include <catch2/catch.hpp>

#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {
struct socket_pair {
  int ends[2];
  socket_pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0); }
  ~socket_pair() {
    ::close(ends[0]);
    ::close(ends[1]);
  }
};

template <class Poller>
std::vector<std::pair<sockserv::poll_token, sockserv::readiness>> ready_now(Poller& poller, int timeout_ms = 1000) {
  std::vector<std::pair<sockserv::poll_token, sockserv::readiness>> seen;
  poller.wait(timeout_ms, [&](sockserv::poll_token token, sockserv::readiness r) { seen.emplace_back(token, r); });
  return seen;
}
}  // namespace

TEMPLATE_TEST_CASE("pollers report readiness by token, follow modify() and forget remove()", "[poller]",
                   sockserv::select_poller<8>, sockserv::poll_poller<8>, sockserv::epoll_poller<8>) {
  TestType poller;
  REQUIRE(poller.open());
  socket_pair a, b;
  REQUIRE(poller.add(a.ends[0], 3, true, false));
  REQUIRE(poller.add(b.ends[0], 5, true, false));
  CHECK(ready_now(poller, 0).empty());

  REQUIRE(::write(b.ends[1], "x", 1) == 1);
  auto seen = ready_now(poller);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first == 5);
  CHECK(seen[0].second.readable);

  REQUIRE(poller.modify(b.ends[0], 5, false, true));  // now: writable, not readable
  seen = ready_now(poller);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first == 5);
  CHECK(seen[0].second.writable);
  CHECK_FALSE(seen[0].second.readable);

  poller.remove(b.ends[0], 5);
  CHECK(ready_now(poller, 0).empty());
  REQUIRE(::write(a.ends[1], "y", 1) == 1);
  seen = ready_now(poller);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first == 3);
}

TEST_CASE("select_poller refuses a descriptor at or above FD_SETSIZE with a clear error", "[poller][select]") {
  sockserv::select_poller<8> poller;
  sockserv::result refused = poller.add(FD_SETSIZE, 0, true, false);
  REQUIRE_FALSE(refused.ok());
  CHECK(std::string(refused.message()).find("FD_SETSIZE") != std::string::npos);
  CHECK(std::string(refused.message()).find(std::to_string(FD_SETSIZE)) != std::string::npos);
  CHECK_FALSE(poller.add(-1, 0, true, false).ok());
}

TEST_CASE("poll_poller refuses more descriptors than its capacity", "[poller][poll]") {
  sockserv::poll_poller<1> poller;
  socket_pair a;
  REQUIRE(poller.add(a.ends[0], 0, true, false));
  CHECK_FALSE(poller.add(a.ends[1], 0, true, false).ok());
}
