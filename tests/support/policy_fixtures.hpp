// Fixtures for the concurrency-policy tests: loopback clients with bounded
// waits, a temporary directory for unix sockets, a serve_forever thread, and
// counts of the process's descriptors, threads and zombie children.
#pragma once

#include <sockserv.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace fixtures {

inline void set_receive_timeout(int fd, double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// A client socket of the server's family and type, connected to it (for a
// unix datagram client: bound to its own path first, so it can be answered).
class client {
 public:
  client(const sockserv::socket_address& server, int type, const std::string& own_path = "") {
    fd_ = ::socket(server.family(), type, 0);
    REQUIRE(fd_ >= 0);
    set_receive_timeout(fd_, 10.0);
    if (!own_path.empty()) {
      sockaddr_un self{};
      self.sun_family = AF_UNIX;
      std::snprintf(self.sun_path, sizeof self.sun_path, "%s", own_path.c_str());
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&self), sizeof self) == 0);
    }
    REQUIRE(::connect(fd_, server.data(), server.size()) == 0);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() {
    if (fd_ >= 0) ::close(fd_);
  }

  void send(const std::string& data) const {
    REQUIRE(sockserv::detail::send_all(fd_, data.data(), data.size()) == static_cast<std::ptrdiff_t>(data.size()));
  }
  // Stream: everything until the server closes (bounded by the timeout).
  std::string read_to_eof() const {
    std::string out;
    char buffer[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      // EINTR: under qemu-user even an ignored SIGCHLD interrupts a recv
      // that has SO_RCVTIMEO (the emulator has a real handler for it).
      if (n == -1 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
  // Datagram: one packet (empty on timeout).
  std::string receive_packet() const {
    char buffer[65536];
    ssize_t n;
    do n = ::recv(fd_, buffer, sizeof buffer, 0);
    while (n == -1 && errno == EINTR);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// A directory for unix socket files, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    char pattern[] = "/tmp/sockserv-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (dirent* entry = ::readdir(dir))
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
          ::unlink((path_ + "/" + entry->d_name).c_str());
      ::closedir(dir);
    }
    ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// serve_forever() on its own thread; shutdown() and join on destruction.
template <class Server>
class serving_thread {
 public:
  explicit serving_thread(Server& server, double poll_interval = 0.5)
      : server_(server), thread_([this, poll_interval] { outcome_ = server_.serve_forever(poll_interval); }) {}
  serving_thread(const serving_thread&) = delete;
  serving_thread& operator=(const serving_thread&) = delete;
  ~serving_thread() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    server_.shutdown();
    thread_.join();
  }
  const sockserv::result& outcome() const { return outcome_; }

 private:
  Server& server_;
  sockserv::result outcome_;
  std::thread thread_;
};

inline std::size_t count_entries(const char* directory) {
  std::size_t count = 0;
  if (DIR* dir = ::opendir(directory)) {
    while (dirent* entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
  }
  return count;
}
inline std::size_t open_descriptors() { return count_entries("/proc/self/fd"); }
inline std::size_t running_threads() { return count_entries("/proc/self/task"); }

// Children of this process that have exited but were never waited for.
inline std::size_t zombie_children() {
  std::size_t zombies = 0;
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
      if (after_name != nullptr && std::sscanf(after_name + 1, " %c %ld", &state, &parent) == 2 &&
          parent == self && state == 'Z')
        ++zombies;
    }
    std::fclose(stat);
  }
  ::closedir(proc);
  return zombies;
}

// Waits (bounded) until predicate() holds; false if it never did.
template <class Predicate>
bool eventually(Predicate predicate, double seconds = 10.0) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace fixtures
