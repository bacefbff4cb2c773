// Replays every input a fuzzer ever failed on (fuzz/regressions/NAME/*) and
// every seed (fuzz/corpus/NAME/*) through the fuzz target's own checks
// (fuzz/NAME.hpp), so that make test keeps each fixed bug fixed, with g++,
// under every sanitizer build and toolchain, without clang or libFuzzer.
// The files are found next to this source (tests/../fuzz, as make names it
// from the repository root) or in $SOCKSERV_FUZZ_DIR.
#include "../fuzz/address.hpp"
#include "../fuzz/datagram_io.hpp"
#include "../fuzz/framing.hpp"
#include "../fuzz/line_reader.hpp"

#include <sockserv/framing.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string fuzz_directory() {
  if (const char* dir = std::getenv("SOCKSERV_FUZZ_DIR")) return dir;
  const std::string here = __FILE__;
  const std::size_t slash = here.rfind('/');
  return (slash == std::string::npos ? std::string(".") : here.substr(0, slash)) + "/../fuzz";
}

std::vector<std::string> files_in(const std::string& directory) {
  std::vector<std::string> paths;
  if (DIR* dir = ::opendir(directory.c_str())) {
    // readdir64: a 32-bit readdir() fails with EOVERFLOW on the 64-bit
    // directory offsets of a 64-bit host's file system (qemu-user runs).
#ifdef __GLIBC__
    while (dirent64* entry = ::readdir64(dir))
#else
    while (dirent* entry = ::readdir(dir))
#endif
      if (entry->d_name[0] != '.') paths.push_back(directory + "/" + entry->d_name);
    ::closedir(dir);
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

using check = const char* (*)(const std::uint8_t*, std::size_t);

struct target {
  const char* name;
  check run;
};

// Runs every file of fuzz/KIND/NAME through the check; returns how many.
std::size_t replay(const target& t, const char* kind) {
  std::size_t count = 0;
  for (const std::string& path : files_in(fuzz_directory() + "/" + kind + "/" + t.name)) {
    const std::string bytes = contents(path);
    const char* broken = t.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    INFO(path);
    CHECK(std::string(broken != nullptr ? broken : "") == "");
    ++count;
  }
  return count;
}

const target targets[] = {{"address", sockserv_fuzz::address},
                          {"datagram_io", sockserv_fuzz::datagram_io},
                          {"framing", sockserv_fuzz::framing},
                          {"line_reader", sockserv_fuzz::line_reader}};

}  // namespace

TEST_CASE("every input a fuzzer failed on passes its target's checks now", "[fuzz][regression]") {
  std::size_t total = 0;
  for (const target& t : targets) total += replay(t, "regressions");
  INFO("regression inputs under " << fuzz_directory() << "/regressions");
  CHECK(total > 0);
}

TEST_CASE("every fuzz seed passes its target's checks", "[fuzz]") {
  for (const target& t : targets) {
    INFO("seeds of " << t.name << " under " << fuzz_directory() << "/corpus");
    CHECK(replay(t, "corpus") > 0);
  }
}

// The bug behind fuzz/regressions/framing/prefix2-in-1-byte-buffer-stalls:
// with an input buffer smaller than the length header, the header could
// never be whole, extract() said "no message yet" for ever, and the event
// loop kept the connection, unanswered and unclosed.
TEST_CASE("a length header that cannot fit the input buffer is malformed, not awaited", "[fuzz][framing]") {
  using prefix2 = sockserv::length_prefix_framing<2>;
  CHECK(prefix2::extract(std::string_view("\x00", 1), 1).malformed);
  CHECK_FALSE(prefix2::extract(std::string_view(), 1).malformed);  // nothing yet: nothing wrong yet
  CHECK_FALSE(prefix2::extract(std::string_view("\x00", 1), 2).malformed);  // fits: wait for the rest
  CHECK(sockserv::length_prefix_framing<4>::extract(std::string_view("\x00\x00\x00", 3), 3).malformed);
  CHECK(prefix2::extract(std::string_view("\x00\x00", 2), 2).consumed == 2);  // an empty message fits
}
