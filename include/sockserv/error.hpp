// SPDX-License-Identifier: BSL-1.0
// sockserv/error.hpp — the errno-carrying result every fallible call returns.
//
// A result is either "ok" or a failure with an errno value and a short
// message such as "bind 127.0.0.1:9999: Address already in use". The text
// lives in a fixed array so that reporting an error never allocates.
#pragma once

#include "detail/text.hpp"

#include <cerrno>
#include <cstring>
#include <exception>

namespace sockserv {

class [[nodiscard]] result {
 public:
  static constexpr unsigned message_capacity = 160;

  result() noexcept = default;  // success

  // errno-style failure: "<context>: <strerror(code)>".
  static result from_errno(int code, const char* context) noexcept {
    result r;
    r.code_ = code;
    char reason[96];
    detail::text_builder(r.message_, sizeof r.message_)
        .add(context, 110)
        .add(": ")
        .add(describe_errno(code, reason, sizeof reason), 47);
    return r;
  }

  // Failure that is not an errno (a handler saying "bad request").
  static result failure(const char* message) noexcept {
    result r;
    r.code_ = -1;
    detail::text_builder(r.message_, sizeof r.message_).add(message);
    return r;
  }

  bool ok() const noexcept { return code_ == 0; }
  explicit operator bool() const noexcept { return ok(); }
  // errno value of the failure, -1 for a non-errno failure, 0 when ok.
  int code() const noexcept { return code_; }
  const char* message() const noexcept { return ok() ? "ok" : message_; }

 private:
  // strerror() is not thread-safe; strerror_r has two signatures (GNU/XSI).
  static const char* describe_errno(int code, char* buf, unsigned size) noexcept {
    return pick_strerror(strerror_r(code, buf, size), buf);
  }
  static const char* pick_strerror(const char* gnu, char*) noexcept { return gnu; }
  static const char* pick_strerror(int xsi, char* buf) noexcept {
    if (xsi != 0) detail::text_builder(buf, 32).add("errno ").add_signed(xsi);
    return buf;
  }

  int code_ = 0;
  char message_[message_capacity] = {};
};

#if defined(__cpp_exceptions) && !defined(SOCKSERV_NO_EXCEPTIONS)
#define SOCKSERV_EXCEPTIONS 1
// Thrown (only when exceptions are enabled) where Python would raise OSError:
// a server constructor whose bind or listen failed.
class socket_error : public std::exception {
 public:
  explicit socket_error(const result& failure) noexcept : failure_(failure) {}
  const char* what() const noexcept override { return failure_.message(); }
  int code() const noexcept { return failure_.code(); }
  const result& failure() const noexcept { return failure_; }

 private:
  result failure_;
};
#else
#define SOCKSERV_EXCEPTIONS 0
#endif

}  // namespace sockserv
