// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/context.hpp — what every TLS session of a server shares: the
// credentials, the session cache, ALPN names, and the handshake limits.
//
// A Config is a struct of compile-time sizes (derive from default_config and
// change what you need); server_context<Config> is the storage they size.
// sizeof(server_context<Config>) is the shared footprint; the per-connection
// footprint is the session's (session.hpp).
#pragma once

#include "../detail/pthread.hpp"
#include "credentials.hpp"

#include <bearssl.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>

namespace sockserv::tls {

struct default_config {
  // DER bytes of the server's chain, and how many certificates it may have.
  static constexpr std::size_t chain_bytes = 8192;
  static constexpr std::size_t max_chain_certificates = 4;
  // Mutual TLS: false leaves the client-certificate validator out of every
  // session (about 3.7 KB per connection) and the client CAs out of the
  // context; require_client_certificates() is then refused.
  static constexpr bool client_certificates = true;
  // Client CA certificates (mutual TLS): their names and public keys.
  static constexpr std::size_t trust_anchor_bytes = 4096;
  static constexpr std::size_t max_trust_anchors = 4;
  // Resumable sessions; BearSSL's LRU cache takes 100 bytes per entry.
  // 0 turns resumption off.
  static constexpr std::size_t session_cache_entries = 64;
  // The engine's record buffer, per connection. Full duplex (BIDI, 33,178
  // bytes) lets a handler write while unread input waits in the engine,
  // which a blocking handler needs; MONO (16,709 bytes) halves it for
  // strict request-then-reply protocols. Below MONO only clients that
  // negotiate max_fragment_length can talk to the server.
  static constexpr std::size_t io_buffer_size = BR_SSL_BUFSIZE_BIDI;
  static constexpr bool full_duplex = true;
  // Handshakes in progress at once (more are refused) and how long one may
  // take: a client that stalls mid-handshake is cut off then.
  static constexpr unsigned max_handshakes = 32;
  static constexpr int handshake_timeout_ms = 10000;
};

namespace detail {

// The engine with a flag the cache can set: BearSSL tells nobody else that
// a session was resumed. The cache finds the flag from the engine pointer.
struct engine_state {
  br_ssl_server_context server;
  bool resumed;
};
static_assert(std::is_standard_layout_v<engine_state>, "the cache casts server back to engine_state");

// BearSSL's LRU cache behind a mutex, since threading<> workers handshake
// at the same time. (A forked child's additions die with it: under forking
// sessions resume only from what the parent had, which is nothing.)
class locked_session_cache {
 public:
  void attach(unsigned char* store, std::size_t size) noexcept {
    br_ssl_session_cache_lru_init(&lru_, store, size);
  }
  const br_ssl_session_cache_class** vtable() noexcept { return &vtable_; }

 private:
  static locked_session_cache& self(const br_ssl_session_cache_class** ctx) noexcept {
    return *reinterpret_cast<locked_session_cache*>(ctx);
  }
  static void save(const br_ssl_session_cache_class** ctx, br_ssl_server_context* server,
                   const br_ssl_session_parameters* params) {
    locked_session_cache& cache = self(ctx);
    sockserv::detail::lock_guard hold(cache.lock_);
    cache.lru_.vtable->save(&cache.lru_.vtable, server, params);
  }
  static int load(const br_ssl_session_cache_class** ctx, br_ssl_server_context* server,
                  br_ssl_session_parameters* params) {
    locked_session_cache& cache = self(ctx);
    sockserv::detail::lock_guard hold(cache.lock_);
    int found = cache.lru_.vtable->load(&cache.lru_.vtable, server, params);
    if (found) reinterpret_cast<engine_state*>(server)->resumed = true;
    return found;
  }
  static const br_ssl_session_cache_class* klass() noexcept {
    static constexpr br_ssl_session_cache_class methods{sizeof(locked_session_cache), &save, &load};
    return &methods;
  }

  const br_ssl_session_cache_class* vtable_ = klass();  // first: BearSSL passes &vtable_
  br_ssl_session_cache_lru lru_{};
  sockserv::detail::mutex lock_;
};

}  // namespace detail

class server_context_core {
 public:
  // Handshakes in progress at once; further ones are refused.
  unsigned max_handshakes;
  // Milliseconds a handshake may take in all.
  int handshake_timeout_ms;

  credentials_core& credentials() noexcept { return credentials_; }
  const credentials_core& credentials() const noexcept { return credentials_; }

  // Convenience: chain and key files in one call.
  result load_pem_files(const char* chain_path, const char* key_path) noexcept {
    result chain = credentials_.load_chain_file(chain_path);
    return chain ? credentials_.load_key_file(key_path) : chain;
  }
  result require_client_certificates(const char* ca_path) noexcept {
    if (!client_certificates_possible_)
      return result::failure("client CA: this Config has client_certificates = false (no mutual TLS)");
    return credentials_.load_client_ca_file(ca_path);
  }
  bool requires_client_certificates() const noexcept { return credentials_.anchor_count() > 0; }

  // ALPN: the server's protocols, most preferred first (the array and the
  // strings must outlive the server). With fail_on_mismatch a client that
  // offers none of them is refused instead of going on without ALPN.
  void set_alpn(const char* const* names, std::size_t count, bool fail_on_mismatch = false) noexcept {
    alpn_names_ = names;
    alpn_count_ = count;
    alpn_strict_ = fail_on_mismatch;
  }
  const char* const* alpn_names() const noexcept { return alpn_names_; }
  std::size_t alpn_count() const noexcept { return alpn_count_; }
  bool alpn_strict() const noexcept { return alpn_strict_; }

  // The resumption cache, or null when it is off. With client certificates
  // required it is off too: a resumed session has no certificate to show,
  // and the handler must always see who the client is.
  const br_ssl_session_cache_class** session_cache() noexcept {
    return cache_enabled_ && !requires_client_certificates() ? cache_.vtable() : nullptr;
  }

  // The handshake gate: try_begin_handshake() false means "at the cap".
  bool try_begin_handshake() noexcept {
    unsigned now = handshakes_.fetch_add(1, std::memory_order_relaxed);
    if (now < max_handshakes) return true;
    handshakes_.fetch_sub(1, std::memory_order_relaxed);
    refused_handshakes_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  void end_handshake() noexcept { handshakes_.fetch_sub(1, std::memory_order_relaxed); }
  // What a connection refused at the cap is told.
  result cap_refusal() const noexcept {
    char text[96];
    std::snprintf(text, sizeof text, "TLS: refused, %u handshakes already in progress", max_handshakes);
    return result::failure(text);
  }
  unsigned handshakes_in_progress() const noexcept { return handshakes_.load(std::memory_order_relaxed); }
  unsigned long refused_handshakes() const noexcept { return refused_handshakes_.load(std::memory_order_relaxed); }

 protected:
  server_context_core(credentials_core& credentials, unsigned char* cache_store, std::size_t cache_bytes,
                      unsigned handshakes, int timeout_ms, bool client_certificates) noexcept
      : max_handshakes(handshakes),
        handshake_timeout_ms(timeout_ms),
        credentials_(credentials),
        client_certificates_possible_(client_certificates) {
    cache_enabled_ = cache_bytes > 0;
    if (cache_enabled_) cache_.attach(cache_store, cache_bytes);
  }

 private:
  credentials_core& credentials_;
  bool client_certificates_possible_;
  detail::locked_session_cache cache_;
  bool cache_enabled_ = false;
  const char* const* alpn_names_ = nullptr;
  std::size_t alpn_count_ = 0;
  bool alpn_strict_ = false;
  std::atomic<unsigned> handshakes_{0};
  std::atomic<unsigned long> refused_handshakes_{0};
};

template <class Config = default_config>
class server_context : public server_context_core {
 public:
  using config = Config;
  // Without mutual TLS there is no room for client CAs either.
  static constexpr bool client_certificates = Config::client_certificates;
  using credentials_type =
      tls::credentials<Config::chain_bytes, Config::max_chain_certificates,
                       client_certificates ? Config::trust_anchor_bytes : 0, client_certificates ? Config::max_trust_anchors : 0>;

  server_context() noexcept
      : server_context_core(credentials_, cache_store_, sizeof cache_store_ - (Config::session_cache_entries == 0),
                            Config::max_handshakes, Config::handshake_timeout_ms, client_certificates) {}
  server_context(const server_context&) = delete;
  server_context& operator=(const server_context&) = delete;

 private:
  credentials_type credentials_;
  unsigned char cache_store_[Config::session_cache_entries * 100 + (Config::session_cache_entries == 0)];
};

}  // namespace sockserv::tls
