// bench/tls/footprint.cpp — sizeof of sockserv's TLS pieces: what one
// connection costs, what a server shares, and whole servers under each
// blocking policy and the event loop (per slot: the TLS session, the
// handler's buffers and the slot's bookkeeping). Printed as "name bytes" lines for bench/tls/run.py.
#include <sockserv/tls.hpp>

#include <cstdio>

namespace {
struct echo : sockserv::stream_request_handler<> {};
struct event_echo : sockserv::event_request_handler<> {};
// What one event-loop slot costs: the difference between two table sizes.
template <class Tls>
constexpr std::size_t event_slot() {
  using small_table = sockserv::basic_server<sockserv::inet4, Tls, event_echo, sockserv::event_loop<sockserv::epoll_poller, 8>>;
  using large_table = sockserv::basic_server<sockserv::inet4, Tls, event_echo, sockserv::event_loop<sockserv::epoll_poller, 16>>;
  return (sizeof(large_table) - sizeof(small_table)) / 8;
}
struct mono : sockserv::tls::default_config {
  static constexpr std::size_t io_buffer_size = BR_SSL_BUFSIZE_MONO;
  static constexpr bool full_duplex = false;
};
// Mutual TLS compiled out: no client-certificate validator per session.
struct server_only : sockserv::tls::default_config {
  static constexpr bool client_certificates = false;
};
struct server_only_mono : mono {
  static constexpr bool client_certificates = false;
};
// max_fragment_length 1024 (only clients that ask for it can connect).
struct small : sockserv::tls::default_config {
  static constexpr std::size_t io_buffer_size = 1024 + 325;
  static constexpr bool full_duplex = false;
};
template <class Tls, class Policy>
using server = sockserv::basic_server<sockserv::inet4, Tls, echo, Policy>;
}  // namespace

int main() {
  std::printf("session_bidi %zu\n", sizeof(sockserv::tls::session<>));
  std::printf("session_mono %zu\n", sizeof(sockserv::tls::session<mono>));
  std::printf("session_mfl1024 %zu\n", sizeof(sockserv::tls::session<small>));
  std::printf("session_bidi_server_only %zu\n", sizeof(sockserv::tls::session<server_only>));
  std::printf("session_mono_server_only %zu\n", sizeof(sockserv::tls::session<server_only_mono>));
  std::printf("client_verifier %zu\n", sizeof(sockserv::tls::client_verifier));
  std::printf("engine_only %zu\n", sizeof(br_ssl_server_context));
  std::printf("x509_minimal %zu\n", sizeof(br_x509_minimal_context));
  std::printf("per_connection_bidi %zu\n", sizeof(sockserv::tls_stream<>::receive_buffer));
  std::printf("per_connection_mono %zu\n", sizeof(sockserv::tls_stream<mono>::receive_buffer));
  std::printf("shared_context %zu\n", sizeof(sockserv::tls::server_context<>));
  std::printf("server_sync %zu\n", sizeof(server<sockserv::tls_stream<>, sockserv::synchronous>));
  std::printf("server_threading16 %zu\n", sizeof(server<sockserv::tls_stream<>, sockserv::threading<16>>));
  std::printf("plain_server_threading16 %zu\n", sizeof(server<sockserv::stream, sockserv::threading<16>>));
  std::printf("connection %zu\n", sizeof(sockserv::connection));
  std::printf("event_slot_bidi %zu\n", event_slot<sockserv::tls_stream<>>());
  std::printf("event_slot_mono %zu\n", event_slot<sockserv::tls_stream<mono>>());
  std::printf("event_slot_bidi_server_only %zu\n", event_slot<sockserv::tls_stream<server_only>>());
  std::printf("event_slot_plain %zu\n", event_slot<sockserv::stream>());
  std::printf("event_transport_bidi %zu\n", sizeof(sockserv::tls_stream<>::event_transport));
  std::printf("server_event64 %zu\n",
              sizeof(sockserv::basic_server<sockserv::inet4, sockserv::tls_stream<>, event_echo,
                                            sockserv::event_loop<sockserv::epoll_poller, 64>>));
  std::printf("server_event64_plain %zu\n",
              sizeof(sockserv::basic_server<sockserv::inet4, sockserv::stream, event_echo,
                                            sockserv::event_loop<sockserv::epoll_poller, 64>>));
  return 0;
}
