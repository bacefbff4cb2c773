// SPDX-License-Identifier: BSL-1.0
// sockserv/framing.hpp — cutting whole messages off buffered input, for the
// event loop's handlers (which must never wait for the rest of a message).
//
// A framing is a class with two static functions over the bytes buffered so
// far: extract() returns the first complete message (or nothing yet), and
// extract_at_eof() what the end of input still makes a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sockserv {

struct frame {
  std::size_t consumed = 0;  // bytes to drop from the input; 0 = no message yet
  std::string_view message;  // what the handler sees
  bool malformed = false;    // the input can never become a valid message
};

// Messages end with Delimiter, which stays part of the message (as with
// readline()). A line longer than the input buffer is handed over in
// buffer-sized pieces without the delimiter, as readline(limit) does; an
// unterminated last line is handed over at end of input.
template <char Delimiter = '\n'>
struct line_framing {
  static frame extract(std::string_view input, std::size_t capacity) noexcept {
    if (const void* end = std::memchr(input.data(), Delimiter, input.size())) {
      std::size_t length = static_cast<std::size_t>(static_cast<const char*>(end) - input.data()) + 1;
      return {length, input.substr(0, length)};
    }
    if (input.size() >= capacity) return {input.size(), input};
    return {};
  }
  static frame extract_at_eof(std::string_view input) noexcept { return {input.size(), input}; }
};

// Messages are a HeaderBytes big-endian length followed by that many bytes;
// the handler sees the payload only. A declared length that could never fit
// the input buffer is malformed, and so is any input to a buffer smaller
// than the header (else the loop would wait for a header that cannot come);
// a message cut short by end of input is dropped (the client went away
// mid-message).
template <std::size_t HeaderBytes = 2>
struct length_prefix_framing {
  static_assert(HeaderBytes == 1 || HeaderBytes == 2 || HeaderBytes == 4, "header of 1, 2 or 4 bytes");

  static frame extract(std::string_view input, std::size_t capacity) noexcept {
    if (input.size() < HeaderBytes) return {0, {}, !input.empty() && capacity < HeaderBytes};
    std::uint32_t length = 0;
    for (std::size_t i = 0; i < HeaderBytes; ++i)
      length = (length << 8) | static_cast<unsigned char>(input[i]);
    // Compared as "payload vs room after the header": HeaderBytes + length
    // would wrap around a 32-bit size_t for headers 0xFFFFFFFC and up.
    if (capacity < HeaderBytes || length > capacity - HeaderBytes) return {0, {}, true};
    if (input.size() - HeaderBytes < length) return {};
    return {HeaderBytes + length, input.substr(HeaderBytes, length)};
  }
  static frame extract_at_eof(std::string_view) noexcept { return {}; }
};

}  // namespace sockserv
