// examples/common/seed_server.hpp — what the seed's servers do around their
// handler, written once:
//   port_argument()       the optional [PORT] argument;
//   serve_until_signal()  bind with SO_REUSEADDR, print "listening on ADDR",
//                         serve until Ctrl-C or SIGTERM (the uppercase servers);
//   start_serve_forever() serve_forever() on a thread of its own (the
//                         ThreadingMixIn / ForkingMixIn examples).
#pragma once

#include <sockserv.hpp>

#include "text.hpp"

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <pthread.h>

namespace common {

// The servers' one optional argument, [PORT] (0 lets the kernel choose):
// port keeps its default when there is none. False after printing the
// usage line (the caller exits 2).
inline bool port_argument(int argc, char** argv, std::uint16_t& port) {
  if (argc < 2 || (argc == 2 && parse_port(argv[1], port))) return true;
  write(stderr, "usage: ", argv[0], " [PORT]\n");
  return false;
}

// "program: what failed" on stderr ("tcp_uppercase: bind 127.0.0.1:9999:
// Address already in use"); returns the exit status, 1.
inline int failed(const char* program, const sockserv::result& failure) {
  write(stderr, program, ": ", failure.message(), "\n");
  return 1;
}

// request_shutdown() is async-signal-safe: it sets a flag and writes one
// byte to the server's wake-up pipe, so serve_forever() returns at once.
inline std::atomic<sockserv::server_base*> running{nullptr};
extern "C" inline void stop_running_server(int) {
  if (sockserv::server_base* server = running.load()) server->request_shutdown();
}

// The seed's `with Server((HOST, PORT), Handler) as server:
// server.serve_forever()`, stopping cleanly (exit 0) on Ctrl-C or SIGTERM.
// The server comes constructed with bind_and_activate = false: SO_REUSEADDR
// must be set before bind, so a restarted server does not fail on the
// previous run's TIME_WAIT sockets. Returns the exit status: 0 after a
// signal, 1 when binding or serving failed.
template <class Server>
int serve_until_signal(Server& server, const char* program) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // show each line at once, even into a pipe
  server.allow_reuse_address = true;
  sockserv::result outcome = server ? server.server_bind() : server.error();
  if (outcome) outcome = server.server_activate();  // UDP: nothing to listen() for, but harmless
  if (outcome) {
    print("listening on ", server.server_address.to_string().c_str());  // port 0: the chosen port
    running = &server;
    struct sigaction on_stop {};
    on_stop.sa_handler = stop_running_server;
    on_stop.sa_flags = SA_RESTART;
    sigaction(SIGINT, &on_stop, nullptr);
    sigaction(SIGTERM, &on_stop, nullptr);
    outcome = server.serve_forever();
    running = nullptr;
  }
  return outcome ? 0 : failed(program, outcome);
}

// threading.Thread(target=server.serve_forever).start(): false if the
// thread could not be made. server.shutdown() ends the loop; join the
// thread after it.
template <class Server>
bool start_serve_forever(Server& server, pthread_t& thread) {
  void* (*serve)(void*) = [](void* argument) -> void* {
    sockserv::result served = static_cast<Server*>(argument)->serve_forever();
    if (!served) write(stderr, "serve_forever: ", served.message(), "\n");
    return nullptr;
  };
  return pthread_create(&thread, nullptr, serve, &server) == 0;
}

}  // namespace common
