// embed_libuv — a sockserv echo server served inside a libuv main loop, as
// in a program whose main loop is libuv's: sockserv has no thread of its own.
//
//   embed_libuv [PORT]      (default 9999; 0 lets the kernel choose)
//
// The host (libuv) watches the sockserv loop's epoll descriptor, loop.fd(),
// and before every wait sets a timer to loop.next_timeout(); either one
// wakes it to call loop.run_once(0), which serves whatever is ready. Ctrl-C
// or SIGTERM, watched by sockserv, asks the loop to stop; the host sees
// loop.shutdown_requested(), closes its handles, and the program exits 0.
// Built by `make examples` when pkg-config finds libuv (libuv1-dev).
#include <sockserv.hpp>

#include "common/embedded_echo.hpp"

#include <cstdio>
#include <fcntl.h>
#include <uv.h>

namespace {

// The glue: three libuv handles drive one sockserv loop.
class libuv_embedding {
 public:
  libuv_embedding(uv_loop_t* host, sockserv::loop& guest) : guest_(guest) {
    uv_poll_init(host, &ready_, guest.fd());  // epoll: one descriptor for all of sockserv's
    uv_timer_init(host, &timeout_);
    uv_prepare_init(host, &before_wait_);
    ready_.data = timeout_.data = before_wait_.data = this;
    uv_poll_start(&ready_, UV_READABLE, [](uv_poll_t* h, int, int) { self(h).turn(); });
    // Before every wait, not only after run_once(): libuv callbacks may
    // give sockserv work too (a write), and then next_timeout() is 0.
    uv_prepare_start(&before_wait_, [](uv_prepare_t* h) { self(h).arm_timeout(); });
  }

 private:
  template <class Handle>
  static libuv_embedding& self(Handle* h) {
    return *static_cast<libuv_embedding*>(h->data);
  }
  void arm_timeout() {
    const int ms = guest_.next_timeout();  // -1: no timer
    if (ms < 0)
      uv_timer_stop(&timeout_);
    else
      uv_timer_start(&timeout_, [](uv_timer_t* h) { self(h).turn(); }, static_cast<std::uint64_t>(ms), 0);
  }
  void turn() {
    sockserv::result turned = guest_.run_once(0);
    if (!turned) std::fprintf(stderr, "embed_libuv: %s\n", turned.message());
    if (turned && !guest_.shutdown_requested()) return;
    // Done: with its handles closed, uv_run() returns.
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&ready_), reinterpret_cast<uv_handle_t*>(&timeout_),
                           reinterpret_cast<uv_handle_t*>(&before_wait_)})
      if (!uv_is_closing(h)) uv_close(h, nullptr);
  }

  sockserv::loop& guest_;
  uv_poll_t ready_{};
  uv_timer_t timeout_{};
  uv_prepare_t before_wait_{};
};

}  // namespace

int main(int argc, char** argv) {
  // libuv asserts that no descriptor it closes is 0, 1 or 2: a daemon
  // started with standard input closed would abort on its first close of
  // a loop descriptor that took number 0. So those three are opened first
  // (open() takes the lowest free number: fd itself).
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) == -1 && ::open("/dev/null", O_RDWR) == -1) return 1;
  std::uint16_t port = 9999;
  if (!common::port_argument(argc, argv, port)) return 2;
  common::embedded_echo echo(port);  // the echo server on its sockserv loop
  if (!echo.start("embed_libuv")) return 1;

  uv_loop_t* host = uv_default_loop();
  libuv_embedding embedding(host, echo.loop);
  uv_run(host, UV_RUN_DEFAULT);  // until the embedding closes its handles
  return uv_loop_close(host) == 0 ? 0 : 1;
}
