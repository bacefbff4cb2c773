// examples/common/embedded_echo.hpp — what the embed_* examples serve inside
// their host's main loop: an event-loop echo server on a sockserv loop that
// Ctrl-C and SIGTERM ask to stop (loop.shutdown_requested() turns true).
#pragma once

#include <sockserv.hpp>

#include "seed_server.hpp"

#include <csignal>
#include <cstdint>
#include <cstdio>

namespace common {

struct line_echo : sockserv::event_request_handler<> {
  void handle_message(std::string_view line) {
    if (!write(line)) close();  // a client that does not read its replies is let go
  }
};

class embedded_echo {
 public:
  sockserv::basic_loop<> loop;  // epoll; first, so destroyed last

  explicit embedded_echo(std::uint16_t port) : server_({"localhost", port}) {}

  // Joins the server to the loop, watches the signals and prints "listening
  // on ADDR". False after printing why it could not.
  bool start(const char* program) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    sockserv::result ready = server_ ? loop.add(server_) : server_.error();
    if (ready) ready = interrupt_.start(loop, SIGINT, [this](int) { loop.request_shutdown(); });
    if (ready) ready = terminate_.start(loop, SIGTERM, [this](int) { loop.request_shutdown(); });
    if (!ready) return failed(program, ready) == 0;
    std::printf("listening on %s\n", server_.server_address.to_string().c_str());
    return true;
  }

 private:
  sockserv::basic_server<sockserv::inet4, sockserv::stream, line_echo, sockserv::event_loop<>> server_;
  sockserv::signal_watcher interrupt_, terminate_;
};

}  // namespace common
