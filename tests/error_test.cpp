// result and socket_error (error.hpp): the errno-carrying outcome of every
// fallible call, and the exception a failed constructor throws.
#include <sockserv/error.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <type_traits>

using Catch::Matchers::Contains;
using sockserv::result;

TEST_CASE("a default result is success", "[error]") {
  result ok;
  CHECK(ok.ok());
  CHECK(static_cast<bool>(ok));
  CHECK(ok.code() == 0);
  CHECK(std::string(ok.message()) == "ok");
}

TEST_CASE("from_errno keeps the errno and says '<context>: <strerror>'", "[error]") {
  result r = result::from_errno(EADDRINUSE, "bind 127.0.0.1:9999");
  CHECK_FALSE(r.ok());
  CHECK_FALSE(static_cast<bool>(r));
  CHECK(r.code() == EADDRINUSE);
  CHECK(std::string(r.message()) == std::string("bind 127.0.0.1:9999: ") + std::strerror(EADDRINUSE));
}

TEST_CASE("failure() is a failure without errno", "[error]") {
  result r = result::failure("bad request");
  CHECK_FALSE(r.ok());
  CHECK(r.code() == -1);
  CHECK(std::string(r.message()) == "bad request");
}

TEST_CASE("messages longer than the capacity are cut, never overflowed", "[error]") {
  std::string huge(1000, 'm');
  result r = result::failure(huge.c_str());
  CHECK(std::strlen(r.message()) == result::message_capacity - 1);
  // A long context is cut so that the reason still shows.
  result e = result::from_errno(EPIPE, huge.c_str());
  CHECK(std::strlen(e.message()) < result::message_capacity);
  CHECK_THAT(e.message(), Contains(std::string("mmm: ") + std::strerror(EPIPE)));
  CHECK(e.code() == EPIPE);
}

TEST_CASE("an unknown errno still gives a message", "[error]") {
  result r = result::from_errno(123456, "strange");
  CHECK(r.code() == 123456);
  CHECK_THAT(r.message(), Contains("strange: "));
  CHECK(std::strlen(r.message()) > std::strlen("strange: "));
}

TEST_CASE("results copy by value, message included", "[error]") {
  static_assert(std::is_trivially_copyable_v<result>, "a result is plain data: no heap");
  result a = result::failure("first");
  result b = a;
  a = result::failure("second");
  CHECK(std::string(b.message()) == "first");
  CHECK(std::string(a.message()) == "second");
}

#if SOCKSERV_EXCEPTIONS
TEST_CASE("socket_error carries the failed result", "[error]") {
  static_assert(std::is_base_of_v<std::exception, sockserv::socket_error>, "catchable as std::exception");
  sockserv::socket_error e(result::from_errno(EACCES, "bind 0.0.0.0:80"));
  CHECK(e.code() == EACCES);
  CHECK_THAT(e.what(), Contains("bind 0.0.0.0:80"));
  CHECK_THAT(e.what(), Contains(std::strerror(EACCES)));
  CHECK(e.failure().code() == EACCES);
}
#endif
