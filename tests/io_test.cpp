// rfile and wfile (io.hpp) as units, over a socketpair: buffered_reader,
// packet_reader, stream_writer (unbuffered and buffered), packet_writer.
#include "support/client.hpp"
#include "support/serving_thread.hpp"

#include <sockserv/io.hpp>
#include <sockserv/socket.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>

using namespace test_support;

namespace {

// Two connected stream sockets: the code under test uses `near`, the test
// plays the peer on `far`.
struct socket_pair {
  sockserv::file_descriptor near, far;
  socket_pair() {
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
    near.reset(ends[0]);
    far.reset(ends[1]);
    set_io_timeouts(ends[0], io_timeout_ms);
    set_io_timeouts(ends[1], io_timeout_ms);
  }
  // The peer sends `data` and, if asked, ends its side of the stream.
  void peer_sends(std::string_view data, bool then_eof = true) {
    send_all(far.fd(), data);
    if (then_eof) REQUIRE(::shutdown(far.fd(), SHUT_WR) == 0);
  }
  // Everything the code under test has sent so far (without waiting).
  std::string peer_received() {
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(far.fd(), buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
      out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
};

std::string str(std::string_view view) { return std::string(view); }

}  // namespace

// ---- buffered_reader ----------------------------------------------------------

TEST_CASE("readline returns whole lines with their '\\n', a partial last line, then empty", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<64> rfile;
  rfile.attach(pair.near.fd());
  pair.peer_sends("first\nsecond\n\nlast");
  CHECK(str(rfile.readline()) == "first\n");
  CHECK(str(rfile.readline()) == "second\n");
  CHECK(str(rfile.readline()) == "\n");
  CHECK_FALSE(rfile.eof());
  CHECK(str(rfile.readline()) == "last");
  CHECK(rfile.eof());
  CHECK(str(rfile.readline()).empty());
  CHECK(str(rfile.readline()).empty());
  CHECK(rfile.error() == 0);
}

TEST_CASE("readline(limit) stops after limit bytes; the rest of the line follows", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<64> rfile;
  rfile.attach(pair.near.fd());
  pair.peer_sends("0123456789\nab\n");
  CHECK(str(rfile.readline(4)) == "0123");
  CHECK(str(rfile.readline(4)) == "4567");
  CHECK(str(rfile.readline(4)) == "89\n");
  CHECK(str(rfile.readline(3)) == "ab\n");  // the '\n' fits exactly
  CHECK(str(rfile.readline(1)).empty());
  CHECK(rfile.eof());
}

TEST_CASE("a line longer than the buffer comes in buffer-sized pieces", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<8> rfile;
  CHECK(rfile.capacity() == 8);
  rfile.attach(pair.near.fd());
  pair.peer_sends("abcdefghijklmnopqrs\nt\n");
  CHECK(str(rfile.readline()) == "abcdefgh");
  CHECK(str(rfile.readline(100)) == "ijklmnop");  // a limit beyond the buffer is clamped
  CHECK(str(rfile.readline()) == "qrs\n");
  CHECK(str(rfile.readline()) == "t\n");
}

TEST_CASE("a line that fits the buffer comes whole even when it straddles the buffer's end", "[io][rfile]") {
  // "abc\n" uses half of the buffer; "defgh\n" needs the bytes moved down.
  socket_pair pair;
  sockserv::buffered_reader<8> rfile;
  rfile.attach(pair.near.fd());
  pair.peer_sends("abc\ndefgh\nij\n");
  CHECK(str(rfile.readline()) == "abc\n");
  CHECK(str(rfile.readline()) == "defgh\n");
  CHECK(str(rfile.readline()) == "ij\n");
}

TEST_CASE("readline waits for the rest of a line that arrives in parts", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<64> rfile;
  rfile.attach(pair.near.fd());
  pair.peer_sends("hel", false);
  std::string line;
  joining_thread reader([&] { line = str(rfile.readline()); });  // bounded by SO_RCVTIMEO
  pair.peer_sends("lo\n", false);
  reader.join();
  CHECK(line == "hello\n");
  CHECK_FALSE(rfile.eof());
}

TEST_CASE("read(n) gathers exactly n bytes over several receives; buffered bytes come first", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<4> rfile;
  rfile.attach(pair.near.fd());
  pair.peer_sends("ab\ncdefghijklm");
  CHECK(str(rfile.readline()) == "ab\n");
  CHECK(rfile.buffered() == 1);  // "c" was received with the line
  char block[7] = {};
  CHECK(rfile.read(block, sizeof block) == 7);
  CHECK(std::string(block, 7) == "cdefghi");
  char rest[16] = {};
  CHECK(rfile.read(rest, sizeof rest) == 4);  // the stream ends first
  CHECK(std::string(rest, 4) == "jklm");
  CHECK(rfile.eof());
  CHECK(rfile.read(rest, sizeof rest) == 0);
}

TEST_CASE("read_to_eof reads to the end of the stream, or fills the destination", "[io][rfile]") {
  socket_pair pair;
  sockserv::buffered_reader<16> rfile;
  rfile.attach(pair.near.fd());
  std::string data(100, 'q');
  pair.peer_sends(data);
  char small[60];
  CHECK(rfile.read_to_eof(small, sizeof small) == 60);
  CHECK_FALSE(rfile.eof());
  char large[100];
  CHECK(rfile.read_to_eof(large, sizeof large) == 40);
  CHECK(rfile.eof());
}

TEST_CASE("a failed receive ends reading, and error() tells why", "[io][rfile]") {
  SECTION("not a socket") {
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    sockserv::file_descriptor read_end(ends[0]), write_end(ends[1]);
    sockserv::buffered_reader<16> rfile;
    rfile.attach(read_end.fd());
    CHECK(str(rfile.readline()).empty());
    CHECK(rfile.error() == ENOTSOCK);
    CHECK_FALSE(rfile.eof());
    CHECK_FALSE(rfile.timed_out());
    char byte;
    CHECK(rfile.read(&byte, 1) == 0);  // sticky
  }
  SECTION("a receive timeout") {
    socket_pair pair;
    set_io_timeouts(pair.near.fd(), 20);
    sockserv::buffered_reader<16> rfile;
    rfile.attach(pair.near.fd());
    pair.peer_sends("partial", false);
    CHECK(str(rfile.readline()) == "partial");  // what came before the timeout
    CHECK(rfile.timed_out());
    CHECK_FALSE(rfile.eof());
  }
}

TEST_CASE("attach starts afresh", "[io][rfile]") {
  socket_pair first, second;
  sockserv::buffered_reader<16> rfile;
  rfile.attach(first.near.fd());
  first.peer_sends("one\ntwo\n");
  CHECK(str(rfile.readline()) == "one\n");
  CHECK(rfile.buffered() == 4);
  rfile.attach(second.near.fd());
  CHECK(rfile.buffered() == 0);
  second.peer_sends("three\n");
  CHECK(str(rfile.readline()) == "three\n");
  CHECK(str(rfile.readline()).empty());
  CHECK(rfile.eof());
}

// ---- packet_reader ----------------------------------------------------------------

TEST_CASE("packet_reader reads lines and bytes from the packet", "[io][rfile][datagram]") {
  sockserv::packet_reader rfile;
  const std::string packet = "a\nbc\n\nd";
  rfile.attach(packet);
  CHECK(rfile.capacity() == packet.size());
  CHECK(str(rfile.readline()) == "a\n");
  CHECK(str(rfile.readline(2)) == "bc");
  CHECK(str(rfile.readline()) == "\n");
  CHECK(str(rfile.readline()) == "\n");
  CHECK_FALSE(rfile.eof());
  char last[8];
  CHECK(rfile.read(last, sizeof last) == 1);
  CHECK(last[0] == 'd');
  CHECK(rfile.eof());
  CHECK(str(rfile.readline()).empty());
  CHECK(rfile.error() == 0);
}

TEST_CASE("packet_reader over an empty packet is at its end at once", "[io][rfile][datagram]") {
  sockserv::packet_reader rfile;
  rfile.attach(std::string_view());
  CHECK(rfile.eof());
  CHECK(str(rfile.readline()).empty());
  char byte;
  CHECK(rfile.read_to_eof(&byte, 1) == 0);
}

TEST_CASE("packet_reader reads a packet that is not a string (binary, with NULs)", "[io][rfile][datagram]") {
  const char bytes[] = {'x', '\0', 'y', '\n', '\0'};
  sockserv::packet_reader rfile;
  rfile.attach(std::string_view(bytes, sizeof bytes));
  CHECK(rfile.readline() == std::string_view(bytes, 4));
  CHECK(rfile.readline() == std::string_view(bytes + 4, 1));
}

// ---- stream_writer -------------------------------------------------------------------

TEST_CASE("an unbuffered stream_writer sends each write at once and completely", "[io][wfile]") {
  socket_pair pair;
  sockserv::stream_writer<0> wfile;
  wfile.attach(pair.near.fd());
  CHECK(wfile.write("hello ") == 6);
  CHECK(pair.peer_received() == "hello ");
  CHECK(wfile.write(std::string(100000, 'w')) == 100000);  // more than one send() may take
  CHECK(read_exactly(pair.far.fd(), 100000) == std::string(100000, 'w'));
  CHECK(wfile.buffered() == 0);
  CHECK(wfile.flush() == 0);
}

TEST_CASE("an empty write sends nothing and succeeds", "[io][wfile]") {
  socket_pair pair;
  sockserv::stream_writer<0> unbuffered;
  unbuffered.attach(pair.near.fd());
  CHECK(unbuffered.write("") == 0);
  sockserv::stream_writer<8> buffered;
  buffered.attach(pair.near.fd());
  CHECK(buffered.write("") == 0);
  CHECK(buffered.flush() == 0);
  CHECK(pair.peer_received().empty());
}

TEST_CASE("a buffered stream_writer collects writes until full or flushed", "[io][wfile]") {
  socket_pair pair;
  sockserv::stream_writer<8> wfile;
  wfile.attach(pair.near.fd());
  CHECK(wfile.write("abcde") == 5);
  CHECK(wfile.write("fgh") == 3);  // exactly full
  CHECK(wfile.buffered() == 8);
  CHECK(pair.peer_received().empty());

  CHECK(wfile.write("i") == 1);  // no room: the full buffer goes first
  CHECK(pair.peer_received() == "abcdefgh");
  CHECK(wfile.buffered() == 1);

  const std::string big(20, 'Z');  // larger than the buffer: sent through, in order
  CHECK(wfile.write(big) == 20);
  CHECK(pair.peer_received() == "i" + big);
  CHECK(wfile.buffered() == 0);

  CHECK(wfile.write("tail") == 4);
  CHECK(pair.peer_received().empty());
  CHECK(wfile.flush() == 0);
  CHECK(pair.peer_received() == "tail");
  CHECK(wfile.flush() == 0);  // nothing left
  CHECK(pair.peer_received().empty());
}

TEST_CASE("writing to a closed peer fails with EPIPE, without SIGPIPE, and the error sticks", "[io][wfile]") {
  // With the default SIGPIPE action, a send without MSG_NOSIGNAL would end
  // this test binary here.
  SECTION("unbuffered") {
    socket_pair pair;
    sockserv::stream_writer<0> wfile;
    wfile.attach(pair.near.fd());
    pair.far.reset();
    CHECK(wfile.write("lost") == -1);
    CHECK(wfile.error() == EPIPE);
    CHECK(wfile.write("x") == -1);
  }
  SECTION("buffered: the failure shows at flush") {
    socket_pair pair;
    sockserv::stream_writer<64> wfile;
    wfile.attach(pair.near.fd());
    pair.far.reset();
    CHECK(wfile.write("kept") == 4);
    CHECK(wfile.flush() == -1);
    CHECK(wfile.error() == EPIPE);
    CHECK(wfile.write("more") == -1);
    CHECK(wfile.flush() == -1);
  }
}

TEST_CASE("attach resets a stream_writer", "[io][wfile]") {
  socket_pair pair;
  sockserv::stream_writer<16> wfile;
  wfile.attach(-1);
  CHECK(wfile.write("a") == 1);
  CHECK(wfile.flush() == -1);  // no connection
  CHECK(wfile.error() == EBADF);
  wfile.attach(pair.near.fd());
  CHECK(wfile.error() == 0);
  CHECK(wfile.buffered() == 0);
  CHECK(wfile.write("b") == 1);
  CHECK(wfile.flush() == 0);
  CHECK(pair.peer_received() == "b");
}

// ---- packet_writer -------------------------------------------------------------------

TEST_CASE("packet_writer collects the reply and refuses a write that does not fit, whole", "[io][wfile][datagram]") {
  sockserv::packet_writer<8> wfile;
  CHECK_FALSE(wfile.has_reply());
  CHECK(wfile.write("abc") == 3);
  CHECK(wfile.write("123456") == -1);  // 6 > 5 left: nothing of it is taken
  CHECK(wfile.error() == EMSGSIZE);
  CHECK(str(wfile.contents()) == "abc");
  CHECK(wfile.write("12345") == 5);  // exactly fills it
  CHECK(str(wfile.contents()) == "abc12345");
  CHECK(wfile.write("!") == -1);
  CHECK(str(wfile.contents()) == "abc12345");
}

TEST_CASE("an empty write to packet_writer asks for an (empty) reply", "[io][wfile][datagram]") {
  sockserv::packet_writer<8> wfile;
  CHECK(wfile.write("") == 0);
  CHECK(wfile.has_reply());
  CHECK(wfile.contents().empty());
}

TEST_CASE("clear() empties packet_writer", "[io][wfile][datagram]") {
  sockserv::packet_writer<4> wfile;
  CHECK(wfile.write("abcdef") == -1);
  CHECK(wfile.write("ab") == 2);
  wfile.clear();
  CHECK_FALSE(wfile.has_reply());
  CHECK(wfile.error() == 0);
  CHECK(wfile.contents().empty());
  CHECK(wfile.write("wxyz") == 4);
  CHECK(str(wfile.contents()) == "wxyz");
}
