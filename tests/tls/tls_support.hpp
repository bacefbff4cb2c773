// Support for the TLS tests: certificates made with the openssl command in
// a temporary directory, a BearSSL client over a loopback socket, and a
// thread-safe log of what servers and handlers saw.
#pragma once

#include "support/client.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sockserv/tls.hpp>

#include <bearssl.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace tls_support {

// Runs a shell command; true if it exited 0.
inline bool run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// A CA, servers (EC P-256 and RSA) signed by it, a client signed by it, and
// a rogue self-signed client, generated once per test binary.
class certificates {
 public:
  static certificates& get() {
    static certificates made;
    return made;
  }
  std::string path(const char* name) const { return dir_.path() + "/" + name; }
  bool ok() const { return ok_; }

 private:
  certificates() {
    const std::string d = dir_.path();
    auto ec_key = [&](const char* name) { return run("openssl ecparam -name prime256v1 -genkey -noout -out " + d + "/" + name); };
    auto sign = [&](const char* key, const char* subject, const char* out) {
      return run("openssl req -new -key " + d + "/" + key + " -subj '" + subject + "' -out " + d + "/req.csr") &&
             run("openssl x509 -req -in " + d + "/req.csr -CA " + d + "/ca.pem -CAkey " + d +
                 "/ca.key -CAcreateserial -days 2 -out " + d + "/" + out);
    };
    ok_ = ec_key("ca.key") && run("openssl req -x509 -new -key " + d + "/ca.key -subj '/CN=sockserv test CA' -days 2 -out " + d + "/ca.pem") &&
          ec_key("server.key") && sign("server.key", "/CN=localhost", "server.pem") &&
          run("openssl genrsa -out " + d + "/rsa.key 2048") && sign("rsa.key", "/CN=localhost", "rsa.pem") &&
          ec_key("client.key") && sign("client.key", "/C=CH/O=sockserv/OU=devices/CN=device-1", "client.pem") &&
          ec_key("rogue.key") &&
          run("openssl req -x509 -new -key " + d + "/rogue.key -subj '/CN=rogue' -days 2 -out " + d + "/rogue.pem");
  }
  test_support::temp_dir dir_;
  bool ok_ = false;
};

// What handlers and servers report, from whichever thread runs them.
class event_log {
 public:
  void add(std::string line) {
    std::lock_guard<std::mutex> hold(lock_);
    lines_.push_back(std::move(line));
    changed_.notify_all();
  }
  // Waits (bounded) until `count` lines are there; returns them all.
  std::vector<std::string> wait_for(std::size_t count, int timeout_ms = 5000) {
    std::unique_lock<std::mutex> hold(lock_);
    changed_.wait_for(hold, std::chrono::milliseconds(timeout_ms), [&] { return lines_.size() >= count; });
    return lines_;
  }
  void clear() {
    std::lock_guard<std::mutex> hold(lock_);
    lines_.clear();
  }

 private:
  std::mutex lock_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
};

struct client_options {
  const char* server_name = "localhost";
  std::vector<const char*> alpn;
  const sockserv::tls::credentials_core* identity = nullptr;  // client certificate and key
  br_ssl_session_parameters* resume = nullptr;                // in: to resume; out: the session
};

// A BearSSL client on a blocking loopback socket (5 s I/O timeouts).
class tls_client {
 public:
  tls_client(const sockserv::socket_address& server, const sockserv::tls::credentials_core& anchors,
             const client_options& options = {})
      : socket_(test_support::connect_from_any_thread(server)), options_(options) {  // also on a client thread
    br_ssl_client_init_full(&client_, &x509_, anchors.anchors(), anchors.anchor_count());
    br_ssl_engine_set_buffer(&client_.eng, buffer_, sizeof buffer_, 1);
    if (!options.alpn.empty())
      br_ssl_engine_set_protocol_names(&client_.eng, const_cast<const char**>(options.alpn.data()), options.alpn.size());
    if (options.identity != nullptr)
      br_ssl_client_set_single_ec(&client_, options.identity->chain(), options.identity->chain_length(),
                                  &options.identity->ec_key(), BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
                                  br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
    const bool resume = options.resume != nullptr && options.resume->session_id_len > 0;
    if (resume) br_ssl_engine_set_session_parameters(&client_.eng, options.resume);  // before reset
    br_ssl_client_reset(&client_, options.server_name, resume ? 1 : 0);
    br_sslio_init(&io_, &client_.eng, &low_read, this, &low_write, this);
  }
  ~tls_client() {
    if (options_.resume != nullptr) br_ssl_engine_get_session_parameters(&client_.eng, options_.resume);
  }

  int fd() const { return socket_.fd(); }
  bool send(const std::string& text) {
    return br_sslio_write_all(&io_, text.data(), text.size()) == 0 && br_sslio_flush(&io_) == 0;
  }
  // Without std::string (for the allocation test): all of data, flushed;
  // exactly size bytes back.
  bool write_bytes(const void* data, std::size_t size) {
    return br_sslio_write_all(&io_, data, size) == 0 && br_sslio_flush(&io_) == 0;
  }
  bool read_bytes(void* into, std::size_t size) { return br_sslio_read_all(&io_, into, size) == 0; }
  // One line (or what came before the stream ended).
  std::string read_line() {
    std::string line;
    char c;
    while (br_sslio_read(&io_, &c, 1) == 1) {
      line += c;
      if (c == '\n') break;
    }
    return line;
  }
  // Sends close_notify and reads until the server's close_notify; true if
  // the engine then ended cleanly.
  bool close_cleanly() {
    br_sslio_close(&io_);
    return br_ssl_engine_last_error(&client_.eng) == BR_ERR_OK;
  }
  int error() const { return br_ssl_engine_last_error(&client_.eng); }
  // Reads until the session ends; true if the server ended it with
  // close_notify (a clean close), false on a bare TCP end.
  bool reads_to_close_notify() {
    char c;
    while (br_sslio_read(&io_, &c, 1) == 1) {
    }
    // BearSSL marks the input shut once close_notify came in (whether or
    // not its own answer could still go out).
    return client_.eng.shutdown_recv != 0 || client_.eng.close_received != 0;
  }
  br_ssl_engine_context& engine() { return client_.eng; }

 private:
  static int low_read(void* self, unsigned char* data, size_t size) {
    ssize_t n = ::recv(static_cast<tls_client*>(self)->socket_.fd(), data, size, 0);
    return n > 0 ? static_cast<int>(n) : -1;
  }
  static int low_write(void* self, const unsigned char* data, size_t size) {
    ssize_t n = ::send(static_cast<tls_client*>(self)->socket_.fd(), data, size, MSG_NOSIGNAL);
    return n > 0 ? static_cast<int>(n) : -1;
  }

  sockserv::file_descriptor socket_;
  client_options options_;
  br_ssl_client_context client_;
  br_x509_minimal_context x509_;
  unsigned char buffer_[BR_SSL_BUFSIZE_BIDI];
  br_sslio_context io_;
};

// Credentials for the client side of a test (anchors, or a client identity).
using test_credentials = sockserv::tls::credentials<8192, 4, 4096, 4>;

inline void load_anchors(test_credentials& into, const std::string& ca_file) {
  sockserv::result loaded = into.load_client_ca_file(ca_file.c_str());
  INFO(loaded.message());
  REQUIRE(loaded);
}

// The server's certificate and key (made by certificates) in Tls's context.
template <class Tls>
void load_server(const char* cert = "server.pem", const char* key = "server.key") {
  certificates& certs = certificates::get();
  REQUIRE(certs.ok());
  sockserv::result loaded = Tls::context().load_pem_files(certs.path(cert).c_str(), certs.path(key).c_str());
  INFO(loaded.message());
  REQUIRE(loaded);
}

// The test CA, as a client's trust anchors; loaded once.
inline test_credentials& ca_anchors() {
  static test_credentials anchors;
  static bool loaded = false;
  if (!loaded) load_anchors(anchors, certificates::get().path("ca.pem"));
  loaded = true;
  return anchors;
}

inline bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

// The device's identity signed by the test CA (client.pem, client.key), for
// mutual TLS; loaded once.
inline test_credentials& device_identity() {
  static test_credentials device;
  static bool loaded = false;
  if (!loaded) {
    certificates& certs = certificates::get();
    REQUIRE(device.load_chain_file(certs.path("client.pem").c_str()));
    REQUIRE(device.load_key_file(certs.path("client.key").c_str()));
  }
  loaded = true;
  return device;
}

// The device (device_identity()) is served: its line comes back and the
// session ends with close_notify both ways.
template <class Server>
void serves_the_device(Server& server) {
  client_options options;
  options.identity = &device_identity();
  tls_client client(server.server_address, ca_anchors(), options);
  REQUIRE(client.send("authenticated\n"));
  CHECK(client.read_line() == "authenticated\n");
  CHECK(client.close_cleanly());
}

// The server still serves a well-behaved client.
template <class Server>
void still_serves(Server& server) {
  tls_client client(server.server_address, ca_anchors());
  REQUIRE(client.send("still here\n"));
  CHECK(client.read_line() == "still here\n");
  CHECK(client.close_cleanly());
}

}  // namespace tls_support
