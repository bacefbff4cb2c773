// embed_glib — a sockserv echo server served inside a GLib main loop, as in
// a program whose main loop is GLib's: sockserv has no thread of its own.
//
//   embed_glib [PORT]      (default 9999; 0 lets the kernel choose)
//
// The glue is one GSource: its prepare() tells GLib to sleep at most
// loop.next_timeout() ms, it watches the sockserv loop's epoll descriptor,
// loop.fd(), and its dispatch() calls loop.run_once(0). Ctrl-C or SIGTERM,
// watched by sockserv, asks the loop to stop; the source sees
// loop.shutdown_requested() and quits the main loop (exit 0).
// Built by `make examples` when pkg-config finds glib-2.0 (libglib2.0-dev).
#include <sockserv.hpp>

#include "common/embedded_echo.hpp"

#include <cstdio>
#include <glib.h>

namespace {

struct sockserv_source {
  GSource base;  // first: GLib allocates and frees the whole struct
  sockserv::loop* guest;
  GMainLoop* host;
};

sockserv_source& self(GSource* s) { return *reinterpret_cast<sockserv_source*>(s); }

// Called by GLib before every wait: after run_once(), and after any other
// callback that may have given sockserv work (then next_timeout() is 0).
gboolean prepare(GSource* s, gint* timeout_ms) {
  *timeout_ms = self(s).guest->next_timeout();  // -1: no timer
  return *timeout_ms == 0;
}
gboolean check(GSource* s) { return self(s).guest->next_timeout() == 0; }  // or the descriptor is ready
gboolean dispatch(GSource* s, GSourceFunc, gpointer) {
  sockserv::result turned = self(s).guest->run_once(0);
  if (!turned) std::fprintf(stderr, "embed_glib: %s\n", turned.message());
  if (turned && !self(s).guest->shutdown_requested()) return G_SOURCE_CONTINUE;
  g_main_loop_quit(self(s).host);
  return G_SOURCE_REMOVE;
}
GSourceFuncs source_functions{prepare, check, dispatch, nullptr, nullptr, nullptr};

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 9999;
  if (!common::port_argument(argc, argv, port)) return 2;
  common::embedded_echo echo(port);  // the echo server on its sockserv loop
  if (!echo.start("embed_glib")) return 1;

  GMainLoop* host = g_main_loop_new(nullptr, FALSE);
  GSource* source = g_source_new(&source_functions, sizeof(sockserv_source));
  self(source).guest = &echo.loop;
  self(source).host = host;
  g_source_add_unix_fd(source, echo.loop.fd(), G_IO_IN);  // epoll: one descriptor for all of sockserv's
  g_source_attach(source, nullptr);
  g_main_loop_run(host);  // until the source quits it
  g_source_unref(source);
  g_main_loop_unref(host);
  return 0;
}
