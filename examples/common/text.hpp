// examples/common/text.hpp — small text helpers the example programs share:
// a port number or HOST:PORT from the command line, and the few Python bytes methods
// the seed's handlers call (upper(), strip(), rstrip(), print()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace common {

// Digits only, at most 65535. A loop rather than strtoul(), whose general
// number scanner is 2.4 KiB of tcp_uppercase's 32 KiB static musl budget.
inline bool parse_port(const char* text, std::uint16_t& port) {
  if (*text == '\0') return false;
  unsigned value = 0;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9') return false;
    value = value * 10 + static_cast<unsigned>(*text - '0');
    if (value > 65535) return false;
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

// HOST:PORT or [IPv6]:PORT: the host (brackets removed) into host, which
// holds host_size bytes; *bracketed says whether it was [IPv6].
inline bool split_host_port(const char* text, char* host, std::size_t host_size, std::uint16_t& port,
                            bool* bracketed = nullptr) {
  const char* colon = std::strrchr(text, ':');
  if (colon == nullptr) return false;
  const char* start = text;
  std::size_t length = static_cast<std::size_t>(colon - text);
  const bool ipv6 = length > 0 && start[0] == '[';
  if (ipv6) {
    if (length < 2 || start[length - 1] != ']') return false;
    ++start;
    length -= 2;
  }
  if (length >= host_size) return false;
  std::memcpy(host, start, length);
  host[length] = '\0';
  if (bracketed != nullptr) *bracketed = ipv6;
  return parse_port(colon + 1, port);
}

// ASCII only, as Python's bytes methods are.
inline char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python's rstrip() and strip(): a view of the same bytes, nothing copied.
inline std::string_view rstrip(std::string_view text) {
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}
inline std::string_view strip(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  return rstrip(text);
}

// write(stream, pieces...): each piece in turn, as fputs/fwrite would. The
// uppercase servers print with this rather than printf, so their static
// binaries carry no printf formatter (10 KiB under musl; see
// sockserv/detail/text.hpp).
inline void write_piece(std::FILE* stream, std::string_view text) { std::fwrite(text.data(), 1, text.size(), stream); }
template <class... Pieces>
void write(std::FILE* stream, const Pieces&... pieces) {
  (write_piece(stream, pieces), ...);
}

// Python's print() for text that has no terminating NUL: the text, then a
// newline; with a label, the label first ("Received: " + text).
inline void print(std::string_view text) { write(stdout, text, "\n"); }
inline void print(const char* label, std::string_view text) { write(stdout, label, text, "\n"); }

}  // namespace common
