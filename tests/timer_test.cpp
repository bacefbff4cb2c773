// Timers (include/sockserv/loop/timer.hpp) on each poller's loop: order and
// timing of one-shot and periodic timers, equal deadlines in start order,
// thousands armed with random cancels and restarts against a model, and
// callbacks that start, restart or cancel timers (themselves included) and
// stop the loop.
#include "support/loops.hpp"

#include <sockserv/loop.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using test_support::descriptor_pair;
using test_support::epoll_loop;
using test_support::poll_loop;
using test_support::run_until;
using test_support::select_loop;

namespace {
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// A timer that records, in a shared log, its name and when it fired.
struct logged_timer {
  int name = 0;
  std::vector<int>* log = nullptr;
  std::vector<double>* at = nullptr;
  clock_type::time_point start{};
  sockserv::timer t;
  void bind(sockserv::loop& l, int n, std::vector<int>& into, std::vector<double>& times) {
    name = n;
    log = &into;
    at = &times;
    t.bind(l, [this] {
      log->push_back(name);
      at->push_back(ms_since(start));
    });
  }
};
}  // namespace

TEMPLATE_TEST_CASE("one-shot timers fire once each, in deadline order, not before their delay", "[loop][timer]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  std::vector<int> fired;
  std::vector<double> at;
  logged_timer timers[3];
  const int delays[3] = {60, 20, 40};
  const auto start = clock_type::now();
  for (int i = 0; i < 3; ++i) {
    timers[i].bind(loop, delays[i], fired, at);
    timers[i].start = start;
    timers[i].t.start(delays[i]);
    CHECK(timers[i].t.armed());
  }
  CHECK(loop.timers().armed_count() == 3);
  REQUIRE(run_until(loop, [&] { return fired.size() == 3; }));
  CHECK(fired == std::vector<int>{20, 40, 60});
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(at[i] >= fired[i] - 1);  // monotonic_ms() rounds the start down by < 1 ms
    CHECK(at[i] < fired[i] + 2000);
  }
  for (auto& t : timers) CHECK_FALSE(t.t.armed());
  CHECK(loop.timers().empty());
  // Nothing else is due: a turn waits its whole timeout and runs nothing.
  REQUIRE(loop.run_once(0));
  CHECK(fired.size() == 3);
}

TEMPLATE_TEST_CASE("a periodic timer fires every period until cancelled; first_ms sets its first expiry",
                   "[loop][timer]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  std::vector<double> at;
  const auto start = clock_type::now();
  sockserv::timer tick{loop, [&] { at.push_back(ms_since(start)); }};
  tick.start_periodic(15, 5);
  CHECK(tick.period_ms() == 15);
  REQUIRE(run_until(loop, [&] { return at.size() == 5; }));
  tick.cancel();
  CHECK_FALSE(tick.armed());
  // Expiries at 5, 20, 35, 50, 65 ms after the start (never earlier).
  for (std::size_t i = 0; i < at.size(); ++i) {
    CHECK(at[i] >= 5.0 + 15.0 * static_cast<double>(i) - 1.0);
    CHECK(at[i] < 5.0 + 15.0 * static_cast<double>(i) + 2000.0);
  }
  // Cancelled: a turn later nothing fires, and no timer holds the loop.
  CHECK(loop.next_timeout() == -1);
  REQUIRE(loop.run_once(30));
  CHECK(at.size() == 5);
}

TEMPLATE_TEST_CASE("timers due at the same time fire in the order they were started; a restart goes last",
                   "[loop][timer]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  constexpr int count = 200;
  std::vector<int> fired;
  std::vector<double> at;
  std::vector<logged_timer> timers(count);
  for (int i = 0; i < count; ++i) timers[static_cast<std::size_t>(i)].bind(loop, i, fired, at);
  // Started with one delay in a tight loop: most share the millisecond, and
  // any that do not are due later, so start order is the only right order.
  for (auto& t : timers) t.t.start(5);
  timers[0].t.start(5);   // restarted: now the last one started
  timers[10].t.start(5);  // and this after it
  REQUIRE(run_until(loop, [&] { return fired.size() == count; }));
  std::vector<int> expected;
  for (int i = 1; i < count; ++i)
    if (i != 10) expected.push_back(i);
  expected.push_back(0);
  expected.push_back(10);
  CHECK(fired == expected);
}

// The model: what each timer was last told, and the monotonic clock around
// that call (the timer reads it inside start(), so its deadline lies in
// [before + delay, after + delay]).
namespace {
struct modelled_timer {
  sockserv::timer t;
  std::size_t index = 0;
  bool armed = false;
  std::int64_t due_low = 0, due_high = 0;
  std::uint64_t started = 0;  // the model's start counter
  int fired = 0;
  std::int64_t fired_at = 0;
};
}  // namespace

TEMPLATE_TEST_CASE("10 000 timers with random cancels and restarts fire exactly the armed set, in order",
                   "[loop][timer][model]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  const auto count = static_cast<std::size_t>(test_support::scaled(10000));
  const std::uint32_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 random(seed);
  std::vector<modelled_timer> timers(count);
  std::vector<std::size_t> order;  // indices, in firing order
  order.reserve(count);
  std::uint64_t starts = 0;
  for (std::size_t i = 0; i < count; ++i) {
    modelled_timer& m = timers[i];
    m.index = i;
    m.t.bind(loop, [&m, &order] {
      ++m.fired;
      m.fired_at = sockserv::detail::monotonic_ms();
      order.push_back(m.index);
    });
  }
  auto start = [&](modelled_timer& m, std::int64_t delay) {
    const std::int64_t before = sockserv::detail::monotonic_ms();
    m.t.start(delay);
    const std::int64_t after = sockserv::detail::monotonic_ms();
    m.armed = true;
    m.due_low = before + delay;
    m.due_high = after + delay;
    m.started = starts++;
  };
  std::uniform_int_distribution<std::size_t> any(0, count - 1);
  std::uniform_int_distribution<int> delay(0, 60), action(0, 2);
  for (auto& m : timers) start(m, delay(random));
  for (std::size_t op = 0; op < 2 * count; ++op) {
    modelled_timer& m = timers[any(random)];
    if (action(random) == 0) {
      m.t.cancel();
      m.armed = false;
    } else {
      start(m, delay(random));
    }
  }
  std::size_t armed = 0;
  for (auto& m : timers) {
    CHECK(m.t.armed() == m.armed);
    if (m.armed) ++armed;
  }
  REQUIRE(loop.timers().armed_count() == armed);

  REQUIRE(run_until(loop, [&] { return loop.timers().empty(); }, 10000));
  CHECK(order.size() == armed);
  std::size_t wrong_count = 0, early = 0, misordered = 0;
  for (auto& m : timers) {
    if (m.fired != (m.armed ? 1 : 0)) ++wrong_count;
    if (m.fired && m.fired_at < m.due_low) ++early;
  }
  // Each timer fired before the next one must not be due strictly later,
  // nor (deadlines known to the millisecond and equal) started later.
  for (std::size_t i = 1; i < order.size(); ++i) {
    const modelled_timer& a = timers[order[i - 1]];
    const modelled_timer& b = timers[order[i]];
    const bool b_first = b.due_high < a.due_low ||
                         (a.due_low == a.due_high && b.due_low == b.due_high && a.due_low == b.due_low &&
                          b.started < a.started);
    if (b_first) ++misordered;
  }
  CHECK(wrong_count == 0);
  CHECK(early == 0);
  CHECK(misordered == 0);
}

TEMPLATE_TEST_CASE("a timer cancelled or restarted inside its own callback", "[loop][timer]", epoll_loop<>,
                   poll_loop<>, select_loop<>) {
  TestType loop;
  SECTION("a periodic timer that cancels itself on its third expiry fires three times") {
    int ticks = 0;
    sockserv::timer tick;
    tick.bind(loop, [&] {
      if (++ticks == 3) tick.cancel();
    });
    tick.start_periodic(2);
    bool ended = false;
    sockserv::timer end{loop, [&] { ended = true; }};
    REQUIRE(run_until(loop, [&] { return ticks == 3; }));
    CHECK_FALSE(tick.armed());
    end.start(40);  // many periods later
    REQUIRE(run_until(loop, [&] { return ended; }));
    CHECK(ticks == 3);
  }
  SECTION("a one-shot timer that restarts itself fires once per restart") {
    int fired = 0;
    sockserv::timer again;
    again.bind(loop, [&] {
      if (++fired < 5) again.start(1);
    });
    again.start(1);
    REQUIRE(run_until(loop, [&] { return fired == 5; }));
    CHECK_FALSE(again.armed());
    REQUIRE(loop.run_once(20));
    CHECK(fired == 5);
  }
  SECTION("a periodic timer restarted as one-shot from its callback fires once more and stops") {
    int fired = 0;
    sockserv::timer t;
    t.bind(loop, [&] {
      if (++fired == 2) t.start(3);
    });
    t.start_periodic(2);
    REQUIRE(run_until(loop, [&] { return fired == 3; }));
    CHECK_FALSE(t.armed());
    CHECK(t.period_ms() == 0);
    REQUIRE(loop.run_once(20));
    CHECK(fired == 3);
  }
  SECTION("a periodic timer whose callback restarts it with another period keeps the new one") {
    std::vector<std::int64_t> at;
    sockserv::timer t;
    t.bind(loop, [&] {
      at.push_back(sockserv::detail::monotonic_ms());
      if (at.size() == 1) t.start_periodic(30);
    });
    t.start_periodic(1);
    REQUIRE(run_until(loop, [&] { return at.size() == 3; }));
    t.cancel();
    CHECK(at[1] - at[0] >= 29);
    CHECK(at[2] - at[0] >= 59);  // the phase of the new period (at[1] may be late)
  }
}

namespace {
// What the callbacks of the next test share (a callback captures at most
// three pointers, so they capture this).
struct timer_web {
  sockserv::loop& loop;
  std::vector<char> fired;
  sockserv::timer a, b, c, d, safety;
  bool safety_fired = false;
  explicit timer_web(sockserv::loop& l) : loop(l) {
    // a and b are due at the same time; a runs first (started first) and
    // cancels b, which must then not run although it was due in this batch.
    a.bind(loop, [this] {
      fired.push_back('a');
      b.cancel();
      c.start(0);
      d.start(10000);
    });
    b.bind(loop, [this] { fired.push_back('b'); });
    c.bind(loop, [this] {
      fired.push_back('c');
      d.cancel();
      loop.shutdown();  // from a callback: only requests the stop
    });
    d.bind(loop, [this] { fired.push_back('d'); });
    safety.bind(loop, [this] {
      safety_fired = true;
      loop.request_shutdown();
    });
  }
};
}  // namespace

TEMPLATE_TEST_CASE("a timer callback starts and cancels other timers and stops the loop", "[loop][timer]",
                   epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  timer_web web{loop};
  web.safety.start(5000);
  // b's deadline should equal a's for the test to mean what it says:
  // restart both until they share the millisecond.
  for (int tries = 0; tries < 100; ++tries) {
    web.a.start(3);
    web.b.start(3);
    if (web.a.remaining_ms() == web.b.remaining_ms()) break;
  }
  REQUIRE(loop.serve_forever());
  CHECK_FALSE(web.safety_fired);
  CHECK(web.fired == std::vector<char>{'a', 'c'});
  CHECK_FALSE(web.b.armed());
  CHECK_FALSE(web.d.armed());
}

TEMPLATE_TEST_CASE("a 0 ms timer started from its callback fires on the next turn: descriptors are not starved",
                   "[loop][timer]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  int fired = 0;
  sockserv::timer busy;
  busy.bind(loop, [&] {
    ++fired;
    busy.start(0);
  });
  busy.start(0);
  descriptor_pair pipe;
  int reads = 0;
  sockserv::io_watcher reader;
  REQUIRE(reader.start(loop, pipe.read_end(), true, false, [&](sockserv::readiness) {
    while (pipe.take() != -1) ++reads;
  }));
  for (int turn = 1; turn <= 10; ++turn) {
    pipe.put();
    REQUIRE(loop.run_once(0));
    CHECK(fired == turn);  // once per turn, never in a burst
    CHECK(reads == turn);  // and the descriptor is served every turn
    CHECK(loop.next_timeout() == 0);
  }
  busy.cancel();
  CHECK(loop.next_timeout() == -1);
}

TEMPLATE_TEST_CASE("a periodic timer behind schedule skips the missed periods and keeps its phase",
                   "[loop][timer]", epoll_loop<>, poll_loop<>, select_loop<>) {
  TestType loop;
  std::vector<std::int64_t> at;
  sockserv::timer tick;
  tick.bind(loop, [&] {
    at.push_back(sockserv::detail::monotonic_ms());
    // The first callback is slow: the loop falls five periods behind (the
    // sleep is the situation under test, not a synchronisation).
    if (at.size() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(55));
  });
  // Where the time in ms is the same before and after: the timer's due
  // time (now + remaining), exact; 0 remaining leaves it unknown (-1).
  auto due_time = [&] {
    std::int64_t before, left, after;
    do {
      before = sockserv::detail::monotonic_ms();
      left = tick.remaining_ms();
      after = sockserv::detail::monotonic_ms();
    } while (before != after);
    return left > 0 ? before + left : std::int64_t{-1};
  };
  tick.start_periodic(10);
  const std::int64_t first_due = due_time();  // the phase (a slow machine, qemu, may miss it: then unchecked)
  REQUIRE(run_until(loop, [&] { return at.size() == 1; }));
  // Behind schedule: the next turn fires once (the overdue expiry), not
  // once per missed period.
  REQUIRE(loop.run_once(0));
  CHECK(at.size() == 2);
  // The next expiry is in the future, at most one period away, and on the
  // original phase: first_due + k * 10.
  const std::int64_t next_due = due_time();
  CHECK(tick.remaining_ms() <= 10);
  if (first_due >= 0 && next_due >= 0) {
    INFO("next expiry " << next_due - first_due << " ms after the first");
    CHECK((next_due - first_due) % 10 == 0);
  }
  REQUIRE(run_until(loop, [&] { return at.size() == 4; }));
  tick.cancel();
  if (next_due >= 0) {  // neither fired before its place in the schedule
    CHECK(at[2] >= next_due);
    CHECK(at[3] >= next_due + 10);
  }
}

TEST_CASE("timer basics: unbound, remaining_ms, rebinding, destruction while armed", "[loop][timer]") {
  sockserv::basic_loop<> loop;
  sockserv::timer unbound;
  unbound.start(1);  // no queue: nothing happens
  CHECK_FALSE(unbound.armed());
  CHECK_FALSE(unbound.bound());
  CHECK(unbound.remaining_ms() == -1);

  int fired = 0;
  sockserv::timer t{loop, [&] { ++fired; }};
  CHECK(t.bound());
  t.start(10000);
  CHECK(t.remaining_ms() > 9000);
  CHECK(t.remaining_ms() <= 10000);
  CHECK(loop.next_timeout() > 9000);
  t.start(-5);  // a negative delay is "now"
  CHECK(t.remaining_ms() == 0);
  CHECK(loop.next_timeout() == 0);
  {
    sockserv::timer gone{loop, [&] { fired += 100; }};
    gone.start(0);
    CHECK(loop.timers().armed_count() == 2);
  }  // destroyed while armed: unlinked
  CHECK(loop.timers().armed_count() == 1);
  REQUIRE(loop.run_once(0));
  CHECK(fired == 1);

  int other = 0;
  t.bind(loop, [&] { ++other; });  // rebinding changes the callback
  t.start(0);
  REQUIRE(loop.run_once(0));
  CHECK(other == 1);
  CHECK(fired == 1);
}

namespace {
// A callback that binds its own timer to a callback of another shape, then
// goes on using its own captures.
struct rebinding {
  int victim = 0;  // where the new callback's second capture points
  sockserv::loop* loop = nullptr;
  sockserv::timer t;
  int first_done = 0;
  int second_calls = 0;
};
}  // namespace

TEST_CASE("a timer callback that binds its timer to another callback keeps its own captures", "[loop][timer]") {
  sockserv::basic_loop<> loop;
  rebinding r;
  r.loop = &loop;
  rebinding* state = &r;
  int* done = &r.first_done;
  r.t.bind(loop, [state, done] {
    int* calls = &state->second_calls;
    state->t.bind(*state->loop, [calls, state] {
      ++*calls;
      (void)state;
    });
    ++*done;  // read after the stored callback was replaced
  });
  r.t.start(0);
  REQUIRE(run_until(loop, [&] { return r.first_done == 1; }));
  CHECK(r.victim == 0);
  r.t.start(0);
  REQUIRE(run_until(loop, [&] { return r.second_calls == 1; }));
  CHECK(r.first_done == 1);
}

TEST_CASE("timer: a timer costs at most 96 bytes on 64-bit targets (the README's figure)", "[timer]") {
  // Three 64-bit times, a queue pointer, three heap links and the callback.
  CHECK(sizeof(sockserv::timer) <= (sizeof(void*) == 8 ? 96u : 64u));
}
