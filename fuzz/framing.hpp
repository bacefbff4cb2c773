// Fuzz target framing: the event loop's input path. The payload is a stream
// written in pieces into a unix socketpair; an event handler's connection
// (event_connection: receive, buffered_input, consume_input) takes it in, and
// its framing (line_framing, length_prefix_framing) cuts messages off the
// front, as event_loop::deliver does; each message is written back through
// the handler's output buffer (write, send_pending) to the peer.
//
// Input: [kind] [piece] [payload]
//   kind bits 0-2  framing: line '\n', line ';', length prefix of 1, 2 or 4
//                  bytes, then line '\n', prefix 2, prefix 1 again
//        bits 3-5  input buffer size C: 1, 2, 3, 4, 5, 16, 255, 2048
//   piece          bytes written to the socket per turn (0 means 1)
//
// Invariants: every frame consumes at most what is buffered, and its message
// lies within the bytes it consumes; the messages are exactly those a
// reference model cuts from the whole stream (so pieces do not matter and
// nothing is lost, repeated or reordered): for lines, up to the delimiter if
// it is within the first C bytes, else C bytes, and the unterminated rest at
// the end; for length prefixes, each payload, until a length that can never
// fit C is malformed; the loop never stalls with a full input buffer and no
// message to cut; a write to the output is all or nothing, and what reaches
// the peer is exactly the writes that were taken.
#pragma once

#include "common.hpp"

#include <sockserv/event_handler.hpp>
#include <sockserv/framing.hpp>

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace sockserv_fuzz {

namespace framing_detail {

struct model_result {
  std::vector<std::string> messages;
  bool malformed = false;
};

// What the framing must cut from the whole stream, whatever the pieces.
inline model_result model_lines(std::string_view stream, char delimiter, std::size_t capacity) {
  model_result out;
  while (!stream.empty()) {
    const std::size_t window = stream.size() < capacity ? stream.size() : capacity;
    const std::size_t end = stream.substr(0, window).find(delimiter);
    const std::size_t length = end != std::string_view::npos ? end + 1 : window;
    out.messages.emplace_back(stream.substr(0, length));
    stream.remove_prefix(length);
  }
  return out;
}

inline model_result model_prefixed(std::string_view stream, std::size_t header, std::size_t capacity) {
  model_result out;
  for (;;) {
    // A header that can never be whole in the buffer is malformed as well.
    if (header > capacity && !stream.empty()) {
      out.malformed = true;
      return out;
    }
    if (stream.size() < header) return out;  // a cut header at the end: dropped
    std::size_t length = 0;
    for (std::size_t i = 0; i < header; ++i) length = (length << 8) | static_cast<unsigned char>(stream[i]);
    if (header + length > capacity) {
      out.malformed = true;
      return out;
    }
    if (stream.size() < header + length) return out;  // a cut message at the end: dropped
    out.messages.emplace_back(stream.substr(header, length));
    stream.remove_prefix(header + length);
  }
}

struct stream_pair {
  int ends[2] = {-1, -1};
  bool open() noexcept {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return false;
    return ::fcntl(ends[0], F_SETFL, O_NONBLOCK) == 0 && ::fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0;
  }
  ~stream_pair() {
    if (ends[0] >= 0) ::close(ends[0]);
    if (ends[1] >= 0) ::close(ends[1]);
  }
};

constexpr std::size_t output_size = 64;

template <class Framing, std::size_t C>
struct handler : sockserv::event_request_handler<Framing, C, output_size> {};

inline const char* check_frame(const sockserv::frame& f, std::string_view input) {
  if (f.consumed > input.size()) return "a frame consumed more than was buffered";
  if (f.malformed && f.consumed != 0) return "a malformed frame consumed input";
  if (f.message.empty()) return nullptr;
  const char* begin = input.data();
  if (f.message.data() < begin || f.message.data() + f.message.size() > begin + f.consumed)
    return "a message lies outside the bytes its frame consumed";
  return nullptr;
}

// Reads what the connection sent back so far.
inline void collect(int fd, std::string& into) {
  char buffer[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n <= 0) return;
    into.append(buffer, static_cast<std::size_t>(n));
  }
}

template <class Framing, std::size_t C>
const char* run(std::string_view stream, std::size_t piece, const model_result& expected) {
  stream_pair pair;
  if (!pair.open()) return nullptr;  // out of descriptors: nothing to test
  handler<Framing, C> h;
  std::vector<std::string> messages;
  std::string echoed_expected, echoed;
  bool malformed = false;
  std::size_t written = 0;
  bool write_end_shut = false;

  auto take_message = [&](std::string_view message) -> const char* {
    messages.emplace_back(message);
    const std::size_t room = h.output_room();
    const bool taken = static_cast<bool>(h.write(message));
    if (taken != (message.size() <= room)) return "write() took what did not fit, or refused what did";
    if (taken) echoed_expected += message;
    if (h.output_pending() > output_size) return "more output queued than the buffer holds";
    if (!h.send_pending(pair.ends[1])) return "send_pending failed on a healthy connection";
    collect(pair.ends[0], echoed);
    return nullptr;
  };

  const std::size_t turns = stream.size() * 2 + 16;
  std::size_t full_and_stuck = 0;
  bool finished = false;
  for (std::size_t turn = 0; turn < turns && !finished && !malformed; ++turn) {
    // The client sends a piece (or, once all is sent, ends its side).
    std::size_t count = stream.size() - written < piece ? stream.size() - written : piece;
    if (count > 0) {
      ssize_t n = ::send(pair.ends[0], stream.data() + written, count, MSG_NOSIGNAL);
      if (n > 0) written += static_cast<std::size_t>(n);
    }
    if (written == stream.size() && !write_end_shut) {
      ::shutdown(pair.ends[0], SHUT_WR);
      write_end_shut = true;
    }
    const std::size_t buffered_before = h.input_buffered();
    const auto status = h.receive(pair.ends[1]);
    if (status == sockserv::event_connection::receive_status::failed) return "receive failed on a healthy connection";
    if (h.input_buffered() > C) return "more input buffered than the buffer holds";

    bool cut = false;
    for (;;) {
      const std::string_view input = h.buffered_input();
      const sockserv::frame f = Framing::extract(input, C);
      if (const char* broken = check_frame(f, input)) return broken;
      if (f.malformed) {
        malformed = true;
        break;
      }
      if (f.consumed == 0) break;
      cut = true;
      h.consume_input(f.consumed);
      if (const char* broken = take_message(f.message)) return broken;
    }
    if (malformed) break;
    if (h.peer_finished()) {
      const std::string_view input = h.buffered_input();
      const sockserv::frame last = Framing::extract_at_eof(input);
      if (const char* broken = check_frame(last, input)) return broken;
      if (last.consumed > 0) {
        if (const char* broken = take_message(last.message)) return broken;
      }
      finished = true;
      break;
    }
    // A full buffer that no message can be cut from would never be read
    // again: the event loop would stop reading this client for good.
    if (h.input_buffered() == C && !cut && buffered_before == C) {
      if (++full_and_stuck >= 2) return "stalled: the input buffer is full and no message can be cut from it";
    } else {
      full_and_stuck = 0;
    }
  }
  if (!finished && !malformed) return "the stream did not end within the turns it needs";
  if (malformed != expected.malformed) return "malformed where the model is not, or the other way round";
  if (messages != expected.messages) return "the messages are not those the model cuts from the stream";
  collect(pair.ends[0], echoed);
  if (echoed != echoed_expected) return "the peer did not get exactly the writes that were taken";
  return nullptr;
}

template <class Framing>
const char* with_capacity(unsigned index, std::string_view stream, std::size_t piece, const model_result& expected) {
  switch (index) {
    case 0: return run<Framing, 1>(stream, piece, expected);
    case 1: return run<Framing, 2>(stream, piece, expected);
    case 2: return run<Framing, 3>(stream, piece, expected);
    case 3: return run<Framing, 4>(stream, piece, expected);
    case 4: return run<Framing, 5>(stream, piece, expected);
    case 5: return run<Framing, 16>(stream, piece, expected);
    case 6: return run<Framing, 255>(stream, piece, expected);
    default: return run<Framing, 2048>(stream, piece, expected);
  }
}

}  // namespace framing_detail

inline const char* framing(const std::uint8_t* data, std::size_t size) {
  using namespace framing_detail;
  input in(data, size);
  const unsigned kind = in.byte();
  const unsigned piece_byte = in.byte();
  const std::size_t piece = piece_byte == 0 ? 1 : piece_byte;
  const std::string_view stream = in.rest();
  static constexpr std::size_t capacities[] = {1, 2, 3, 4, 5, 16, 255, 2048};
  const unsigned index = (kind >> 3) & 7u;
  const std::size_t capacity = capacities[index];
  switch (kind & 7u) {
    case 0:
    case 5: return with_capacity<sockserv::line_framing<'\n'>>(index, stream, piece, model_lines(stream, '\n', capacity));
    case 1: return with_capacity<sockserv::line_framing<';'>>(index, stream, piece, model_lines(stream, ';', capacity));
    case 2:
    case 7: return with_capacity<sockserv::length_prefix_framing<1>>(index, stream, piece, model_prefixed(stream, 1, capacity));
    case 3:
    case 6: return with_capacity<sockserv::length_prefix_framing<2>>(index, stream, piece, model_prefixed(stream, 2, capacity));
    default: return with_capacity<sockserv::length_prefix_framing<4>>(index, stream, piece, model_prefixed(stream, 4, capacity));
  }
}

}  // namespace sockserv_fuzz
