// SPDX-License-Identifier: BSL-1.0
// sockserv/event_handler.hpp — the handler of the event loop.
//
// An event handler never blocks: the loop reads for it and calls
// handle_message() once per complete message (see framing.hpp), and what it
// write()s is queued in the connection's output buffer and sent as the
// socket allows. The same upper-case service in both models:
//
//   struct upper : stream_request_handler<> {          // one thread per request
//     void handle() { wfile.write(to_upper(rfile.readline())); }
//   };
//   struct upper : event_request_handler<> {           // one loop, many clients
//     void handle_message(std::string_view line) { write(to_upper(line)); }
//   };
//
// The handler lives in the connection table from accept to close: setup(),
// then handle_message() per message, handle_eof() when the client has
// finished sending, finish() before the connection closes.
#pragma once

#include "detail/syscall.hpp"
#include "framing.hpp"
#include "handler.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <sys/socket.h>

namespace sockserv {

// The capacity-free part of every event handler: its two buffers and the
// byte pumping the loop does for it. One copy of this code serves every
// buffer size.
class event_connection {
 public:
  // Queues data for sending. All or nothing: false (and nothing queued) if
  // it does not fit in the room left.
  bool write(const void* data, std::size_t size) noexcept {
    if (size > output_room()) return false;
    if (output_capacity_ - output_end_ < size) compact_output();
    std::memcpy(output_ + output_end_, data, size);
    output_end_ += size;
    return true;
  }
  bool write(std::string_view text) noexcept { return write(text.data(), text.size()); }

  std::size_t output_room() const noexcept { return output_capacity_ - output_pending(); }
  std::size_t output_pending() const noexcept { return output_end_ - output_begin_; }
  std::size_t input_buffered() const noexcept { return input_end_ - input_begin_; }

  // Closes the connection once the queued output is sent.
  void close() noexcept { closing_ = true; }
  bool closing() const noexcept { return closing_; }
  // True once the client has shut down its sending side (half-close).
  bool peer_finished() const noexcept { return peer_finished_; }
  // True once handle_eof() has run (after the last message).
  bool eof_delivered() const noexcept { return eof_delivered_; }

  // ---- used by the event loop ---------------------------------------------
  enum class receive_status { data, would_block, end, failed };

  receive_status receive(int fd) noexcept {
    if (input_end_ == input_capacity_) compact_input();
    if (input_end_ == input_capacity_) return receive_status::would_block;  // full: framing decides
    ssize_t n = detail::retry_on_eintr(
        [&] { return ::recv(fd, input_ + input_end_, input_capacity_ - input_end_, MSG_DONTWAIT); });
    if (n > 0) {
      input_end_ += static_cast<std::size_t>(n);
      return receive_status::data;
    }
    if (n == 0) {
      peer_finished_ = true;
      return receive_status::end;
    }
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? receive_status::would_block : receive_status::failed;
  }

  // Sends queued output without blocking: false if the connection broke.
  bool send_pending(int fd) noexcept {
    while (output_pending() > 0) {
      ssize_t n = detail::retry_on_eintr([&] {
        return ::send(fd, output_ + output_begin_, output_pending(), MSG_DONTWAIT | detail::no_sigpipe);
      });
      if (n > 0) {
        output_begin_ += static_cast<std::size_t>(n);
        continue;
      }
      return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    output_begin_ = output_end_ = 0;
    return true;
  }

  std::string_view buffered_input() const noexcept { return {input_ + input_begin_, input_buffered()}; }
  void consume_input(std::size_t count) noexcept { input_begin_ += count; }
  void mark_eof_delivered() noexcept { eof_delivered_ = true; }

 protected:
  event_connection(char* input, std::size_t input_capacity, char* output, std::size_t output_capacity) noexcept
      : input_(input), output_(output), input_capacity_(input_capacity), output_capacity_(output_capacity) {}

 private:
  void compact_input() noexcept {
    std::memmove(input_, input_ + input_begin_, input_buffered());
    input_end_ -= input_begin_;
    input_begin_ = 0;
  }
  void compact_output() noexcept {
    std::memmove(output_, output_ + output_begin_, output_pending());
    output_end_ -= output_begin_;
    output_begin_ = 0;
  }

  char* input_;
  char* output_;
  std::size_t input_capacity_, output_capacity_;
  std::size_t input_begin_ = 0, input_end_ = 0;
  std::size_t output_begin_ = 0, output_end_ = 0;
  bool closing_ = false;
  bool peer_finished_ = false;
  bool eof_delivered_ = false;
};

// Framing cuts the messages (line_framing, length_prefix_framing). A
// message is handed to handle_message() only while the output buffer has
// room for reply_reserve bytes; otherwise the loop stops reading from this
// client until its output drains (back-pressure: a client that does not
// read cannot make the server buffer without bound).
template <class Framing = line_framing<>, std::size_t InputSize = 2048, std::size_t OutputSize = 4096>
class event_request_handler : public base_request_handler<connection>, public event_connection {
  static_assert(InputSize > 0 && OutputSize > 0, "event handler buffers must not be empty");

 public:
  using framing = Framing;
  static constexpr std::size_t input_capacity = InputSize;
  static constexpr std::size_t output_capacity = OutputSize;
  static constexpr std::size_t reply_reserve = InputSize < OutputSize ? InputSize : OutputSize;

  // Seconds a connection may stay idle (nothing received) before the loop
  // closes it; unset = never.
  std::optional<double> timeout;

  // Deliberately leaves the buffers uninitialised: an idle connection
  // costs the pages it touches, not its whole capacity.
  event_request_handler() noexcept : event_connection(input_, InputSize, output_, OutputSize) {}
  event_request_handler(const event_request_handler&) = delete;
  event_request_handler& operator=(const event_request_handler&) = delete;

  void setup() {}
  void handle_message(std::string_view) {}
  // The client sent everything (half-close): by default, reply to what is
  // queued, then close.
  void handle_eof() { close(); }
  void finish() {}

 private:
  char input_[InputSize];
  char output_[OutputSize];
};

}  // namespace sockserv
