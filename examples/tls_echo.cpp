// tls_echo — a TLS 1.2 line echo server over BearSSL.
//
//   tls_echo --listen HOST:PORT --cert CHAIN.pem --key KEY.pem
//            [--client-ca CA.pem] [--policy threading|sync|forking|event]
//            [--handshake-timeout MS]
//
// Prints "listening on HOST:PORT" (port 0 shows the port chosen), then
// echoes every line of every client. With --client-ca a client must present
// a certificate signed by that CA; each client's verified subject is
// logged ("client 127.0.0.1:PORT subject CN=..."). A failed handshake is
// logged by handle_error and the server goes on. SIGTERM/SIGINT stop it
// (exit 0). Exit 1: the server failed; exit 2: bad arguments.
// --policy event serves every client from one thread (event_loop, 64
// connections at once, each slot holding its TLS session).
#include <sockserv/tls.hpp>

#include "common/text.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

using tls = sockserv::tls_stream<>;

// curl's first line: answered as HTTP. (No string_view::substr: it may
// throw, which a static musl build cannot link.)
bool is_http_get(std::string_view line) { return line.size() >= 4 && std::memcmp(line.data(), "GET ", 4) == 0; }

struct tls_echo_handler : sockserv::stream_request_handler<> {
  void handle() {
    sockserv::tls::session_core* session = sockserv::tls::session_of(request);
    if (session != nullptr && tls::context().requires_client_certificates())
      std::fprintf(stderr, "client %s subject %s%s\n", client_address.to_string().c_str(), session->peer_subject(),
                   session->resumed() ? " (resumed)" : "");
    std::string_view line = rfile.readline();
    if (is_http_get(line)) {
      wfile.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
      wfile.write(line);
      return;
    }
    for (; !line.empty(); line = rfile.readline())
      if (wfile.write(line) == -1) return;
    if (rfile.error() != 0 && session != nullptr && session->failed()) {
      char reason[128];
      std::fprintf(stderr, "client %s: %s\n", client_address.to_string().c_str(),
                   session->describe_failure(reason, sizeof reason));
    }
  }
};

// The same service for the event loop: the handshake is done by setup().
struct tls_echo_event_handler : sockserv::event_request_handler<> {
  void setup() {
    sockserv::tls::session_core* session = sockserv::tls::session_of(request);
    if (session != nullptr && tls::context().requires_client_certificates())
      std::fprintf(stderr, "client %s subject %s%s\n", client_address.to_string().c_str(), session->peer_subject(),
                   session->resumed() ? " (resumed)" : "");
  }
  void handle_message(std::string_view line) {
    if (first_ && is_http_get(line)) {
      (void)write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
      (void)write(line);
      return close();
    }
    first_ = false;
    if (!write(line)) abort();
  }
  bool first_ = true;
};

std::atomic<sockserv::server_base*> running{nullptr};
std::atomic<bool> stop_requested{false};
extern "C" void stop(int) {
  stop_requested = true;
  if (sockserv::server_base* server = running.load()) server->request_shutdown();
}

int usage(const char* message) {
  std::fprintf(stderr,
               "tls_echo: %s\nusage: tls_echo --listen HOST:PORT --cert CHAIN.pem --key KEY.pem "
               "[--client-ca CA.pem] [--policy threading|sync|forking|event] [--handshake-timeout MS]\n",
               message);
  return 2;
}

template <class Server>
int run(Server& server) {
  if (!server) {
    std::fprintf(stderr, "tls_echo: %s\n", server.error().message());
    return 1;
  }
  std::printf("listening on %s\n", server.server_address.to_string().c_str());
  std::fflush(stdout);
  running = &server;
  if (stop_requested) server.request_shutdown();
  sockserv::result served = server.serve_forever();
  running = nullptr;
  if (!served) {
    std::fprintf(stderr, "tls_echo: %s\n", served.message());
    return 1;
  }
  return 0;
}

template <class Concurrency>
int serve(const char* host, std::uint16_t port) {
  sockserv::basic_server<sockserv::inet4, tls, tls_echo_handler, Concurrency> server({host, port});
  return run(server);
}

// 64 slots of about 48 KB (a TLS session and the handler's buffers): too
// large for the stack, so the event server is static.
int serve_event(const char* host, std::uint16_t port) {
  using server_type =
      sockserv::basic_server<sockserv::inet4, tls, tls_echo_event_handler, sockserv::event_loop<sockserv::epoll_poller, 64>>;
  static server_type server({host, port});
  return run(server);
}

int serve_with(const char* policy, const char* host, std::uint16_t port) {
  if (std::strcmp(policy, "threading") == 0) return serve<sockserv::threading<>>(host, port);
  if (std::strcmp(policy, "sync") == 0) return serve<sockserv::synchronous>(host, port);
  if (std::strcmp(policy, "forking") == 0) return serve<sockserv::forking<>>(host, port);
  if (std::strcmp(policy, "event") == 0) return serve_event(host, port);
  return usage("--policy is threading, sync, forking or event");
}

}  // namespace

int main(int argc, char** argv) {
  const char *listen = nullptr, *cert = nullptr, *key = nullptr, *client_ca = nullptr, *policy = "threading",
             *handshake_ms = nullptr;
  for (int i = 1; i < argc; ++i) {
    const char* option = argv[i];
    if (i + 1 >= argc) return usage("every option takes a value");
    const char* value = argv[++i];
    if (std::strcmp(option, "--listen") == 0) listen = value;
    else if (std::strcmp(option, "--cert") == 0) cert = value;
    else if (std::strcmp(option, "--key") == 0) key = value;
    else if (std::strcmp(option, "--client-ca") == 0) client_ca = value;
    else if (std::strcmp(option, "--policy") == 0) policy = value;
    else if (std::strcmp(option, "--handshake-timeout") == 0) handshake_ms = value;
    else return usage("unknown option");
  }
  if (listen == nullptr || cert == nullptr || key == nullptr) return usage("--listen, --cert and --key are required");
  const char* colon = std::strrchr(listen, ':');
  std::uint16_t port = 0;
  char host[64] = {};
  if (colon == nullptr || static_cast<std::size_t>(colon - listen) >= sizeof host || !common::parse_port(colon + 1, port))
    return usage("--listen wants HOST:PORT");
  std::memcpy(host, listen, static_cast<std::size_t>(colon - listen));
  if (handshake_ms != nullptr) {
    std::uint16_t ms = 0;
    if (!common::parse_port(handshake_ms, ms) || ms == 0) return usage("--handshake-timeout wants 1..65535 ms");
    tls::context().handshake_timeout_ms = ms;
  }

  sockserv::result loaded = tls::context().load_pem_files(cert, key);
  if (loaded && client_ca != nullptr) loaded = tls::context().require_client_certificates(client_ca);
  if (!loaded) {
    std::fprintf(stderr, "tls_echo: %s\n", loaded.message());
    return 1;
  }

  struct sigaction on_stop {};
  on_stop.sa_handler = &stop;
  sigaction(SIGINT, &on_stop, nullptr);
  sigaction(SIGTERM, &on_stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

#if SOCKSERV_EXCEPTIONS
  try {
    return serve_with(policy, host, port);
  } catch (const sockserv::socket_error& failure) {  // from the server constructor
    std::fprintf(stderr, "tls_echo: %s\n", failure.what());
    return 1;
  }
#else
  return serve_with(policy, host, port);
#endif
}
