// The stream handler base (handler.hpp) as a server runs it: rfile over the
// connection (readline limits, reads across segments, read to EOF, lines
// longer than rbufsize), wfile unbuffered and buffered, the connection
// timeout, TCP_NODELAY, and the request attributes.
#include "support/client.hpp"
#include "support/server_kinds.hpp"
#include "support/serving_thread.hpp"
#include "support/temp_dir.hpp"

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>

using namespace test_support;

namespace {

// Serves one request on this thread: the client connects and sends
// `message` (then half-closes if asked), handle_request() runs, and the
// client's view of the reply is returned.
template <class Server>
read_outcome serve_stream(Server& server, std::string_view message, bool half_close = true) {
  sockserv::file_descriptor client = connect_to(server.server_address);
  send_all(client.fd(), message);
  if (half_close) REQUIRE(::shutdown(client.fd(), SHUT_WR) == 0);
  sockserv::result handled = server.handle_request();
  INFO(handled.message());
  REQUIRE(handled.ok());
  return read_until_eof(client.fd());
}

std::string pattern(std::size_t size, std::size_t seed = 0) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return out;
}

// Every readline(8) piece in brackets, then "<eof>" if rfile reached it.
struct limited_line_handler : sockserv::stream_request_handler<> {
  void handle() {
    for (std::string_view piece = rfile.readline(8); !piece.empty(); piece = rfile.readline(8)) {
      wfile.write("[");
      wfile.write(piece);
      wfile.write("]");
    }
    if (rfile.eof()) wfile.write("<eof>");
  }
};

// rbufsize 16: longer lines come back in 16-byte pieces.
struct small_buffer_line_handler : sockserv::stream_request_handler<16> {
  void handle() {
    for (std::string_view piece = rfile.readline(); !piece.empty(); piece = rfile.readline()) {
      wfile.write("[");
      wfile.write(piece);
      wfile.write("]");
    }
  }
};

// rbufsize 4: read(10) needs several receives whatever the segmentation.
struct tiny_buffer_read_handler : sockserv::stream_request_handler<4> {
  void handle() {
    char block[10];
    std::size_t n = rfile.read(block, sizeof block);
    wfile.write(block, n);
    wfile.write("|");
    wfile.write(rfile.readline());  // what read() left buffered comes first
  }
};

// Reads everything into a 32 KiB buffer; replies "<bytes> <eof?> <intact?>".
struct read_to_eof_handler : sockserv::stream_request_handler<> {
  void handle() {
    static char buffer[32768];
    std::size_t n = rfile.read_to_eof(buffer, sizeof buffer);
    bool at_eof = rfile.eof();
    bool intact = std::string_view(buffer, n) == pattern(n);
    char sink[4096];
    while (rfile.read_to_eof(sink, sizeof sink) > 0) {
    }  // leave nothing unread: closing on unread data would reset the connection
    std::string reply = std::to_string(n) + (at_eof ? " eof" : " more") + (intact ? " intact" : " corrupt");
    wfile.write(reply);
  }
};

// Unbuffered wfile: each write must reach the client before the handler
// goes on, or this conversation deadlocks (the client answers "ack").
struct ping_pong_handler : sockserv::stream_request_handler<> {
  void handle() {
    wfile.write("first\n");
    if (rfile.readline() == "ack\n") wfile.write("second\n");
  }
};

// wbufsize 64: small writes collect in wfile until finish() flushes them.
struct buffered_writer_handler : sockserv::stream_request_handler<8192, 64> {
  void handle() {
    for (int i = 0; i < 5; ++i) wfile.write("0123456789");  // 50 bytes: all fit
    std::string note = "|buffered=" + std::to_string(wfile.buffered()) + "\n";
    wfile.write(note);
  }
};

struct timeout_handler : sockserv::stream_request_handler<> {
  timeout_handler() { timeout = 0.1; }
  void handle() {
    std::string_view line = rfile.readline();
    wfile.write(line.empty() && rfile.timed_out() ? "timed out\n" : "got a line\n");
  }
};

template <bool DisableNagle>
struct nodelay_report_handler : sockserv::stream_request_handler<> {
  nodelay_report_handler() { disable_nagle_algorithm = DisableNagle; }
  void handle() {
    int value = -1;
    socklen_t size = sizeof value;
    if (::getsockopt(request.fd, IPPROTO_TCP, TCP_NODELAY, &value, &size) != 0)
      wfile.write("not tcp");
    else
      wfile.write(value != 0 ? "nodelay" : "nagle");
  }
};

// Reports what the handler was given.
struct attributes_handler : sockserv::stream_request_handler<> {
  void handle() {
    const bool cloexec = (::fcntl(request.fileno(), F_GETFD) & FD_CLOEXEC) != 0;
    const bool blocking = (::fcntl(request.fileno(), F_GETFL) & O_NONBLOCK) == 0;
    std::string reply = std::string(client_address.to_string().c_str()) + "|" +
                        (server != nullptr && server->fileno() >= 0 ? "server" : "no server") + "|" +
                        (request.fileno() >= 0 && request.fileno() != server->fileno() ? "connection" : "bad") +
                        (cloexec ? "|cloexec" : "|inherited by exec") + (blocking ? "|blocking" : "|non-blocking");
    wfile.write(reply);
  }
};

// Writes to a client that has already reset the connection.
struct write_to_gone_client : sockserv::stream_request_handler<> {
  static inline int write_result = 0;
  static inline int write_error = 0;
  void handle() {
    rfile.readline();
    const std::string block(65536, 'b');
    write_result = 0;
    for (int i = 0; i < 64 && write_result != -1; ++i) write_result = static_cast<int>(wfile.write(block));
    write_error = wfile.error();
  }
};

}  // namespace

TEST_CASE("readline(limit) returns at most limit bytes; the rest of the line comes next", "[handler][rfile]") {
  sockserv::tcp_server<limited_line_handler> server({"127.0.0.1", 0});
  read_outcome reply = serve_stream(server, "0123456789abc\nxy\n");
  CHECK(reply.eof);
  CHECK(reply.data == "[01234567][89abc\n][xy\n]<eof>");
  // The server goes on with the next client.
  CHECK(serve_stream(server, "short\n").data == "[short\n]<eof>");
}

TEST_CASE("a partial last line comes back without '\\n', then eof()", "[handler][rfile]") {
  sockserv::tcp_server<limited_line_handler> server({"127.0.0.1", 0});
  CHECK(serve_stream(server, "abc\ntail").data == "[abc\n][tail]<eof>");
  CHECK(serve_stream(server, "").data == "<eof>");
}

TEST_CASE("a line longer than rbufsize comes back in rbufsize pieces", "[handler][rfile]") {
  sockserv::tcp_server<small_buffer_line_handler> server({"127.0.0.1", 0});
  std::string line = pattern(40) + "\n";
  std::string expected = "[" + line.substr(0, 16) + "][" + line.substr(16, 16) + "][" + line.substr(32) + "]";
  CHECK(serve_stream(server, line + "next\n").data == expected + "[next\n]");
}

TEST_CASE("rfile.read(n) gathers n bytes over several receives and segments", "[handler][rfile]") {
  sockserv::tcp_server<tiny_buffer_read_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = connect_to(server.server_address);
  int one = 1;
  REQUIRE(::setsockopt(client.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
  for (std::string_view part : {"abc", "defg", "hijk", "lm\n"}) send_all(client.fd(), part);
  REQUIRE(server.handle_request().ok());
  CHECK(read_until_eof(client.fd()).data == "abcdefghij|klm\n");
}

TEST_CASE("rfile.read_to_eof reads up to the end of the stream or the buffer", "[handler][rfile]") {
  sockserv::tcp_server<read_to_eof_handler> server({"127.0.0.1", 0});
  SECTION("shorter than the buffer: all of it, and eof()") {
    CHECK(serve_stream(server, pattern(20000)).data == "20000 eof intact");
  }
  SECTION("longer than the buffer: a full buffer, not yet eof()") {
    CHECK(serve_stream(server, pattern(40000)).data == "32768 more intact");
  }
  SECTION("nothing at all") { CHECK(serve_stream(server, "").data == "0 eof intact"); }
}

TEST_CASE("wfile.write with wbufsize 0 sends at once", "[handler][wfile]") {
  sockserv::tcp_server<ping_pong_handler> server({"127.0.0.1", 0});
  server.timeout = io_timeout_ms / 1000.0;
  // The handler needs "ack" before it can finish, so it runs on a thread.
  // Declared before the client: if a REQUIRE fails, the client closes
  // first, the handler sees EOF, and the join cannot hang.
  joining_thread serving([&] { (void)server.handle_request(); });
  sockserv::file_descriptor client = connect_to(server.server_address);
  CHECK(read_line(client.fd()) == "first\n");  // before the handler finished
  send_all(client.fd(), "ack\n");
  read_outcome rest = read_until_eof(client.fd());
  CHECK(rest.data == "second\n");
  CHECK(rest.eof);
}

TEST_CASE("a buffered wfile collects writes and finish() flushes them", "[handler][wfile]") {
  sockserv::tcp_server<buffered_writer_handler> server({"127.0.0.1", 0});
  std::string expected;
  for (int i = 0; i < 5; ++i) expected += "0123456789";
  CHECK(serve_stream(server, "").data == expected + "|buffered=50\n");
}

TEST_CASE("the handler's timeout ends a read that waits too long", "[handler][timeout]") {
  sockserv::tcp_server<timeout_handler> server({"127.0.0.1", 0});
  // The client sends nothing and keeps the connection open.
  read_outcome reply = serve_stream(server, "", false);
  CHECK(reply.data == "timed out\n");
  CHECK(serve_stream(server, "hello\n").data == "got a line\n");
}

TEST_CASE("disable_nagle_algorithm sets TCP_NODELAY on the connection", "[handler][nagle]") {
  sockserv::tcp_server<nodelay_report_handler<true>> disabled({"127.0.0.1", 0});
  CHECK(serve_stream(disabled, "").data == "nodelay");
  sockserv::tcp_server<nodelay_report_handler<false>> by_default({"127.0.0.1", 0});
  CHECK(serve_stream(by_default, "").data == "nagle");
}

TEST_CASE("disable_nagle_algorithm is harmless on a unix stream connection", "[handler][nagle]") {
  temp_dir dir;
  sockserv::unix_stream_server<nodelay_report_handler<true>> server(dir.file("nagle.sock"));
  read_outcome reply = serve_stream(server, "");
  CHECK(reply.eof);
  CHECK(reply.data == "not tcp");  // served all the same
}

TEST_CASE("a handler gets the connection, the client's address and its server", "[handler]") {
  sockserv::tcp_server<attributes_handler> server({"127.0.0.1", 0});
  sockserv::file_descriptor client = connect_to(server.server_address);
  const std::string client_name = local_address(client.fd()).to_string().c_str();
  REQUIRE(server.handle_request().ok());
  CHECK(read_until_eof(client.fd()).data == client_name + "|server|connection|cloexec|blocking");
}

TEST_CASE("writing to a client that is gone fails without SIGPIPE, and the server goes on", "[handler][wfile]") {
  // With the default SIGPIPE action, a send without MSG_NOSIGNAL would end
  // this test binary.
  sockserv::tcp_server<write_to_gone_client> server({"127.0.0.1", 0});
  {
    sockserv::file_descriptor client = connect_to(server.server_address);
    send_all(client.fd(), "hello\n");
    linger reset{1, 0};
    REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
  }  // closed with a reset
  REQUIRE(server.handle_request().ok());
  CHECK(write_to_gone_client::write_result == -1);
  CHECK((write_to_gone_client::write_error == EPIPE || write_to_gone_client::write_error == ECONNRESET));
  sockserv::tcp_server<line_echo_handler> next({"127.0.0.1", 0});
  CHECK(serve_one_stream(next, "alive\n") == "alive\n");
}
