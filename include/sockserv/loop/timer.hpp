// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/timer.hpp — one-shot and periodic timers on the monotonic
// clock, owned by the caller and linked into their loop's queue.
//
// The queue is an intrusive pairing heap: starting a timer is O(1),
// cancelling or firing one O(log n) amortised, and nothing is allocated, so
// a timer per connection costs its 96 bytes (64-bit) and nothing while it waits.
// Timers due at the same millisecond fire in the order they were started.
// A callback may start, restart or cancel any timer, itself included; a
// timer started from a callback with a delay of 0 fires on the next turn of
// the loop, never in the same one (no starvation of descriptors).
#pragma once

#include "../detail/syscall.hpp"
#include "callback.hpp"

#include <cstddef>
#include <cstdint>
#include <utility>

namespace sockserv {

class timer_queue;

class timer {
 public:
  using callback_type = callback<void()>;

  timer() noexcept = default;
  timer(timer_queue& queue, callback_type on_expiry) noexcept { bind(queue, on_expiry); }
  template <class Loop, class = decltype(std::declval<Loop&>().timers())>
  timer(Loop& loop, callback_type on_expiry) noexcept : timer(loop.timers(), on_expiry) {}
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer() { cancel(); }

  // Chooses the queue (a loop's timers()) and what runs on expiry. A bound
  // timer may be bound again only while it is not armed.
  void bind(timer_queue& queue, callback_type on_expiry) noexcept {
    cancel();
    queue_ = &queue;
    on_expiry_ = on_expiry;
  }
  template <class Loop, class = decltype(std::declval<Loop&>().timers())>
  void bind(Loop& loop, callback_type on_expiry) noexcept {
    bind(loop.timers(), on_expiry);
  }

  // Fires once, delay_ms from now (an armed timer is re-armed).
  inline void start(std::int64_t delay_ms) noexcept;
  // Fires every period_ms, the first time period_ms from now (or after
  // first_ms when given). A late loop does not make it fire in bursts: a
  // missed period is skipped, the schedule keeps its phase.
  inline void start_periodic(std::int64_t period_ms, std::int64_t first_ms = -1) noexcept;
  inline void cancel() noexcept;

  bool armed() const noexcept { return armed_; }
  bool bound() const noexcept { return queue_ != nullptr; }
  std::int64_t period_ms() const noexcept { return period_ms_; }
  // Milliseconds until it fires (0 when due), -1 when not armed.
  std::int64_t remaining_ms() const noexcept {
    if (!armed_) return -1;
    const std::int64_t left = due_ms_ - detail::monotonic_ms();
    return left > 0 ? left : 0;
  }

 private:
  friend class timer_queue;

  // Ordering: earlier due first, then earlier start.
  bool before(const timer& other) const noexcept {
    return due_ms_ != other.due_ms_ ? due_ms_ < other.due_ms_ : sequence_ < other.sequence_;
  }

  timer_queue* queue_ = nullptr;
  callback_type on_expiry_;
  std::int64_t due_ms_ = 0;
  std::int64_t period_ms_ = 0;  // 0: one-shot
  std::uint64_t sequence_ = 0;
  // Pairing-heap links: first child, next sibling, and the previous sibling
  // (or the parent, for a first child).
  timer* child_ = nullptr;
  timer* next_ = nullptr;
  timer* previous_ = nullptr;
  bool armed_ = false;
};

class timer_queue {
 public:
  timer_queue() noexcept = default;
  timer_queue(const timer_queue&) = delete;
  timer_queue& operator=(const timer_queue&) = delete;

  bool empty() const noexcept { return root_ == nullptr; }
  // Monotonic ms of the earliest timer; -1 when none is armed.
  std::int64_t next_due_ms() const noexcept { return root_ ? root_->due_ms_ : -1; }
  std::size_t armed_count() const noexcept { return count_; }

  // Milliseconds a poll may sleep: until the earliest timer (0 when one is
  // due), or `limit_ms` (-1 = forever) when that comes first.
  int wait_limit_ms(int limit_ms) const noexcept {
    if (root_ == nullptr) return limit_ms;
    std::int64_t left = root_->due_ms_ - detail::monotonic_ms();
    if (left < 0) left = 0;
    if (left > 2147483000) left = 2147483000;
    return (limit_ms < 0 || left < limit_ms) ? static_cast<int>(left) : limit_ms;
  }

  // Runs every timer due now that was armed before this call began (one
  // armed from a callback waits for the next call). Returns how many ran.
  // A callback's exception leaves the queue consistent and propagates.
  std::size_t run_due() {
    const std::int64_t now = detail::monotonic_ms();
    const std::uint64_t armed_before = sequence_;
    std::size_t ran = 0;
    while (root_ != nullptr && root_->due_ms_ <= now && root_->sequence_ < armed_before) {
      timer& due = *root_;
      remove(due);
      if (due.period_ms_ > 0) {  // re-armed first, so the callback may cancel it
        std::int64_t next = due.due_ms_ + due.period_ms_;
        if (next <= now) next += ((now - next) / due.period_ms_ + 1) * due.period_ms_;
        insert(due, next);
      }
      ++ran;
      // From a copy: the callback may bind its timer to another callback.
      const timer::callback_type expire = due.on_expiry_;
      expire();
    }
    return ran;
  }

 private:
  friend class timer;

  void insert(timer& t, std::int64_t due_ms) noexcept {
    t.due_ms_ = due_ms;
    t.sequence_ = sequence_++;
    t.child_ = t.next_ = t.previous_ = nullptr;
    t.armed_ = true;
    root_ = meld(root_, &t);
    ++count_;
  }

  void remove(timer& t) noexcept {
    if (!t.armed_) return;
    t.armed_ = false;
    --count_;
    if (&t == root_) {
      root_ = merge_siblings(t.child_);
      if (root_) root_->previous_ = nullptr;
      return;
    }
    // Cut t (with its subtree) out of its sibling list, then meld its
    // children back in at the root.
    if (t.previous_->child_ == &t)
      t.previous_->child_ = t.next_;
    else
      t.previous_->next_ = t.next_;
    if (t.next_) t.next_->previous_ = t.previous_;
    timer* children = merge_siblings(t.child_);
    if (children) children->previous_ = nullptr;
    root_ = meld(root_, children);
  }

  static timer* meld(timer* a, timer* b) noexcept {
    if (a == nullptr) return b;
    if (b == nullptr) return a;
    if (b->before(*a)) {
      timer* swap = a;
      a = b;
      b = swap;
    }
    // b becomes a's first child.
    b->previous_ = a;
    b->next_ = a->child_;
    if (a->child_) a->child_->previous_ = b;
    a->child_ = b;
    a->next_ = nullptr;
    return a;
  }

  // The two-pass merge: pairs left to right, then the pairs right to left.
  // The first pass links each melded pair through next_ in reverse order,
  // so the second pass needs no stack.
  static timer* merge_siblings(timer* first) noexcept {
    timer* pairs = nullptr;
    while (first != nullptr) {
      timer* a = first;
      timer* b = a->next_;
      first = b ? b->next_ : nullptr;
      a->next_ = a->previous_ = nullptr;
      if (b) b->next_ = b->previous_ = nullptr;
      timer* pair = meld(a, b);
      pair->next_ = pairs;
      pairs = pair;
    }
    timer* result = nullptr;
    while (pairs != nullptr) {
      timer* rest = pairs->next_;
      pairs->next_ = nullptr;
      result = meld(pairs, result);
      pairs = rest;
    }
    return result;
  }

  timer* root_ = nullptr;
  std::uint64_t sequence_ = 0;
  std::size_t count_ = 0;
};

void timer::start(std::int64_t delay_ms) noexcept {
  if (queue_ == nullptr) return;
  queue_->remove(*this);
  period_ms_ = 0;
  queue_->insert(*this, detail::monotonic_ms() + (delay_ms > 0 ? delay_ms : 0));
}

void timer::start_periodic(std::int64_t period_ms, std::int64_t first_ms) noexcept {
  if (queue_ == nullptr) return;
  queue_->remove(*this);
  period_ms_ = period_ms > 0 ? period_ms : 1;
  queue_->insert(*this, detail::monotonic_ms() + (first_ms >= 0 ? first_ms : period_ms_));
}

void timer::cancel() noexcept {
  if (queue_ != nullptr) queue_->remove(*this);
}

}  // namespace sockserv
