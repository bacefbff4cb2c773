// chat_server — a line chat on one event loop: connection handles,
// broadcasts, what happens to a client that stops reading, a timer and
// signal watchers.
//
//   chat_server --listen HOST:PORT [--tick-ms N] [--slow drop|close]
//
// Prints "listening on HOST:PORT". Each client is greeted with
// "welcome <id>"; the others hear "joined <id>" and "left <id>". Every line
// L a client sends (up to 4 KiB) goes to every other client as "<id>: L";
// "/who" is answered with "who <count>" (the clients connected, the asker
// included). With --tick-ms N every client gets "tick <n>" every N ms.
//
// A client that stops reading never delays the others: what does not fit
// its output buffer follows --slow. drop (the default): that client misses
// the message, counted; close: it is disconnected at once. SIGTERM or SIGINT
// stops the server gracefully (every client's queued output gets two
// seconds); it then prints the counts and exits 0. Exit 1: the server
// failed; exit 2: bad arguments.
#include <sockserv.hpp>

#include "common/text.hpp"

#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

constexpr std::size_t max_line = 4096;  // longer lines arrive (and are relayed) in pieces
// Up to 10240 clients (the connection table lives in static storage, and
// only the buffers of connections in use become resident). The output
// buffer holds a few of the longest relays; a client that lets more pile up
// is slow.
constexpr std::size_t max_clients = 10240;
constexpr std::size_t output_size = 16 * 1024;
constexpr double stop_deadline = 2.0;

struct chat_client
    : sockserv::event_request_handler<sockserv::line_framing<'\n'>, max_line + 1, output_size> {
  void setup();
  void handle_message(std::string_view line);
  void finish();

 private:
  void tell_others(std::string_view text);
};

using chat_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, chat_client,
                                           sockserv::event_loop<sockserv::default_poller, max_clients>>;

chat_server& server_of(const chat_client& client) { return client.server_as<chat_server>(); }

// Writes "<prefix><number><suffix>" into out; returns its length.
std::size_t numbered(char* out, std::size_t size, const char* prefix, std::uint64_t number, const char* suffix) {
  const int n = std::snprintf(out, size, "%s%" PRIu64 "%s", prefix, number, suffix);
  if (n < 0) return 0;
  return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

void chat_client::setup() {
  char text[64];
  std::printf("client %" PRIu64 " joined from %s\n", id().number(), client_address.to_string().c_str());
  // The output is empty: the greeting fits, so a refusal would be a bug.
  if (!write({text, numbered(text, sizeof text, "welcome ", id().number(), "\n")})) abort();
  tell_others({text, numbered(text, sizeof text, "joined ", id().number(), "\n")});
}

void chat_client::handle_message(std::string_view line) {
  // The loop hands over a line only while this client's output has room
  // for a reply, so the answer to /who always fits.
  if (line == "/who\n" || line == "/who") {
    char text[64];
    if (!write({text, numbered(text, sizeof text, "who ", server_of(*this).active_connections(), "\n")})) abort();
    return;
  }
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  char relay[32 + max_line + 1];
  std::size_t length = numbered(relay, sizeof relay, "", id().number(), ": ");
  std::memcpy(relay + length, line.data(), line.size());
  length += line.size();
  relay[length++] = '\n';
  tell_others({relay, length});
}

// Runs as the connection closes, whoever closes it: the slot no longer
// counts as open, so the broadcast skips it.
void chat_client::finish() {
  char text[64];
  std::printf("client %" PRIu64 " left (%" PRIu64 " messages dropped)\n", id().number(), dropped_writes());
  tell_others({text, numbered(text, sizeof text, "left ", id().number(), "\n")});
}

// Each target under its own overflow policy (the server's, --slow): a
// target without room drops the message or is disconnected, and neither
// holds up the sender or anyone else.
void chat_client::tell_others(std::string_view text) {
  const sockserv::connection_id me = id();
  (void)server_of(*this).broadcast_if(text, [me](const chat_client& other) { return other.id() != me; });
}

int usage(const char* message) {
  if (message) std::fprintf(stderr, "chat_server: %s\n", message);
  std::fprintf(stderr, "usage: chat_server --listen HOST:PORT [--tick-ms N] [--slow drop|close]\n");
  return 2;
}

struct options {
  char host[64] = {};
  std::uint16_t port = 0;
  long tick_ms = 0;  // 0: no ticks
  sockserv::overflow_policy slow = sockserv::overflow_policy::drop;
};

int parse(int argc, char** argv, options& o) {
  bool listen = false;
  for (int i = 1; i < argc; ++i) {
    const char* option = argv[i];
    const char* value = i + 1 < argc ? argv[++i] : nullptr;
    if (value == nullptr) return usage("missing value after an option");
    if (std::strcmp(option, "--listen") == 0) {
      if (!common::split_host_port(value, o.host, sizeof o.host, o.port)) return usage("--listen wants HOST:PORT");
      listen = true;
    } else if (std::strcmp(option, "--tick-ms") == 0) {
      char* end = nullptr;
      o.tick_ms = std::strtol(value, &end, 10);
      if (*value == '\0' || *end != '\0' || o.tick_ms <= 0) return usage("--tick-ms wants a positive number");
    } else if (std::strcmp(option, "--slow") == 0) {
      if (std::strcmp(value, "drop") == 0) o.slow = sockserv::overflow_policy::drop;
      else if (std::strcmp(value, "close") == 0) o.slow = sockserv::overflow_policy::close;
      else return usage("--slow wants drop or close");
    } else {
      return usage("unknown option");
    }
  }
  return listen ? 0 : usage("--listen is required");
}

// A bad address (a failure without errno) is a usage error; anything else
// (socket() refused) a server failure.
int failed(const sockserv::result& failure) {
  if (failure.code() == -1) return usage(failure.message());
  std::fprintf(stderr, "chat_server: %s\n", failure.message());
  return 1;
}

int serve(const options& o) {
  // Static storage: the table of max_clients slots is large (about 200 MiB
  // of address space), and only the pages in use become resident.
  static chat_server server({o.host, o.port}, false);
  if (!server) return failed(server.error());
  server.allow_reuse_address = true;
  server.request_queue_size = SOMAXCONN;
  sockserv::result ready = server.server_bind();
  if (ready) ready = server.server_activate();
  if (!ready) return std::fprintf(stderr, "chat_server: %s\n", ready.message()), 1;
  server.overflow = o.slow;  // for every connection from now on

  // The server's own loop carries the timer and the signal watchers too.
  sockserv::loop& loop = server.loop();
  std::uint64_t ticks = 0;
  sockserv::timer tick{loop, [&] {
    char text[32];
    (void)server.broadcast({text, numbered(text, sizeof text, "tick ", ++ticks, "\n")});  // misses are counted
  }};
  if (o.tick_ms > 0) tick.start_periodic(o.tick_ms);
  // Stopping a lone server's own loop stops the server.
  sockserv::signal_watcher term, interrupt;
  sockserv::result watching = term.start(loop, SIGTERM, [&loop](int) { loop.request_shutdown(); });
  if (watching) watching = interrupt.start(loop, SIGINT, [&loop](int) { loop.request_shutdown(); });
  if (!watching) return std::fprintf(stderr, "chat_server: %s\n", watching.message()), 1;

  std::printf("listening on %s\n", server.server_address.to_string().c_str());
  std::fflush(stdout);  // whoever started us waits for this line
  sockserv::result served = server.serve_forever();

  // Graceful stop: no new clients; everyone's queued output goes out, then
  // the connection closes (a client that does not read is cut off at the
  // deadline).
  tick.cancel();
  server.for_each_connection([](chat_client& client) { client.close(); });
  const bool finished = server.graceful_close(stop_deadline);
  std::printf("stopped: %" PRIu64 " messages dropped, %" PRIu64 " slow clients disconnected%s\n",
              server.writes.dropped, server.writes.closed_slow,
              finished ? "" : ", some clients cut off at the deadline");
  std::fflush(stdout);
  if (!served) return std::fprintf(stderr, "chat_server: %s\n", served.message()), 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (int bad = parse(argc, argv, o)) return bad;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // the log lines go out as they happen
#if SOCKSERV_EXCEPTIONS
  try {
    return serve(o);
  } catch (const sockserv::socket_error& failure) {  // from the server's constructor
    return failed(failure.failure());
  }
#else
  return serve(o);
#endif
}
