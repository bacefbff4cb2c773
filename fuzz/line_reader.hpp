// Fuzz target line_reader: rfile (io.hpp reader_core) reading a stream
// through buffered_reader<N> from a socketpair, or a packet through
// packet_reader, with a sequence of readline(limit) / readline() / read(n) /
// read_to_eof(n) calls.
//
// Input: [mode] [op count] [ops...] [payload]
//   mode bits 0-2  reader capacity: 1, 2, 3, 7, 16, 64, 255, 4096
//        bit 3     the payload is a packet (packet_reader) instead of a stream
//        bit 4     stream fed piece by piece to a non-blocking reader (a
//                  receive that would block is then the reader's timeout)
//        bits 5-7  piece size: 1, 2, 3, 5, 17, 64, 300, 4096
//   op   bits 0-1  readline(limit), readline(), read(n), read_to_eof(n)
//        bits 2-7  limit or n (see amount())
//
// Invariants: readline never returns more than min(limit, capacity) bytes,
// holds '\n' only as its last byte, and returns a short piece without '\n'
// (or nothing) only at the end of the input; read(n) returns n bytes unless
// the input ended; every byte returned is the next byte of the input, so the
// concatenation of all that was returned equals the input (a prefix of it
// once a non-blocking reader has timed out).
#pragma once

#include "common.hpp"

#include <sockserv/io.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace sockserv_fuzz {

namespace line_reader_detail {

constexpr std::size_t npos = sockserv::reader_core::npos;

inline std::size_t amount(unsigned v) noexcept {
  if (v == 63) return npos;
  if (v < 20) return v;
  return static_cast<std::size_t>((v - 19) * (v - 19)) * 4;  // up to 7396
}

// A socketpair whose first end the test writes and whose second the reader
// reads; both closed at the end.
struct stream_pair {
  int ends[2] = {-1, -1};
  bool open() noexcept { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0; }
  ~stream_pair() {
    if (ends[0] >= 0) ::close(ends[0]);
    if (ends[1] >= 0) ::close(ends[1]);
  }
};

struct run_state {
  std::string_view payload;
  bool packet = false;
  bool trickle = false;        // non-blocking reader, payload written piece by piece
  std::size_t written = 0;     // payload bytes in the socket or the reader by now
  bool write_end_shut = false;
  std::size_t consumed = 0;    // payload bytes the reader has returned
};

// Returned bytes must be the next bytes of the payload.
inline const char* take(run_state& s, std::string_view got) noexcept {
  if (got.size() > s.payload.size() - s.consumed) return "returned more bytes than the input holds";
  if (got.size() > s.written - s.consumed) return "returned bytes that were never sent";
  if (got != s.payload.substr(s.consumed, got.size())) return "returned bytes out of order, lost or changed";
  s.consumed += got.size();
  return nullptr;
}

// Whether the reader may legitimately have come to an end now: all the
// input returned, or (non-blocking) a receive would have blocked.
inline bool at_end(const run_state& s, const sockserv::reader_core& reader) noexcept {
  if (s.consumed == s.payload.size()) return true;
  return s.trickle && reader.timed_out();
}

template <class Reader>
const char* one_op(run_state& s, Reader& reader, unsigned op, std::string& scratch) {
  const unsigned kind = op & 3u;
  const std::size_t n = amount(op >> 2);
  if (kind <= 1) {
    const std::size_t limit = kind == 0 ? n : npos;
    std::string_view line = kind == 0 ? reader.readline(limit) : reader.readline();
    const std::size_t bound = limit < reader.capacity() ? limit : reader.capacity();
    if (line.size() > bound) return "readline returned more than min(limit, capacity)";
    const void* newline = line.empty() ? nullptr : std::memchr(line.data(), '\n', line.size());
    if (newline != nullptr && static_cast<const char*>(newline) != &line.back())
      return "readline returned a '\\n' before the end of the line";
    if (const char* broken = take(s, line)) return broken;
    const bool whole = !line.empty() && line.back() == '\n';
    if (!whole && line.size() < bound && !at_end(s, reader))
      return "readline returned a short piece without '\\n' before the end of the input";
    return nullptr;
  }
  const std::size_t want = n > 8192 ? 8192 : n;
  scratch.assign(want, '\0');
  const std::size_t got = kind == 2 ? reader.read(scratch.data(), want) : reader.read_to_eof(scratch.data(), want);
  if (got > want) return "read returned more than asked for";
  if (const char* broken = take(s, std::string_view(scratch.data(), got))) return broken;
  if (got < want && !at_end(s, reader)) return "read returned short before the end of the input";
  return nullptr;
}

// Writes the next piece (non-blocking mode: as much of it as the socket
// takes now), or everything and the end.
inline bool feed(run_state& s, int fd, std::size_t piece) noexcept {
  std::size_t count = s.trickle ? piece : s.payload.size() - s.written;
  if (count > s.payload.size() - s.written) count = s.payload.size() - s.written;
  while (count > 0) {
    ssize_t n = ::send(fd, s.payload.data() + s.written, count, MSG_NOSIGNAL);
    if (n == -1 && s.trickle && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // full: later
    if (n <= 0) return false;
    s.written += static_cast<std::size_t>(n);
    count -= static_cast<std::size_t>(n);
  }
  if (s.written == s.payload.size() && !s.write_end_shut) {
    ::shutdown(fd, SHUT_WR);
    s.write_end_shut = true;
  }
  return true;
}

template <class Reader>
const char* drive(run_state& s, Reader& reader, std::string_view ops, int write_fd, std::size_t piece) {
  std::string scratch;
  const std::size_t steps = ops.empty() ? 0 : ops.size() * (s.payload.size() + 2) + 64;
  for (std::size_t step = 0; step < steps && step < 20000; ++step) {
    if (write_fd >= 0 && !feed(s, write_fd, piece)) return "could not write the input to the socketpair";
    if (const char* broken = one_op(s, reader, static_cast<unsigned char>(ops[step % ops.size()]), scratch))
      return broken;
    if (reader.buffered() > reader.capacity()) return "more buffered than the capacity";
    if (at_end(s, reader) && s.written == s.payload.size() && reader.buffered() == 0) break;
  }
  // Drain: the rest of the input, and readline() until it returns nothing;
  // every byte must come (up to a timeout of the non-blocking reader).
  for (std::size_t step = 0; step < s.payload.size() + 2; ++step) {
    if (write_fd >= 0 && !(s.trickle && reader.timed_out()) && !feed(s, write_fd, s.payload.size()))
      return "could not write the input to the socketpair";
    std::string_view line = reader.readline();
    if (const char* broken = take(s, line)) return broken;
    if (line.empty() && (s.written == s.payload.size() || reader.timed_out())) break;
  }
  if (s.trickle && reader.timed_out()) return nullptr;  // a prefix, checked as it came
  if (s.consumed != s.payload.size()) return "the input did not come back whole";
  if (!reader.eof()) return "eof() is false after all the input was read";
  if (reader.error() != 0) return "error() is set after reading to the end";
  if (!reader.readline().empty() || !reader.readline(7).empty()) return "readline returned bytes after the end";
  return nullptr;
}

template <std::size_t Capacity>
const char* run_stream(run_state& s, std::string_view ops, std::size_t piece) {
  stream_pair pair;
  if (!pair.open()) return nullptr;  // out of descriptors: nothing to test
  if (s.trickle && (::fcntl(pair.ends[0], F_SETFL, O_NONBLOCK) == -1 || ::fcntl(pair.ends[1], F_SETFL, O_NONBLOCK) == -1))
    return nullptr;
  sockserv::buffered_reader<Capacity> reader;
  reader.attach(pair.ends[1]);
  if (reader.capacity() != Capacity) return "capacity() is not the buffer's size";
  return drive(s, reader, ops, pair.ends[0], piece);
}

}  // namespace line_reader_detail

inline const char* line_reader(const std::uint8_t* data, std::size_t size) {
  using namespace line_reader_detail;
  input in(data, size);
  const unsigned mode = in.byte();
  const unsigned op_count = in.byte() % 33u;
  std::string ops;
  for (unsigned i = 0; i < op_count; ++i) ops.push_back(static_cast<char>(in.byte()));
  if (ops.empty()) ops.push_back('\x01');  // readline()
  run_state s;
  s.payload = in.rest();
  s.packet = (mode & 8u) != 0;
  s.trickle = !s.packet && (mode & 16u) != 0;
  static constexpr std::size_t pieces[] = {1, 2, 3, 5, 17, 64, 300, 4096};
  const std::size_t piece = pieces[(mode >> 5) & 7u];

  if (s.packet) {
    sockserv::packet_reader reader;
    reader.attach(s.payload);
    s.written = s.payload.size();
    if (reader.capacity() != s.payload.size()) return "a packet reader's capacity is not the packet's size";
    return drive(s, reader, ops, -1, piece);
  }
  switch (mode & 7u) {
    case 0: return run_stream<1>(s, ops, piece);
    case 1: return run_stream<2>(s, ops, piece);
    case 2: return run_stream<3>(s, ops, piece);
    case 3: return run_stream<7>(s, ops, piece);
    case 4: return run_stream<16>(s, ops, piece);
    case 5: return run_stream<64>(s, ops, piece);
    case 6: return run_stream<255>(s, ops, piece);
    default: return run_stream<4096>(s, ops, piece);
  }
}

}  // namespace sockserv_fuzz
