// Counting this process's open descriptors, to prove that a code path
// leaks none.
#pragma once

#include <cstddef>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>

namespace test_support {

// Entries in /proc/self/fd, minus the one opendir() itself holds.
inline std::size_t open_descriptor_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  std::size_t count = 0;
  while (dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  ::closedir(dir);
  return count - 1;
}

inline bool is_open_descriptor(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace test_support
