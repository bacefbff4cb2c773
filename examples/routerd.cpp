// routerd — the shape of a router's control daemon, on one thread and one
// loop: a unix control socket and a TCP control port (line commands), a UDP
// discovery responder, a periodic status line, a configuration re-read on
// SIGHUP, a helper process whose exit is reported, and a graceful stop on
// SIGTERM within a deadline.
//
//   routerd [--config FILE] [--control PATH] [--tcp HOST:PORT] [--udp HOST:PORT]
//           [--helper COMMAND]
//
// Defaults: routerd.conf and routerd.sock in the current directory, TCP and
// UDP on 127.0.0.1 with ports the kernel picks (printed on stdout), and a
// helper `/bin/sh -c COMMAND` that says hello and exits. No configuration
// file is fine (defaults); one that does not parse is refused, naming the
// line, and the previous configuration stays. The file has lines
//
//   name gw-1                 # shown by status and in discovery answers
//   allow 192.168.1.0/24      # TCP control clients (repeat; default 127.0.0.1)
//   status_interval 10000     # ms between status lines on stdout
//
// Commands, one per line, on the unix socket (same user or root only) and
// the TCP port (allow list only; others are closed unanswered):
//   status   one line: name, uptime, clients, counters, the helper's state
//   reload   re-reads the configuration (as SIGHUP does)
//   stop     stops the daemon (as SIGTERM does)
//   help, quit
// Discovery: a UDP datagram "DISCOVER" is answered with
//   "ROUTERD name=NAME tcp=HOST:PORT control=PATH".
// SIGTERM, SIGINT or `stop`: no new clients, the helper is asked to end, what
// is queued goes out, everything is closed within three seconds; exit 0.
// Exit 1: a socket could not be set up; exit 2: bad arguments.
#include <sockserv.hpp>

#include "common/text.hpp"

#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::int64_t stop_deadline_ms = 3000;
constexpr std::size_t max_sessions = 16;  // per control server
constexpr std::size_t max_networks = 16;

// ---- configuration -----------------------------------------------------------

struct settings {
  char name[64] = "routerd";
  sockserv::allow_list<max_networks> allowed;  // empty until read: then 127.0.0.1
  long status_interval_ms = 10000;
};

// Reads "key value" lines into out. A missing file is not an error when
// `optional`; anything that does not parse is, naming the line, and then
// out is left as it was.
sockserv::result read_settings(const char* path, bool optional, settings& out) {
  settings fresh;
  FILE* file = std::fopen(path, "re");
  if (file == nullptr) {
    if (optional && errno == ENOENT) {
      (void)fresh.allowed.add("127.0.0.1/32");
      out = fresh;
      return {};
    }
    char message[sockserv::result::message_capacity];
    std::snprintf(message, sizeof message, "cannot open %.140s", path);
    return sockserv::result::from_errno(errno, message);
  }
  char line[256];
  unsigned number = 0;
  const char* problem = nullptr;
  while (problem == nullptr && std::fgets(line, sizeof line, file) != nullptr) {
    ++number;
    std::string_view text = line;
    if (!text.empty() && text.back() != '\n' && !std::feof(file)) problem = "line too long";
    // No substr(): it may throw, and the static musl build has no C++ runtime to throw with.
    if (const std::size_t hash = text.find('#'); hash != std::string_view::npos) text.remove_suffix(text.size() - hash);
    text = common::strip(text);
    if (text.empty() || problem != nullptr) continue;
    std::size_t space = text.find_first_of(" \t");
    if (space == std::string_view::npos) space = text.size();
    const std::string_view key{text.data(), space};
    const std::string_view value = common::strip({text.data() + space, text.size() - space});
    char argument[128];
    if (value.empty() || value.size() >= sizeof argument) {
      problem = "expected 'key value'";
      continue;
    }
    std::memcpy(argument, value.data(), value.size());
    argument[value.size()] = '\0';
    if (key == "name") {
      if (value.size() >= sizeof fresh.name) problem = "name too long";
      else std::memcpy(fresh.name, argument, value.size() + 1);
    } else if (key == "allow") {
      if (!fresh.allowed.add(argument)) problem = "not a network (or too many): want a.b.c.d/len";
    } else if (key == "status_interval") {
      char* end = nullptr;
      fresh.status_interval_ms = std::strtol(argument, &end, 10);
      if (*end != '\0' || fresh.status_interval_ms <= 0) problem = "status_interval wants milliseconds > 0";
    } else {
      problem = "unknown key (name, allow, status_interval)";
    }
  }
  const bool read_failed = std::ferror(file) != 0;
  std::fclose(file);
  if (problem != nullptr || read_failed) {
    char message[sockserv::result::message_capacity];
    std::snprintf(message, sizeof message, "%.90s:%u: %.50s", path, number, problem ? problem : "read error");
    return sockserv::result::failure(message);
  }
  if (fresh.allowed.size() == 0) (void)fresh.allowed.add("127.0.0.1/32");
  out = fresh;
  return {};
}

// ---- the daemon's state (one thread: plain globals) ----------------------------

struct options {
  const char* config = "routerd.conf";
  const char* control = "routerd.sock";
  char tcp_host[64] = "127.0.0.1";
  std::uint16_t tcp_port = 0;
  char udp_host[64] = "127.0.0.1";
  std::uint16_t udp_port = 0;
  const char* helper = "echo 'helper: hello from the helper'";
};

struct counters {
  std::uint64_t commands = 0;
  std::uint64_t discovery_answers = 0;
  std::uint64_t refused = 0;
  unsigned reloads = 0;
};

options o;
settings config;
counters counted;
std::int64_t started_ms = 0;

// The monotonic clock, for the uptime and the stop deadline.
std::int64_t now_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}
char tcp_address[128] = "";
char helper_state[48] = "none";
sockserv::loop* main_loop = nullptr;
sockserv::timer* status_timer = nullptr;

void say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void say(const char* format, ...) {
  std::va_list arguments;
  va_start(arguments, format);
  std::fputs("routerd: ", stdout);
  std::vprintf(format, arguments);
  std::fputc('\n', stdout);
  va_end(arguments);
  std::fflush(stdout);
}

// The status line, for the status command and the periodic timer.
std::size_t describe_status(char* out, std::size_t size);

void restart_status_timer() { status_timer->start_periodic(config.status_interval_ms); }

// SIGHUP and the reload command. Returns what happened, for the reply.
sockserv::result reload() {
  const long interval = config.status_interval_ms;
  sockserv::result read = read_settings(o.config, false, config);
  if (!read) {
    say("reload failed, configuration kept: %s", read.message());
    return read;
  }
  ++counted.reloads;
  if (config.status_interval_ms != interval) restart_status_timer();
  say("reloaded %s: name %s, %zu allowed networks, status every %ld ms", o.config, config.name,
      config.allowed.size(), config.status_interval_ms);
  return read;
}

void describe_exit(int status, char* out, std::size_t size) {
  if (status == -1)
    std::snprintf(out, size, "reaped by someone else");
  else if (WIFEXITED(status))
    std::snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    std::snprintf(out, size, "killed by signal %d", WTERMSIG(status));
  else
    std::snprintf(out, size, "ended (status %d)", status);
}

// snprintf into out; returns the length written (cut to fit).
std::size_t print_into(char* out, std::size_t size, const char* pattern, ...) __attribute__((format(printf, 3, 4)));
std::size_t print_into(char* out, std::size_t size, const char* pattern, ...) {
  std::va_list arguments;
  va_start(arguments, pattern);
  const int n = std::vsnprintf(out, size, pattern, arguments);
  va_end(arguments);
  return n < 0 ? 0 : (static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1);
}

// ---- the control session: the same commands on the unix socket and TCP ---------

// Replies are at most reply_size bytes, and the input buffer is as large:
// the loop hands over a command only while the output has room for that
// much (reply_reserve), so a reply always fits.
constexpr std::size_t reply_size = 512;

struct control_session : sockserv::event_request_handler<sockserv::line_framing<'\n'>, reply_size, 4 * reply_size> {
  void handle_message(std::string_view line) {
    const std::string_view command = common::strip(line);
    if (command.empty()) return;
    ++counted.commands;
    char reply[reply_size];
    std::size_t length = 0;
    if (command == "status") {
      length = describe_status(reply, sizeof reply);
    } else if (command == "reload") {
      sockserv::result done = reload();
      length = print_into(reply, sizeof reply, done ? "reloaded: name %s\n" : "error: %s\n",
                      done ? config.name : done.message());
    } else if (command == "stop") {
      length = print_into(reply, sizeof reply, "stopping\n");
      say("stop requested by a control client");
      main_loop->request_shutdown();  // the reply still goes out: the stop is graceful
    } else if (command == "help") {
      length = print_into(reply, sizeof reply, "commands: status reload stop help quit\n");
    } else if (command == "quit") {
      length = print_into(reply, sizeof reply, "bye\n");
    } else {
      length = print_into(reply, sizeof reply, "error: unknown command '%.*s' (try help)\n",
                      static_cast<int>(command.size() > 64 ? 64 : command.size()), command.data());
    }
    static_assert(reply_reserve >= reply_size, "a reply must always fit");
    if (!write({reply, length})) abort();  // cannot happen (see reply_size)
    if (command == "quit") close();        // once the reply is out
  }
};

// Every server joins the daemon's loop: event_loop is the policy that can.
using session_policy = sockserv::event_loop<sockserv::default_poller, max_sessions>;

// The unix control socket: only this user (or root) may talk to it.
struct unix_control
    : sockserv::basic_server<sockserv::unix_socket, sockserv::stream, control_session, session_policy, unix_control> {
  using basic_server::basic_server;
  bool verify_request(sockserv::connection& request, const sockserv::socket_address&) {
    sockserv::peer_credentials peer;
    if (sockserv::get_peer_credentials(request.fd, peer) && (peer.uid == 0 || peer.uid == ::getuid())) return true;
    ++counted.refused;
    say("refused a control socket client (uid %ld)", static_cast<long>(peer.uid));
    return false;
  }
};

// The TCP control port: only clients in the configured allow list.
struct tcp_control
    : sockserv::basic_server<sockserv::inet4, sockserv::stream, control_session, session_policy, tcp_control> {
  using basic_server::basic_server;
  bool verify_request(sockserv::connection&, const sockserv::socket_address& client) {
    if (config.allowed.allows(client)) return true;
    ++counted.refused;
    say("refused tcp control client %s: not in the allow list", client.to_string().c_str());
    return false;
  }
};

// Discovery: "DISCOVER" gets the daemon's name and where to reach it;
// anything else gets nothing (a responder must not be an amplifier).
struct discovery_responder : sockserv::datagram_request_handler<512> {
  void handle() {
    if (common::strip(packet) != "DISCOVER") return;
    char reply[256];
    const std::size_t length = print_into(reply, sizeof reply, "ROUTERD name=%s tcp=%s control=%s\n",
                                                       config.name, tcp_address, o.control);
    if (wfile.write(reply, length) > 0) ++counted.discovery_answers;
  }
};
using discovery_server = sockserv::basic_server<sockserv::inet4, sockserv::datagram<512>, discovery_responder,
                                                session_policy>;

unix_control* control_server = nullptr;
tcp_control* tcp_server = nullptr;

std::size_t describe_status(char* out, std::size_t size) {
  const std::int64_t uptime_ms = now_ms() - started_ms;
  return print_into(
      out, size,
      "status name=%s uptime=%" PRId64 ".%03" PRId64 "s control_clients=%zu tcp_clients=%zu commands=%" PRIu64
      " discovery_answers=%" PRIu64 " refused=%" PRIu64 " reloads=%u helper=%s\n",
      config.name, uptime_ms / 1000, uptime_ms % 1000, control_server->active_connections(),
      tcp_server->active_connections(), counted.commands, counted.discovery_answers, counted.refused,
      counted.reloads, helper_state);
}

// ---- start-up and the graceful stop ------------------------------------------------

int usage(const char* message) {
  if (message) std::fprintf(stderr, "routerd: %s\n", message);
  std::fprintf(stderr,
               "usage: routerd [--config FILE] [--control PATH] [--tcp HOST:PORT] [--udp HOST:PORT]\n"
               "               [--helper COMMAND]\n");
  return 2;
}

int parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* option = argv[i];
    const char* value = i + 1 < argc ? argv[++i] : nullptr;
    if (value == nullptr) return usage("missing value after an option");
    if (std::strcmp(option, "--config") == 0) {
      o.config = value;
    } else if (std::strcmp(option, "--control") == 0) {
      o.control = value;
    } else if (std::strcmp(option, "--tcp") == 0) {
      if (!common::split_host_port(value, o.tcp_host, sizeof o.tcp_host, o.tcp_port))
        return usage("--tcp wants HOST:PORT");
    } else if (std::strcmp(option, "--udp") == 0) {
      if (!common::split_host_port(value, o.udp_host, sizeof o.udp_host, o.udp_port))
        return usage("--udp wants HOST:PORT");
    } else if (std::strcmp(option, "--helper") == 0) {
      o.helper = value;
    } else {
      return usage("unknown option");
    }
  }
  return 0;
}

// Binds and listens (construction with bind_and_activate = false, so that
// options apply first); says what failed.
template <class Server>
bool activate(Server& server, const char* what) {
  sockserv::result ready = server ? server.server_bind() : server.error();
  if (ready) ready = server.server_activate();
  if (!ready) say("%s: %s", what, ready.message());
  return ready.ok();
}

// Milliseconds until the monotonic deadline (0 once it has passed), and
// the same in seconds, as graceful_close() takes it.
std::int64_t left_until(std::int64_t deadline_ms) {
  const std::int64_t left = deadline_ms - now_ms();
  return left > 0 ? left : 0;
}
double seconds_left(std::int64_t deadline_ms) { return static_cast<double>(left_until(deadline_ms)) / 1000.0; }

int run() {
  started_ms = now_ms();
  sockserv::result configured = read_settings(o.config, true, config);
  if (!configured) {
    say("%s", configured.message());
    return 1;
  }

  // The loop first: the servers and watchers below are linked into it and
  // must go before it does.
  sockserv::basic_loop<> loop;
  main_loop = &loop;

  unix_control control(o.control, false);
  control.remove_stale_unix_socket = true;  // left by a crashed routerd: only if nobody answers on it
  control.unix_socket_mode = 0600;
  tcp_control tcp({o.tcp_host, o.tcp_port}, false);
  tcp.allow_reuse_address = true;
  discovery_server udp({o.udp_host, o.udp_port}, false);
  if (!activate(control, "control socket") || !activate(tcp, "tcp control") || !activate(udp, "discovery"))
    return 1;
  control_server = &control;
  tcp_server = &tcp;
  std::snprintf(tcp_address, sizeof tcp_address, "%s", tcp.server_address.to_string().c_str());
  sockserv::result added = loop.add(control);
  if (added) added = loop.add(tcp);
  if (added) added = loop.add(udp);
  if (!added) return say("%s", added.message()), 1;

  sockserv::timer status{loop, [] {
    char line[reply_size];
    const std::size_t length = describe_status(line, sizeof line);
    say("%.*s", static_cast<int>(length > 0 ? length - 1 : 0), line);  // without its newline
  }};
  status_timer = &status;
  restart_status_timer();

  sockserv::signal_watcher term, interrupt, hangup;
  sockserv::result watching = term.start(loop, SIGTERM, [](int) { main_loop->request_shutdown(); });
  if (watching) watching = interrupt.start(loop, SIGINT, [](int) { main_loop->request_shutdown(); });
  if (watching) watching = hangup.start(loop, SIGHUP, [](int) { (void)reload(); });
  if (!watching) return say("%s", watching.message()), 1;

  say("configuration %s: name %s, %zu allowed networks, status every %ld ms", o.config, config.name,
      config.allowed.size(), config.status_interval_ms);
  say("control socket %s", control.server_address.to_string().c_str());
  say("tcp control on %s", tcp_address);
  say("discovery on %s", udp.server_address.to_string().c_str());

  // The helper: started once, its exit reported whenever it comes.
  sockserv::child_watcher helper;
  const char* const helper_argv[] = {"/bin/sh", "-c", o.helper, nullptr};
  sockserv::result spawned = helper.spawn(loop, helper_argv, [](pid_t pid, int exit_status) {
    char how[40];
    describe_exit(exit_status, how, sizeof how);
    say("helper %ld %s", static_cast<long>(pid), how);
    std::snprintf(helper_state, sizeof helper_state, "%s", how);
    for (char* c = helper_state; *c != '\0'; ++c)
      if (*c == ' ') *c = '_';  // one word in the status line
  });
  if (spawned) {
    std::snprintf(helper_state, sizeof helper_state, "running_pid_%ld", static_cast<long>(helper.pid()));
    say("helper %ld started: /bin/sh -c %s", static_cast<long>(helper.pid()), o.helper);
  } else {
    say("helper not started: %s", spawned.message());  // the daemon serves without it
  }

  say("ready: pid %ld, one thread (%s)", static_cast<long>(::getpid()), loop.poller_name());

  sockserv::result served = loop.serve_forever();
  if (!served) say("loop: %s", served.message());

  // The graceful stop: no new clients; sessions end once their replies are
  // out; the helper is asked to end; all within the deadline.
  const std::int64_t deadline = now_ms() + stop_deadline_ms;
  say("stopping (deadline %.1f s)", static_cast<double>(stop_deadline_ms) / 1000.0);
  status.cancel();
  hangup.stop();  // no reloads (and no status timer restarted) while stopping
  if (helper.active()) ::kill(helper.pid(), SIGTERM);
  control.for_each_connection([](control_session& s) { s.close(); });
  tcp.for_each_connection([](control_session& s) { s.close(); });
  bool clean = control.graceful_close(seconds_left(deadline));
  clean = tcp.graceful_close(seconds_left(deadline)) && clean;
  clean = udp.graceful_close(seconds_left(deadline)) && clean;
  while (helper.active() && left_until(deadline) > 0) (void)loop.run_once(static_cast<int>(left_until(deadline)));
  if (helper.active()) {  // it ignored SIGTERM: it cannot ignore this
    const pid_t pid = helper.pid();
    helper.stop();
    ::kill(pid, SIGKILL);
    int status_code = 0;
    while (::waitpid(pid, &status_code, 0) == -1 && errno == EINTR) {
    }
    say("helper %ld killed at the deadline", static_cast<long>(pid));
    clean = false;
  }
  say("stopped%s", clean ? "" : " (the deadline ended what was left)");
  return served ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (int bad = parse(argc, argv)) return bad;
#if SOCKSERV_EXCEPTIONS
  try {
    return run();
  } catch (const sockserv::socket_error& failure) {  // a server constructor: a bad address, socket() refused
    say("%s", failure.what());
    return failure.code() == -1 ? 2 : 1;
  }
#else
  return run();
#endif
}
