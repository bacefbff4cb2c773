// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/error_report.hpp — the default handle_error()'s report.
//
// Python's BaseServer.handle_error prints a framed report to stderr; this
// prints the same frame with the client's address and what failed. The
// text is built first and written with one fwrite, so reports from
// concurrent workers do not interleave, and without fprintf (see
// detail/text.hpp for why).
#pragma once

#include "../address.hpp"
#include "text.hpp"

#include <cstdio>

namespace sockserv::detail {

inline void report_request_error(const socket_address& client_address, const char* what) noexcept {
  static constexpr const char* rule = "----------------------------------------\n";
  char report[2 * 41 + 64 + address_string::capacity + result::message_capacity];
  text_builder text(report, sizeof report);
  text.add(rule)
      .add("Error while processing the request from ")
      .add(client_address.to_string().c_str())
      .add("\n")
      .add(what, result::message_capacity)  // room stays for the closing rule
      .add("\n")
      .add(rule);
  std::fwrite(report, 1, text.size(), stderr);
}

}  // namespace sockserv::detail
