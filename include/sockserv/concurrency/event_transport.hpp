// SPDX-License-Identifier: BSL-1.0
// sockserv/concurrency/event_transport.hpp — what stands between an event
// connection's buffers and its descriptor, chosen at compile time by the
// socket type.
//
// A plain stream has nothing there: the event loop calls recv()/send() on
// the descriptor as it always did, and this file adds no code and no bytes
// to it. A socket type that secures its connections (tls_stream) names a
// per-connection state, `SocketType::event_transport` (tls/event.hpp), and
// the loop keeps one in each connection slot, built the first time the
// slot is used (an unused slot costs no resident memory).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>

namespace sockserv::detail {

// The socket type's per-connection transport state, or void for a plain one.
template <class SocketType, class = void>
struct event_transport_of {
  using type = void;
};
template <class SocketType>
struct event_transport_of<SocketType, std::void_t<typename SocketType::event_transport>> {
  using type = typename SocketType::event_transport;
};

// What the server itself keeps for accepting under the event loop: the
// socket type's receive_buffer, except for one with per-slot state, whose
// blocking receive_buffer (a whole TLS session) would go unused there; it
// names a smaller one, `SocketType::event_accept_buffer`.
template <class SocketType, class = void>
struct event_accept_buffer_of {
  using type = typename SocketType::receive_buffer;
};
template <class SocketType>
struct event_accept_buffer_of<SocketType, std::void_t<typename SocketType::event_transport>> {
  using type = typename SocketType::event_accept_buffer;
};

// One transport state per connection slot. Empty (and, as a base, free)
// for a plain socket type.
template <class Transport, std::size_t Capacity>
class slot_transports {
 public:
  slot_transports() noexcept = default;
  slot_transports(const slot_transports&) = delete;
  slot_transports& operator=(const slot_transports&) = delete;
  ~slot_transports() {
    for (std::size_t slot = 0; slot < Capacity; ++slot)
      if (built_[slot]) transport(slot).~Transport();
  }

  // The slot's transport, built on first use and reused by every
  // connection the slot holds afterwards (so per-process set-up, such as
  // configuring a TLS engine, is done once per slot).
  Transport& transport(std::size_t slot) noexcept {
    if (!built_[slot]) {
      ::new (static_cast<void*>(storage_[slot])) Transport;
      built_[slot] = true;
    }
    return *std::launder(reinterpret_cast<Transport*>(storage_[slot]));
  }

 private:
  bool built_[Capacity] = {};
  alignas(Transport) unsigned char storage_[Capacity][sizeof(Transport)];
};
template <std::size_t Capacity>
class slot_transports<void, Capacity> {};

}  // namespace sockserv::detail
