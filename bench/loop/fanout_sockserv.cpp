// bench/loop/fanout_sockserv.cpp — the broadcast server on sockserv's event
// loop: every complete line a client sends goes to every other client
// through server.broadcast_if(); what a subscriber's output cannot take is
// refused and counted (printed on exit).
//
//   fanout_sockserv --listen 127.0.0.1:PORT [--backlog N] [--poller epoll|poll]
#include <sockserv.hpp>

#include <csignal>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

constexpr std::size_t capacity = 1100;  // 1 000 subscribers, a sender, room to spare

struct chat;
template <template <std::size_t> class Poller>
using chat_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, chat,
                                           sockserv::event_loop<Poller, capacity>>;

std::uint64_t lost = 0;  // writes refused for want of room
void (*broadcast_line)(chat& from, std::string_view line) = nullptr;

struct chat : sockserv::event_request_handler<sockserv::line_framing<>, 2048, 4096> {
  void setup() { (void)request.set_option(IPPROTO_TCP, TCP_NODELAY, 1); }  // as every server of the benchmark does
  void handle_message(std::string_view line) { broadcast_line(*this, line); }
};

template <template <std::size_t> class Poller>
void broadcast_from(chat& from, std::string_view line) {
  auto& server = from.server_as<chat_server<Poller>>();
  sockserv::broadcast_result r = server.broadcast_if(line, [&](const chat& to) { return &to != &from; });
  lost += r.refused + r.dropped + r.closed;
}

sockserv::server_base* running = nullptr;
extern "C" void on_stop(int) {
  if (running) running->request_shutdown();
}

template <template <std::size_t> class Poller>
int serve(const char* where, int backlog) {
  std::string host(where, static_cast<std::size_t>(std::strrchr(where, ':') - where));
  const auto port = static_cast<unsigned short>(std::atoi(std::strrchr(where, ':') + 1));
  // Heap, before serving: the table of 1 100 connections is several MiB.
  auto server = std::make_unique<chat_server<Poller>>(sockserv::inet_endpoint{host.c_str(), port}, false);
  server->allow_reuse_address = true;
  server->request_queue_size = backlog;
  if (!server->server_bind() || !server->server_activate()) {
    std::fprintf(stderr, "fanout_sockserv: %s\n", server->error().message());
    return 1;
  }
  broadcast_line = &broadcast_from<Poller>;
  std::printf("listening on %s\n", server->server_address.to_string().c_str());
  std::fflush(stdout);
  running = server.get();
  std::signal(SIGTERM, on_stop);
  sockserv::result served = server->serve_forever();
  std::fprintf(stderr, "refused %llu\n", static_cast<unsigned long long>(lost));
  return served ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* where = nullptr;
  const char* poller = "epoll";
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--listen")) where = argv[i + 1];
    else if (!std::strcmp(argv[i], "--backlog")) backlog = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--poller")) poller = argv[i + 1];
  }
  if (!where || !std::strrchr(where, ':')) {
    std::fprintf(stderr, "usage: fanout_sockserv --listen 127.0.0.1:PORT [--backlog N] [--poller epoll|poll]\n");
    return 2;
  }
  if (!std::strcmp(poller, "poll")) return serve<sockserv::poll_poller>(where, backlog);
  return serve<sockserv::epoll_poller>(where, backlog);
}
