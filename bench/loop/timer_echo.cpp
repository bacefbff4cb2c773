// bench/loop/timer_echo.cpp — the event-loop line echo (as examples/
// echo_server --policy event) with per-connection timers, for measuring
// what armed timers cost a request.
//
//   timer_echo --listen 127.0.0.1:PORT [--timers none|idle|restart] [--backlog N]
//
//   none     no timer: the plain echo.
//   idle     every connection has an idle timeout (the handler's `timeout`,
//            60 s): one armed timer per connection, kept by the loop (a
//            message only notes the time; the timer is re-armed when it
//            fires early).
//   restart  every connection owns a sockserv::timer of 60 s that each
//            message restarts (cancel + start in the loop's heap): the
//            worst case of "restart cheaply".
// Up to 10 240 connections, so 10 000 idle ones plus the active clients fit.
#include <sockserv.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>

namespace {

enum class timers { none, idle, restart } mode = timers::none;
constexpr double idle_seconds = 60;
constexpr std::size_t capacity = 10240;

struct echo : sockserv::event_request_handler<sockserv::line_framing<>, 1024, 2048> {
  sockserv::timer idle;
  void setup() {
    if (mode == timers::idle) timeout = idle_seconds;
    if (mode == timers::restart) {
      idle.bind(loop(), [this] { close(); });
      idle.start(static_cast<std::int64_t>(idle_seconds * 1000));
    }
  }
  void handle_message(std::string_view line) {
    if (mode == timers::restart) idle.start(static_cast<std::int64_t>(idle_seconds * 1000));
    if (!write(line)) abort();  // cannot happen: a message is handed over only with room for the reply
  }
};

using server_type = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo,
                                           sockserv::event_loop<sockserv::epoll_poller, capacity>>;

sockserv::server_base* running = nullptr;
extern "C" void on_stop(int) {
  if (running) running->request_shutdown();
}

}  // namespace

int main(int argc, char** argv) {
  const char* where = nullptr;
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--listen")) where = argv[i + 1];
    else if (!std::strcmp(argv[i], "--backlog")) backlog = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--timers"))
      mode = !std::strcmp(argv[i + 1], "idle") ? timers::idle
             : !std::strcmp(argv[i + 1], "restart") ? timers::restart : timers::none;
  }
  if (!where || !std::strrchr(where, ':')) {
    std::fprintf(stderr, "usage: timer_echo --listen 127.0.0.1:PORT [--timers none|idle|restart] [--backlog N]\n");
    return 2;
  }
  std::string host(where, static_cast<std::size_t>(std::strrchr(where, ':') - where));
  const auto port = static_cast<unsigned short>(std::atoi(std::strrchr(where, ':') + 1));
  rlimit files{};  // room for every connection of the table
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < capacity + 64) {
    files.rlim_cur = files.rlim_max < capacity + 64 ? files.rlim_max : capacity + 64;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // Its own mapping: the table is tens of MiB, of which only used pages become resident.
  void* memory = ::mmap(nullptr, sizeof(server_type), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return 1;
  auto* server = ::new (memory) server_type(sockserv::inet_endpoint{host.c_str(), port}, false);
  server->allow_reuse_address = true;
  server->request_queue_size = backlog;
  if (!server->server_bind() || !server->server_activate()) {
    std::fprintf(stderr, "timer_echo: %s\n", server->error().message());
    return 1;
  }
  std::printf("listening on %s\n", server->server_address.to_string().c_str());
  std::fflush(stdout);
  running = server;
  std::signal(SIGTERM, on_stop);
  sockserv::result served = server->serve_forever();
  std::fprintf(stderr, "armed timers at exit: %zu\n", server->loop().timers().armed_count());
  return served ? 0 : 1;
}
