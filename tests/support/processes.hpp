// Counting this process's threads and unreaped children, to prove that the
// threading and forking policies leave none behind; and a bounded wait for
// a condition another thread makes true.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <string>
#include <thread>
#include <cerrno>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

inline std::size_t listed_threads() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
  }
  return count;
}

// Threads of this process, once the count holds still. A thread that was
// just joined can stay listed in /proc/self/task for a moment: its exit
// finishes after pthread_join() returns (briefly on Linux, for milliseconds
// under qemu-user, whose host thread still cleans up). So the count is
// read until three readings 5 ms apart agree (at most 2 s).
inline std::size_t running_threads() {
  std::size_t count = listed_threads();
  int agreeing = 1;
  for (int i = 0; i < 400 && agreeing < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::size_t now = listed_threads();
    agreeing = now == count ? agreeing + 1 : 1;
    count = now;
  }
  return count;
}

// Children of this process, zombies (exited but never waited for) or the
// others (still running).
inline std::size_t children_of_this_process(bool zombies) {
  std::size_t found = 0;
  const long self = static_cast<long>(::getpid());
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::string path = std::string("/proc/") + entry->d_name + "/stat";
    FILE* stat = std::fopen(path.c_str(), "r");
    if (stat == nullptr) continue;
    char line[1024] = {};
    if (std::fgets(line, sizeof line, stat) != nullptr) {
      const char* after_name = std::strrchr(line, ')');  // the name may hold spaces
      char state = 0;
      long parent = 0;
      // (ThreadSanitizer's symbolizer, under make tsan, is not the tests' child.)
      const bool symbolizer = std::strstr(line, "(llvm-symbolizer)") != nullptr || std::strstr(line, "(addr2line)") != nullptr;
      if (after_name != nullptr && std::sscanf(after_name + 1, " %c %ld", &state, &parent) == 2 &&
          parent == self && (state == 'Z') == zombies && !symbolizer)
        ++found;
    }
    std::fclose(stat);
  }
  ::closedir(proc);
  return found;
}

inline std::size_t zombie_children() { return children_of_this_process(true); }
inline std::size_t live_children() { return children_of_this_process(false); }

// True once every child has exited and can be waited for (none is reaped
// here: WNOWAIT). A zombie in /proc is not always waitable yet: under
// qemu-user the child's other threads may still be exiting.
inline bool children_all_waitable() {
  if (live_children() != 0) return false;
  siginfo_t info{};
  if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1) return errno == ECHILD;  // none left
  return zombie_children() == 0 || info.si_pid != 0;
}

// Waits (at most `seconds`) until predicate() holds; false if it never did.
template <class Predicate>
bool eventually(Predicate predicate, double seconds = 10.0) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace test_support
