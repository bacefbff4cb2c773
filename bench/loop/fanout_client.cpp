// bench/loop/fanout_client.cpp — load generator of the broadcast benchmark.
//
//   fanout_client --connect HOST:PORT [--subscribers N] [--size BYTES]
//                 [--window W] [--batch B] [--warmup S] [--duration S]
//
// Opens N subscriber connections and one sender to a chat-pattern server
// (every line a client sends goes to every other client), all on one
// thread through epoll. Start: the sender sends probe lines until every
// subscriber has received the same probe, so each is known to be served.
// Then the sender sends numbered SIZE-byte messages in batches of B (one
// send() each), at most W of them not yet received by every subscriber (a
// closed loop over the whole room: the server's output queues never grow
// beyond W messages). Whole batches keep the work per read the same for
// every server (B lines in, one send per subscriber), so that a server
// that happens to read sooner is not given smaller batches. Each subscriber
// checks that the messages arrive whole, in order, none missing.
// Prints "window start" when the measurement window opens and
// "window end" when it closes (so the caller can read the server's CPU
// time at those instants), then one JSON line: deliveries (messages
// received by subscribers) in the window, per second, and errors.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
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
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fanout_client: %s (%s)\n", what, std::strerror(errno));
  std::exit(2);
}

struct subscriber {
  int fd = -1;
  bool connected = false;
  std::uint64_t next = 0;        // the message number expected next
  std::uint64_t last_probe = 0;  // the last probe seen
  std::size_t have = 0;          // bytes of a partial message
  char partial[256];
};

class fanout {
 public:
  fanout(const char* address, int n, std::size_t size, std::uint64_t window, std::uint64_t batch)
      : size_(size), window_(window), batch_size_(batch), subs_(static_cast<std::size_t>(n)), done_(window, 0), complete_(window, 0) {
    const char* colon = std::strrchr(address, ':');
    if (!colon) die("--connect wants HOST:PORT");
    std::string host(address, static_cast<std::size_t>(colon - address));
    target_.sin_family = AF_INET;
    target_.sin_port = htons(static_cast<std::uint16_t>(std::atoi(colon + 1)));
    if (inet_pton(AF_INET, host.c_str(), &target_.sin_addr) != 1) die("bad IPv4 address");
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (size_ < 24 || size_ > sizeof subs_[0].partial) die("--size must be 24..256");
  }

  int run(double warmup, double duration);

 private:
  int open_connection(void* tag) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&target_), sizeof target_);
    if (rc == -1 && errno != EINPROGRESS) die("connect");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.ptr = tag;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) == -1) die("epoll_ctl");
    return fd;
  }

  void line(char* out, char kind, std::uint64_t number) const {
    int n = std::snprintf(out, size_, "%c %012llx ", kind, static_cast<unsigned long long>(number));
    for (std::size_t i = static_cast<std::size_t>(n); i + 1 < size_; ++i) out[i] = static_cast<char>('a' + (i + number) % 26);
    out[size_ - 1] = '\n';
  }

  void send_lines(const char* p, std::size_t n) {
    out_.insert(out_.end(), p, p + n);
    flush_sender();
  }
  void flush_sender() {
    while (!out_.empty()) {
      ssize_t w = send(sender_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (w > 0) {
        out_.erase(out_.begin(), out_.begin() + w);
        continue;
      }
      if (w == -1 && (errno == EAGAIN || errno == EINTR)) return;
      die("sender: send");
    }
  }

  // Sends what the window allows, in one send().
  void fill_window() {
    if (!sending_) return;
    std::vector<char>& batch = batch_;
    batch.clear();
    while (sent_ + batch_size_ <= oldest_ + window_)
      for (std::uint64_t k = 0; k < batch_size_; ++k) {
        std::size_t at = batch.size();
        batch.resize(at + size_);
        line(batch.data() + at, 'm', sent_);
        ++sent_;
      }
    if (!batch.empty()) send_lines(batch.data(), batch.size());
  }

  void on_message(subscriber& s, const char* m, std::uint64_t now) {
    if (m[0] == 'p') {
      s.last_probe = std::strtoull(m + 2, nullptr, 16);
      return;
    }
    std::uint64_t number = std::strtoull(m + 2, nullptr, 16);
    if (m[0] != 'm' || number != s.next || m[size_ - 1] != '\n') {
      ++errors_;
      s.next = number + 1;
      return;
    }
    ++s.next;
    if (now >= window_start_ && now < window_end_) ++delivered_;
    // Complete once every subscriber has it; the window slides over the
    // oldest complete messages (they may complete out of order).
    if (++done_[number % window_] == subs_.size()) {
      done_[number % window_] = 0;
      complete_[number % window_] = 1;
      while (oldest_ < sent_ && complete_[oldest_ % window_]) complete_[oldest_++ % window_] = 0;
    }
  }

  void on_readable(subscriber& s, std::uint64_t now) {
    char buffer[16384];
    for (;;) {
      ssize_t n = recv(s.fd, buffer, sizeof buffer, 0);
      if (n == -1 && errno == EINTR) continue;
      if (n == -1 && errno == EAGAIN) return;
      if (n <= 0) die("subscriber: connection lost");
      std::size_t i = 0, got = static_cast<std::size_t>(n);
      if (s.have > 0) {
        std::size_t take = std::min(size_ - s.have, got);
        std::memcpy(s.partial + s.have, buffer, take);
        s.have += take;
        i = take;
        if (s.have < size_) continue;
        on_message(s, s.partial, now);
        s.have = 0;
      }
      for (; i + size_ <= got; i += size_) on_message(s, buffer + i, now);
      if (i < got) {
        s.have = got - i;
        std::memcpy(s.partial, buffer + i, s.have);
      }
      if (static_cast<std::size_t>(n) < sizeof buffer) return;
    }
  }

  int poll_once(int timeout_ms) {
    epoll_event events[512];
    int n = epoll_wait(epoll_, events, 512, timeout_ms);
    if (n == -1 && errno != EINTR) die("epoll_wait");
    std::uint64_t now = now_ns();
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == nullptr) {  // the sender
        if (events[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) die("sender: connection lost");
        if (events[i].events & EPOLLOUT) {
          sender_connected_ = true;
          flush_sender();
        }
        continue;
      }
      subscriber& s = *static_cast<subscriber*>(tag);
      if (!s.connected && (events[i].events & EPOLLOUT)) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error) {
          errno = error;
          die("subscriber: connect");
        }
        s.connected = true;
        ++connected_;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = &s;
        epoll_ctl(epoll_, EPOLL_CTL_MOD, s.fd, &ev);
      }
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) on_readable(s, now);
    }
    return n;
  }

  std::size_t size_;
  std::uint64_t window_;
  std::uint64_t batch_size_;  // messages per send(): the window slides by whole batches
  sockaddr_in target_{};
  int epoll_ = -1;
  int sender_ = -1;
  bool sender_connected_ = false;
  bool sending_ = false;
  std::vector<subscriber> subs_;
  std::vector<std::uint64_t> done_;  // per window slot: subscribers that have the message
  std::vector<char> complete_;       // per window slot: all have it, the window may slide past
  std::vector<char> out_, batch_;
  std::size_t connected_ = 0;
  std::uint64_t sent_ = 0, oldest_ = 0;
  std::uint64_t delivered_ = 0, errors_ = 0;
  std::uint64_t window_start_ = ~0ull, window_end_ = ~0ull;
};

int fanout::run(double warmup, double duration) {
  std::uint64_t begin = now_ns();
  for (subscriber& s : subs_) s.fd = open_connection(&s);
  while (connected_ < subs_.size()) {
    poll_once(10);
    if (now_ns() - begin > 20000000000ull) die("subscribers did not connect within 20 s");
  }
  sender_ = open_connection(nullptr);
  while (!sender_connected_) poll_once(10);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, sender_, &ev);
  // Probes until every subscriber has seen the same one.
  std::uint64_t probe = 0;
  for (;;) {
    char p[256];
    line(p, 'p', ++probe);
    send_lines(p, size_);
    std::uint64_t until = now_ns() + 100000000ull;
    while (now_ns() < until) poll_once(10);
    bool all = true;
    for (const subscriber& s : subs_) all = all && s.last_probe == probe;
    if (all) break;
    if (now_ns() - begin > 30000000000ull) die("subscribers not served within 30 s");
  }
  const double connect_seconds = static_cast<double>(now_ns() - begin) / 1e9;
  const std::uint64_t start = now_ns();
  window_start_ = start + static_cast<std::uint64_t>(warmup * 1e9);
  window_end_ = window_start_ + static_cast<std::uint64_t>(duration * 1e9);
  sending_ = true;
  bool announced = false;
  fill_window();
  std::uint64_t progressed = start;  // when the window last slid
  for (;;) {
    std::uint64_t now = now_ns();
    if (!announced && now >= window_start_) {
      std::printf("window start\n");
      std::fflush(stdout);
      announced = true;
    }
    if (now >= window_end_) break;
    std::uint64_t before = oldest_;
    poll_once(1);
    if (oldest_ != before) {
      fill_window();
      progressed = now;
    } else if (now - progressed > 5000000000ull) {
      die("no message reached every subscriber for 5 s (one lost?)");
    }
  }
  std::printf("window end\n");
  std::fflush(stdout);
  std::printf("{\"subscribers\": %zu, \"size\": %zu, \"window\": %llu, \"seconds\": %.3f, \"deliveries\": %llu, "
              "\"deliveries_per_s\": %.1f, \"messages_per_s\": %.1f, \"errors\": %llu, "
              "\"connect_seconds\": %.3f}\n",
              subs_.size(), size_, static_cast<unsigned long long>(window_), duration,
              static_cast<unsigned long long>(delivered_), static_cast<double>(delivered_) / duration,
              static_cast<double>(delivered_) / duration / static_cast<double>(subs_.size()),
              static_cast<unsigned long long>(errors_),
              connect_seconds);
  std::fflush(stdout);
  return errors_ ? 1 : 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: fanout_client --connect HOST:PORT [--subscribers N] [--size BYTES] [--window W]\n"
               "                     [--batch B] [--warmup S] [--duration S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* address = nullptr;
  int subscribers = 1000;
  std::size_t size = 64;
  std::uint64_t window = 32, batch = 16;
  double warmup = 0.5, duration = 2.0;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return usage();
    const char* k = argv[i];
    const char* v = argv[i + 1];
    if (!std::strcmp(k, "--connect")) address = v;
    else if (!std::strcmp(k, "--subscribers")) subscribers = std::atoi(v);
    else if (!std::strcmp(k, "--size")) size = static_cast<std::size_t>(std::atoi(v));
    else if (!std::strcmp(k, "--window")) window = std::strtoull(v, nullptr, 10);
    else if (!std::strcmp(k, "--batch")) batch = std::strtoull(v, nullptr, 10);
    else if (!std::strcmp(k, "--warmup")) warmup = std::atof(v);
    else if (!std::strcmp(k, "--duration")) duration = std::atof(v);
    else return usage();
  }
  if (!address || subscribers < 1 || batch < 1 || window < batch) return usage();
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(subscribers) + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, static_cast<rlim_t>(subscribers) + 64);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  fanout f(address, subscribers, size, window, batch);
  return f.run(warmup, duration);
}
