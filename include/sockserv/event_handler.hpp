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
#include "loop/loop.hpp"
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

class loop;

// What a write to a connection did. Not ignorable: a full output buffer is
// the one place an event server can lose data, so every caller decides.
enum class write_status {
  written,    // queued whole; it goes out this turn, as far as the socket takes it
  refused,    // did not fit; nothing queued (overflow_policy::refuse)
  dropped,    // did not fit; nothing queued, counted as dropped (overflow_policy::drop)
  closed,     // the connection is closing or was closed for being too slow (overflow_policy::close)
  too_large,  // larger than the whole output buffer: could never fit; nothing queued
  stale,      // no such connection any more (a handle to a closed or reused slot)
};
struct [[nodiscard]] write_result {
  write_status status = write_status::written;
  explicit operator bool() const noexcept { return status == write_status::written; }
};

// What a write that does not fit does (per connection, per call).
enum class overflow_policy {
  refuse,  // report it to the writer, keep the connection
  drop,    // lose this message (counted), keep the connection
  close,   // the consumer is too slow: close it at once, discarding its queued output
};

// A connection's stable handle: its slot in the server's table and the
// serial number of the connection that occupied it. A handle to a closed or
// reused slot is detected (find() returns null, writes say `stale`).
struct connection_id {
  std::uint32_t slot = 0;
  std::uint64_t serial = 0;  // 0: no connection; else unique per server
  explicit operator bool() const noexcept { return serial != 0; }
  std::uint64_t number() const noexcept { return serial; }
  friend bool operator==(connection_id a, connection_id b) noexcept { return a.slot == b.slot && a.serial == b.serial; }
  friend bool operator!=(connection_id a, connection_id b) noexcept { return !(a == b); }
};

// Counted outcomes of writes on one server.
struct write_counters {
  std::uint64_t refused = 0;
  std::uint64_t dropped = 0;
  std::uint64_t closed_slow = 0;
};

namespace detail {
class event_connection_table;
}

// The capacity-free part of every event handler: its two buffers and the
// byte pumping the loop does for it. One copy of this code serves every
// buffer size.
class event_connection {
 public:
  // Queues data for sending, all or nothing. What a write that does not fit
  // does is `overflow` (the server's overflow_policy by default).
  write_result write(const void* data, std::size_t size, overflow_policy when_full) noexcept;
  write_result write(const void* data, std::size_t size) noexcept { return write(data, size, overflow); }
  write_result write(std::string_view text) noexcept { return write(text.data(), text.size(), overflow); }
  write_result write(std::string_view text, overflow_policy when_full) noexcept {
    return write(text.data(), text.size(), when_full);
  }

  // What a write that does not fit does, unless the call says otherwise;
  // set from the server's overflow_policy when the connection opens.
  overflow_policy overflow = overflow_policy::refuse;

  std::size_t output_room() const noexcept { return output_capacity_ - output_pending(); }
  std::size_t output_pending() const noexcept { return output_end_ - output_begin_; }
  std::size_t input_buffered() const noexcept { return input_end_ - input_begin_; }
  // Writes to this connection dropped for want of room (overflow_policy::drop).
  std::uint64_t dropped_writes() const noexcept { return dropped_writes_; }

  // Closes the connection once the queued output is sent.
  void close() noexcept;
  // Closes it at once, discarding queued output.
  void abort() noexcept;
  bool closing() const noexcept { return closing_ || aborted_; }
  bool aborted() const noexcept { return aborted_; }
  // True once the client has shut down its sending side (half-close).
  bool peer_finished() const noexcept { return peer_finished_; }
  // True once handle_eof() has run (after the last message).
  bool eof_delivered() const noexcept { return eof_delivered_; }

  // This connection's handle (for other connections, timers, posts).
  connection_id id() const noexcept { return id_; }
  // The loop serving this connection: for the handler's own timers.
  sockserv::loop& loop() const noexcept { return *loop_; }

  // ---- used by the event loop ---------------------------------------------
  enum class receive_status { data, would_block, end, failed };

  receive_status receive(int fd) noexcept {
    return receive_from([fd](char* into, std::size_t room) {
      return detail::retry_on_eintr([&] { return ::recv(fd, into, room, MSG_DONTWAIT); });
    });
  }
  // The same from another source of bytes (a TLS session's plaintext):
  // read(into, room) answers as recv() does.
  template <class Read>
  receive_status receive_from(Read&& read) noexcept {
    // Consumed input is given back before every read, not only when the
    // buffer is full: otherwise each read gets only the room left behind the
    // last one (a 2 KiB buffer read 1 088 then 960 bytes of a 2 KiB burst),
    // and a burst of messages takes twice the turns. What is moved is at
    // most the unfinished message.
    if (input_begin_ > 0) compact_input();
    if (input_end_ == input_capacity_) return receive_status::would_block;  // full: framing decides
    ssize_t n = read(input_ + input_end_, input_capacity_ - input_end_);
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
    return send_pending_to([fd](const char* data, std::size_t size) {
      return detail::retry_on_eintr([&] { return ::send(fd, data, size, MSG_DONTWAIT | detail::no_sigpipe); });
    });
  }
  // The same into another sink (a TLS session): write(data, size) answers
  // as send() does.
  template <class Write>
  bool send_pending_to(Write&& write) noexcept {
    while (output_pending() > 0) {
      ssize_t n = write(output_ + output_begin_, output_pending());
      if (n > 0) {
        output_begin_ += static_cast<std::size_t>(n);
        continue;
      }
      return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    output_begin_ = output_end_ = 0;
    return true;
  }

  // The table this connection lives in (set when it opens).
  void attach(detail::event_connection_table& table, sockserv::loop& owner, connection_id id) noexcept {
    table_ = &table;
    loop_ = &owner;
    id_ = id;
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

  void changed() noexcept;

  char* input_;
  char* output_;
  std::size_t input_capacity_, output_capacity_;
  std::size_t input_begin_ = 0, input_end_ = 0;
  std::size_t output_begin_ = 0, output_end_ = 0;
  bool closing_ = false;
  bool aborted_ = false;
  bool peer_finished_ = false;
  bool eof_delivered_ = false;
  std::uint64_t dropped_writes_ = 0;
  detail::event_connection_table* table_ = nullptr;
  sockserv::loop* loop_ = nullptr;
  connection_id id_{};
};

namespace detail {
// What connections see of their server's table: the list of connections
// whose output or state changed this turn (sent at the end of the turn, so
// a write to another connection goes out as promptly as one's own), and the
// counters of writes that did not fit.
class event_connection_table {
 public:
  write_counters writes;

  void note_changed(event_connection& connection) noexcept {
    const std::uint32_t slot = connection.id().slot;
    // Listed per slot, not per connection: a slot freed and reused within
    // the turn stays listed once, so the list never outgrows the table.
    if (listed_[slot] || slot == advancing_) return;
    listed_[slot] = true;
    changed_[changed_count_++] = slot;
    if (loop_ != nullptr) loop_->defer();
  }

 protected:
  event_connection_table(std::uint32_t* changed, bool* listed, sockserv::loop* owner) noexcept
      : changed_(changed), listed_(listed), loop_(owner) {}

  static constexpr std::uint32_t none = static_cast<std::uint32_t>(-1);
  std::uint32_t* changed_;
  bool* listed_;
  std::size_t changed_count_ = 0;
  std::uint32_t advancing_ = none;  // the slot being advanced now flushes itself
  sockserv::loop* loop_;
};
}  // namespace detail

inline write_result event_connection::write(const void* data, std::size_t size, overflow_policy when_full) noexcept {
  if (closing()) return {write_status::closed};
  if (size > output_capacity_) return {write_status::too_large};
  if (size > output_room()) {
    switch (when_full) {
      case overflow_policy::refuse:
        if (table_) ++table_->writes.refused;
        return {write_status::refused};
      case overflow_policy::drop:
        ++dropped_writes_;
        if (table_) ++table_->writes.dropped;
        return {write_status::dropped};
      case overflow_policy::close:
        if (table_) ++table_->writes.closed_slow;
        abort();
        return {write_status::closed};
    }
  }
  if (output_capacity_ - output_end_ < size) compact_output();
  std::memcpy(output_ + output_end_, data, size);
  output_end_ += size;
  changed();
  return {};
}

inline void event_connection::close() noexcept {
  closing_ = true;
  changed();
}

inline void event_connection::abort() noexcept {
  aborted_ = true;
  output_begin_ = output_end_ = 0;
  changed();
}

inline void event_connection::changed() noexcept {
  if (table_ != nullptr) table_->note_changed(*this);
}

// Framing cuts the messages (line_framing, length_prefix_framing). A
// message is handed to handle_message() only while the output buffer has
// room for reply_reserve bytes; otherwise the loop stops reading from this
// client until its output drains (back-pressure: a client that does not
// read cannot make the server buffer without bound).
//
// request.fd is the handler's own copy of the connection's descriptor, made
// the first time it is read (handler_connection.hpp): use it for socket
// options, or close it; the loop reads, writes, watches and finally closes
// its own number, so closing the copy neither ends the connection (use
// close() or abort()) nor lets a reused number reach another client. A
// handler that never reads request.fd costs no descriptor for it.
template <class Framing = line_framing<>, std::size_t InputSize = 2048, std::size_t OutputSize = 4096>
class event_request_handler : public base_request_handler<connection>, public event_connection {
  static_assert(InputSize > 0 && OutputSize > 0, "event handler buffers must not be empty");

 public:
  using framing = Framing;
  static constexpr std::size_t input_capacity = InputSize;
  static constexpr std::size_t output_capacity = OutputSize;
  static constexpr std::size_t reply_reserve = InputSize < OutputSize ? InputSize : OutputSize;

  // Deadlines, in seconds, each unset by default (= never); set them in the
  // constructor or setup(). A connection past any of them is closed (and
  // counted as timed out). 0 or less: at once; NaN: never, as for a
  // blocking handler's timeout; +infinity: the longest a timer waits
  // (about 24 days).
  //   timeout               — idle: nothing received for this long;
  //   first_message_timeout — no complete message yet, this long after it
  //                           opened (a client trickling bytes keeps a slot
  //                           past the idle timeout, not past this);
  //   lifetime              — open this long, however busy.
  std::optional<double> timeout;
  std::optional<double> first_message_timeout;
  std::optional<double> lifetime;

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
