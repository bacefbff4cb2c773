// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/post_queue.hpp — handing work to the loop's thread from any
// other thread, without locks on the fast path and without losing anything.
//
//   sockserv::post_queue<event, 1024> inbox;
//   inbox.start(loop, [&](event& e) { ... on the loop's thread ... });
//   inbox.try_post(e);   // from any thread: false when full, e not queued
//   inbox.post(e);       // from any thread: waits while full
//
// A fixed ring of Capacity entries, each with a sequence number (a bounded
// multi-producer queue in D. Vyukov's design): every post is delivered
// exactly once, in the order each producer posted, and never merged with
// another — unlike uv_async_send(), which merges wake-ups and leaves the
// queue to the caller. The loop's wake-up descriptor is rung only when it
// is not rung already, so a burst of posts costs one write() and one read().
// At most Capacity entries are delivered each time its turn hook runs (the
// hooks run before and after the wait: twice a turn), so a flood of posts
// cannot starve the loop's descriptors.
#pragma once

#include "../detail/pthread.hpp"
#include "callback.hpp"
#include "loop.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace sockserv {

template <class T, std::size_t Capacity = 256>
class post_queue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "post_queue: Capacity is a power of two");
  static_assert(std::is_default_constructible_v<T> && std::is_nothrow_copy_assignable_v<T>,
                "post_queue: entries are copied in and out, so T must be default constructible and "
                "nothrow copy-assignable");

 public:
  using callback_type = callback<void(T&)>;
  static constexpr std::size_t capacity = Capacity;

  post_queue() noexcept {
    for (std::size_t i = 0; i < Capacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  post_queue(const post_queue&) = delete;
  post_queue& operator=(const post_queue&) = delete;
  ~post_queue() { stop(); }

  // From the loop's thread, before anyone posts. Fails if the loop's
  // wake-up descriptor cannot be opened.
  result start(loop& owner, callback_type on_post) noexcept {
    result ready = owner.open_wakeup();
    if (!ready) return ready;
    on_post_ = on_post;
    loop_ = &owner;
    stopped_.store(false);
    drain_hook_.start(owner, [this] { deliver(); });
    return {};
  }

  // Entries still queued are not delivered; producers waiting in post()
  // return false.
  void stop() noexcept {
    drain_hook_.stop();
    stopped_.store(true);
    if (waiters_.load() > 0) {
      detail::lock_guard hold(lock_);
      room_.notify_all();
    }
  }

  // Any thread. False when the queue is full (nothing is queued then).
  bool try_post(const T& value) noexcept {
    if (stopped_.load() || !enqueue(value)) return false;  // stopped, or not started yet
    // The doorbell is rung by whoever finds it quiet. Reading it first
    // keeps its cache line shared among the producers (an exchange on every
    // post made them take turns owning it); the fence orders this post
    // before the read, against the loop's exchange(false) and its fence in
    // deliver(): either the loop sees this entry, or this read sees false.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!rung_.load(std::memory_order_relaxed) && !rung_.exchange(true)) loop_->ring();
    return true;
  }

  // Any thread but the loop's own (which is the one that makes room: it
  // would wait forever). Waits while the queue is full; false if stopped.
  bool post(const T& value) noexcept {
    for (;;) {
      if (stopped_.load()) return false;
      if (try_post(value)) return true;
      detail::lock_guard hold(lock_);
      waiters_.fetch_add(1);
      const bool queued = !stopped_.load() && try_post(value);  // room may have come meanwhile
      if (!queued && !stopped_.load()) room_.wait(lock_);
      waiters_.fetch_sub(1);
      if (queued) return true;
    }
  }

  // Entries posted and not yet delivered (a snapshot).
  std::size_t pending() const noexcept {
    return enqueue_position_.load() - dequeue_position_.load();
  }

 private:
  struct cell {
    std::atomic<std::size_t> sequence;
    T value{};
  };

  bool enqueue(const T& value) noexcept {
    std::size_t position = enqueue_position_.load(std::memory_order_relaxed);
    for (;;) {
      cell& slot = cells_[position & (Capacity - 1)];
      const std::size_t sequence = slot.sequence.load(std::memory_order_acquire);
      const auto lag = static_cast<std::intptr_t>(sequence) - static_cast<std::intptr_t>(position);
      if (lag == 0) {
        if (enqueue_position_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
          slot.value = value;
          slot.sequence.store(position + 1, std::memory_order_release);
          return true;
        }
      } else if (lag < 0) {
        return false;  // the slot still holds an entry a lap behind: full
      } else {
        position = enqueue_position_.load(std::memory_order_relaxed);
      }
    }
  }

  // The loop's thread only.
  bool dequeue(T& value) noexcept {
    const std::size_t position = dequeue_position_.load(std::memory_order_relaxed);
    cell& slot = cells_[position & (Capacity - 1)];
    if (slot.sequence.load(std::memory_order_acquire) != position + 1) return false;  // empty, or still being written
    value = slot.value;
    slot.sequence.store(position + Capacity, std::memory_order_release);
    dequeue_position_.store(position + 1, std::memory_order_relaxed);
    return true;
  }

  void deliver() {
    if (!rung_.exchange(false)) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with try_post's fence
    struct requeue_guard {  // a throwing callback leaves the rest for the next turn
      post_queue& queue;
      bool done = false;
      ~requeue_guard() {
        if (done) return;
        queue.rung_.store(true);
        queue.loop_->defer();
      }
    } guard{*this};
    std::size_t delivered = 0;
    T value;
    const callback_type deliver_to = on_post_;  // a copy: the callback may restart the queue
    while (delivered < Capacity && dequeue(value)) {
      ++delivered;
      deliver_to(value);
    }
    if (delivered == Capacity && pending() > 0) {
      rung_.store(true);
      loop_->defer();
    }
    guard.done = true;
    // A read-modify-write, not a load: a plain load may be ordered before
    // the dequeue's release store (the store-buffer pattern), so this
    // thread could see no waiter while a producer, already counted, saw the
    // queue still full, and that producer would wait with room free. The
    // RMW either sees its count or makes the freed slot visible to it.
    if (delivered > 0 && waiters_.fetch_add(0) > 0) {
      detail::lock_guard hold(lock_);
      room_.notify_all();
    }
  }

  cell cells_[Capacity];
  alignas(64) std::atomic<std::size_t> enqueue_position_{0};
  alignas(64) std::atomic<std::size_t> dequeue_position_{0};
  alignas(64) std::atomic<bool> rung_{false};
  std::atomic<bool> stopped_{true};
  std::atomic<unsigned> waiters_{0};
  detail::mutex lock_;
  detail::condition room_;
  loop* loop_ = nullptr;
  callback_type on_post_;
  turn_hook drain_hook_;
};

// Functions posted to the loop's thread (Asio's post(), libuv's async with
// its queue): each task is a callback, run once, in order per producer.
template <std::size_t Capacity = 256>
class task_queue {
 public:
  using task = callback<void()>;
  result start(loop& owner) noexcept {
    return queue_.start(owner, [](task& t) { t(); });
  }
  void stop() noexcept { queue_.stop(); }
  bool try_post(task t) noexcept { return queue_.try_post(t); }
  bool post(task t) noexcept { return queue_.post(t); }
  std::size_t pending() const noexcept { return queue_.pending(); }

 private:
  post_queue<task, Capacity> queue_;
};

}  // namespace sockserv
