// A private directory for unix-domain sockets, created with mkdtemp under
// /tmp (short: sun_path holds 107 bytes) and removed with its contents when
// the object goes out of scope.
#pragma once

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <string>
#include <unistd.h>

namespace test_support {

class temp_dir {
 public:
  temp_dir() {
    char pattern[] = "/tmp/sockserv-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    INFO("mkdtemp: " << std::strerror(errno));
    REQUIRE(made != nullptr);
    path_ = made;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  ~temp_dir() {
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
        ::unlink((path_ + "/" + entry->d_name).c_str());
      }
      ::closedir(dir);
    }
    ::rmdir(path_.c_str());
  }

  const std::string& path() const noexcept { return path_; }

  // The path of `name` inside the directory; the pointer stays valid as
  // long as the directory object lives (unix_endpoint keeps a const char*).
  const char* file(const std::string& name) {
    names_.push_back(path_ + "/" + name);
    return names_.back().c_str();
  }

 private:
  std::string path_;
  std::deque<std::string> names_;
};

}  // namespace test_support
