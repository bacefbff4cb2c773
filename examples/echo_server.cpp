// echo_server — one configurable server for tests and benchmarks.
//
//   echo_server --family tcp|udp|unix|unix-dgram --listen ADDR
//               [--mode echo|once] [--policy sync|threading|forking|event]
//               [--poller select|poll|epoll]   (event policy; default epoll)
//   --listen systemd   adopt the listening socket systemd passes (LISTEN_FDS)
//   --inetd            inetd: a stream connection on stdin is served once; a
//                      datagram socket on stdin is served until stopped
// SIGTERM or SIGINT stops it gracefully: no new clients, requests in flight
// get five seconds, then exit 0.
//               [--backlog N]   (listen backlog, request_queue_size; default 5)
//
// ADDR is HOST:PORT (IPv4, "localhost" or "" for any), [IPv6]:PORT, or for
// the unix families a socket path ("@name": Linux abstract name).
//   echo  stream: every line is sent back until the client closes;
//         datagram: every datagram is sent back.
//   once  stream: one line is read and sent back upper-cased, then the
//         connection is closed; datagram: the datagram comes back upper-cased.
// Once bound it prints "listening on ADDR" with the real address (port 0
// shows the port the kernel chose) and serves until SIGTERM or SIGINT (exit
// 0). Exit 1: the server failed; exit 2: bad arguments.
#include <sockserv.hpp>

#include "common/text.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

enum class family { tcp, udp, unix_stream, unix_datagram };
enum class mode { echo, once };
// Where the server socket comes from: bound here, or handed over by a
// service manager (systemd socket activation; inetd on descriptor 0).
enum class socket_source { bind_address, systemd, inetd };

struct options {
  family kind = family::tcp;
  mode reply = mode::echo;
  const char* listen = nullptr;
  char host[64] = {};  // HOST of HOST:PORT, brackets removed
  std::uint16_t port = 0;
  bool ipv6 = false;
  const char* poller = "epoll";
  socket_source source = socket_source::bind_address;
};

// The handlers are built by the server and take no arguments: they read the
// mode from here, which main() sets before serving and never changes.
mode reply_mode = mode::echo;
int listen_backlog = 5;  // --backlog: the server's request_queue_size

using common::ascii_upper;

// Writes text upper-cased to a stream wfile or a datagram wfile, through a
// small stack buffer. Always writes once: an empty datagram gets an empty
// reply, as in echo mode.
template <class Writer>
void write_upper(Writer& out, std::string_view text) {
  char chunk[512];
  do {
    std::size_t n = text.size() < sizeof chunk ? text.size() : sizeof chunk;
    for (std::size_t i = 0; i < n; ++i) chunk[i] = ascii_upper(text[i]);
    if (out.write(chunk, n) == -1) return;
    text.remove_prefix(n);
  } while (!text.empty());
}

struct stream_echo : sockserv::stream_request_handler<> {
  void handle() {
    if (reply_mode == mode::once) {
      write_upper(wfile, rfile.readline());
      return;  // the server closes the connection
    }
    // A line longer than rfile's buffer comes in pieces; each is echoed.
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline())
      if (wfile.write(line) == -1) return;  // the client went away
  }
};

// The same service for the event loop: the loop hands over whole lines.
struct event_echo : sockserv::event_request_handler<sockserv::line_framing<>, 1024, 2048> {
  void handle_message(std::string_view line) {
    // The loop hands over a message only while the output has room for
    // reply_reserve bytes, so a refused reply would be a bug: drop the client.
    if (reply_mode == mode::echo) {
      if (!write(line)) abort();
      return;
    }
    char upper[input_capacity];
    for (std::size_t i = 0; i < line.size(); ++i) upper[i] = ascii_upper(line[i]);
    if (!write(upper, line.size())) abort();
    close();  // once: one line, then the connection ends
  }
};

// Stream handler per policy: the event loop needs a handler that never blocks.
template <class Concurrency>
struct stream_handler_for {
  using type = stream_echo;
};
template <template <std::size_t> class Poller, std::size_t Capacity>
struct stream_handler_for<sockserv::event_loop<Poller, Capacity>> {
  using type = event_echo;
};

struct datagram_echo : sockserv::datagram_request_handler<> {
  // finish() sends what was written to wfile back to client_address.
  void handle() {
    if (reply_mode == mode::once)
      write_upper(wfile, packet);
    else
      wfile.write(packet);
  }
};

// The signal handler is installed before the server exists: a signal that
// comes first is remembered and honoured as soon as serving starts.
std::atomic<bool> stop_requested{false};
std::atomic<sockserv::server_base*> running{nullptr};
pid_t server_process = 0;
extern "C" void stop(int signal_number) {
  // A request child of --policy forking inherits this handler. There the
  // signal ends the child as if there were no handler; it must not wake the
  // parent's loop through the wake-up pipe they share.
  if (::getpid() != server_process) {
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
    return;
  }
  stop_requested = true;
  if (sockserv::server_base* server = running.load()) server->request_shutdown();  // async-signal-safe
}

// SIGUSR1: the server's counters, one line on stderr. Written with write()
// and hand-made decimals: printf is not async-signal-safe, the counters are.
void append_counter(char*& out, const char* name, unsigned long value) {
  while (*name != '\0') *out++ = *name++;
  char digits[24];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0) *out++ = digits[--n];
}
extern "C" void print_stats(int) {
  sockserv::server_base* server = running.load();
  if (server == nullptr || ::getpid() != server_process) return;
  const sockserv::server_stats s = server->stats();
  char line[512];
  char* out = line;
  append_counter(out, "stats: accepted=", s.accepted);
  append_counter(out, " refused_verify=", s.refused_verify);
  append_counter(out, " refused_per_address=", s.refused_per_address);
  append_counter(out, " refused_busy=", s.refused_busy);
  append_counter(out, " refused_table_full=", s.refused_table_full);
  append_counter(out, " timed_out=", s.timed_out);
  append_counter(out, " evicted=", s.evicted);
  append_counter(out, " failed=", s.failed);
  append_counter(out, " peak_in_flight=", s.peak_in_flight);
  *out++ = '\n';
  const int saved = errno;
  (void)!::write(2, line, static_cast<std::size_t>(out - line));
  errno = saved;
}

int usage(const char* message);

// The constructor failed: a bad address (a failure without errno, code -1)
// is a usage error, anything else (socket() refused) a server failure. With
// exceptions enabled the same failure arrives as a socket_error, see main().
int construction_failed(const sockserv::result& failure) {
  if (failure.code() == -1) return usage(failure.message());
  std::fprintf(stderr, "echo_server: %s\n", failure.message());
  return 1;
}

// The server object is placed in its own anonymous mapping rather than on
// the stack: an event loop's connection table for ten thousand clients is
// tens of megabytes, of which only the pages in use become resident.
template <class Server>
struct mapped_server {
  void* memory = ::mmap(nullptr, sizeof(Server), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Server* server = nullptr;
  mapped_server(const mapped_server&) = delete;
  mapped_server& operator=(const mapped_server&) = delete;
  template <class... Arguments>
  explicit mapped_server(const Arguments&... arguments) {
    if (memory != MAP_FAILED) server = ::new (memory) Server(arguments...);
  }
  ~mapped_server() {
    if (server != nullptr) server->~Server();
    if (memory != MAP_FAILED) ::munmap(memory, sizeof(Server));
  }
};

// Seconds a stop (SIGTERM, SIGINT) gives requests in flight to finish.
constexpr double stop_deadline = 5.0;

// inetd "nowait": the connection is on descriptor 0 (and 1); serve it once.
// Nothing is printed: standard output is the client.
template <class Server>
int serve_inetd_connection() {
  mapped_server<Server> placed(sockserv::no_socket);
  if (placed.server == nullptr) return 1;
  sockserv::result served = placed.server->serve_connection(0);
  if (!served) std::fprintf(stderr, "echo_server: %s\n", served.message());
  return served ? 0 : 1;
}

// Serves until SIGTERM/SIGINT, then stops gracefully: no new clients,
// requests in flight get stop_deadline seconds.
template <class Server>
int serve_until_stopped(Server& server, bool announce) {
  if (announce) {
    std::printf("listening on %s\n", server.server_address.to_string().c_str());
    std::fflush(stdout);  // whoever started us waits for this line
  }
  running = &server;
  if (stop_requested) server.request_shutdown();
  sockserv::result served = server.serve_forever();
  running = nullptr;
  const bool finished = server.graceful_close(stop_deadline);
  if (!served) {
    std::fprintf(stderr, "echo_server: %s\n", served.message());
    return 1;
  }
  if (!finished) std::fprintf(stderr, "echo_server: requests still running after %.0f s were ended\n", stop_deadline);
  return 0;
}

// Binds (or adopts the socket systemd or inetd handed over), prints the
// address, serves until a signal. Any server type.
template <class Server>
int serve(const options& o, const typename Server::endpoint& where) {
  if (o.source == socket_source::inetd) {
    if constexpr (Server::socket_type == SOCK_STREAM) return serve_inetd_connection<Server>();
  }
  int handed_over = -1;
  if (o.source == socket_source::systemd) {
    if (sockserv::systemd_listen_fds() < 1) return usage("--listen systemd: no socket from systemd (LISTEN_FDS)");
    handed_over = sockserv::systemd_first_fd;
  } else if (o.source == socket_source::inetd) {
    handed_over = 0;  // inetd "wait" mode: the bound datagram socket
  }
  mapped_server<Server> placed = handed_over >= 0 ? mapped_server<Server>(sockserv::adopt_socket, handed_over)
                                                  : mapped_server<Server>(where, false);
  if (placed.server == nullptr) {
    std::perror("echo_server: mmap");
    return 1;
  }
  Server& server = *placed.server;
  if (!server) return construction_failed(server.error());
  if (handed_over < 0) {  // bind by hand, after setting SO_REUSEADDR
    if constexpr (Server::address_family != AF_UNIX) server.allow_reuse_address = true;
    server.request_queue_size = listen_backlog;
    sockserv::result ready = server.server_bind();
    if (ready) ready = server.server_activate();
    if (!ready) {
      std::fprintf(stderr, "echo_server: %s\n", ready.message());
      return 1;
    }
  }
  return serve_until_stopped(server, o.source != socket_source::inetd);
}

template <class Concurrency>
int serve_family(const options& o) {
  using namespace sockserv;
  using stream_handler = typename stream_handler_for<Concurrency>::type;
  const inet_endpoint ip{o.host, o.port};
  switch (o.kind) {
    case family::tcp:
      return o.ipv6 ? serve<basic_server<inet6, stream, stream_handler, Concurrency>>(o, ip)
                    : serve<basic_server<inet4, stream, stream_handler, Concurrency>>(o, ip);
    case family::udp:
      return o.ipv6 ? serve<basic_server<inet6, datagram<>, datagram_echo, Concurrency>>(o, ip)
                    : serve<basic_server<inet4, datagram<>, datagram_echo, Concurrency>>(o, ip);
    case family::unix_stream:
      return serve<basic_server<unix_socket, stream, stream_handler, Concurrency>>(o, o.listen);
    case family::unix_datagram:
      return serve<basic_server<unix_socket, datagram<>, datagram_echo, Concurrency>>(o, o.listen);
  }
  return 2;
}

// --policy NAME: one line per concurrency policy.
struct policy_entry {
  const char* name;
  int (*run)(const options&);
};
// --policy event: up to 10240 connections at once (select: FD_SETSIZE).
constexpr std::size_t event_capacity = 10240;
int serve_event(const options& o) {
  using namespace sockserv;
  if (std::strcmp(o.poller, "select") == 0) return serve_family<event_loop<select_poller, FD_SETSIZE>>(o);
  if (std::strcmp(o.poller, "poll") == 0) return serve_family<event_loop<poll_poller, event_capacity>>(o);
#ifdef __linux__
  if (std::strcmp(o.poller, "epoll") == 0) return serve_family<event_loop<epoll_poller, event_capacity>>(o);
#endif
  return usage("unknown poller");
}

const policy_entry policies[] = {
    {"sync", &serve_family<sockserv::synchronous>},
    {"threading", &serve_family<sockserv::threading<>>},
    {"threading-64", &serve_family<sockserv::threading<64>>},  // benchmarks: 64 persistent clients
    {"forking", &serve_family<sockserv::forking<>>},
    {"event", &serve_event},
};

int usage(const char* message) {
  if (message) std::fprintf(stderr, "echo_server: %s\n", message);
  std::fprintf(stderr,
               "usage: echo_server --family tcp|udp|unix|unix-dgram --listen ADDR\n"
               "                   [--mode echo|once] [--policy NAME] [--poller select|poll|epoll]\n"
               "       echo_server [--family F] --listen systemd ... (a socket from systemd)\n"
               "       echo_server [--family F] --inetd ...          (inetd: the socket is stdin)\n"
               "  (without --family: the handed-over socket's own family and type)\n"
               "                   [--backlog N]\n"
               "  ADDR: HOST:PORT, [IPv6]:PORT, or a unix socket path\n"
               "  NAME:");
  for (const policy_entry& p : policies) std::fprintf(stderr, " %s", p.name);
  std::fprintf(stderr, " (default sync)\n");
  return 2;
}

// HOST:PORT or [IPv6]:PORT into o.host / o.port / o.ipv6.
bool split_host_port(const char* text, options& o) {
  return common::split_host_port(text, o.host, sizeof o.host, o.port, &o.ipv6);
}

// --listen systemd / --inetd without --family: the handed-over socket says
// what it is (its address family and socket type). False if fd is no socket.
bool family_of_descriptor(int fd, options& o) {
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  int type = 0;
  socklen_t type_length = sizeof type;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0)
    return false;
  bool stream = type == SOCK_STREAM;
  if (local.ss_family == AF_UNIX) o.kind = stream ? family::unix_stream : family::unix_datagram;
  else if (local.ss_family == AF_INET || local.ss_family == AF_INET6) o.kind = stream ? family::tcp : family::udp;
  else return false;
  o.ipv6 = local.ss_family == AF_INET6;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  const policy_entry* policy = &policies[0];
  bool have_family = false;
  for (int i = 1; i < argc; ++i) {
    const char* option = argv[i];
    if (std::strcmp(option, "--inetd") == 0) {  // the one option without a value
      o.source = socket_source::inetd;
      continue;
    }
    const char* value = i + 1 < argc ? argv[++i] : nullptr;
    if (value == nullptr) return usage("missing value after an option");
    if (std::strcmp(option, "--family") == 0) {
      have_family = true;
      if (std::strcmp(value, "tcp") == 0) o.kind = family::tcp;
      else if (std::strcmp(value, "udp") == 0) o.kind = family::udp;
      else if (std::strcmp(value, "unix") == 0) o.kind = family::unix_stream;
      else if (std::strcmp(value, "unix-dgram") == 0) o.kind = family::unix_datagram;
      else return usage("unknown family");
    } else if (std::strcmp(option, "--listen") == 0) {
      o.listen = value;
    } else if (std::strcmp(option, "--mode") == 0) {
      if (std::strcmp(value, "echo") == 0) o.reply = mode::echo;
      else if (std::strcmp(value, "once") == 0) o.reply = mode::once;
      else return usage("unknown mode");
    } else if (std::strcmp(option, "--poller") == 0) {
      o.poller = value;
    } else if (std::strcmp(option, "--backlog") == 0) {
      listen_backlog = std::atoi(value);
    } else if (std::strcmp(option, "--policy") == 0) {
      policy = nullptr;
      for (const policy_entry& p : policies)
        if (std::strcmp(value, p.name) == 0) policy = &p;
      if (policy == nullptr) return usage("unknown policy");
    } else {
      return usage("unknown option");
    }
  }
  if (o.listen != nullptr && std::strcmp(o.listen, "systemd") == 0) o.source = socket_source::systemd;
  if (!have_family && o.source != socket_source::bind_address) {
    int handed_over = o.source == socket_source::systemd ? sockserv::systemd_first_fd : 0;
    if (!family_of_descriptor(handed_over, o)) return usage("the handed-over descriptor is not a socket");
    have_family = true;
  }
  if (!have_family || (o.listen == nullptr && o.source == socket_source::bind_address))
    return usage("--family and --listen (or --inetd) are required");
  bool ip = o.kind == family::tcp || o.kind == family::udp;
  if (ip && o.source == socket_source::bind_address && !split_host_port(o.listen, o))
    return usage("--listen wants HOST:PORT, [IPv6]:PORT or systemd");
  reply_mode = o.reply;

  server_process = ::getpid();
  struct sigaction on_stop {};
  on_stop.sa_handler = stop;
  on_stop.sa_flags = SA_RESTART;
  sigaction(SIGINT, &on_stop, nullptr);
  sigaction(SIGTERM, &on_stop, nullptr);
  struct sigaction on_usr1 {};
  on_usr1.sa_handler = print_stats;
  on_usr1.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &on_usr1, nullptr);

#if SOCKSERV_EXCEPTIONS
  try {
    return policy->run(o);
  } catch (const sockserv::socket_error& failure) {  // from a server constructor
    return construction_failed(failure.failure());
  }
#else
  return policy->run(o);
#endif
}
