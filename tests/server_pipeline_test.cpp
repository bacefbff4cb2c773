// The request pipeline (server.hpp): get_request -> verify_request ->
// process_request -> finish_request -> handler setup/handle/finish ->
// shutdown_request -> close_request, the user's overrides of each step
// (CRTP), failures reaching handle_error, handle_request and its timeout.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fcntl.h>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace test_support;
using Catch::Matchers::Contains;

namespace {

struct recording_server;

// What it does depends on the first line the client sends.
struct scripted_handler : sockserv::stream_request_handler<> {
  std::string line;
  sockserv::result setup();
  sockserv::result handle();
  void finish();
  ~scripted_handler();
};

// A user's server that replaces every hook it can and records the calls.
struct recording_server : sockserv::tcp_server<scripted_handler, recording_server> {
  using basic_server::basic_server;

  bool refuse = false;

  void note(const std::string& event) {
    std::lock_guard<std::mutex> hold(lock_);
    events_.push_back(event);
  }
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> hold(lock_);
    return events_;
  }
  int count(const std::string& event) {
    std::lock_guard<std::mutex> hold(lock_);
    int n = 0;
    for (const std::string& e : events_) n += e == event;
    return n;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> hold(lock_);
    return errors_;
  }
  void clear() {
    std::lock_guard<std::mutex> hold(lock_);
    events_.clear();
    errors_.clear();
  }

  bool verify_request(sockserv::connection& request, const sockserv::socket_address& client) {
    note("verify_request");
    return !refuse && basic_server::verify_request(request, client);
  }
  void process_request(sockserv::connection& request, const sockserv::socket_address& client) {
    note("process_request");
    basic_server::process_request(request, client);
  }
  sockserv::result finish_request(sockserv::connection& request, const sockserv::socket_address& client) {
    note("finish_request");
    return basic_server::finish_request(request, client);
  }
  void shutdown_request(sockserv::connection& request) {
    note("shutdown_request");
    basic_server::shutdown_request(request);
  }
  void close_request(sockserv::connection& request) {
    note("close_request");
    basic_server::close_request(request);
  }
  void handle_error(sockserv::connection&, const sockserv::socket_address& client, const char* what) {
    note("handle_error");
    std::lock_guard<std::mutex> hold(lock_);
    errors_.push_back(std::string(client.to_string().c_str()) + " " + what);
  }
  void handle_timeout() { note("handle_timeout"); }
  void service_actions() {
    {
      std::lock_guard<std::mutex> hold(lock_);
      ++service_actions_;
    }
    service_actions_changed_.notify_all();
  }

  // Waits (bounded) until service_actions() has run at least n times.
  bool wait_for_service_actions(int n) {
    std::unique_lock<std::mutex> hold(lock_);
    return service_actions_changed_.wait_for(hold, std::chrono::milliseconds(io_timeout_ms),
                                             [&] { return service_actions_ >= n; });
  }
  int service_actions_count() {
    std::lock_guard<std::mutex> hold(lock_);
    return service_actions_;
  }

 private:
  std::mutex lock_;
  std::condition_variable service_actions_changed_;
  std::vector<std::string> events_;
  std::vector<std::string> errors_;
  int service_actions_ = 0;
};

sockserv::result scripted_handler::setup() {
  stream_request_handler::setup();
  line = std::string(rfile.readline());
  server_as<recording_server>().note("setup");
  if (line == "setup-fail\n") return sockserv::result::failure("setup refused");
  return {};
}

sockserv::result scripted_handler::handle() {
  server_as<recording_server>().note("handle");
  if (line == "throw\n") throw std::runtime_error("handler threw");
  if (line == "fail\n") return sockserv::result::failure("handler said no");
  if (line == "throw-int\n") throw 42;
  wfile.write("echo: " + line);
  return {};
}

void scripted_handler::finish() {
  server_as<recording_server>().note("finish");
  stream_request_handler::finish();
}

scripted_handler::~scripted_handler() { server_as<recording_server>().note("~handler"); }

struct pipeline_fixture {
  recording_server server{{"127.0.0.1", 0}};

  // Sends `line` as a fresh client, then handle_request() on this thread.
  sockserv::file_descriptor send_and_handle(const std::string& line) {
    sockserv::file_descriptor client = connect_to(server.server_address);
    send_all(client.fd(), line);
    sockserv::result handled = server.handle_request();
    INFO(handled.message());
    REQUIRE(handled.ok());
    return client;
  }
  std::string reply_to(const std::string& line) {
    sockserv::file_descriptor client = send_and_handle(line);
    read_outcome reply = read_until_eof(client.fd());
    REQUIRE(reply.eof);
    return reply.data;
  }
};

}  // namespace

TEST_CASE_METHOD(pipeline_fixture, "a request runs the pipeline in order, through the user's hooks",
                 "[server][pipeline]") {
  CHECK(reply_to("hello\n") == "echo: hello\n");
  std::vector<std::string> expected = {"verify_request", "process_request", "finish_request", "setup",
                                       "handle",         "finish",          "~handler",       "shutdown_request",
                                       "close_request"};
  CHECK(server.events() == expected);
  CHECK(server.errors().empty());
}

TEST_CASE_METHOD(pipeline_fixture, "each request gets a fresh handler", "[server][pipeline]") {
  // A handler that kept state would answer the second client with the
  // first client's line.
  CHECK(reply_to("one\n") == "echo: one\n");
  CHECK(reply_to("two\n") == "echo: two\n");
  CHECK(server.count("~handler") == 2);
}

TEST_CASE_METHOD(pipeline_fixture, "verify_request returning false: shutdown_request once, no handler, client sees EOF",
                 "[server][pipeline][verify]") {
  server.refuse = true;
  sockserv::file_descriptor refused = send_and_handle("let me in\n");
  read_outcome reply = read_until_eof(refused.fd());
  CHECK(reply.eof);
  CHECK(reply.data.empty());
  CHECK(server.count("verify_request") == 1);
  CHECK(server.count("shutdown_request") == 1);
  CHECK(server.count("setup") == 0);
  CHECK(server.count("handle") == 0);
  CHECK(server.count("process_request") == 0);
  CHECK(server.count("handle_error") == 0);

  server.refuse = false;
  CHECK(reply_to("now?\n") == "echo: now?\n");
}

TEST_CASE_METHOD(pipeline_fixture, "a handler throwing std::exception: handle_error once, then the next request is served",
                 "[server][pipeline][error]") {
  CHECK(reply_to("throw\n").empty());  // shut down unanswered: EOF
  CHECK(server.count("handle_error") == 1);
  REQUIRE(server.errors().size() == 1);
  CHECK_THAT(server.errors()[0], Contains("handler threw"));
  CHECK_THAT(server.errors()[0], Contains("127.0.0.1:"));
  CHECK(server.count("finish") == 1);  // finish runs even though handle failed
  CHECK(server.count("shutdown_request") == 1);

  CHECK(reply_to("after\n") == "echo: after\n");
  CHECK(server.count("handle_error") == 1);
}

TEST_CASE_METHOD(pipeline_fixture, "a handler returning a failed result: handle_error once with its message",
                 "[server][pipeline][error]") {
  CHECK(reply_to("fail\n").empty());
  CHECK(server.count("handle_error") == 1);
  REQUIRE(server.errors().size() == 1);
  CHECK_THAT(server.errors()[0], Contains("handler said no"));
  CHECK(server.count("finish") == 1);
  CHECK(server.count("shutdown_request") == 1);
  CHECK(reply_to("after\n") == "echo: after\n");
}

TEST_CASE_METHOD(pipeline_fixture, "a failing setup: handle_error, and neither handle nor finish runs",
                 "[server][pipeline][error]") {
  CHECK(reply_to("setup-fail\n").empty());
  CHECK(server.count("handle_error") == 1);
  REQUIRE(server.errors().size() == 1);
  CHECK_THAT(server.errors()[0], Contains("setup refused"));
  CHECK(server.count("handle") == 0);
  CHECK(server.count("finish") == 0);
  CHECK(server.count("shutdown_request") == 1);
}

TEST_CASE_METHOD(pipeline_fixture, "a non-std exception propagates out of handle_request, skipping handle_error, "
                 "after the request was shut down", "[server][pipeline][error]") {
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), "throw-int\n");
  REQUIRE_THROWS_AS(server.handle_request(), int);
  CHECK(server.count("handle_error") == 0);
  CHECK(server.count("finish") == 1);
  CHECK(server.count("shutdown_request") == 1);
  CHECK(server.count("close_request") == 1);
  read_outcome reply = read_until_eof(client.fd());
  CHECK(reply.eof);
  CHECK(reply.data.empty());

  // The server is still usable.
  CHECK(reply_to("still?\n") == "echo: still?\n");
}

TEST_CASE("the default handle_error reports the client address and the failure on stderr",
          "[server][pipeline][error]") {
  struct throwing_handler : sockserv::stream_request_handler<> {
    void handle() { throw std::runtime_error("default report check"); }
  };
  sockserv::tcp_server<throwing_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), "x\n");
  const std::string client_name = local_address(client.fd()).to_string().c_str();

  // Capture fd 2 in a temporary file while the request fails.
  char capture_path[] = "/tmp/sockserv-stderr-XXXXXX";
  sockserv::file_descriptor capture(::mkstemp(capture_path));
  REQUIRE(capture.is_open());
  ::unlink(capture_path);
  std::fflush(stderr);
  sockserv::file_descriptor saved(::dup(2));
  REQUIRE(::dup2(capture.fd(), 2) == 2);
  sockserv::result handled = server.handle_request();
  std::fflush(stderr);
  ::dup2(saved.fd(), 2);

  REQUIRE(handled.ok());
  std::string report(4096, '\0');
  ssize_t n = ::pread(capture.fd(), &report[0], report.size(), 0);
  REQUIRE(n > 0);
  report.resize(static_cast<std::size_t>(n));
  CHECK_THAT(report, Contains(client_name));
  CHECK_THAT(report, Contains("default report check"));
  CHECK(read_until_eof(client.fd()).eof);
}

// ---- handle_request and its timeout -------------------------------------------

TEST_CASE_METHOD(pipeline_fixture, "handle_request with a timeout and no client calls handle_timeout and returns",
                 "[server][handle_request][timeout]") {
  server.timeout = 0.05;
  auto start = std::chrono::steady_clock::now();
  sockserv::result outcome = server.handle_request();
  double waited = seconds_since(start);
  CHECK(outcome.ok());
  CHECK(server.count("handle_timeout") == 1);
  CHECK(server.count("setup") == 0);
  CHECK(waited >= 0.045);  // it did wait for a client
  CHECK(waited < 2.0);
}

TEST_CASE_METHOD(pipeline_fixture, "handle_request with a timeout handles a client that comes",
                 "[server][handle_request][timeout]") {
  server.timeout = 5.0;
  CHECK(reply_to("in time\n") == "echo: in time\n");
  CHECK(server.count("handle_timeout") == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "handle_request with a zero timeout does not wait",
                 "[server][handle_request][timeout]") {
  server.timeout = 0.0;
  auto start = std::chrono::steady_clock::now();
  CHECK(server.handle_request().ok());
  CHECK(seconds_since(start) < 0.5);
  CHECK(server.count("handle_timeout") == 1);
}

TEST_CASE_METHOD(pipeline_fixture, "handle_request without a timeout handles a waiting client",
                 "[server][handle_request]") {
  CHECK_FALSE(server.timeout.has_value());
  CHECK(reply_to("no timeout\n") == "echo: no timeout\n");
  CHECK(server.count("handle_timeout") == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "handle_request returns quietly when the client vanished before accept",
                 "[server][handle_request]") {
  {
    // Connect and reset at once (SO_LINGER 0): the listener was readable,
    // but there may be nothing left to accept.
    sockserv::file_descriptor client = connect_to(server.server_address);
    linger reset{1, 0};
    REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
  }
  server.timeout = 1.0;
  CHECK(server.handle_request().ok());
  CHECK(server.count("handle_error") == 0);
  CHECK(reply_to("next\n") == "echo: next\n");
}

// ---- serve_forever ---------------------------------------------------------------

TEST_CASE_METHOD(pipeline_fixture, "serve_forever runs service_actions every poll_interval and ignores timeout",
                 "[server][serve_forever]") {
  server.timeout = 0.001;  // handle_request's; serve_forever must not use it
  serving_thread<recording_server> serving(server, 0.01);
  CHECK(server.wait_for_service_actions(5));  // idle turns: about 50 ms
  CHECK(exchange_stream(server.server_address, "served\n") == "echo: served\n");
  const int after_request = server.service_actions_count();
  CHECK(server.wait_for_service_actions(after_request + 1));
  serving.stop();
  CHECK(serving.outcome().ok());
  CHECK(server.count("handle_timeout") == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "serve_forever runs service_actions after each request", "[server][serve_forever]") {
  serving_thread<recording_server> serving(server, 60.0);  // no idle turns during the test
  for (int i = 1; i <= 3; ++i) {
    CHECK(exchange_stream(server.server_address, "turn\n") == "echo: turn\n");
    CHECK(server.wait_for_service_actions(i));
  }
  serving.stop();
  CHECK(server.service_actions_count() == 3);
}

TEST_CASE_METHOD(pipeline_fixture, "a second serve_forever on the same server is refused while the first runs",
                 "[server][serve_forever]") {
  serving_thread<recording_server> serving(server, 5.0);
  // Once a request was served, the first loop surely runs.
  CHECK(exchange_stream(server.server_address, "first\n") == "echo: first\n");
  auto start = std::chrono::steady_clock::now();
  sockserv::result second = server.serve_forever(5.0);
  CHECK_FALSE(second.ok());
  CHECK_THAT(second.message(), Contains("already running"));
  CHECK(seconds_since(start) < 1.0);
  CHECK(exchange_stream(server.server_address, "still first\n") == "echo: still first\n");
}
