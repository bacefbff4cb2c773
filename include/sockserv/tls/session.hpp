// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/session.hpp — one TLS connection as a sans-I/O object: the
// BearSSL server engine and its record buffer, fed and drained by whoever
// owns the descriptor (the blocking transport in blocking.hpp, or an event
// loop).
//
// Ciphertext goes in with receive_from(fd) (or feed() from memory) and out
// with send_to(fd); plaintext comes out with read() and goes in with
// write() + flush(). wants() says what the descriptor should be watched
// for. Nothing here blocks or allocates. TLS 1.0 to 1.2 only (BearSSL 0.6
// has no TLS 1.3).
//
// Driving one connection from a readiness loop:
//   accepted   start(context) (and context.try_begin_handshake() for the
//              cap; end_handshake() once handshake_done() or failed());
//              arm a handshake_timeout_ms timer; watch for reading
//   readable   receive_from(fd) until -1/EAGAIN (0: the peer ended TCP;
//              truncated() tells an unclean end), then read() until 0 and
//              hand the plaintext to the handler
//   handler    write() takes what fits now (queue the rest, retry after
//   writes     sending), then flush()
//   after any  while (wants() & want_write) send_to(fd); on EAGAIN watch
//   of these   for writing; failed() -> describe_failure() -> handle_error
//   closing    close(), send_to() until nothing is pending, shutdown(SHUT_WR)
// In half-duplex mode (Config::full_duplex false) plaintext read() must be
// drained before write() can take more: deliver input first.
#pragma once

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "context.hpp"
#include "error_text.hpp"

#include <bearssl.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

namespace sockserv::tls {

enum interest : unsigned { want_nothing = 0, want_read = 1, want_write = 2 };

// What checking client certificates takes per connection (BearSSL's X.509
// validator and the subject's attributes, about 3.7 KB): a session holds
// one only when its Config has client_certificates (mutual TLS).
struct client_verifier {
  static constexpr std::size_t name_count = 4;
  static constexpr std::size_t name_size = 64;
  // DER OIDs with a length prefix, as br_name_element wants them.
  static constexpr unsigned char oid_cn[] = {3, 0x55, 0x04, 0x03};
  static constexpr unsigned char oid_ou[] = {3, 0x55, 0x04, 0x0B};
  static constexpr unsigned char oid_o[] = {3, 0x55, 0x04, 0x0A};
  static constexpr unsigned char oid_c[] = {3, 0x55, 0x04, 0x06};

  br_x509_minimal_context x509{};
  char name_text[name_count][name_size] = {};
  br_name_element names[name_count] = {{oid_cn, name_text[0], name_size, 0},
                                       {oid_ou, name_text[1], name_size, 0},
                                       {oid_o, name_text[2], name_size, 0},
                                       {oid_c, name_text[3], name_size, 0}};
  char subject[name_count * (name_size + 4)] = {};

  void reset() noexcept {
    subject[0] = '\0';
    for (br_name_element& element : names) element.status = 0;
  }
  // "CN=...,OU=...,O=...,C=..." from the attributes the validator found.
  const char* build_subject() noexcept {
    static const char* const labels[name_count] = {"CN", "OU", "O", "C"};
    std::size_t used = 0;
    for (std::size_t i = 0; i < name_count; ++i) {
      if (names[i].status != 1) continue;
      int n = std::snprintf(subject + used, sizeof subject - used, "%s%s=%s", used > 0 ? "," : "", labels[i],
                            name_text[i]);
      if (n < 0 || static_cast<std::size_t>(n) >= sizeof subject - used) break;
      used += static_cast<std::size_t>(n);
    }
    return subject;
  }
};

class session_core {
 public:
  session_core(const session_core&) = delete;
  session_core& operator=(const session_core&) = delete;

  // Prepares the engine for a new client of this context. The engine is
  // configured once per context (and per process: a forked child must not
  // reuse its parent's random generator state), then only reset.
  result start(server_context_core& context) noexcept {
    const pid_t pid = ::getpid();
    if (configured_for_ != &context || configured_in_ != pid) {
      if (result configured = configure(context); !configured) return configured;
      configured_for_ = &context;
      configured_in_ = pid;
    }
    engine_.resumed = false;
    truncated_ = false;
    handshake_done_ = false;
    if (verifier_ != nullptr) verifier_->reset();
    if (!br_ssl_server_reset(&engine_.server)) return failure("TLS: engine reset failed");
    return {};
  }

  // ---- state --------------------------------------------------------------
  // Application data can flow (latched: it stays true once seen).
  bool handshake_done() noexcept {
    if (!handshake_done_ && (state() & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)) != 0) handshake_done_ = true;
    return handshake_done_;
  }
  // The engine is finished, cleanly (error() == 0: close_notify) or not.
  bool closed() const noexcept { return (state() & BR_SSL_CLOSED) != 0; }
  int error() const noexcept { return br_ssl_engine_last_error(&engine_.server.eng); }
  // The TCP stream ended while the engine still expected records: a
  // truncation (or a client that simply hung up), never a clean end.
  bool truncated() const noexcept { return truncated_; }
  bool failed() const noexcept { return truncated_ || (closed() && error() != BR_ERR_OK); }
  // What the descriptor should be watched for: want_read, want_write, both,
  // or nothing once closed.
  unsigned wants() const noexcept {
    unsigned s = state();
    if ((s & BR_SSL_CLOSED) != 0) return want_nothing;
    return ((s & BR_SSL_RECVREC) != 0 ? want_read : 0u) | ((s & BR_SSL_SENDREC) != 0 ? want_write : 0u);
  }
  // Why the session failed, in words ("the client sent alert unknown_ca").
  const char* describe_failure(char* text, std::size_t size) const noexcept {
    if (truncated_ && !closed()) {
      std::snprintf(text, size, "%s",
                    handshake_done_ ? "the client closed the connection without close_notify (truncated)"
                                    : "the client closed the connection during the handshake");
      return text;
    }
    return describe(error(), text, size);
  }

  // ---- ciphertext, from memory (tests, fuzzing, a foreign transport) --------
  std::size_t feed(const void* data, std::size_t size) noexcept {
    return inject(&br_ssl_engine_recvrec_buf, &br_ssl_engine_recvrec_ack, data, size);
  }
  // Records waiting to be sent; consume_output(n) after n of them went out.
  const unsigned char* pending_output(std::size_t& size) noexcept {
    return br_ssl_engine_sendrec_buf(&engine_.server.eng, &size);
  }
  void consume_output(std::size_t n) noexcept {
    if (n > 0) br_ssl_engine_sendrec_ack(&engine_.server.eng, n);
  }
  // The peer's TCP stream ended (recv() returned 0).
  void end_of_input() noexcept {
    if (!closed()) truncated_ = true;
  }

  // ---- ciphertext, on a descriptor (never blocks) ---------------------------
  // One recv() into the engine: bytes taken, 0 when the peer ended the TCP
  // stream (truncated() tells whether that was unclean), or -1 with errno
  // (EAGAIN: nothing there yet, or the engine takes no input right now).
  std::ptrdiff_t receive_from(int fd) noexcept {
    std::size_t room = 0;
    unsigned char* into = br_ssl_engine_recvrec_buf(&engine_.server.eng, &room);
    if (into == nullptr) {
      errno = EAGAIN;
      return -1;
    }
    ssize_t n = sockserv::detail::retry_on_eintr([&] { return ::recv(fd, into, room, MSG_DONTWAIT); });
    if (n > 0) br_ssl_engine_recvrec_ack(&engine_.server.eng, static_cast<std::size_t>(n));
    if (n == 0) end_of_input();
    return n;
  }
  // One send() of pending records: bytes sent (0: nothing pending), or -1
  // with errno (EAGAIN: the socket buffer is full).
  std::ptrdiff_t send_to(int fd) noexcept {
    std::size_t size = 0;
    const unsigned char* from = pending_output(size);
    if (from == nullptr) return 0;
    ssize_t n = sockserv::detail::retry_on_eintr(
        [&] { return ::send(fd, from, size, MSG_DONTWAIT | sockserv::detail::no_sigpipe); });
    if (n > 0) consume_output(static_cast<std::size_t>(n));
    return n;
  }

  // ---- plaintext --------------------------------------------------------------
  // Decrypted bytes available now (0: none yet).
  std::size_t read(void* destination, std::size_t size) noexcept {
    std::size_t available = 0;
    unsigned char* from = br_ssl_engine_recvapp_buf(&engine_.server.eng, &available);
    if (from == nullptr || size == 0) return 0;
    std::size_t n = size < available ? size : available;
    std::memcpy(destination, from, n);
    br_ssl_engine_recvapp_ack(&engine_.server.eng, n);
    return n;
  }
  // As much plaintext as the engine takes now (0: the record buffer is full,
  // send first; or the handshake is not done). flush() seals it into a record.
  std::size_t write(const void* data, std::size_t size) noexcept {
    return inject(&br_ssl_engine_sendapp_buf, &br_ssl_engine_sendapp_ack, data, size);
  }
  void flush() noexcept { br_ssl_engine_flush(&engine_.server.eng, 0); }
  // Queues close_notify; send_to() until nothing is pending, then shut the
  // socket down.
  void close() noexcept { br_ssl_engine_close(&engine_.server.eng); }

  // ---- who is on the other side ---------------------------------------------
  // The verified client certificate's subject, "CN=...,OU=...,O=...,C=..."
  // (only the attributes present); empty without client certificates.
  const char* peer_subject() noexcept {
    if (!client_auth_) return "";
    return verifier_->subject[0] != '\0' ? verifier_->subject : verifier_->build_subject();
  }
  bool client_authenticated() noexcept { return client_auth_ && handshake_done() && peer_subject()[0] != '\0'; }
  // The name the client asked for (SNI), empty if it sent none.
  const char* server_name() const noexcept { return br_ssl_engine_get_server_name(&engine_.server.eng); }
  // The ALPN protocol chosen, or null.
  const char* alpn() const noexcept {
    return br_ssl_engine_get_selected_protocol(const_cast<br_ssl_engine_context*>(&engine_.server.eng));
  }
  // The session was resumed from the cache (an abbreviated handshake).
  bool resumed() const noexcept { return engine_.resumed; }
  unsigned version() const noexcept { return br_ssl_engine_get_version(&engine_.server.eng); }
  br_ssl_engine_context& engine() noexcept { return engine_.server.eng; }

 protected:
  session_core(unsigned char* buffer, std::size_t size, bool full_duplex, client_verifier* verifier) noexcept
      : verifier_(verifier), buffer_(buffer), buffer_size_(size), full_duplex_(full_duplex) {}
  ~session_core() = default;

 private:
  unsigned state() const noexcept { return br_ssl_engine_current_state(&engine_.server.eng); }

  // Copies into one of the engine's inject buffers (records in, plaintext
  // in) as much as it offers now, and acknowledges it.
  using buffer_call = unsigned char* (*)(const br_ssl_engine_context*, std::size_t*);
  using ack_call = void (*)(br_ssl_engine_context*, std::size_t);
  std::size_t inject(buffer_call buffer, ack_call ack, const void* data, std::size_t size) noexcept {
    std::size_t room = 0;
    unsigned char* into = buffer(&engine_.server.eng, &room);
    if (into == nullptr || size == 0) return 0;
    std::size_t n = size < room ? size : room;
    std::memcpy(into, data, n);
    ack(&engine_.server.eng, n);
    return n;
  }

  result failure(const char* what) const noexcept {
    char reason[120];
    char text[160];
    std::snprintf(text, sizeof text, "%s: %s", what, describe(error(), reason, sizeof reason));
    return result::failure(text);
  }

  result configure(server_context_core& context) noexcept {
    const credentials_core& id = context.credentials();
    if (!id.has_server_identity()) return result::failure("TLS: no server certificate and key loaded");
    client_auth_ = context.requires_client_certificates();
    if (client_auth_ && verifier_ == nullptr)
      return result::failure("TLS: client certificates are required, but this Config has client_certificates = false");
    br_ssl_server_context* server = &engine_.server;
    if (id.key_type() == BR_KEYTYPE_EC)
      br_ssl_server_init_full_ec(server, id.chain(), id.chain_length(), static_cast<unsigned>(id.issuer_key_type()),
                                 &id.ec_key());
    else
      br_ssl_server_init_full_rsa(server, id.chain(), id.chain_length(), &id.rsa_key());
    br_ssl_engine_set_buffer(&server->eng, buffer_, buffer_size_, full_duplex_ ? 1 : 0);
    // Renegotiation buys a server nothing and costs an attack surface.
    br_ssl_engine_add_flags(&server->eng, BR_OPT_NO_RENEGOTIATION);
    if (context.alpn_count() > 0) {
      br_ssl_engine_set_protocol_names(&server->eng, const_cast<const char**>(context.alpn_names()),
                                       context.alpn_count());
      if (context.alpn_strict()) br_ssl_engine_add_flags(&server->eng, BR_OPT_FAIL_ON_ALPN_MISMATCH);
    }
    if (client_auth_) {
      br_x509_minimal_context& x509 = verifier_->x509;
      br_x509_minimal_init_full(&x509, id.anchors(), id.anchor_count());
      br_x509_minimal_set_name_elements(&x509, verifier_->names, client_verifier::name_count);
      br_ssl_engine_set_x509(&server->eng, &x509.vtable);
      // The client's CertificateVerify: the server profiles only sign.
      br_ssl_engine_set_default_rsavrfy(&server->eng);
      br_ssl_engine_set_default_ecdsa(&server->eng);
      br_ssl_server_set_trust_anchor_names_alt(server, id.anchors(), id.anchor_count());
    }
    if (const br_ssl_session_cache_class** cache = context.session_cache()) br_ssl_server_set_cache(server, cache);
    return {};
  }

  detail::engine_state engine_{};
  client_verifier* verifier_;  // null: this Config has no mutual TLS
  unsigned char* buffer_;
  std::size_t buffer_size_;
  bool full_duplex_;
  bool client_auth_ = false;
  bool truncated_ = false;
  bool handshake_done_ = false;
  const server_context_core* configured_for_ = nullptr;
  pid_t configured_in_ = 0;
};

// The handshake's failures in words, the same under every policy.
inline result handshake_failure(const session_core& session) noexcept {
  char reason[120];
  char text[160];
  std::snprintf(text, sizeof text, "TLS handshake failed: %s", session.describe_failure(reason, sizeof reason));
  return result::failure(text);
}
inline result handshake_timeout(int timeout_ms) noexcept {
  char text[96];
  std::snprintf(text, sizeof text, "TLS handshake failed: no progress within %d ms (stalled client)", timeout_ms);
  return result::failure(text);
}

namespace detail {
// A session's client_verifier, or nothing when its Config does without.
template <bool Present>
struct verifier_storage {
  client_verifier* verifier() noexcept { return &verifier_; }
  client_verifier verifier_;
};
template <>
struct verifier_storage<false> {
  client_verifier* verifier() noexcept { return nullptr; }
};
}  // namespace detail

// A session with its record buffer (and, for mutual TLS, its certificate
// validator): sizeof is the per-connection footprint.
template <class Config = default_config>
class session : private detail::verifier_storage<Config::client_certificates>, public session_core {
  static_assert(Config::io_buffer_size >= 512, "a TLS record buffer below 512 bytes cannot hold a handshake");
  using verifier_base = detail::verifier_storage<Config::client_certificates>;

 public:
  using config = Config;
  session() noexcept
      : session_core(buffer_, Config::io_buffer_size, Config::full_duplex, verifier_base::verifier()) {}

 private:
  unsigned char buffer_[Config::io_buffer_size];
};

}  // namespace sockserv::tls
