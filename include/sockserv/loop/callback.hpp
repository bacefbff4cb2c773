// SPDX-License-Identifier: BSL-1.0
// sockserv/loop/callback.hpp — a callable stored inside the watcher that
// owns it, so that watchers take lambdas without std::function's heap.
//
// callback<void(Args...)> holds any callable of at most `capacity` bytes
// (three pointers: enough for a lambda capturing `this` and two references)
// that is trivially copyable and destructible — the usual capture of
// pointers and references. A larger capture is a compile-time error: keep
// the state elsewhere and capture a pointer to it.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sockserv {

template <class Signature>
class callback;

template <class Result, class... Args>
class callback<Result(Args...)> {
 public:
  static constexpr std::size_t capacity = 3 * sizeof(void*);

  callback() noexcept = default;

  template <class Callable, class = std::enable_if_t<!std::is_same_v<std::decay_t<Callable>, callback>>>
  callback(Callable&& callable) noexcept {  // NOLINT: implicit on purpose, so that a lambda can be passed as it is
    using stored = std::decay_t<Callable>;
    static_assert(sizeof(stored) <= capacity,
                  "sockserv::callback: this lambda captures too much (at most three pointers' worth): "
                  "capture a pointer to your state instead");
    static_assert(alignof(stored) <= alignof(void*), "sockserv::callback: over-aligned capture");
    static_assert(std::is_trivially_copyable_v<stored> && std::is_trivially_destructible_v<stored>,
                  "sockserv::callback: capture pointers or references only (no owning objects)");
    ::new (static_cast<void*>(storage_)) stored(std::forward<Callable>(callable));
    invoke_ = [](const void* self, Args... args) -> Result {
      return (*const_cast<stored*>(static_cast<const stored*>(self)))(std::forward<Args>(args)...);
    };
  }

  // A plain function pointer fits too.
  callback(Result (*function)(Args...)) noexcept : callback([function](Args... args) -> Result {
    return function(std::forward<Args>(args)...);
  }) {}

  explicit operator bool() const noexcept { return invoke_ != nullptr; }

  Result operator()(Args... args) const { return invoke_(storage_, std::forward<Args>(args)...); }

 private:
  alignas(void*) unsigned char storage_[capacity] = {};
  Result (*invoke_)(const void*, Args...) = nullptr;
};

}  // namespace sockserv
