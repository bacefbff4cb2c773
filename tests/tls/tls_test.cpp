// tls_stream over real TLS: a BearSSL client against sockserv servers on
// loopback, under synchronous, threading and forking; the failures a TLS
// port meets (plaintext, garbage, stalls, bad or missing client
// certificates, truncation) end one connection with a clear handle_error
// message while the server goes on serving.
#include "tls_support.hpp"

#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <catch2/catch.hpp>

#include <sockserv/tls.hpp>

#include <string>

using namespace tls_support;
using test_support::serving_thread;

namespace {

event_log handler_log;  // what handlers saw
event_log error_log;    // what handle_error got

// Echoes lines; logs who the client was and how its stream ended.
struct echo_handler : sockserv::stream_request_handler<> {
  void handle() {
    sockserv::tls::session_core* session = sockserv::tls::session_of(request);  // (on a server thread: no Catch2)
    if (session == nullptr) return handler_log.add("no session");
    const char* alpn = session->alpn();
    handler_log.add(std::string("subject=") + session->peer_subject() + " sni=" + session->server_name() +
                    " alpn=" + (alpn ? alpn : "-") + " resumed=" + (session->resumed() ? "yes" : "no"));
    for (std::string_view line = rfile.readline(); !line.empty(); line = rfile.readline())
      if (wfile.write(line) == -1) return;
    handler_log.add(rfile.eof() ? "end=clean" : (session->truncated() ? "end=truncated" : "end=error"));
  }
};

template <class Tls, class Policy>
struct tls_server : sockserv::basic_server<sockserv::inet4, Tls, echo_handler, Policy, tls_server<Tls, Policy>> {
  using base = sockserv::basic_server<sockserv::inet4, Tls, echo_handler, Policy, tls_server<Tls, Policy>>;
  tls_server() : base({"127.0.0.1", 0}) {}
  void handle_error(sockserv::connection&, const sockserv::socket_address&, const char* what) { error_log.add(what); }
};

struct quick_config : sockserv::tls::default_config {
  static constexpr int handshake_timeout_ms = 400;
};
struct mutual_config : quick_config {};
struct capped_config : quick_config {
  static constexpr unsigned max_handshakes = 1;
};
struct rsa_config : quick_config {};
// Mutual TLS compiled out: no client-certificate validator in the session.
struct server_only_config : quick_config {
  static constexpr bool client_certificates = false;
};
struct alpn_config : quick_config {};


}  // namespace

TEST_CASE("tls: echo under synchronous, threading and forking, with close_notify both ways", "[tls]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  auto exchange = [](auto& server) {
    serving_thread<std::remove_reference_t<decltype(server)>> serving(server);
    tls_client client(server.server_address, ca_anchors());
    REQUIRE(client.send("hello\n"));
    CHECK(client.read_line() == "hello\n");
    REQUIRE(client.send("second line\n"));
    CHECK(client.read_line() == "second line\n");
    CHECK(client.close_cleanly());  // the server answered our close_notify with its own
  };
  handler_log.clear();
  SECTION("synchronous") {
    tls_server<tls, sockserv::synchronous> server;
    exchange(server);
    CHECK(handler_log.wait_for(2).at(1) == "end=clean");
  }
  SECTION("threading") {
    tls_server<tls, sockserv::threading<4>> server;
    exchange(server);
    CHECK(handler_log.wait_for(2).at(1) == "end=clean");
  }
  SECTION("forking") {
    tls_server<tls, sockserv::forking<4>> server;
    exchange(server);
  }
  SECTION("synchronous, with mutual TLS compiled out of the Config") {
    using server_only = sockserv::tls_stream<server_only_config>;
    load_server<server_only>();
    tls_server<server_only, sockserv::synchronous> server;
    exchange(server);
    CHECK(handler_log.wait_for(2).at(0) == "subject= sni=localhost alpn=- resumed=no");
  }
}

TEST_CASE("tls: without client_certificates in the Config a session has no validator, and mutual TLS is refused",
          "[tls]") {
  using full = sockserv::tls::session<quick_config>;
  using server_only = sockserv::tls::session<server_only_config>;
  CHECK(sizeof(full) - sizeof(server_only) >= sizeof(sockserv::tls::client_verifier));
  CHECK(sizeof(full) - sizeof(server_only) <= sizeof(sockserv::tls::client_verifier) + 16);  // padding
  CHECK(sizeof(sockserv::tls::client_verifier) >= sizeof(br_x509_minimal_context));
  if (sizeof(void*) == 8) {  // the README's x86_64 figures (bench/tls/footprint.cpp prints them)
    CHECK(sizeof(full) == 41184);
    CHECK(sizeof(server_only) == 37360);
  }
  using tls = sockserv::tls_stream<server_only_config>;
  sockserv::result refused = tls::context().require_client_certificates(certificates::get().path("ca.pem").c_str());
  CHECK_FALSE(refused);
  CHECK(contains(refused.message(), "client_certificates = false"));
  CHECK_FALSE(tls::context().requires_client_certificates());
}

TEST_CASE("tls: an RSA server key works as an EC one does", "[tls]") {
  using tls = sockserv::tls_stream<rsa_config>;
  load_server<tls>("rsa.pem", "rsa.key");
  tls_server<tls, sockserv::threading<2>> server;
  serving_thread<decltype(server)> serving(server);
  tls_client client(server.server_address, ca_anchors());
  REQUIRE(client.send("rsa\n"));
  CHECK(client.read_line() == "rsa\n");
  CHECK(client.close_cleanly());
}

TEST_CASE("tls: a TCP end without close_notify reaches the handler as truncation", "[tls]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  tls_server<tls, sockserv::threading<2>> server;
  serving_thread<decltype(server)> serving(server);
  handler_log.clear();
  {
    tls_client client(server.server_address, ca_anchors());
    REQUIRE(client.send("cut\n"));
    CHECK(client.read_line() == "cut\n");
    ::shutdown(client.fd(), SHUT_WR);  // FIN, no close_notify
    CHECK(handler_log.wait_for(2).at(1) == "end=truncated");
  }
  still_serves(server);
}

TEST_CASE("tls: failed handshakes reach handle_error and the server goes on", "[tls]") {
  using tls = sockserv::tls_stream<quick_config>;
  load_server<tls>();
  tls_server<tls, sockserv::threading<4>> server;
  serving_thread<decltype(server)> serving(server);
  error_log.clear();

  SECTION("plaintext on the TLS port") {
    sockserv::file_descriptor plain = test_support::connect_to(server.server_address);
    test_support::send_all(plain.fd(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, "TLS handshake failed"));
    CHECK(contains(message, "plaintext on a TLS port"));
    CHECK(test_support::read_until_eof(plain.fd()).eof);
  }
  SECTION("a record cut short, then the client leaves") {
    sockserv::file_descriptor raw = test_support::connect_to(server.server_address);
    const char partial[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00};  // a 64-byte record, 2 bytes of it
    test_support::send_all(raw.fd(), std::string_view(partial, sizeof partial));
    ::shutdown(raw.fd(), SHUT_WR);
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, "TLS handshake failed"));
    CHECK(contains(message, "closed the connection during the handshake"));
  }
  SECTION("a client that stalls mid-handshake is cut off at the deadline") {
    sockserv::file_descriptor raw = test_support::connect_to(server.server_address);
    const char partial[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01};
    test_support::send_all(raw.fd(), std::string_view(partial, sizeof partial));
    auto start = std::chrono::steady_clock::now();
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, "no progress within 400 ms"));
    CHECK(test_support::read_until_eof(raw.fd()).eof);
    CHECK(test_support::seconds_since(start) < 4.0);  // generous: the deadline is 0.4 s
  }
  SECTION("a client that does not trust the server's certificate") {
    test_credentials other;
    load_anchors(other, certificates::get().path("rogue.pem"));
    {
      tls_client client(server.server_address, other);
      CHECK_FALSE(client.send("x\n"));
    }  // BearSSL's client hangs up without an alert
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, "TLS handshake failed"));
    CHECK_FALSE(contains(message, "no progress"));
  }
  still_serves(server);
}

TEST_CASE("tls: client certificates, accepted and refused, with the subject visible", "[tls]") {
  using tls = sockserv::tls_stream<mutual_config>;
  load_server<tls>();
  certificates& certs = certificates::get();
  sockserv::result required = tls::context().require_client_certificates(certs.path("ca.pem").c_str());
  REQUIRE(required);
  tls_server<tls, sockserv::threading<4>> server;
  serving_thread<decltype(server)> serving(server);
  handler_log.clear();
  error_log.clear();

  SECTION("signed by the CA: accepted, subject logged") {
    serves_the_device(server);
    CHECK(contains(handler_log.wait_for(1).at(0), "subject=CN=device-1,OU=devices,O=sockserv,C=CH "));
  }
  // A refused client: its exchange fails and handle_error says why.
  auto refused = [&](const sockserv::tls::credentials_core* identity, const char* reason) {
    client_options options;
    options.identity = identity;
    tls_client client(server.server_address, ca_anchors(), options);
    CHECK_FALSE((client.send("x\n") && client.read_line() == "x\n"));
    std::string message = error_log.wait_for(1).at(0);
    INFO(message);
    CHECK(contains(message, reason));
  };
  SECTION("self-signed by a stranger: refused") {
    test_credentials rogue;
    REQUIRE(rogue.load_chain_file(certs.path("rogue.pem").c_str()));
    REQUIRE(rogue.load_key_file(certs.path("rogue.key").c_str()));
    refused(&rogue, "client certificate is not signed by a trusted CA");
  }
  SECTION("no certificate at all: refused") { refused(nullptr, "sent no certificate"); }
  CHECK(handler_log.wait_for(0).size() <= 2);  // no handler ran for a refused client
}

TEST_CASE("tls: a session resumes from the cache; SNI and ALPN reach the handler", "[tls]") {
  using tls = sockserv::tls_stream<alpn_config>;
  load_server<tls>();
  static const char* const protocols[] = {"sockserv/1", "http/1.1"};
  tls::context().set_alpn(protocols, 2);
  tls_server<tls, sockserv::threading<2>> server;
  serving_thread<decltype(server)> serving(server);
  handler_log.clear();
  br_ssl_session_parameters saved{};
  for (int round = 0; round < 2; ++round) {
    client_options options;
    options.server_name = "localhost";
    options.alpn = {"h2", "sockserv/1"};
    options.resume = &saved;
    tls_client client(server.server_address, ca_anchors(), options);
    REQUIRE(client.send("again\n"));
    CHECK(client.read_line() == "again\n");
    CHECK(client.close_cleanly());
  }
  std::vector<std::string> seen = handler_log.wait_for(4);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == "subject= sni=localhost alpn=sockserv/1 resumed=no");
  CHECK(seen[2] == "subject= sni=localhost alpn=sockserv/1 resumed=yes");
}

TEST_CASE("tls: handshakes beyond the cap are refused, then served once a slot frees", "[tls]") {
  using tls = sockserv::tls_stream<capped_config>;
  load_server<tls>();
  tls_server<tls, sockserv::threading<4>> server;
  serving_thread<decltype(server)> serving(server);
  error_log.clear();
  sockserv::file_descriptor staller = test_support::connect_to(server.server_address);
  test_support::send_all(staller.fd(), std::string_view("\x16\x03\x01", 3));  // holds the only slot
  {
    sockserv::file_descriptor second = test_support::connect_to(server.server_address);
    std::string message = error_log.wait_for(1).at(0);
    CHECK(contains(message, "refused, 1 handshakes already in progress"));
    CHECK(test_support::read_until_eof(second.fd()).eof);
  }
  CHECK(contains(error_log.wait_for(2).at(1), "no progress within"));  // the staller's deadline
  CHECK(tls::context().handshakes_in_progress() == 0);
  still_serves(server);
}

TEST_CASE("tls: a server with no certificate and key does not start", "[tls]") {
  struct unloaded_config : sockserv::tls::default_config {};
  using tls = sockserv::tls_stream<unloaded_config>;
  std::string message;
  try {
    sockserv::basic_server<sockserv::inet4, tls, echo_handler> server({"127.0.0.1", 0});
  } catch (const sockserv::socket_error& failure) {
    message = failure.what();
  }
  INFO(message);
  CHECK(contains(message, "Required key not available"));
}

TEST_CASE("tls: credentials from PEM, and clear errors for bad ones", "[tls]") {
  certificates& certs = certificates::get();
  REQUIRE(certs.ok());
  test_credentials id;
  SECTION("EC and RSA keys, from files and from memory") {
    CHECK(id.load_key_file(certs.path("server.key").c_str()));
    CHECK(id.key_type() == BR_KEYTYPE_EC);
    CHECK(id.load_key_file(certs.path("rsa.key").c_str()));
    CHECK(id.key_type() == BR_KEYTYPE_RSA);
    CHECK(id.load_chain_file(certs.path("server.pem").c_str()));
    CHECK(id.chain_length() == 1);
    CHECK(id.has_server_identity());
  }
  SECTION("a missing file") {
    sockserv::result r = id.load_chain_file("/nonexistent/chain.pem");
    CHECK(contains(r.message(), "No such file"));
  }
  SECTION("not PEM") {
    CHECK(contains(id.load_chain("hello, world\n").message(), "no BEGIN line"));
    CHECK(contains(id.load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").message(),
                   "not a valid RSA or EC key"));
    CHECK(contains(id.load_chain("-----BEGIN CERTIFICATE-----\nAAAA\n").message(), "no END line"));
  }
  SECTION("a chain larger than its storage") {
    sockserv::tls::credentials<64, 1, 16, 1> tiny;
    CHECK(contains(tiny.load_chain_file(certs.path("server.pem").c_str()).message(), "larger than chain_bytes"));
    CHECK_FALSE(tiny.has_server_identity());
  }
}
