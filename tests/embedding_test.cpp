// Embedding: sockserv servers served inside a libuv and a GLib main loop,
// with no thread of sockserv's own. The host watches the loop's epoll
// descriptor, loop.fd() (or, for a poll or select loop, the descriptors of
// loop.watched_descriptors()), wakes after loop.next_timeout() and calls
// loop.run_once(0). The host loop runs on a thread of the test (as an
// application's main loop would); the test's own thread is the clients and
// the "other thread" that posts.
//
// A binary of its own (it links libuv and GLib), native builds only.
#include "support/client.hpp"
#include "support/descriptors.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>
#include <glib.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <poll.h>
#include <string>
#include <utility>
#include <vector>

namespace {

std::atomic<int> unsent_writes{0};  // write() results that were not `written`

// Echoes each line; "after N\n" answers "timer N\n" N ms later, from a
// timer the connection owns on the loop that serves it.
struct echo_handler : sockserv::event_request_handler<sockserv::line_framing<>, 256, 4096> {
  sockserv::timer delay;
  long delay_ms = 0;

  void setup() {
    delay.bind(loop(), [this] {
      char reply[32];
      std::snprintf(reply, sizeof reply, "timer %ld\n", delay_ms);
      if (!write(reply)) ++unsent_writes;
    });
  }
  void handle_message(std::string_view line) {
    if (std::sscanf(std::string(line).c_str(), "after %ld", &delay_ms) == 1) return delay.start(delay_ms);
    if (!write(line)) ++unsent_writes;
  }
};

// The daemon: a TCP echo server, a UDP echo server and a post queue, all
// on one sockserv loop of the given poller.
template <template <std::size_t> class Poller>
struct guest_daemon {
  using tcp_server = sockserv::basic_server<sockserv::inet4, sockserv::stream, echo_handler,
                                            sockserv::event_loop<Poller, 16>>;
  using udp_server = sockserv::basic_server<sockserv::inet4, sockserv::datagram<>,
                                            test_support::datagram_echo_handler, sockserv::event_loop<Poller, 16>>;

  sockserv::basic_loop<Poller, 64> loop;  // first: destroyed last
  std::unique_ptr<tcp_server> tcp = test_support::listening<tcp_server>();
  std::unique_ptr<udp_server> udp = test_support::listening<udp_server>();
  sockserv::post_queue<int, 64> inbox;  // "posted N\n" to every client

  guest_daemon() {
    REQUIRE(loop.add(*tcp));
    REQUIRE(loop.add(*udp));
    REQUIRE(inbox.start(loop, [this](int& n) {
      const std::string line = "posted " + std::to_string(n) + "\n";
      const sockserv::broadcast_result sent = tcp->broadcast(line);
      unsent_writes += static_cast<int>(sent.refused + sent.dropped + sent.closed);
    }));
  }
};

// What both hosts share: one turn of the guest loop, counted, and the
// first failure kept for the test's thread to check after the host stops.
class host_base {
 public:
  explicit host_base(sockserv::loop& guest) : guest_(guest) { REQUIRE(guest.open()); }

  int turns() const { return turns_.load(); }
  // Meaningful once run() has returned.
  const std::string& failure() const { return failure_; }

 protected:
  // Returns false once the host must stop: the guest asked for it
  // (request_shutdown(), a server's shutdown()) or failed.
  bool turn() {
    ++turns_;
    const sockserv::result turned = guest_.run_once(0);
    if (!turned && failure_.empty()) failure_ = turned.message();
    return turned.ok() && !guest_.shutdown_requested();
  }

  sockserv::loop& guest_;
  std::string failure_;

 private:
  std::atomic<int> turns_{0};
};

// ---- libuv: a poll handle on loop.fd(), a timer set before every wait ------
class libuv_host : public host_base {
 public:
  explicit libuv_host(sockserv::loop& guest) : host_base(guest) {
    REQUIRE(guest.fd() >= 0);  // libuv is epoll-based: it embeds the epoll loop only
    REQUIRE(uv_loop_init(&loop_) == 0);
    REQUIRE(uv_poll_init(&loop_, &ready_, guest.fd()) == 0);
    REQUIRE(uv_timer_init(&loop_, &timeout_) == 0);
    REQUIRE(uv_prepare_init(&loop_, &before_wait_) == 0);
    REQUIRE(uv_async_init(&loop_, &calls_, run_calls) == 0);
    for (uv_handle_t* h : handles()) h->data = this;
    REQUIRE(uv_poll_start(&ready_, UV_READABLE, [](uv_poll_t* p, int, int) { self(p).on_wake(); }) == 0);
    REQUIRE(uv_prepare_start(&before_wait_, [](uv_prepare_t* p) { self(p).arm_timeout(); }) == 0);
  }
  ~libuv_host() {
    if (loop_closed_) return;
    stop();
    uv_run(&loop_, UV_RUN_DEFAULT);  // the close callbacks
    (void)uv_loop_close(&loop_);
  }

  // On the host's thread, until the guest asks to stop; then every handle
  // is closed and uv_loop_close()'s result returned (0: nothing left open).
  int run() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    const int closed = uv_loop_close(&loop_);
    loop_closed_ = closed == 0;
    return closed;
  }

  // From any thread: runs `call` on the host's thread, outside run_once().
  void call(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> hold(lock_);
      pending_.push_back(std::move(work));
    }
    uv_async_send(&calls_);
  }

 private:
  template <class Handle>
  static libuv_host& self(Handle* h) {
    return *static_cast<libuv_host*>(h->data);
  }
  std::vector<uv_handle_t*> handles() {
    return {reinterpret_cast<uv_handle_t*>(&ready_), reinterpret_cast<uv_handle_t*>(&timeout_),
            reinterpret_cast<uv_handle_t*>(&before_wait_), reinterpret_cast<uv_handle_t*>(&calls_)};
  }

  void on_wake() {
    if (!turn()) stop();
  }
  // Before every wait, not only after run_once(): host code (call()) may
  // have given the guest work (a write), and then next_timeout() is 0.
  void arm_timeout() {
    const int ms = guest_.next_timeout();
    if (ms < 0)
      uv_timer_stop(&timeout_);
    else
      uv_timer_start(&timeout_, [](uv_timer_t* t) { self(t).on_wake(); }, static_cast<std::uint64_t>(ms), 0);
  }
  static void run_calls(uv_async_t* async) {
    libuv_host& host = self(async);
    std::vector<std::function<void()>> calls;
    {
      std::lock_guard<std::mutex> hold(host.lock_);
      calls.swap(host.pending_);
    }
    for (auto& call : calls) call();
  }
  void stop() {
    if (closed_) return;
    closed_ = true;
    for (uv_handle_t* h : handles()) uv_close(h, nullptr);
  }

  uv_loop_t loop_{};
  uv_poll_t ready_{};
  uv_timer_t timeout_{};
  uv_prepare_t before_wait_{};
  uv_async_t calls_{};
  bool closed_ = false;
  bool loop_closed_ = false;
  std::mutex lock_;
  std::vector<std::function<void()>> pending_;
};

// ---- GLib: a GSource whose descriptors are loop.fd() or, for a poll or
// select loop, loop.watched_descriptors(), re-read before every wait ---------
class glib_host : public host_base {
 public:
  explicit glib_host(sockserv::loop& guest)
      : host_base(guest), context_(g_main_context_new()), main_loop_(g_main_loop_new(context_, FALSE)) {
    source_ = reinterpret_cast<guest_source*>(g_source_new(functions(), sizeof(guest_source)));
    source_->host = this;
    sync_descriptors();
    g_source_attach(&source_->base, context_);
  }
  ~glib_host() {
    g_source_destroy(&source_->base);
    g_source_unref(&source_->base);
    g_main_loop_unref(main_loop_);
    g_main_context_unref(context_);
  }

  // On the host's thread, until the guest asks to stop; returns 0.
  int run() {
    g_main_loop_run(main_loop_);
    return 0;
  }

  // From any thread: runs `work` on the host's thread, outside run_once().
  void call(std::function<void()> work) {
    g_main_context_invoke_full(
        context_, G_PRIORITY_DEFAULT,
        [](gpointer f) {
          (*static_cast<std::function<void()>*>(f))();
          return gboolean{G_SOURCE_REMOVE};
        },
        new std::function<void()>(std::move(work)), [](gpointer f) { delete static_cast<std::function<void()>*>(f); });
  }

 private:
  struct guest_source {
    GSource base;
    glib_host* host;
  };
  static glib_host& self(GSource* s) { return *reinterpret_cast<guest_source*>(s)->host; }

  static gboolean prepare(GSource* s, gint* timeout) {
    glib_host& host = self(s);
    host.sync_descriptors();
    *timeout = host.guest_.next_timeout();
    return *timeout == 0;
  }
  static gboolean check(GSource* s) {
    glib_host& host = self(s);
    for (std::size_t i = 0; i < host.count_; ++i)
      if (host.polls_[i].revents != 0) return TRUE;
    return host.guest_.next_timeout() == 0;
  }
  static gboolean dispatch(GSource* s, GSourceFunc, gpointer) {
    glib_host& host = self(s);
    if (host.turn()) return G_SOURCE_CONTINUE;
    g_main_loop_quit(host.main_loop_);
    return G_SOURCE_REMOVE;
  }
  static GSourceFuncs* functions() {
    static GSourceFuncs table{prepare, check, dispatch, nullptr, nullptr, nullptr};
    return &table;
  }

  // The guest's descriptors as GLib poll records, replaced only when they
  // changed: with epoll one descriptor for all, else each one.
  void sync_descriptors() {
    pollfd now[room];
    std::size_t count = 1;
    if (guest_.fd() >= 0)
      now[0] = pollfd{guest_.fd(), POLLIN, 0};
    else
      count = guest_.watched_descriptors(now, room);
    if (count > room) count = room;  // the test's loops are smaller than that
    bool same = count == count_;
    for (std::size_t i = 0; same && i < count; ++i)
      same = polls_[i].fd == now[i].fd && polls_[i].events == io_conditions(now[i].events);
    if (same) return;
    for (std::size_t i = 0; i < count_; ++i) g_source_remove_poll(&source_->base, &polls_[i]);
    for (std::size_t i = 0; i < count; ++i) {
      polls_[i] = GPollFD{now[i].fd, io_conditions(now[i].events), 0};
      g_source_add_poll(&source_->base, &polls_[i]);
    }
    count_ = count;
  }
  static gushort io_conditions(short poll_events) {
    return static_cast<gushort>(((poll_events & POLLIN) ? G_IO_IN : 0) | ((poll_events & POLLOUT) ? G_IO_OUT : 0) |
                                G_IO_ERR | G_IO_HUP);
  }

  static constexpr std::size_t room = 64;
  GMainContext* context_;
  GMainLoop* main_loop_;
  guest_source* source_ = nullptr;
  GPollFD polls_[room]{};
  std::size_t count_ = 0;
};

// The host loop on a thread of its own. stop() is a server's shutdown()
// from this thread: embedded, it only asks (it cannot wait for a loop it
// does not run), and the host stops once it sees loop.shutdown_requested().
template <class Host>
struct hosted {
  sockserv::server_base& server;
  Host host;
  std::atomic<int> outcome{-1};
  test_support::joining_thread thread{[this] { outcome = host.run(); }};

  hosted(sockserv::loop& guest, sockserv::server_base& on_guest) : server(on_guest), host(guest) {}
  ~hosted() { stop(); }
  // Bounded by the watchdog: a host that never stops fails the test there.
  void stop() {
    server.shutdown();
    thread.join();
  }
};

// Everything the hosts must do, checked over loopback from this thread.
template <class Host, class Daemon>
void serve_inside(Daemon& d) {
  unsent_writes = 0;
  hosted<Host> h{d.loop, *d.tcp};

  // Three clients, their lines interleaved, each echoed.
  std::vector<sockserv::file_descriptor> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(test_support::connect_to(d.tcp->server_address));
  for (int i = 0; i < 3; ++i) test_support::send_all(clients[std::size_t(i)].fd(), "hello " + std::to_string(i) + "\n");
  for (int i = 0; i < 3; ++i) CHECK(test_support::read_line(clients[std::size_t(i)].fd()) == "hello " + std::to_string(i) + "\n");

  // The datagram server, on the same loop.
  CHECK(test_support::exchange_datagram(d.udp->server_address, "ping\n") == "ping\n");

  // A sockserv timer: nothing else happens meanwhile, so only the host's
  // wake-up after next_timeout() can fire it — and a host that spun instead
  // of sleeping would turn the loop thousands of times.
  const int turns_before = h.host.turns();
  const auto started = std::chrono::steady_clock::now();
  test_support::send_all(clients[0].fd(), "after 150\n");
  CHECK(test_support::read_line(clients[0].fd()) == "timer 150\n");
  CHECK(test_support::seconds_since(started) >= 0.145);  // ms clocks: a margin
  CHECK(h.host.turns() - turns_before <= 40);

  // Posts from this thread (not the host's), in order, each broadcast.
  for (int n = 1; n <= 100; ++n) REQUIRE(d.inbox.post(n));
  for (auto& client : clients)
    for (int n = 1; n <= 100; ++n) REQUIRE(test_support::read_line(client.fd()) == "posted " + std::to_string(n) + "\n");

  // Host code (outside run_once) writes to the guest's connections: the
  // output goes out at once, because next_timeout() says 0 now.
  h.host.call([&d] {
    const sockserv::broadcast_result sent = d.tcp->broadcast("from the host\n");
    unsent_writes += static_cast<int>(sent.refused + sent.dropped + sent.closed);
  });
  for (auto& client : clients) CHECK(test_support::read_line(client.fd()) == "from the host\n");

  // The guest's shutdown stops the host, which closes everything it opened.
  const auto stopping = std::chrono::steady_clock::now();
  h.stop();
  CHECK(test_support::seconds_since(stopping) < 2.0);
  CHECK(h.outcome == 0);
  INFO(h.host.failure());
  CHECK(h.host.failure().empty());
  CHECK(unsent_writes == 0);
}

// The pollers as test parameters (GLib embeds epoll through loop.fd(),
// poll and select through loop.watched_descriptors()).
struct epoll_kind {
  template <std::size_t N>
  using poller = sockserv::epoll_poller<N>;
};
struct poll_kind {
  template <std::size_t N>
  using poller = sockserv::poll_poller<N>;
};
struct select_kind {
  template <std::size_t N>
  using poller = sockserv::select_poller<N>;
};

// Descriptors open now, after the ones libuv and GLib open once per process
// and keep (libuv's signal lock pipe, GLib's default main context).
std::size_t descriptors_besides_the_libraries() {
  test_support::open_missing_standard_descriptors();
  uv_loop_t warm_up;
  REQUIRE(uv_loop_init(&warm_up) == 0);
  REQUIRE(uv_loop_close(&warm_up) == 0);
  (void)g_main_context_default();
  return test_support::open_descriptor_count();
}

}  // namespace

TEST_CASE("a libuv main loop serves an epoll loop's servers, timers and posts through loop.fd()", "[embedding]") {
  const std::size_t descriptors_before = descriptors_besides_the_libraries();
  {
    guest_daemon<sockserv::epoll_poller> d;
    serve_inside<libuv_host>(d);
  }
  CHECK(test_support::open_descriptor_count() == descriptors_before);
}

TEMPLATE_TEST_CASE("a GLib main loop serves a sockserv loop's servers, timers and posts", "[embedding]",
                   epoll_kind, poll_kind, select_kind) {
  const std::size_t descriptors_before = descriptors_besides_the_libraries();
  {
    guest_daemon<TestType::template poller> d;
    serve_inside<glib_host>(d);
  }
  CHECK(test_support::open_descriptor_count() == descriptors_before);
}

TEST_CASE("a server's shutdown() from another thread wakes and stops the host once loop.open_wakeup() ran",
          "[embedding]") {
  using tcp_server = guest_daemon<sockserv::epoll_poller>::tcp_server;
  sockserv::basic_loop<sockserv::epoll_poller, 16> loop;
  std::unique_ptr<tcp_server> tcp = test_support::listening<tcp_server>();
  REQUIRE(loop.add(*tcp));
  // The descriptor other threads ring; serve_forever() and post queues open
  // it themselves. Without it nothing would wake the sleeping host.
  REQUIRE(loop.open_wakeup());
  hosted<libuv_host> h{loop, *tcp};
  sockserv::file_descriptor client = test_support::connect_to(tcp->server_address);
  test_support::send_all(client.fd(), "one line\n");
  CHECK(test_support::read_line(client.fd()) == "one line\n");

  const auto stopping = std::chrono::steady_clock::now();
  h.stop();
  CHECK(test_support::seconds_since(stopping) < 2.0);
  CHECK(h.outcome == 0);
  CHECK(h.host.failure().empty());
}
