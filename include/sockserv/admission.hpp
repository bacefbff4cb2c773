// SPDX-License-Identifier: BSL-1.0
// sockserv/admission.hpp — who gets in, and what happened to everyone:
// the server's counters (stats()) and a per-client-address connection cap.
//
// Both are generic pieces every policy uses the same way: the counters live
// in server_base (no template parameter), the cap's table in the policy,
// sized by how many requests it can have in flight, so neither allocates.
#pragma once

#include "address.hpp"

#include <atomic>
#include <cstddef>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace sockserv {

// A copy of the counters at one moment (stats()). Counters only grow; they
// wrap at the range of unsigned long (2^32 on 32-bit targets).
struct server_stats {
  unsigned long accepted = 0;              // requests fetched (connections accepted, datagrams received)
  unsigned long refused_verify = 0;        // verify_request() said no
  unsigned long refused_per_address = 0;   // max_connections_per_address reached for that client
  unsigned long refused_busy = 0;          // no capacity: answered by handle_busy() and closed
  unsigned long refused_table_full = 0;    // no room at all (the event loop's table)
  unsigned long timed_out = 0;             // a request's deadline (request_timeout) passed
  unsigned long evicted = 0;               // closed to make room for a client arriving (event loop)
  unsigned long failed = 0;                // requests that reached handle_error()
  unsigned long peak_in_flight = 0;        // most requests in flight at once
};

// The events stats() counts, in server_stats' order.
enum class server_event : unsigned {
  accepted, refused_verify, refused_per_address, refused_busy, refused_table_full, timed_out, evicted, failed
};

namespace detail {

// The live counters. Relaxed atomics: workers and the serving thread count
// at once, and a signal handler may read them (lock-free: one word each).
class stats_counters {
 public:
  void add(server_event what) noexcept { values_[static_cast<unsigned>(what)].fetch_add(1, std::memory_order_relaxed); }
  // Called by the one thread that starts requests (the serving thread), so
  // a plain compare and store keeps the maximum.
  void note_in_flight(std::size_t now) noexcept {
    const unsigned long value = static_cast<unsigned long>(now);
    if (value > values_[peak].load(std::memory_order_relaxed)) values_[peak].store(value, std::memory_order_relaxed);
  }
  server_stats snapshot() const noexcept {
    unsigned long v[peak + 1];
    for (unsigned i = 0; i <= peak; ++i) v[i] = values_[i].load(std::memory_order_relaxed);
    return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[peak]};
  }

 private:
  static constexpr unsigned peak = 8;  // after the eight events
  std::atomic<unsigned long> values_[peak + 1] = {};
};

}  // namespace detail

// Counts requests in flight per client IP address (the port does not
// count; unix-socket clients are not counted, having no address to tell
// them apart). Slots entries: one per request the policy can have in
// flight, so the table can never be full while a request is admitted.
// Not thread-safe: the caller serialises admit and release.
template <std::size_t Slots>
class address_limiter {
 public:
  static constexpr int untracked = -1;  // admitted without an entry (no limit, or a unix client)

  // Admits a request from `client` unless `limit` (0: none) requests from
  // its address are in flight. On success `slot` is what release() takes.
  bool admit(const socket_address& client, std::size_t limit, int& slot) noexcept {
    slot = untracked;
    key wanted;
    if (limit == 0 || !key_of(client, wanted)) return true;
    int empty = -1;
    for (std::size_t i = 0; i < Slots; ++i) {
      if (entries_[i].count == 0) {
        if (empty < 0) empty = static_cast<int>(i);
      } else if (entries_[i].address == wanted) {
        if (entries_[i].count >= limit) return false;
        ++entries_[i].count;
        slot = static_cast<int>(i);
        return true;
      }
    }
    if (empty < 0) return false;  // more distinct clients than requests in flight: cannot happen
    entries_[empty].address = wanted;
    entries_[empty].count = 1;
    slot = empty;
    return true;
  }

  // The request admitted into `slot` has ended.
  void release(int slot) noexcept {
    if (slot >= 0 && static_cast<std::size_t>(slot) < Slots && entries_[slot].count > 0) --entries_[slot].count;
  }

  // Requests in flight from client's address (0 if not counted).
  std::size_t count(const socket_address& client) const noexcept {
    key wanted;
    if (!key_of(client, wanted)) return 0;
    for (const entry& e : entries_)
      if (e.count > 0 && e.address == wanted) return e.count;
    return 0;
  }

 private:
  struct key {
    unsigned char bytes[16] = {};
    bool operator==(const key& other) const noexcept { return std::memcmp(bytes, other.bytes, sizeof bytes) == 0; }
  };
  struct entry {
    key address;
    std::size_t count = 0;
  };

  // IPv4 addresses are stored as IPv4-mapped IPv6, so ::ffff:1.2.3.4 and
  // 1.2.3.4 are one client.
  static bool key_of(const socket_address& client, key& out) noexcept {
    if (client.family() == AF_INET) {
      out.bytes[10] = out.bytes[11] = 0xFF;
      std::memcpy(out.bytes + 12, &client.as<sockaddr_in>().sin_addr, 4);
      return true;
    }
    if (client.family() == AF_INET6) {
      std::memcpy(out.bytes, &client.as<sockaddr_in6>().sin6_addr, 16);
      return true;
    }
    return false;
  }

  entry entries_[Slots];
};

}  // namespace sockserv
