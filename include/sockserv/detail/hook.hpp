// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/hook.hpp — calling a handler hook that may return void
// or a result.
#pragma once

#include "../error.hpp"

#include <type_traits>

namespace sockserv::detail {

template <class Hook>
result call_hook(Hook hook) {
  if constexpr (std::is_void_v<decltype(hook())>) {
    hook();
    return {};
  } else {
    return hook();
  }
}

}  // namespace sockserv::detail
