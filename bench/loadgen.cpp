// bench/loadgen.cpp — closed-loop load generator for the sockserv benchmarks.
//
//   loadgen --family tcp|udp|unix|unix-dgram --connect ADDR
//           [--mode echo|once|idle] [--clients N] [--size BYTES]
//           [--warmup S] [--duration S] [--timeout S]
//
// N clients, each with at most one request outstanding (closed loop), all
// driven by one thread through epoll, so that on a 2-core machine the load
// generator takes one core and the server the other.
//   echo  stream: one persistent connection per client; a request is one
//         line out and the same line back. datagram: one datagram out, the
//         same datagram back (one connected socket per client).
//   once  stream: connect, one line, read the reply upper-cased, read to
//         end of stream, close; a request is all of that. datagram: the
//         reply is the datagram upper-cased.
//   idle  stream: open N connections, send nothing, print how many were
//         established, hold them until SIGTERM/SIGINT or --duration.
// Every reply is checked byte for byte (each request line carries the
// client number and a sequence number, so a reply to the wrong request or
// a stale one is caught). A request not answered within --timeout is an
// error (datagram clients then send the next one; a stream client whose
// reply timed out is closed).
// Output: one JSON object on stdout: requests and latencies counted in the
// measurement window (after --warmup), errors counted over the whole run.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

enum class family_kind { tcp, udp, unix_stream, unix_dgram };
enum class mode_kind { echo, once, idle };

struct options {
  family_kind family = family_kind::tcp;
  mode_kind mode = mode_kind::echo;
  const char* address = nullptr;
  int clients = 1;
  std::size_t size = 64;
  double warmup = 0.5;
  double duration = 2.0;
  double timeout = -1;  // default depends on the family
};

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "loadgen: %s\n", what);
  std::exit(2);
}

bool is_stream(family_kind f) { return f == family_kind::tcp || f == family_kind::unix_stream; }

struct target {
  sockaddr_storage address{};
  socklen_t length = 0;
  int domain = AF_INET;
};

target parse_target(const options& o) {
  target t;
  if (o.family == family_kind::tcp || o.family == family_kind::udp) {
    const char* colon = std::strrchr(o.address, ':');
    if (!colon) die("--connect wants HOST:PORT");
    std::string host(o.address, static_cast<std::size_t>(colon - o.address));
    if (host == "localhost" || host.empty()) host = "127.0.0.1";
    auto* in = reinterpret_cast<sockaddr_in*>(&t.address);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(std::atoi(colon + 1)));
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) die("bad IPv4 address");
    t.length = sizeof(sockaddr_in);
    t.domain = AF_INET;
  } else {
    auto* un = reinterpret_cast<sockaddr_un*>(&t.address);
    un->sun_family = AF_UNIX;
    std::size_t n = std::strlen(o.address);
    if (n >= sizeof un->sun_path) die("unix path too long");
    std::memcpy(un->sun_path, o.address, n);
    if (o.address[0] == '@') un->sun_path[0] = '\0';  // Linux abstract name
    t.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (o.address[0] == '@' ? 0 : 1));
    t.domain = AF_UNIX;
  }
  return t;
}

// What went wrong, counted over the whole run.
struct error_counts {
  std::uint64_t connect = 0;   // refused, reset or timed out while connecting
  std::uint64_t io = 0;        // send/recv failed (reset, refused datagram...)
  std::uint64_t early_eof = 0; // stream closed before the whole reply came
  std::uint64_t mismatch = 0;  // a reply byte differs from the expected one
  std::uint64_t extra = 0;     // bytes after the reply in once mode
  std::uint64_t timeout = 0;   // no (whole) reply within --timeout
  std::uint64_t total() const { return connect + io + early_eof + mismatch + extra + timeout; }
};

enum class state { off, connecting, sending, awaiting_reply, awaiting_eof, held, dead };

struct client {
  int fd = -1;
  int id = 0;
  std::uint64_t seq = 0;
  state st = state::off;
  std::uint64_t started = 0;   // when the current request began
  std::uint64_t deadline = 0;  // timeout of the current step
  std::size_t sent = 0;
  std::size_t received = 0;
  std::vector<char> line;
  std::vector<char> reply;
};

class generator {
 public:
  generator(const options& o) : o_(o), target_(parse_target(o)) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ == -1) die("epoll_create1");
    stream_ = is_stream(o.family);
    upper_ = o.mode == mode_kind::once;
    if (o.size < 24) die("--size must be at least 24");
    timeout_ns_ = static_cast<std::uint64_t>((o.timeout > 0 ? o.timeout : (stream_ ? 10.0 : 1.0)) * 1e9);
    clients_.resize(static_cast<std::size_t>(o.clients));
    for (int i = 0; i < o.clients; ++i) {
      client& c = clients_[static_cast<std::size_t>(i)];
      c.id = i;
      c.line.resize(o.size);
      c.reply.resize(o.size);
    }
  }

  int run();

 private:
  // Fills the client's request line: "cccccc ssssssssssss " then letters, '\n'.
  void make_line(client& c) {
    char head[32];
    int n = std::snprintf(head, sizeof head, "%06d %012llx ", c.id, static_cast<unsigned long long>(c.seq));
    std::memcpy(c.line.data(), head, static_cast<std::size_t>(n));
    for (std::size_t i = static_cast<std::size_t>(n); i + 1 < o_.size; ++i)
      c.line[i] = static_cast<char>('a' + (i + c.seq) % 26);
    c.line[o_.size - 1] = '\n';
  }

  char expected(const client& c, std::size_t i) const {
    char ch = c.line[i];
    return upper_ && ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
  }

  int open_socket() {
    int type = (stream_ ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(target_.domain, type, 0);
    if (fd == -1) return -1;
    if (o_.family == family_kind::tcp) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (o_.family == family_kind::unix_dgram) {
      sockaddr_un self{};
      self.sun_family = AF_UNIX;  // autobind: the kernel picks an abstract name to reply to
      if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) == -1) {
        close(fd);
        return -1;
      }
    }
    return fd;
  }

  void drop(client& c) {
    if (c.fd >= 0) close(c.fd);  // also leaves the epoll set
    c.fd = -1;
  }

  // Opens a connection (stream) or a socket (datagram); false if it failed
  // at once (counted), true if it is connecting or ready.
  bool open_client(client& c) {
    c.fd = open_socket();
    if (c.fd == -1) {
      ++errors_.connect;
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
    ev.data.ptr = &c;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) == -1) die("epoll_ctl");
    int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&target_.address), target_.length);
    if (rc == -1 && errno != EINPROGRESS) {
      // unix stream: EAGAIN = the listen backlog is full; try again soon.
      if (errno == EAGAIN) ++retries_;
      else ++errors_.connect;
      drop(c);
      return false;
    }
    c.st = stream_ ? state::connecting : state::sending;
    c.deadline = now_ns() + timeout_ns_;
    return true;
  }

  // Begins the client's next request (once mode: on a new connection).
  void begin_request(client& c, std::uint64_t now) {
    ++c.seq;
    make_line(c);
    c.started = now;
    c.sent = 0;
    c.received = 0;
    if (c.fd == -1) {
      if (!open_client(c)) {
        c.st = state::off;  // retried by the scan
        return;
      }
      if (c.st == state::connecting) return;  // sent once connected
    }
    c.st = state::sending;
    c.deadline = now + timeout_ns_;
    send_some(c);
  }

  void send_some(client& c) {
    while (c.sent < o_.size) {
      ssize_t n = send(c.fd, c.line.data() + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n == -1 && errno == EINTR) continue;
      if (n == -1 && (errno == EAGAIN || errno == ENOTCONN)) return;  // wait for EPOLLOUT
      fail(c, c.st == state::connecting ? errors_.connect : errors_.io);
      return;
    }
    c.st = state::awaiting_reply;
  }

  void fail(client& c, std::uint64_t& counter) {
    ++counter;
    drop(c);
    c.st = o_.mode == mode_kind::echo && stream_ ? state::dead : state::off;
  }

  void complete(client& c, std::uint64_t now) {
    ++all_completed_;
    if (now >= window_start_ && now < window_end_) {
      ++completed_;
      latencies_.push_back(now - c.started);
    }
    if (o_.mode == mode_kind::once && stream_) drop(c);
    c.st = state::off;
    if (now < window_end_) begin_request(c, now);
  }

  void on_readable(client& c, std::uint64_t now) {
    if (c.st == state::awaiting_eof) {
      char spare[256];
      for (;;) {
        ssize_t n = recv(c.fd, spare, sizeof spare, 0);
        if (n == 0) return complete(c, now);
        if (n > 0) return fail(c, errors_.extra);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        return fail(c, errors_.io);
      }
    }
    if (c.st != state::awaiting_reply && c.st != state::sending) return;
    for (;;) {
      std::size_t want = stream_ ? o_.size - c.received : o_.size;
      ssize_t n = recv(c.fd, c.reply.data() + c.received, want, stream_ ? 0 : MSG_TRUNC);
      if (n == -1) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        return fail(c, errors_.io);
      }
      if (n == 0 && stream_) return fail(c, errors_.early_eof);
      if (!stream_ && static_cast<std::size_t>(n) != o_.size) return fail(c, errors_.mismatch);
      std::size_t end = c.received + static_cast<std::size_t>(n);
      for (std::size_t i = c.received; i < end; ++i)
        if (c.reply[i] != expected(c, i)) return fail(c, errors_.mismatch);
      c.received = end;
      if (c.received < o_.size) continue;
      if (o_.mode == mode_kind::once && stream_) {
        c.st = state::awaiting_eof;
        return on_readable(c, now);
      }
      return complete(c, now);
    }
  }

  void on_event(client& c, std::uint32_t events, std::uint64_t now) {
    if (c.fd == -1) return;
    if (c.st == state::connecting) {
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        if (o_.mode == mode_kind::idle) {
          int error = 0;
          socklen_t len = sizeof error;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
          if (error != 0 || (events & EPOLLHUP)) return fail(c, errors_.connect);
          c.st = state::held;
          ++connected_;
          return;
        }
        if (o_.mode == mode_kind::echo && !connect_phase_over_) {
          c.st = state::off;  // connected; the first request starts with everyone's
          ++connected_;
          int error = 0;
          socklen_t len = sizeof error;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
          if (error != 0) {
            --connected_;
            return fail(c, errors_.connect);
          }
          return;
        }
        c.st = state::sending;
        send_some(c);
        if (c.fd == -1) return;
      }
      if (!(events & EPOLLIN)) return;
    }
    if (c.st == state::held) {
      if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) fail(c, errors_.io);
      return;
    }
    if (c.st == state::sending && (events & EPOLLOUT)) send_some(c);
    if (c.fd != -1 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) on_readable(c, now);
  }

  // Timeouts and clients waiting to (re)connect.
  void scan(std::uint64_t now) {
    for (client& c : clients_) {
      if (c.st == state::off && now < window_end_ && (o_.mode != mode_kind::echo || !stream_)) {
        begin_request(c, now);
        continue;
      }
      bool waiting = c.st == state::connecting || c.st == state::sending || c.st == state::awaiting_reply ||
                     c.st == state::awaiting_eof;
      if (waiting && now > c.deadline) {
        ++errors_.timeout;
        if (stream_) {
          drop(c);
          c.st = o_.mode == mode_kind::echo ? state::dead : state::off;
        } else {
          c.st = state::off;  // the datagram was lost: send the next one
        }
      }
    }
  }

  int poll_once(int timeout_ms) {
    epoll_event events[256];
    int n = epoll_wait(epoll_, events, 256, timeout_ms);
    if (n == -1 && errno != EINTR) die("epoll_wait");
    std::uint64_t now = now_ns();
    for (int i = 0; i < n; ++i) on_event(*static_cast<client*>(events[i].data.ptr), events[i].events, now);
    return n;
  }

  int run_idle();
  void report(double connect_seconds);

  options o_;
  target target_;
  int epoll_ = -1;
  bool stream_ = true;
  bool upper_ = false;
  bool connect_phase_over_ = false;
  std::uint64_t timeout_ns_ = 0;
  std::vector<client> clients_;
  std::vector<std::uint64_t> latencies_;
  std::uint64_t completed_ = 0;
  std::uint64_t all_completed_ = 0;  // warm-up included
  std::uint64_t retries_ = 0;
  int connected_ = 0;
  std::uint64_t window_start_ = 0;
  std::uint64_t window_end_ = ~0ull;
  error_counts errors_;
};

volatile std::sig_atomic_t stop_idle = 0;
extern "C" void on_stop(int) { stop_idle = 1; }

int generator::run_idle() {
  std::uint64_t begin = now_ns();
  for (client& c : clients_) open_client(c);
  std::uint64_t limit = begin + timeout_ns_;
  while (connected_ + static_cast<int>(errors_.connect) < o_.clients && now_ns() < limit) {
    poll_once(10);
    for (client& c : clients_)  // unix stream: backlog full, try again
      if (c.st == state::off && c.fd == -1) open_client(c);
  }
  double seconds = static_cast<double>(now_ns() - begin) / 1e9;
  std::printf("{\"mode\": \"idle\", \"clients\": %d, \"established\": %d, \"connect_errors\": %llu, "
              "\"seconds\": %.3f}\n",
              o_.clients, connected_, static_cast<unsigned long long>(errors_.connect), seconds);
  std::fflush(stdout);
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  std::uint64_t hold_until = now_ns() + static_cast<std::uint64_t>(o_.duration * 1e9);
  while (!stop_idle && now_ns() < hold_until) poll_once(50);
  return 0;
}

int generator::run() {
  if (o_.mode == mode_kind::idle) return run_idle();
  std::uint64_t begin = now_ns();
  double connect_seconds = 0;
  if (o_.mode == mode_kind::echo && stream_) {
    // Connect everyone first; the clock starts when all are connected.
    for (client& c : clients_) open_client(c);
    std::uint64_t limit = begin + timeout_ns_;
    while (connected_ + static_cast<int>(errors_.connect) < o_.clients && now_ns() < limit) {
      poll_once(10);
      for (client& c : clients_)
        if (c.st == state::off && c.fd == -1) open_client(c);
    }
    for (client& c : clients_)
      if (c.st == state::connecting) fail(c, errors_.connect);
    connect_phase_over_ = true;
    connect_seconds = static_cast<double>(now_ns() - begin) / 1e9;
  }
  std::uint64_t start = now_ns();
  window_start_ = start + static_cast<std::uint64_t>(o_.warmup * 1e9);
  window_end_ = window_start_ + static_cast<std::uint64_t>(o_.duration * 1e9);
  latencies_.reserve(1 << 20);
  for (client& c : clients_)
    if (c.st == state::off) begin_request(c, start);
  std::uint64_t next_scan = start + 10000000ull;
  for (;;) {
    std::uint64_t now = now_ns();
    if (now >= window_end_) break;
    int wait_ms = static_cast<int>(std::min<std::uint64_t>((window_end_ - now) / 1000000ull + 1, 10));
    poll_once(retries_ ? 1 : wait_ms);
    now = now_ns();
    if (now >= next_scan) {
      scan(now);
      next_scan = now + 10000000ull;
    }
  }
  report(connect_seconds);
  for (client& c : clients_) drop(c);
  return 0;
}

void generator::report(double connect_seconds) {
  auto percentile = [&](double p) -> double {
    if (latencies_.empty()) return 0;
    std::size_t k = static_cast<std::size_t>(p * static_cast<double>(latencies_.size() - 1));
    std::nth_element(latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(k), latencies_.end());
    return static_cast<double>(latencies_[k]) / 1000.0;
  };
  double p50 = percentile(0.50), p99 = percentile(0.99), p999 = percentile(0.999);
  double mean = 0;
  for (std::uint64_t l : latencies_) mean += static_cast<double>(l);
  mean = latencies_.empty() ? 0 : mean / static_cast<double>(latencies_.size()) / 1000.0;
  std::printf(
      "{\"requests\": %llu, \"seconds\": %.3f, \"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
      "\"p999_us\": %.1f, \"mean_us\": %.1f, \"errors\": %llu, \"error_kinds\": {\"connect\": %llu, "
      "\"io\": %llu, \"early_eof\": %llu, \"mismatch\": %llu, \"extra\": %llu, \"timeout\": %llu}, "
      "\"connect_retries\": %llu, \"clients\": %d, \"connect_seconds\": %.3f, \"all_requests\": %llu}\n",
      static_cast<unsigned long long>(completed_), o_.duration, static_cast<double>(completed_) / o_.duration, p50,
      p99, p999, mean, static_cast<unsigned long long>(errors_.total()),
      static_cast<unsigned long long>(errors_.connect), static_cast<unsigned long long>(errors_.io),
      static_cast<unsigned long long>(errors_.early_eof), static_cast<unsigned long long>(errors_.mismatch),
      static_cast<unsigned long long>(errors_.extra), static_cast<unsigned long long>(errors_.timeout),
      static_cast<unsigned long long>(retries_), o_.clients, connect_seconds,
      static_cast<unsigned long long>(all_completed_));
  std::fflush(stdout);
}

int usage() {
  std::fprintf(stderr,
               "usage: loadgen --family tcp|udp|unix|unix-dgram --connect ADDR [--mode echo|once|idle]\n"
               "               [--clients N] [--size BYTES] [--warmup S] [--duration S] [--timeout S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return usage();
    const char* key = argv[i];
    const char* value = argv[i + 1];
    if (!std::strcmp(key, "--family")) {
      if (!std::strcmp(value, "tcp")) o.family = family_kind::tcp;
      else if (!std::strcmp(value, "udp")) o.family = family_kind::udp;
      else if (!std::strcmp(value, "unix")) o.family = family_kind::unix_stream;
      else if (!std::strcmp(value, "unix-dgram")) o.family = family_kind::unix_dgram;
      else return usage();
    } else if (!std::strcmp(key, "--connect")) {
      o.address = value;
    } else if (!std::strcmp(key, "--mode")) {
      if (!std::strcmp(value, "echo")) o.mode = mode_kind::echo;
      else if (!std::strcmp(value, "once")) o.mode = mode_kind::once;
      else if (!std::strcmp(value, "idle")) o.mode = mode_kind::idle;
      else return usage();
    } else if (!std::strcmp(key, "--clients")) {
      o.clients = std::atoi(value);
    } else if (!std::strcmp(key, "--size")) {
      o.size = static_cast<std::size_t>(std::atoi(value));
    } else if (!std::strcmp(key, "--warmup")) {
      o.warmup = std::atof(value);
    } else if (!std::strcmp(key, "--duration")) {
      o.duration = std::atof(value);
    } else if (!std::strcmp(key, "--timeout")) {
      o.timeout = std::atof(value);
    } else {
      return usage();
    }
  }
  if (!o.address || o.clients < 1) return usage();
  if (o.mode == mode_kind::idle && !is_stream(o.family)) die("idle mode is for stream families");
  // Room for a socket per client plus the usual three.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(o.clients) + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, static_cast<rlim_t>(o.clients) + 64);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  generator g(o);
  return g.run();
}
