// SPDX-License-Identifier: BSL-1.0
// sockserv/io.hpp — rfile and wfile: fixed-buffer readers and writers.
//
// Each sized type (buffered_reader<N>, stream_writer<N>, packet_writer<N>)
// only adds its array to a capacity-free core, so ten buffer sizes share one
// copy of the code. Errors are sticky, as with C's ferror(): a read that
// fails returns what it has, and error() tells why.
#pragma once

#include "detail/syscall.hpp"
#include "transport.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>

namespace sockserv {

// How a line from readline() ended: with its '\n'; cut at the limit (or
// the buffer's size), more of the line follows; at the end of input (the
// last, unterminated bytes, or nothing once all is read); or cut short by
// a timeout (timeout, request_timeout) or a failed receive — error() says.
enum class line_end { newline, limit, end_of_input, timed_out, failed };

// readline()'s result: the bytes (a string_view, usable as one) and how the
// line ended, so that the three ways a line can lack its '\n' are told
// apart from the result alone.
// (The member is `ending`, not `end`: that would hide string_view's end()
// and break `for (char c : rfile.readline())`.)
struct text_line : std::string_view {
  line_end ending = line_end::newline;
  text_line() noexcept = default;
  text_line(std::string_view text, line_end how) noexcept : std::string_view(text), ending(how) {}
  bool complete() const noexcept { return ending == line_end::newline; }
};

// Reads from a connection (or from one packet) through a buffer it does not
// own. Views returned by readline() stay valid until the next read call.
class reader_core {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // One line including its '\n'. Stops after `limit` bytes (and never takes
  // more than the buffer holds): a longer line comes back in pieces that do
  // not end with '\n'. At end of input: the last bytes, then an empty view.
  // The result tells how the line ended (text_line::ending).
  text_line readline(std::size_t limit = npos) noexcept {
    if (limit > capacity_) limit = capacity_;
    std::size_t scanned = 0;
    for (;;) {
      std::size_t available = end_ - begin_;
      std::size_t window = available < limit ? available : limit;
      // memchr must not get a null pointer even for 0 bytes (an empty packet)
      const void* nl = window == scanned ? nullptr : std::memchr(data_ + begin_ + scanned, '\n', window - scanned);
      if (nl != nullptr)
        return {take(static_cast<std::size_t>(static_cast<const char*>(nl) - (data_ + begin_)) + 1), line_end::newline};
      scanned = window;
      if (window == limit) return {take(window), line_end::limit};
      if (ended()) return {take(window), why_ended()};
      if (begin_ + limit > capacity_) compact();
      if (!fill()) return {take(end_ - begin_ < limit ? end_ - begin_ : limit), why_ended()};
    }
  }

  // Exactly size bytes into destination unless the input ends or fails first;
  // returns how many were read.
  std::size_t read(void* destination, std::size_t size) noexcept {
    char* out = static_cast<char*>(destination);
    std::size_t done = 0;
    while (done < size) {
      if (begin_ == end_ && !fill()) break;
      std::size_t chunk = end_ - begin_ < size - done ? end_ - begin_ : size - done;
      std::memcpy(out + done, data_ + begin_, chunk);
      begin_ += chunk;
      done += chunk;
    }
    return done;
  }

  // Everything up to end of input, at most capacity bytes; eof() tells
  // whether the end was reached.
  std::size_t read_to_eof(void* destination, std::size_t capacity) noexcept {
    return read(destination, capacity);
  }

  bool eof() const noexcept { return eof_ && begin_ == end_; }
  int error() const noexcept { return error_; }  // errno of a failed recv, 0 if none
  // A receive waited longer than the handler's timeout, or the request's
  // deadline (set_deadline) passed.
  bool timed_out() const noexcept { return error_ == EAGAIN || error_ == EWOULDBLOCK || error_ == ETIMEDOUT; }
  std::size_t buffered() const noexcept { return end_ - begin_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // Reads after the monotonic time deadline_ms (detail::monotonic_ms()'s
  // clock; 0: none) fail with ETIMEDOUT, however the bytes trickle in.
  void set_deadline(std::int64_t deadline_ms) noexcept { deadline_ms_ = deadline_ms; }

 protected:
  reader_core(char* storage, std::size_t capacity) noexcept
      : storage_(storage), data_(storage), capacity_(capacity) {}

  void attach_socket(int fd, byte_transport* transport) noexcept {
    fd_ = fd;
    transport_ = transport;
    begin_ = end_ = 0;
    eof_ = false;
    error_ = 0;
    deadline_ms_ = 0;
  }
  // Reads straight from the packet: nothing to fill, nothing copied.
  void attach_memory(std::string_view bytes) noexcept {
    data_ = bytes.data();
    storage_ = nullptr;
    begin_ = 0;
    end_ = capacity_ = bytes.size();
    eof_ = true;
  }

 private:
  bool ended() const noexcept { return eof_ || error_ != 0; }
  line_end why_ended() const noexcept {
    return error_ == 0 ? line_end::end_of_input : timed_out() ? line_end::timed_out : line_end::failed;
  }

  std::string_view take(std::size_t count) noexcept {
    std::string_view out(data_ + begin_, count);
    begin_ += count;
    return out;
  }

  void compact() noexcept {
    std::memmove(storage_, storage_ + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }

  bool fill() noexcept {
    if (ended() || storage_ == nullptr) return false;
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == capacity_) compact();
    // A transport (TLS) has its own buffers: request_timeout's wait on the
    // socket applies to plain connections only.
    if (transport_ == nullptr && deadline_ms_ != 0 && !detail::wait_until_ready(fd_, POLLIN, deadline_ms_)) {
      error_ = errno;
      return false;
    }
    std::ptrdiff_t n = transport_ != nullptr
                           ? transport_->receive(*transport_, storage_ + end_, capacity_ - end_)
                           : detail::retry_on_eintr([&] { return ::recv(fd_, storage_ + end_, capacity_ - end_, 0); });
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0)
      eof_ = true;
    else
      error_ = errno;
    return false;
  }

  char* storage_;
  const char* data_;
  std::size_t capacity_;
  std::size_t begin_ = 0, end_ = 0;
  int fd_ = -1;
  byte_transport* transport_ = nullptr;
  bool eof_ = false;
  int error_ = 0;
  std::int64_t deadline_ms_ = 0;
};

template <std::size_t Capacity>
class buffered_reader : public reader_core {
  static_assert(Capacity > 0, "rbufsize must be at least 1");

 public:
  buffered_reader() noexcept : reader_core(storage_, Capacity) {}
  buffered_reader(const buffered_reader&) = delete;
  buffered_reader& operator=(const buffered_reader&) = delete;
  void attach(int fd, byte_transport* transport = nullptr) noexcept { attach_socket(fd, transport); }

 private:
  char storage_[Capacity];
};

// rfile of a datagram handler: the same reading interface over the packet.
class packet_reader : public reader_core {
 public:
  packet_reader() noexcept : reader_core(nullptr, 0) {}
  void attach(std::string_view packet) noexcept { attach_memory(packet); }
};

// Writes to a connection. With no buffer (the Python default, wbufsize 0)
// every write() is sent at once and completely; with a buffer, bytes
// collect until it is full or flush() runs (the handler's finish() does).
class writer_core {
 public:
  // Returns size, or -1 with error() set. Nothing is half-queued: a failed
  // write has either sent nothing new or the connection is broken.
  std::ptrdiff_t write(const void* data, std::size_t size) noexcept {
    if (error_ != 0) return -1;
    if (size > capacity_ - used_ && flush() == -1) return -1;
    if (size > capacity_ - used_) return send_now(data, size);
    if (size > 0) std::memcpy(buffer_ + used_, data, size);  // wbufsize 0: no buffer at all
    used_ += size;
    return static_cast<std::ptrdiff_t>(size);
  }
  std::ptrdiff_t write(std::string_view text) noexcept { return write(text.data(), text.size()); }

  // Sends what is buffered; 0 or -1 with error() set.
  int flush() noexcept {
    if (used_ == 0) return error_ == 0 ? 0 : -1;
    std::size_t pending = used_;
    used_ = 0;
    return send_now(buffer_, pending) == -1 ? -1 : 0;
  }

  int error() const noexcept { return error_; }
  std::size_t buffered() const noexcept { return used_; }
  // Sends after the monotonic time deadline_ms (0: none) fail with ETIMEDOUT.
  void set_deadline(std::int64_t deadline_ms) noexcept { deadline_ms_ = deadline_ms; }

 protected:
  writer_core(char* buffer, std::size_t capacity) noexcept : buffer_(buffer), capacity_(capacity) {}
  void attach_socket(int fd, byte_transport* transport) noexcept {
    fd_ = fd;
    transport_ = transport;
    used_ = 0;
    error_ = 0;
    deadline_ms_ = 0;
  }

 private:
  std::ptrdiff_t send_now(const void* data, std::size_t size) noexcept {
    std::ptrdiff_t n = transport_ != nullptr ? transport_->send_all(*transport_, data, size)
                       : deadline_ms_ == 0 ? detail::send_all(fd_, data, size)
                                           : detail::send_all_until(fd_, data, size, deadline_ms_);
    if (n == -1) error_ = errno;
    return n;
  }

  char* buffer_;
  std::size_t capacity_;
  std::size_t used_ = 0;
  int fd_ = -1;
  byte_transport* transport_ = nullptr;
  int error_ = 0;
  std::int64_t deadline_ms_ = 0;
};

template <std::size_t Capacity>
class stream_writer : public writer_core {
 public:
  stream_writer() noexcept : writer_core(storage_, Capacity) {}
  stream_writer(const stream_writer&) = delete;
  stream_writer& operator=(const stream_writer&) = delete;
  void attach(int fd, byte_transport* transport = nullptr) noexcept { attach_socket(fd, transport); }

 private:
  char storage_[Capacity];
};

template <>
class stream_writer<0> : public writer_core {
 public:
  stream_writer() noexcept : writer_core(nullptr, 0) {}
  stream_writer(const stream_writer&) = delete;
  stream_writer& operator=(const stream_writer&) = delete;
  void attach(int fd, byte_transport* transport = nullptr) noexcept { attach_socket(fd, transport); }
};

// wfile of a datagram handler: collects the reply that finish() sends. A
// write that does not fit is refused whole (EMSGSIZE): a datagram reply is
// never sent cut short.
class packet_writer_core {
 public:
  std::ptrdiff_t write(const void* data, std::size_t size) noexcept {
    wrote_ = true;
    if (size > capacity_ - used_) {
      error_ = EMSGSIZE;
      return -1;
    }
    if (size > 0) std::memcpy(buffer_ + used_, data, size);
    used_ += size;
    return static_cast<std::ptrdiff_t>(size);
  }
  std::ptrdiff_t write(std::string_view text) noexcept { return write(text.data(), text.size()); }

  std::string_view contents() const noexcept { return {buffer_, used_}; }
  // True once write() was called, even with no bytes: an empty write asks
  // for an empty reply datagram.
  bool has_reply() const noexcept { return wrote_; }
  int error() const noexcept { return error_; }
  void clear() noexcept {
    used_ = 0;
    wrote_ = false;
    error_ = 0;
  }

 protected:
  packet_writer_core(char* buffer, std::size_t capacity) noexcept : buffer_(buffer), capacity_(capacity) {}

 private:
  char* buffer_;
  std::size_t capacity_;
  std::size_t used_ = 0;
  bool wrote_ = false;
  int error_ = 0;
};

template <std::size_t Capacity>
class packet_writer : public packet_writer_core {
 public:
  packet_writer() noexcept : packet_writer_core(storage_, Capacity) {}
  packet_writer(const packet_writer&) = delete;
  packet_writer& operator=(const packet_writer&) = delete;

 private:
  char storage_[Capacity];
};

}  // namespace sockserv
