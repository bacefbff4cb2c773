// SPDX-License-Identifier: BSL-1.0
// sockserv/loop.hpp — the daemon's loop and its watchers (see loop/loop.hpp).
#pragma once

#include "loop/callback.hpp"
#include "loop/child_watcher.hpp"
#include "loop/loop.hpp"
#include "loop/post_queue.hpp"
#include "loop/signal_watcher.hpp"
#include "loop/timer.hpp"
