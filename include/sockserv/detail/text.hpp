// SPDX-License-Identifier: BSL-1.0
// sockserv/detail/text.hpp — the library's own small text formatting.
//
// Error messages and printed addresses are built with text_builder instead
// of snprintf: a static binary that calls any of the printf family carries
// its whole formatter (10.5 KiB of musl's 32 KiB tcp_uppercase on x86_64,
// with the floating-point conversion it always brings). The library only
// ever needs strings, decimal numbers and hex digits, appended to a fixed
// array with truncation, so that is all this does.
#pragma once

#include <cstddef>

namespace sockserv::detail {

// Appends to a caller's fixed array, keeping it NUL-terminated and never
// writing past its end: what does not fit is cut off, as snprintf does.
class text_builder {
 public:
  static constexpr std::size_t unlimited = ~std::size_t{0};

  text_builder(char* buffer, std::size_t capacity) noexcept : buffer_(buffer), capacity_(capacity) {
    if (capacity_ > 0) buffer_[0] = '\0';
  }

  // At most max_length characters of text ("(null)" for a null pointer).
  text_builder& add(const char* text, std::size_t max_length = unlimited) noexcept {
    if (text == nullptr) text = "(null)";
    for (std::size_t i = 0; i < max_length && text[i] != '\0'; ++i) put(text[i]);
    return *this;
  }

  text_builder& add_char(char c) noexcept {
    put(c);
    return *this;
  }

  // Numbers are unsigned long at most (descriptors, ports, sizes, errno
  // values): a 64-bit division on a 32-bit target would link libgcc's
  // __udivdi3 and __umoddi3 (2.2 KiB on MIPS).
  text_builder& add_unsigned(unsigned long value) noexcept { return add_digits(value, 10); }

  text_builder& add_signed(long value) noexcept {
    if (value < 0) put('-');
    // -(value + 1) + 1 stays in range for the most negative value.
    return add_unsigned(value < 0 ? static_cast<unsigned long>(-(value + 1)) + 1u : static_cast<unsigned long>(value));
  }

  // Lower-case hex without leading zeros ("0" for zero), as in IPv6 text.
  text_builder& add_hex(unsigned long value) noexcept { return add_digits(value, 16); }

  const char* c_str() const noexcept { return capacity_ > 0 ? buffer_ : ""; }
  std::size_t size() const noexcept { return length_; }

 private:
  void put(char c) noexcept {
    if (length_ + 1 >= capacity_) return;  // room for the NUL stays
    buffer_[length_++] = c;
    buffer_[length_] = '\0';
  }

  text_builder& add_digits(unsigned long value, unsigned base) noexcept {
    char digits[3 * sizeof value];  // enough for base 10 and 16
    unsigned count = 0;
    while (value != 0 || count == 0) {
      digits[count++] = "0123456789abcdef"[value % base];
      value /= base;
    }
    while (count > 0) put(digits[--count]);
    return *this;
  }

  char* buffer_;
  std::size_t capacity_;
  std::size_t length_ = 0;
};

}  // namespace sockserv::detail
