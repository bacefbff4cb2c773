// framing.hpp: whole messages cut off the front of buffered input.
#include <sockserv/framing.hpp>

#include <catch2/catch.hpp>

#include <string>

using sockserv::frame;

TEST_CASE("line_framing returns one whole line at a time, delimiter included", "[framing]") {
  using lines = sockserv::line_framing<>;
  frame first = lines::extract("abc\ndef\nxy", 64);
  CHECK(first.consumed == 4);
  CHECK(first.message == "abc\n");
  frame second = lines::extract(std::string_view("abc\ndef\nxy").substr(4), 64);
  CHECK(second.message == "def\n");
  CHECK(lines::extract("xy", 64).consumed == 0);  // not a line yet
  CHECK_FALSE(lines::extract("xy", 64).malformed);
}

TEST_CASE("line_framing hands over a line longer than the buffer in buffer-sized pieces", "[framing]") {
  using lines = sockserv::line_framing<>;
  frame piece = lines::extract("0123456789", 10);
  CHECK(piece.consumed == 10);
  CHECK(piece.message == "0123456789");
  CHECK(lines::extract("012345678", 10).consumed == 0);
}

TEST_CASE("line_framing at end of input: the unterminated rest is the last message", "[framing]") {
  using lines = sockserv::line_framing<';'>;
  CHECK(lines::extract("a;b", 64).message == "a;");
  frame last = lines::extract_at_eof("tail");
  CHECK(last.consumed == 4);
  CHECK(last.message == "tail");
}

TEST_CASE("length_prefix_framing reads a big-endian header and returns the payload", "[framing]") {
  using prefixed = sockserv::length_prefix_framing<2>;
  const std::string input = std::string("\x00\x03" "abc" "\x00\x01", 7) + "z";
  frame first = prefixed::extract(input, 64);
  CHECK(first.consumed == 5);
  CHECK(first.message == "abc");
  frame second = prefixed::extract(std::string_view(input).substr(5), 64);
  CHECK(second.message == "z");
  CHECK(prefixed::extract(std::string("\x00\x03" "ab", 4), 64).consumed == 0);  // incomplete
  CHECK(prefixed::extract(std::string("\x00", 1), 64).consumed == 0);           // no header yet

  using wide = sockserv::length_prefix_framing<4>;
  const std::string big_endian("\x00\x00\x01\x02", 4);
  CHECK(wide::extract(big_endian + std::string(258, 'x'), 1024).message.size() == 258);
}

TEST_CASE("length_prefix_framing: a length that can never fit is malformed; a cut message is dropped",
          "[framing]") {
  using prefixed = sockserv::length_prefix_framing<2>;
  frame too_long = prefixed::extract(std::string("\x01\x00", 2), 64);  // 256 > 64 - 2
  CHECK(too_long.malformed);
  CHECK(too_long.consumed == 0);
  CHECK(prefixed::extract_at_eof(std::string("\x00\x05" "ab", 4)).consumed == 0);
}
