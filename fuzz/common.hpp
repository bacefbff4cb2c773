// What the fuzz targets share. Each target is a check,
//   const char* sockserv_fuzz::NAME(const std::uint8_t* data, std::size_t size)
// in fuzz/NAME.hpp, returning nullptr when every invariant held and else a
// description of the one that broke. fuzz/NAME.cpp hands it to libFuzzer
// (a broken invariant aborts, so libFuzzer keeps the input); the Catch2 test
// tests/fuzz_regression_test.cpp replays fuzz/regressions/NAME/* and the seed
// corpus fuzz/corpus/NAME/* through the same check, so make test covers
// every input that ever failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sockserv_fuzz {

// Reads the control bytes at the front of an input; what is left is the
// payload. Past the end it yields zeros, so every input is valid.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  std::uint8_t byte() noexcept { return at_ < size_ ? data_[at_++] : 0; }
  std::string_view rest() const noexcept {
    return at_ < size_ ? std::string_view(reinterpret_cast<const char*>(data_ + at_), size_ - at_)
                       : std::string_view();
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// Ends a libFuzzer run on a broken invariant.
[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "\n!! fuzz target %s: invariant broken: %s\n", target, what);
  std::abort();
}

}  // namespace sockserv_fuzz

// The libFuzzer entry point of target NAME (in fuzz/NAME.cpp).
#define SOCKSERV_FUZZ_TARGET(NAME)                                                         \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {      \
    if (const char* broken = sockserv_fuzz::NAME(data, size)) sockserv_fuzz::fail(#NAME, broken); \
    return 0;                                                                              \
  }
