// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/scope_exit.hpp — an action run when a scope is left,
// however it is left (return, or a hook's exception going through).
//
// The request and connection paths call user hooks that may throw; what
// must happen after them anyway (free a slot, give back an address's
// count, point the stop's descriptor back at the pipe) is said once, at
// the top of the scope: `detail::scope_exit freed{[&] { release(slot); }};`.
// dismiss() keeps the action from running (the work was handed on).
#pragma once

namespace sockserv::detail {

template <class Action>
class scope_exit {
 public:
  explicit scope_exit(Action action) noexcept : action_(action) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  ~scope_exit() {
    if (armed_) action_();
  }
  void dismiss() noexcept { armed_ = false; }

 private:
  Action action_;
  bool armed_ = true;
};

}  // namespace sockserv::detail
