// Counting this process's open descriptors, to prove that a code path
// leaks none.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

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

// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed (CI runs
// the suite with no standard input). libuv needs this: it asserts that no
// descriptor it closes is below 3, so a loop descriptor it made as number 0
// aborts the process (seen: uv__close, "fd > STDERR_FILENO"). sockserv
// itself works with any number; the other tests run without this.
inline void open_missing_standard_descriptors() {
  // open() takes the lowest free number: fd itself, the lower ones being open.
  for (int fd = 0; fd <= 2; ++fd)
    if (!is_open_descriptor(fd)) (void)::open("/dev/null", O_RDWR);
}

// The highest open descriptor number (-1 if none can be read).
inline int highest_open_descriptor() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int own = ::dirfd(dir);
  int highest = -1;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != own && fd > highest) highest = fd;
  }
  ::closedir(dir);
  return highest;
}

// Fills every free descriptor number below the highest open one (with
// /dev/null) while it lives. The kernel hands out the lowest free number, so
// afterwards a number that is closed is the very next one handed out: a
// test can make descriptor reuse happen, not merely hope for it.
class descriptor_holes_filled {
 public:
  descriptor_holes_filled() {
    const int highest = highest_open_descriptor();
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      if (fd > highest) {
        ::close(fd);
        break;
      }
      fillers_.push_back(fd);
    }
  }
  descriptor_holes_filled(const descriptor_holes_filled&) = delete;
  descriptor_holes_filled& operator=(const descriptor_holes_filled&) = delete;
  ~descriptor_holes_filled() {
    for (int fd : fillers_) ::close(fd);
  }

 private:
  std::vector<int> fillers_;
};

}  // namespace test_support
