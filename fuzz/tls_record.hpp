// Fuzz target tls_record: the TLS record path of a server session
// (tls/session.hpp), fed from memory as an event loop would feed it from a
// socket. The payload is what a client sends; it goes into the engine in
// pieces, and after each piece the session's output is drained, its
// plaintext read and echoed back, as a server does.
//
// Input: [mode] [payload]
//   mode bits 0-2  piece size: 1, 2, 5, 16, 64, 300, 1500, all at once
//        bit  3    client certificates required (mutual TLS)
//        bit  4    the TCP stream ends after the payload
//
// Invariants: feed() takes no more than it is given and at most what the
// engine offered; read() returns no more than asked; once the engine is
// closed it takes no input and wants nothing; a truncated stream is never
// reported as a clean close; the session can start again afterwards (its
// state does not outlive a connection). ASan/UBSan watch the rest.
#pragma once

#include "common.hpp"

#include <sockserv/tls/session.hpp>

#include <cstddef>
#include <cstdint>

namespace sockserv_fuzz {

namespace tls_fixture {
// A throwaway self-signed P-256 certificate (CN=fuzz) and its key.
inline constexpr const char key[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIFZ/rVt1sQxagioO3O6+Vh4FFkIS9IEsSo5TzCIm7l8roAoGCCqGSM49\n"
    "AwEHoUQDQgAEyYGAqbFEUEiD9UcOCCOjJ7XO8iKM6ZmLEvcEZP3I7RD4C/vlbOb0\n"
    "3jFwoE8hVPlsmvuZUmLthrVjcsM7q2P6pA==\n"
    "-----END EC PRIVATE KEY-----\n";
inline constexpr const char certificate[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdTCCARugAwIBAgIUXR7OhGKRgyOe21XOEI7x5lDf900wCgYIKoZIzj0EAwIw\n"
    "DzENMAsGA1UEAwwEZnV6ejAgFw0yNjEyMDEyMDAzMjRaGA8yMTI2MTEwNzIwMDMy\n"
    "NFowDzENMAsGA1UEAwwEZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMmB\n"
    "gKmxRFBIg/VHDggjoye1zvIijOmZixL3BGT9yO0Q+Av75Wzm9N4xcKBPIVT5bJr7\n"
    "mVJi7Ya1Y3LDO6tj+qSjUzBRMB0GA1UdDgQWBBTFKYCzIRV1E4pb3HdareMx2ERI\n"
    "+zAfBgNVHSMEGDAWgBTFKYCzIRV1E4pb3HdareMx2ERI+zAPBgNVHRMBAf8EBTAD\n"
    "AQH/MAoGCCqGSM49BAMCA0gAMEUCIFf4CrNududCC+FknyyPUeR3Osz62tBqRKy/\n"
    "9D8lMTsvAiEAveb4HYSsbY+vVylNx2MNvL8n/iARiFmjXK04t56wKQc=\n"
    "-----END CERTIFICATE-----\n";

struct config : sockserv::tls::default_config {
  static constexpr std::size_t session_cache_entries = 4;
};

// Built once: loading the PEM is not what is fuzzed here.
inline sockserv::tls::server_context<config>& context(bool mutual) {
  static sockserv::tls::server_context<config> plain, with_client_ca;
  static bool loaded = [] {
    bool ok = plain.credentials().load_chain(certificate).ok() && plain.credentials().load_key(key).ok() &&
              with_client_ca.credentials().load_chain(certificate).ok() &&
              with_client_ca.credentials().load_key(key).ok() &&
              with_client_ca.credentials().load_client_ca(certificate).ok();
    if (!ok) fail("tls_record", "the fixture's PEM does not load");
    return ok;
  }();
  (void)loaded;
  return mutual ? with_client_ca : plain;
}

inline sockserv::tls::session<config>& session() {
  static sockserv::tls::session<config> one;
  return one;
}
}  // namespace tls_fixture

inline const char* tls_record(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const std::uint8_t mode = in.byte();
  static constexpr std::size_t pieces[] = {1, 2, 5, 16, 64, 300, 1500, static_cast<std::size_t>(-1)};
  const std::size_t piece = pieces[mode & 7];
  const bool mutual = (mode & 8) != 0;
  const bool ends = (mode & 16) != 0;
  std::string_view payload = in.rest();

  sockserv::tls::session<tls_fixture::config>& s = tls_fixture::session();
  if (!s.start(tls_fixture::context(mutual))) return "start failed on a loaded context";

  auto drain = [&]() -> const char* {
    std::size_t pending = 0;
    while (s.pending_output(pending) != nullptr) s.consume_output(pending);  // "sent"
    unsigned char plain[512];
    for (;;) {
      std::size_t n = s.read(plain, sizeof plain);
      if (n > sizeof plain) return "read returned more than asked";
      if (n == 0) break;
      if (s.write(plain, n) > n) return "write took more than given";
      s.flush();
    }
    return nullptr;
  };

  while (!payload.empty()) {
    const bool was_closed = s.closed();
    std::size_t offered = 0;
    const bool accepting = br_ssl_engine_recvrec_buf(&s.engine(), &offered) != nullptr;
    std::size_t chunk = payload.size() < piece ? payload.size() : piece;
    std::size_t taken = s.feed(payload.data(), chunk);
    if (taken > chunk) return "feed took more than given";
    if (accepting && taken > offered) return "feed took more than the engine offered";
    if (was_closed && taken > 0) return "a closed engine took input";
    if (const char* broken = drain()) return broken;
    if (s.closed() && s.wants() != sockserv::tls::want_nothing) return "a closed engine wants I/O";
    if (taken == 0) break;  // the engine takes nothing more (closed, or waiting to send)
    payload.remove_prefix(taken);
  }
  if (ends) {
    s.end_of_input();
    if (!s.closed() && !s.truncated()) return "an unclean end was not reported as truncation";
    if (s.truncated() && !s.failed()) return "a truncated session does not count as failed";
  }
  char text[160];
  if (s.describe_failure(text, sizeof text)[0] == '\0') return "a failure without words";
  return nullptr;
}

}  // namespace sockserv_fuzz
